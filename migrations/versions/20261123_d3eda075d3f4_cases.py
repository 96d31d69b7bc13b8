"""cases: infringement cases, their transitions, and the report-case link

Revision ID: d3eda075d3f4
Revises: 542e4770b530
Create Date: 2026-11-23 01:31:29.305415
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "d3eda075d3f4"
down_revision: str | None = "542e4770b530"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "infringement_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=500), nullable=True),
        sa.Column("linked_label_id", sa.Integer(), nullable=True),
        sa.Column("linked_batch_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("inspection_decision_number", sa.String(length=100), nullable=False),
        sa.Column("inspection_decision_date", sa.Date(), nullable=True),
        sa.Column("infringer", sa.Text(), nullable=False),
        sa.Column("violation_record", sa.Text(), nullable=False),
        sa.Column("goods", sa.Text(), nullable=False),
        sa.Column("goods_value_vnd", sa.BigInteger(), nullable=True),
        sa.Column("sanction_decision_number", sa.String(length=100), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("fine_vnd", sa.BigInteger(), nullable=True),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("payment", sa.Text(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("public_note", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["ip_asset.id"], name=op.f("fk_infringement_case_asset_id_ip_asset")
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["user_account.id"],
            name=op.f("fk_infringement_case_assignee_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infringement_case")),
        sa.UniqueConstraint("number", name=op.f("uq_infringement_case_number")),
    )
    with op.batch_alter_table("infringement_case", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_infringement_case_asset_id"), ["asset_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_infringement_case_assignee_id"), ["assignee_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_infringement_case_state"), ["state"], unique=False)

    op.create_table(
        "case_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=30), nullable=False),
        sa.Column("to_state", sa.String(length=30), nullable=False),
        sa.Column("at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["infringement_case.id"],
            name=op.f("fk_case_transition_case_id_infringement_case"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_transition")),
    )
    with op.batch_alter_table("case_transition", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_transition_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_report_case_id"), ["case_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_report_case_id_infringement_case"),
            "infringement_case",
            ["case_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_report_case_id_infringement_case"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_report_case_id"))
        batch_op.drop_column("case_id")

    with op.batch_alter_table("case_transition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_transition_case_id"))

    op.drop_table("case_transition")
    with op.batch_alter_table("infringement_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_infringement_case_state"))
        batch_op.drop_index(batch_op.f("ix_infringement_case_assignee_id"))
        batch_op.drop_index(batch_op.f("ix_infringement_case_asset_id"))

    op.drop_table("infringement_case")
