"""Trading partners entered by name and tax code; corrections of published records.

Revision ID: 5e0c3a1d9b27
Revises: 5120a2632f4a
Create Date: 2026-11-29 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "5e0c3a1d9b27"
down_revision: str | None = "5120a2632f4a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("tax_code", sa.String(length=14), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_partner_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner")),
        sa.UniqueConstraint(
            "organisation_id", "tax_code", name=op.f("uq_partner_organisation_id_tax_code")
        ),
    )
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_organisation_id"), ["organisation_id"], unique=False
        )
    op.create_table(
        "correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_table", sa.String(length=30), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_correction_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_correction_created_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction")),
    )
    with op.batch_alter_table("correction", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_correction_record_table"), ["record_table", "record_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("correction")
    op.drop_table("partner")
