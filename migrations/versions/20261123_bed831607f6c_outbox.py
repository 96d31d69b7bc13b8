"""outbox: rows waiting to reach the National Traceability Portal

Revision ID: bed831607f6c
Revises: 93969d31156c
Create Date: 2026-11-23 00:50:24.388296
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "bed831607f6c"
down_revision: str | None = "93969d31156c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("method", sa.String(length=10), nullable=True),
        sa.Column("path", sa.String(length=300), nullable=True),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_kind"), ["kind", "record_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbox_state"),
            ["state", "next_attempt_at", "priority", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_state"))
        batch_op.drop_index(batch_op.f("ix_outbox_kind"))

    op.drop_table("outbox")
