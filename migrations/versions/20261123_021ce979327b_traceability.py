"""traceability: products, batches, claims, locations, EPCIS events and capture jobs

Revision ID: 021ce979327b
Revises: 600a451a0041
Create Date: 2026-11-23 00:06:21.225020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db

revision: str = "021ce979327b"
down_revision: str | None = "600a451a0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "capture_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", nguon.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("error_behaviour", sa.String(length=10), nullable=False),
        sa.Column("captured", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_capture_job_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_job")),
    )
    op.create_table(
        "location",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["area_id"], ["production_area.id"], name=op.f("fk_location_area_id_production_area")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_location_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_location")),
        sa.UniqueConstraint("gln", name=op.f("uq_location_gln")),
    )
    with op.batch_alter_table("location", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_location_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("name_key", sa.String(length=300), nullable=False),
        sa.Column("brand", sa.String(length=200), nullable=False),
        sa.Column("producer_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("standards", sa.JSON(), nullable=False),
        sa.Column("safety_warnings", sa.Text(), nullable=False),
        sa.Column("ocop_product_id", sa.Integer(), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("image_type", sa.String(length=30), nullable=True),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ocop_product_id"],
            ["ocop_product.id"],
            name=op.f("fk_product_ocop_product_id_ocop_product"),
        ),
        sa.ForeignKeyConstraint(
            ["producer_id"], ["organisation.id"], name=op.f("fk_product_producer_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product")),
        sa.UniqueConstraint("gtin", name=op.f("uq_product_gtin")),
    )
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_product_producer_id"), ["producer_id"], unique=False)

    op.create_table(
        "batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("lot", sa.String(length=20), nullable=False),
        sa.Column("producer_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("unit", sa.String(length=3), nullable=False),
        sa.Column("production_date", sa.Date(), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("best_before", sa.Boolean(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_batch_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["producer_id"], ["organisation.id"], name=op.f("fk_batch_producer_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_batch_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch")),
        sa.UniqueConstraint("product_id", "lot", name=op.f("uq_batch_product_id_lot")),
    )
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batch_producer_id"), ["producer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_batch_product_id"), ["product_id"], unique=False)

    op.create_table(
        "epcis_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=30), nullable=False),
        sa.Column("event_time", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("record_time", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=True),
        sa.Column("biz_step", sa.String(length=200), nullable=True),
        sa.Column("disposition", sa.String(length=200), nullable=True),
        sa.Column("read_point", sa.String(length=300), nullable=True),
        sa.Column("biz_location", sa.String(length=300), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("capture_job_id", sa.Integer(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["capture_job_id"],
            ["capture_job.id"],
            name=op.f("fk_epcis_event_capture_job_id_capture_job"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_epcis_event_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_event")),
        sa.UniqueConstraint("event_id", name=op.f("uq_epcis_event_event_id")),
    )
    with op.batch_alter_table("epcis_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_epcis_event_biz_location"), ["biz_location"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_epcis_event_biz_step"), ["biz_step", "event_time"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_epcis_event_capture_job_id"), ["capture_job_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_epcis_event_disposition"), ["disposition"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_epcis_event_event_time"), ["event_time", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_epcis_event_event_type"), ["event_type"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_epcis_event_organisation_id"),
            ["organisation_id", "event_time"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_epcis_event_read_point"), ["read_point"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_epcis_event_record_time"), ["record_time"], unique=False
        )

    op.create_table(
        "product_asset",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["ip_asset.id"],
            name=op.f("fk_product_asset_asset_id_ip_asset"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_asset_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", "asset_id", name=op.f("pk_product_asset")),
    )
    op.create_table(
        "batch_area",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["production_area.id"],
            name=op.f("fk_batch_area_area_id_production_area"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batch.id"],
            name=op.f("fk_batch_area_batch_id_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "area_id", name=op.f("pk_batch_area")),
    )
    op.create_table(
        "claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("ocop_product_id", sa.Integer(), nullable=True),
        sa.Column("scheme", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("checked_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["ip_asset.id"], name=op.f("fk_claim_asset_id_ip_asset")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batch.id"], name=op.f("fk_claim_batch_id_batch"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ocop_product_id"],
            ["ocop_product.id"],
            name=op.f("fk_claim_ocop_product_id_ocop_product"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim")),
    )
    with op.batch_alter_table("claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claim_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_claim_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "event_epc",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_pk", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("epc", sa.String(length=300), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("lot", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_pk"],
            ["epcis_event.id"],
            name=op.f("fk_event_epc_event_pk_epcis_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_epc")),
    )
    with op.batch_alter_table("event_epc", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_epc_epc"), ["epc", "role"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_epc_event_pk"), ["event_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_epc_gtin"), ["gtin", "lot"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_epc", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_epc_gtin"))
        batch_op.drop_index(batch_op.f("ix_event_epc_event_pk"))
        batch_op.drop_index(batch_op.f("ix_event_epc_epc"))

    op.drop_table("event_epc")
    with op.batch_alter_table("claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claim_batch_id"))
        batch_op.drop_index(batch_op.f("ix_claim_asset_id"))

    op.drop_table("claim")
    op.drop_table("batch_area")
    op.drop_table("product_asset")
    with op.batch_alter_table("epcis_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_epcis_event_record_time"))
        batch_op.drop_index(batch_op.f("ix_epcis_event_read_point"))
        batch_op.drop_index(batch_op.f("ix_epcis_event_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_epcis_event_event_type"))
        batch_op.drop_index(batch_op.f("ix_epcis_event_event_time"))
        batch_op.drop_index(batch_op.f("ix_epcis_event_disposition"))
        batch_op.drop_index(batch_op.f("ix_epcis_event_capture_job_id"))
        batch_op.drop_index(batch_op.f("ix_epcis_event_biz_step"))
        batch_op.drop_index(batch_op.f("ix_epcis_event_biz_location"))

    op.drop_table("epcis_event")
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_product_id"))
        batch_op.drop_index(batch_op.f("ix_batch_producer_id"))

    op.drop_table("batch")
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_producer_id"))

    op.drop_table("product")
    with op.batch_alter_table("location", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_location_organisation_id"))

    op.drop_table("location")
    op.drop_table("capture_job")
