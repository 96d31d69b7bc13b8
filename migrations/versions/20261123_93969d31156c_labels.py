"""labels: label runs, issued codes, scans and clone alarms

Revision ID: 93969d31156c
Revises: 021ce979327b
Create Date: 2026-11-23 00:22:08.215980
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "93969d31156c"
down_revision: str | None = "021ce979327b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("item_quantity", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("voided_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batch.id"], name=op.f("fk_label_run_batch_id_batch")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_label_run_created_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_run")),
    )
    with op.batch_alter_table("label_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_label_run_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=True),
        sa.Column("voided_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.Column("flagged_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("flag_reason", sa.Text(), nullable=True),
        sa.Column("scan_count", sa.Integer(), nullable=False),
        sa.Column("first_scan_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_scan_place", sa.String(length=200), nullable=True),
        sa.Column("last_scan_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_place_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_latitude", sa.Double(), nullable=True),
        sa.Column("last_longitude", sa.Double(), nullable=True),
        sa.Column("last_place", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batch.id"], name=op.f("fk_label_batch_id_batch")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["label_run.id"], name=op.f("fk_label_run_id_label_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label")),
        sa.UniqueConstraint("gtin", "serial", name=op.f("uq_label_gtin_serial")),
    )
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_label_batch_id"), ["batch_id", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_label_run_id"), ["run_id"], unique=False)

    op.create_table(
        "clone_alarm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("scan_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_id"], ["label.id"], name=op.f("fk_clone_alarm_label_id_label")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clone_alarm")),
    )
    with op.batch_alter_table("clone_alarm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clone_alarm_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_clone_alarm_label_id"), ["label_id"], unique=False)

    op.create_table(
        "scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.Column("at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["label_id"], ["label.id"], name=op.f("fk_scan_label_id_label")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan")),
    )
    with op.batch_alter_table("scan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scan_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_label_id"), ["label_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_label_id"))
        batch_op.drop_index(batch_op.f("ix_scan_at"))

    op.drop_table("scan")
    with op.batch_alter_table("clone_alarm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clone_alarm_label_id"))
        batch_op.drop_index(batch_op.f("ix_clone_alarm_created_at"))

    op.drop_table("clone_alarm")
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_label_run_id"))
        batch_op.drop_index(batch_op.f("ix_label_batch_id"))

    op.drop_table("label")
    with op.batch_alter_table("label_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_label_run_batch_id"))

    op.drop_table("label_run")
