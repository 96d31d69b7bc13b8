"""Scan writes: no unused scan.at index, room for in-place label counter updates.

Every scan inserts a scan row and moves its label's counters. Nothing reads scans by
time alone (per code, ``ix_scan_label_id`` on label_id + at serves), so ``ix_scan_at``
only cost each insert. On PostgreSQL the label table keeps 15 % of each page free, so
the counter updates (scan_count, first/last scan time: no index on them) stay on their
page as heap-only tuples instead of adding entries to all four label indexes.

Revision ID: 6404e50ec57a
Revises: b1e7789fa9fe
Create Date: 2026-11-23 04:27:30.681104
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6404e50ec57a"
down_revision: str | None = "b1e7789fa9fe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_at"))
    if op.get_bind().dialect.name == "postgresql":
        # New pages only; existing ones get the room as they are rewritten (VACUUM FULL).
        op.execute("ALTER TABLE label SET (fillfactor = 85)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE label RESET (fillfactor)")
    with op.batch_alter_table("scan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scan_at"), ["at"], unique=False)
