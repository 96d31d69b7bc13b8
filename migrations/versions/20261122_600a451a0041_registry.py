"""registry: admin units, IP assets, documents, authorised users, areas, OCOP, targets

Revision ID: 600a451a0041
Revises: 654252465ad1
Create Date: 2026-11-22 23:54:35.561160
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nguon.db
from nguon.text import search_key

revision: str = "600a451a0041"
down_revision: str | None = "654252465ad1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_unit",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("parent_code", sa.String(length=20), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "level IN ('province', 'district', 'commune')", name=op.f("ck_admin_unit_level")
        ),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["admin_unit.code"], name=op.f("fk_admin_unit_parent_code_admin_unit")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_admin_unit")),
    )
    with op.batch_alter_table("admin_unit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_unit_name_key"), ["name_key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_admin_unit_parent_code"), ["parent_code"], unique=False
        )

    op.create_table(
        "target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("by_year", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target")),
        sa.UniqueConstraint("metric", "by_year", name=op.f("uq_target_metric_by_year")),
    )
    op.create_table(
        "ip_asset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("name_key", sa.String(length=300), nullable=False),
        sa.Column("search_key", sa.Text(), nullable=False),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("nice_classes", sa.JSON(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=True),
        sa.Column("managing_organisation_id", sa.Integer(), nullable=True),
        sa.Column("admin_unit_code", sa.String(length=20), nullable=True),
        sa.Column("district_name", sa.String(length=100), nullable=False),
        sa.Column("district_key", sa.String(length=100), nullable=False),
        sa.Column("application_number", sa.String(length=20), nullable=True),
        sa.Column("filing_date", sa.Date(), nullable=True),
        sa.Column("certificate_number", sa.String(length=20), nullable=True),
        sa.Column("grant_decision", sa.String(length=100), nullable=True),
        sa.Column("grant_date", sa.Date(), nullable=True),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("area", sa.JSON(), nullable=True),
        sa.Column("product_specification", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.Column("demo_fields", sa.JSON(), nullable=False),
        sa.Column("created_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('collective_mark', 'certification_mark', 'geographical_indication', 'mark')",
            name=op.f("ck_ip_asset_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('preparing', 'filed', 'examining', 'granted', 'expired', 'revoked', 'refused', 'abandoned')",
            name=op.f("ck_ip_asset_status"),
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["organisation.id"], name=op.f("fk_ip_asset_holder_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["managing_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_ip_asset_managing_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_asset")),
        sa.UniqueConstraint("application_number", name=op.f("uq_ip_asset_application_number")),
    )
    with op.batch_alter_table("ip_asset", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ip_asset_admin_unit_code"), ["admin_unit_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ip_asset_district_key"), ["district_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ip_asset_expiry_date"), ["expiry_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_ip_asset_holder_id"), ["holder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ip_asset_kind"), ["kind", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_ip_asset_name_key"), ["name_key"], unique=False)

    op.create_table(
        "ocop_product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("name_key", sa.String(length=300), nullable=False),
        sa.Column("producer_id", sa.Integer(), nullable=False),
        sa.Column("product_group", sa.String(length=20), nullable=False),
        sa.Column("criteria_version", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("rating_level", sa.String(length=20), nullable=False),
        sa.Column("decision_number", sa.String(length=100), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("gtins", sa.JSON(), nullable=False),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "criteria_version IN ('1048/2019', '148/2023', '1489/2025')",
            name=op.f("ck_ocop_product_criteria_version"),
        ),
        sa.CheckConstraint(
            "product_group IN ('food', 'beverages', 'herbs', 'handicrafts', 'ornamental', 'tourism')",
            name=op.f("ck_ocop_product_product_group"),
        ),
        sa.CheckConstraint(
            "rating_level IN ('provincial', 'national')", name=op.f("ck_ocop_product_rating_level")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'rerated', 'revoked')", name=op.f("ck_ocop_product_status")
        ),
        sa.CheckConstraint("score BETWEEN 0 AND 100", name=op.f("ck_ocop_product_score")),
        sa.CheckConstraint("stars BETWEEN 3 AND 5", name=op.f("ck_ocop_product_stars")),
        sa.ForeignKeyConstraint(
            ["previous_id"],
            ["ocop_product.id"],
            name=op.f("fk_ocop_product_previous_id_ocop_product"),
        ),
        sa.ForeignKeyConstraint(
            ["producer_id"],
            ["organisation.id"],
            name=op.f("fk_ocop_product_producer_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocop_product")),
    )
    with op.batch_alter_table("ocop_product", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ocop_product_expiry_date"), ["expiry_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ocop_product_name_key"), ["name_key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ocop_product_producer_id"), ["producer_id"], unique=False
        )

    op.create_table(
        "production_area",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("crop", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("admin_unit_code", sa.String(length=20), nullable=True),
        sa.Column("hectares", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("expected_yield_kg_per_ha", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["organisation.id"], name=op.f("fk_production_area_owner_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_production_area")),
        sa.UniqueConstraint("code", name=op.f("uq_production_area_code")),
    )
    with op.batch_alter_table("production_area", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_production_area_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "area_certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "scheme IN ('vietgap', 'globalgap', 'organic', 'other')",
            name=op.f("ck_area_certificate_scheme"),
        ),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["production_area.id"],
            name=op.f("fk_area_certificate_area_id_production_area"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area_certificate")),
    )
    with op.batch_alter_table("area_certificate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_area_certificate_area_id"), ["area_id"], unique=False)

    op.create_table(
        "asset_renewal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("renewed_on", sa.Date(), nullable=False),
        sa.Column("decision", sa.String(length=100), nullable=False),
        sa.Column("new_expiry", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["ip_asset.id"],
            name=op.f("fk_asset_renewal_asset_id_ip_asset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_renewal")),
    )
    with op.batch_alter_table("asset_renewal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_renewal_asset_id"), ["asset_id"], unique=False)

    op.create_table(
        "asset_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["ip_asset.id"],
            name=op.f("fk_asset_status_change_asset_id_ip_asset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_status_change")),
    )
    with op.batch_alter_table("asset_status_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_asset_status_change_asset_id"), ["asset_id"], unique=False
        )

    op.create_table(
        "authorised_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("decision_number", sa.String(length=100), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("user_code", sa.String(length=50), nullable=False),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("yearly_ceiling", sa.Numeric(precision=14, scale=3), nullable=True),
        sa.Column("ceiling_unit", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("status_changed_on", sa.Date(), nullable=True),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'revoked')", name=op.f("ck_authorised_user_status")
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["ip_asset.id"],
            name=op.f("fk_authorised_user_asset_id_ip_asset"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_authorised_user_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorised_user")),
        sa.UniqueConstraint(
            "asset_id", "user_code", name=op.f("uq_authorised_user_asset_id_user_code")
        ),
    )
    with op.batch_alter_table("authorised_user", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authorised_user_organisation_id"),
            ["organisation_id", "asset_id"],
            unique=False,
        )

    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", nguon.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('regulation', 'certificate', 'logo', 'map', 'other')",
            name=op.f("ck_document_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["ip_asset.id"],
            name=op.f("fk_document_asset_id_ip_asset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
    )
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_document_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_sha256"), ["sha256"], unique=False)

    op.create_table(
        "foreign_protection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=50), nullable=True),
        sa.Column("on_date", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "route IN ('national', 'madrid', 'gi_japan')", name=op.f("ck_foreign_protection_route")
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["ip_asset.id"],
            name=op.f("fk_foreign_protection_asset_id_ip_asset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_foreign_protection")),
    )
    with op.batch_alter_table("foreign_protection", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_foreign_protection_asset_id"), ["asset_id"], unique=False
        )

    op.create_table(
        "ocop_asset",
        sa.Column("ocop_product_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["ip_asset.id"],
            name=op.f("fk_ocop_asset_asset_id_ip_asset"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ocop_product_id"],
            ["ocop_product.id"],
            name=op.f("fk_ocop_asset_ocop_product_id_ocop_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ocop_product_id", "asset_id", name=op.f("pk_ocop_asset")),
    )
    op.create_table(
        "authorised_user_area",
        sa.Column("authorised_user_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["production_area.id"],
            name=op.f("fk_authorised_user_area_area_id_production_area"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["authorised_user_id"],
            ["authorised_user.id"],
            name=op.f("fk_authorised_user_area_authorised_user_id_authorised_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "authorised_user_id", "area_id", name=op.f("pk_authorised_user_area")
        ),
    )
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name_key", sa.String(length=300), server_default="", nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_organisation_name_key"), ["name_key"], unique=False)
    # Existing organisations get their search key (the same function the app uses).
    organisation = sa.table(
        "organisation",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_key", sa.String),
    )
    conn = op.get_bind()
    for org_id, name in conn.execute(sa.select(organisation.c.id, organisation.c.name)).all():
        conn.execute(
            organisation.update()
            .where(organisation.c.id == org_id)
            .values(name_key=search_key(name))
        )


def downgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisation_name_key"))
        batch_op.drop_column("name_key")

    op.drop_table("authorised_user_area")
    op.drop_table("ocop_asset")
    with op.batch_alter_table("foreign_protection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_foreign_protection_asset_id"))

    op.drop_table("foreign_protection")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_sha256"))
        batch_op.drop_index(batch_op.f("ix_document_asset_id"))

    op.drop_table("document")
    with op.batch_alter_table("authorised_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorised_user_organisation_id"))

    op.drop_table("authorised_user")
    with op.batch_alter_table("asset_status_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_status_change_asset_id"))

    op.drop_table("asset_status_change")
    with op.batch_alter_table("asset_renewal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_renewal_asset_id"))

    op.drop_table("asset_renewal")
    with op.batch_alter_table("area_certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_area_certificate_area_id"))

    op.drop_table("area_certificate")
    with op.batch_alter_table("production_area", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_production_area_owner_id"))

    op.drop_table("production_area")
    with op.batch_alter_table("ocop_product", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ocop_product_producer_id"))
        batch_op.drop_index(batch_op.f("ix_ocop_product_name_key"))
        batch_op.drop_index(batch_op.f("ix_ocop_product_expiry_date"))

    op.drop_table("ocop_product")
    with op.batch_alter_table("ip_asset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ip_asset_name_key"))
        batch_op.drop_index(batch_op.f("ix_ip_asset_kind"))
        batch_op.drop_index(batch_op.f("ix_ip_asset_holder_id"))
        batch_op.drop_index(batch_op.f("ix_ip_asset_expiry_date"))
        batch_op.drop_index(batch_op.f("ix_ip_asset_district_key"))
        batch_op.drop_index(batch_op.f("ix_ip_asset_admin_unit_code"))

    op.drop_table("ip_asset")
    op.drop_table("target")
    with op.batch_alter_table("admin_unit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_unit_parent_code"))
        batch_op.drop_index(batch_op.f("ix_admin_unit_name_key"))

    op.drop_table("admin_unit")
