"""The capture digest of an event that passed the schema in a capture.

Revision ID: e41b7d9a2c58
Revises: a7c1e94f2b30
Create Date: 2026-11-29 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e41b7d9a2c58"
down_revision: str | None = "a7c1e94f2b30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("epcis_event", sa.Column("capture_digest", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_epcis_event_capture_digest"), "epcis_event", ["capture_digest"], unique=False
    )


def downgrade() -> None:
    # Not a batch: on SQLite a batch rebuilds epcis_event, and the rebuild's DROP TABLE
    # would take every event_epc row with it (ON DELETE CASCADE). SQLite >= 3.35 drops a
    # column in place.
    op.drop_index(op.f("ix_epcis_event_capture_digest"), table_name="epcis_event")
    op.drop_column("epcis_event", "capture_digest")
