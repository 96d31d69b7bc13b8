"""Capture jobs processed outside the request: payload, organisation, attempts, claim;
the content digest of events whose eventID the repository computed.

Revision ID: a7c1e94f2b30
Revises: 7a4e2d9c1b36
Create Date: 2026-11-29 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "a7c1e94f2b30"
down_revision: str | None = "7a4e2d9c1b36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("capture_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("claimed_at", nguon.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_capture_job_organisation_id_organisation"),
            "organisation",
            ["organisation_id"],
            ["id"],
        )

    with op.batch_alter_table("epcis_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_epcis_event_content_digest"), ["content_digest"], unique=False
        )


def downgrade() -> None:
    # Not a batch: on SQLite a batch rebuilds epcis_event, and the rebuild's DROP TABLE
    # would take every event_epc row with it (ON DELETE CASCADE). SQLite >= 3.35 drops a
    # column in place.
    op.drop_index(op.f("ix_epcis_event_content_digest"), table_name="epcis_event")
    op.drop_column("epcis_event", "content_digest")
    with op.batch_alter_table("capture_job", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_capture_job_organisation_id_organisation"), type_="foreignkey"
        )
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("organisation_id")
        batch_op.drop_column("payload")
