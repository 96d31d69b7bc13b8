"""Portal sync that heals itself: what the portal holds of ours (record id, revision),
the shared state of each destination (circuit breaker, heartbeat; its pace apart), resumable
reconciliation runs, and the outbox's failing clock, revision and delivery time.

The portal records already delivered are adopted from the outbox (the latest remote id
of each record, as revision 1), so the next change of such a record is an update of it;
a change of one still waiting, frozen as a second record, is unfrozen to go as that update.

Revision ID: 5120a2632f4a
Revises: 3c9e5a1f7d20
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "5120a2632f4a"
down_revision: str | None = "3c9e5a1f7d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failing_since", nguon.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("sent_at", nguon.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_outbox_sent_at"), ["sent_at"], unique=False)
    op.create_table(
        "portal_record",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "record_id", name=op.f("pk_portal_record")),
    )
    op.create_table(
        "sync_channel",
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("circuit", sa.String(length=10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unreachable_since", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_probe_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_success_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker_seen_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker_name", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_sync_channel")),
    )
    op.create_table(
        "sync_pace",
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("next_slot", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_sync_pace")),
    )
    op.create_table(
        "reconcile_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("repair", sa.Boolean(), nullable=False),
        sa.Column("differences", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_run")),
    )
    # Records the portal already holds: the latest remote id of each, as revision 1.
    op.execute(
        """
        INSERT INTO portal_record (kind, record_id, remote_id, revision, updated_at)
        SELECT o.kind, o.record_id, o.remote_id, 1, o.updated_at
        FROM outbox o
        WHERE o.remote_id IS NOT NULL AND o.id = (
            SELECT max(l.id) FROM outbox l
            WHERE l.kind = o.kind AND l.record_id = o.record_id AND l.remote_id IS NOT NULL)
        """
    )
    op.execute("UPDATE outbox SET sent_at = updated_at WHERE state IN ('sent', 'done', 'rejected')")
    # A change of such a record still waiting, frozen as a new record (POST), would become a
    # second record: unfreeze it, under a new key (the update's body differs), so that it
    # is built again as an update of the record the portal holds.
    if op.get_bind().dialect.name == "postgresql":
        new_key = "gen_random_uuid()::text"
    else:  # SQLite: a random UUID-shaped key from 16 random bytes
        new_key = "lower(hex(randomblob(16)))"
        new_key = (
            f"substr({new_key}, 1, 8) || '-' || substr({new_key}, 9, 4) || '-' || "
            f"substr({new_key}, 13, 4) || '-' || substr({new_key}, 17, 4) || '-' || "
            f"substr({new_key}, 21, 12)"
        )
    op.execute(
        f"""
        UPDATE outbox SET payload = NULL, method = NULL, path = NULL, idempotency_key = {new_key}
        WHERE kind = 'trace_record' AND state = 'pending' AND method = 'POST'
          AND EXISTS (SELECT 1 FROM portal_record p
                      WHERE p.kind = outbox.kind AND p.record_id = outbox.record_id)
        """  # noqa: S608 - the key expression is one of the two constants above
    )


def downgrade() -> None:
    op.drop_table("reconcile_run")
    op.drop_table("sync_pace")
    op.drop_table("sync_channel")
    op.drop_table("portal_record")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_sent_at"))
        batch_op.drop_column("sent_at")
        batch_op.drop_column("revision")
        batch_op.drop_column("failing_since")
