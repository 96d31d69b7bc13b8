"""reports: suspected infringements filed by anyone, with their photos

Revision ID: 542e4770b530
Revises: bed831607f6c
Create Date: 2026-11-23 01:24:53.117618
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "542e4770b530"
down_revision: str | None = "bed831607f6c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("receipt", sa.String(length=20), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("admin_unit_code", sa.String(length=20), nullable=True),
        sa.Column("place", sa.Text(), nullable=False),
        sa.Column("shop_name", sa.String(length=300), nullable=False),
        sa.Column("shop_address", sa.Text(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("product", sa.String(length=300), nullable=False),
        sa.Column("code", sa.String(length=500), nullable=True),
        sa.Column("linked_label_id", sa.Integer(), nullable=True),
        sa.Column("linked_batch_id", sa.Integer(), nullable=True),
        sa.Column("contact_name", sa.String(length=200), nullable=False),
        sa.Column("contact_phone", sa.String(length=50), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=False),
        sa.Column("contact_consent", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("public_note", sa.Text(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('counterfeit', 'unauthorised_use', 'fake_code', 'labelling', 'other')",
            name=op.f("ck_report_category"),
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["ip_asset.id"], name=op.f("fk_report_asset_id_ip_asset")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
        sa.UniqueConstraint("receipt", name=op.f("uq_report_receipt")),
    )
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_asset_id"), ["asset_id"], unique=False)

    op.create_table(
        "report_photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
            name=op.f("fk_report_photo_report_id_report"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_photo")),
    )
    with op.batch_alter_table("report_photo", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_photo_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_photo", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_photo_report_id"))

    op.drop_table("report_photo")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_asset_id"))

    op.drop_table("report")
