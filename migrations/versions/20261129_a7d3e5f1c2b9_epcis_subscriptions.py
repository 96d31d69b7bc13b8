"""EPCIS query subscriptions and the notifications matched for them.

Revision ID: a7d3e5f1c2b9
Revises: 8d41c7b2e6a3
Create Date: 2026-11-29 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "a7d3e5f1c2b9"
down_revision: str | None = "8d41c7b2e6a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "epcis_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("query_name", sa.String(length=200), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("dest", sa.Text(), nullable=False),
        sa.Column("signature_token", sa.Text(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.Column("report_if_empty", sa.Boolean(), nullable=False),
        sa.Column("initial_record_time", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_run_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_notified_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_epcis_subscription_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_epcis_subscription_user_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_subscription")),
        sa.UniqueConstraint("subscription_id", name=op.f("uq_epcis_subscription_subscription_id")),
    )
    op.create_table(
        "epcis_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_pk", sa.Integer(), nullable=False),
        sa.Column("event_pks", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_pk"],
            ["epcis_subscription.id"],
            name=op.f("fk_epcis_notification_subscription_pk_epcis_subscription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_notification")),
    )
    with op.batch_alter_table("epcis_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_epcis_notification_subscription_pk"),
            ["subscription_pk", "sealed"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("epcis_notification")
    op.drop_table("epcis_subscription")
