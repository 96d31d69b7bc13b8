"""Label scanned_by: the client of a code's last scan, for the verdict.

The consumer page tells a buyer who scans their item again, with nobody else scanning
it in between, "you scanned this before" rather than "already scanned, be careful";
it needs to know, without reading the scans, who scanned the code last. ``scanned_by``
holds that client's (daily-salted) fingerprint, NULL while the code was never scanned.

Revision ID: 3c9e5a1f7d20
Revises: cc92386b4041
Create Date: 2026-11-29 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c9e5a1f7d20"
down_revision: str | None = "cc92386b4041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scanned_by", sa.String(length=32), nullable=True))
    # Codes scanned before this column existed: their last client is unknown ("" matches
    # no client, so the page keeps the cautious wording).
    op.execute("UPDATE label SET scanned_by = '' WHERE scan_count > 0")


def downgrade() -> None:
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.drop_column("scanned_by")
