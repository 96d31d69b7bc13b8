"""Registry records: organisations, administrative units, IP assets and what hangs off
them (status history, renewals, protection abroad, documents), authorised users,
production areas with their certificates, OCOP products and the province's targets."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from nguon.audit import Audited
from nguon.db import Base, utcnow
from nguon.text import search_key


def _values(enum_cls: type[enum.Enum]) -> tuple[str, ...]:
    return tuple(str(member.value) for member in enum_cls)


def _check_in(column: str, enum_cls: type[enum.Enum], name: str | None = None) -> CheckConstraint:
    return CheckConstraint(f"{column} IN {_values(enum_cls)!r}", name=name or column)


class OrganisationKind(enum.StrEnum):
    COOPERATIVE = "cooperative"
    ASSOCIATION = "association"
    ENTERPRISE = "enterprise"
    HOUSEHOLD = "household"
    AGENCY = "agency"


ORGANISATION_KINDS = _values(OrganisationKind)


class AdminUnit(Base):
    """An administrative unit as it was named between ``valid_from`` and ``valid_to``.

    Units are data: the 2025 reorganisation removed districts and merged provinces, and
    a record keeps the code of the unit it was made under.
    """

    __tablename__ = "admin_unit"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)  # e.g. P24, W07612, D219
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))  # province | district | commune
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("admin_unit.code"), index=True)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    name_key: Mapped[str] = mapped_column(String(200), index=True)

    __table_args__ = (
        CheckConstraint("level IN ('province', 'district', 'commune')", name="level"),
    )


class Organisation(Audited, Base):
    """A cooperative, association, enterprise, household or state agency."""

    __tablename__ = "organisation"
    __audit_exclude__ = frozenset({"name_key"})  # derived from name
    __table_args__ = (CheckConstraint(f"kind IN {ORGANISATION_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(300))
    # Mã số thuế: 10 digits, or 10-3 for a branch; unique when present.
    tax_code: Mapped[str | None] = mapped_column(String(14), unique=True)
    address: Mapped[str] = mapped_column(Text, default="")
    admin_unit_code: Mapped[str | None] = mapped_column(String(20))
    gln: Mapped[str | None] = mapped_column(String(13), unique=True)
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(254))
    is_demo: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    name_key: Mapped[str] = mapped_column(String(300), default="", server_default="", index=True)

    @validates("name")
    def _keep_search_key(self, _key: str, name: str) -> str:
        self.name_key = search_key(name)
        return name

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name!r}>"


class AssetKind(enum.StrEnum):
    COLLECTIVE_MARK = "collective_mark"
    CERTIFICATION_MARK = "certification_mark"
    GEOGRAPHICAL_INDICATION = "geographical_indication"
    MARK = "mark"


class AssetStatus(enum.StrEnum):
    PREPARING = "preparing"
    FILED = "filed"
    EXAMINING = "examining"
    GRANTED = "granted"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REFUSED = "refused"
    ABANDONED = "abandoned"


class IPAsset(Audited, Base):
    """A collective mark, certification mark, ordinary mark or geographical indication."""

    __tablename__ = "ip_asset"
    __audit_exclude__ = frozenset({"name_key", "search_key", "district_key"})  # derived
    __table_args__ = (
        _check_in("kind", AssetKind),
        _check_in("status", AssetStatus),
        UniqueConstraint("application_number"),
        Index(None, "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), index=True)
    # Everything searchable (name, products, holder, district), diacritic-free.
    search_key: Mapped[str] = mapped_column(Text, default="")
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    nice_classes: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Marks: the holder. GIs: the State holds them; managing_organisation manages.
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    managing_organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    admin_unit_code: Mapped[str | None] = mapped_column(String(20), index=True)
    district_name: Mapped[str] = mapped_column(String(100), default="")
    district_key: Mapped[str] = mapped_column(String(100), default="", index=True)
    application_number: Mapped[str | None] = mapped_column(String(20))
    filing_date: Mapped[dt.date | None] = mapped_column(Date)
    certificate_number: Mapped[str | None] = mapped_column(String(20))
    grant_decision: Mapped[str | None] = mapped_column(String(100))
    grant_date: Mapped[dt.date | None] = mapped_column(Date)
    expiry_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20), default=AssetStatus.PREPARING)
    area: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # GeoJSON geometry
    product_specification: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    is_demo: Mapped[bool] = mapped_column(default=False)
    # Which fields hold invented demo values (shown as such on every page).
    demo_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    holder: Mapped[Organisation | None] = relationship(foreign_keys=[holder_id])
    managing_organisation: Mapped[Organisation | None] = relationship(
        foreign_keys=[managing_organisation_id]
    )
    status_history: Mapped[list[AssetStatusChange]] = relationship(
        back_populates="asset", order_by="AssetStatusChange.id", cascade="all, delete-orphan"
    )
    renewals: Mapped[list[AssetRenewal]] = relationship(
        back_populates="asset", order_by="AssetRenewal.renewed_on", cascade="all, delete-orphan"
    )
    foreign_protections: Mapped[list[ForeignProtection]] = relationship(
        back_populates="asset", order_by="ForeignProtection.id", cascade="all, delete-orphan"
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="asset", order_by="Document.id", cascade="all, delete-orphan"
    )

    def latest_document(self, kind: str) -> Document | None:
        """The newest document of ``kind`` (e.g. the regulation on use in force)."""
        found = [d for d in self.documents if d.kind == kind]
        return found[-1] if found else None

    @property
    def is_gi(self) -> bool:
        return self.kind == AssetKind.GEOGRAPHICAL_INDICATION


class AssetStatusChange(Audited, Base):
    __tablename__ = "asset_status_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("ip_asset.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    on_date: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    asset: Mapped[IPAsset] = relationship(back_populates="status_history")


class AssetRenewal(Audited, Base):
    __tablename__ = "asset_renewal"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("ip_asset.id", ondelete="CASCADE"), index=True)
    renewed_on: Mapped[dt.date] = mapped_column(Date)
    decision: Mapped[str] = mapped_column(String(100), default="")
    new_expiry: Mapped[dt.date] = mapped_column(Date)

    asset: Mapped[IPAsset] = relationship(back_populates="renewals")


class ProtectionRoute(enum.StrEnum):
    NATIONAL = "national"
    MADRID = "madrid"
    GI_JAPAN = "gi_japan"


class ForeignProtection(Audited, Base):
    __tablename__ = "foreign_protection"
    __table_args__ = (_check_in("route", ProtectionRoute),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("ip_asset.id", ondelete="CASCADE"), index=True)
    territory: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    route: Mapped[str] = mapped_column(String(20), default=ProtectionRoute.NATIONAL)
    number: Mapped[str | None] = mapped_column(String(50))
    on_date: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")

    asset: Mapped[IPAsset] = relationship(back_populates="foreign_protections")


class DocumentKind(enum.StrEnum):
    REGULATION = "regulation"
    CERTIFICATE = "certificate"
    LOGO = "logo"
    MAP = "map"
    OTHER = "other"


class Document(Audited, Base):
    """A file kept under the instance folder by its SHA-256 (identical uploads share it)."""

    __tablename__ = "document"
    __table_args__ = (_check_in("kind", DocumentKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("ip_asset.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    asset: Mapped[IPAsset] = relationship(back_populates="documents")


authorised_user_area = Table(
    "authorised_user_area",
    Base.metadata,
    Column(
        "authorised_user_id",
        ForeignKey("authorised_user.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("area_id", ForeignKey("production_area.id", ondelete="RESTRICT"), primary_key=True),
)


class AuthorisedUserStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class AuthorisedUser(Audited, Base):
    """An organisation allowed to use a mark or GI, under a decision, for some products
    from some areas, up to a yearly quantity."""

    __tablename__ = "authorised_user"
    __table_args__ = (
        _check_in("status", AuthorisedUserStatus),
        UniqueConstraint("asset_id", "user_code"),
        Index(None, "organisation_id", "asset_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("ip_asset.id", ondelete="RESTRICT"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    decision_number: Mapped[str] = mapped_column(String(100))
    decision_date: Mapped[dt.date] = mapped_column(Date)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    user_code: Mapped[str] = mapped_column(String(50))
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    yearly_ceiling: Mapped[Decimal | None] = mapped_column(Numeric(14, 3))
    ceiling_unit: Mapped[str] = mapped_column(String(3), default="KGM")  # UN/CEFACT
    status: Mapped[str] = mapped_column(String(20), default=AuthorisedUserStatus.ACTIVE)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_changed_on: Mapped[dt.date | None] = mapped_column(Date)
    is_demo: Mapped[bool] = mapped_column(default=False)

    asset: Mapped[IPAsset] = relationship()
    organisation: Mapped[Organisation] = relationship()
    areas: Mapped[list[ProductionArea]] = relationship(
        secondary=authorised_user_area, order_by="ProductionArea.code"
    )


class ProductionArea(Audited, Base):
    """A growing area or packing facility (mã số vùng trồng / cơ sở đóng gói)."""

    __tablename__ = "production_area"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    crop: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    admin_unit_code: Mapped[str | None] = mapped_column(String(20))
    hectares: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)  # GeoJSON Point/Polygon/Multi
    expected_yield_kg_per_ha: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    is_demo: Mapped[bool] = mapped_column(default=False)

    owner: Mapped[Organisation] = relationship()
    certificates: Mapped[list[AreaCertificate]] = relationship(
        back_populates="area", order_by="AreaCertificate.valid_to", cascade="all, delete-orphan"
    )


class ZoneConfirmation(Audited, Base):
    """An officer's confirmation of a mapped zone (a production area, or a mark's or GI's zone)
    under a decision: who, when, which decision, and which shape (by its hash, so a shape
    changed afterwards is no longer confirmed)."""

    __tablename__ = "zone_confirmation"
    __table_args__ = (
        CheckConstraint("(area_id IS NULL) <> (asset_id IS NULL)", name="one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int | None] = mapped_column(
        ForeignKey("production_area.id", ondelete="CASCADE"), index=True
    )
    asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("ip_asset.id", ondelete="CASCADE"), index=True
    )
    decision_number: Mapped[str] = mapped_column(String(100))
    decision_date: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    geometry_sha256: Mapped[str] = mapped_column(String(64))
    hectares: Mapped[Decimal] = mapped_column(Numeric(14, 4))  # computed, at confirmation
    confirmed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    confirmed_by: Mapped[str] = mapped_column(String(300))


class CertificateScheme(enum.StrEnum):
    VIETGAP = "vietgap"
    GLOBALGAP = "globalgap"
    ORGANIC = "organic"
    OTHER = "other"


class AreaCertificate(Audited, Base):
    __tablename__ = "area_certificate"
    __table_args__ = (_check_in("scheme", CertificateScheme),)

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(
        ForeignKey("production_area.id", ondelete="CASCADE"), index=True
    )
    scheme: Mapped[str] = mapped_column(String(20))
    number: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(300))
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)

    area: Mapped[ProductionArea] = relationship(back_populates="certificates")


class OcopGroup(enum.StrEnum):
    """The six groups of Decision 148/QĐ-TTg (2023)."""

    FOOD = "food"
    BEVERAGES = "beverages"
    HERBS = "herbs"
    HANDICRAFTS = "handicrafts"
    ORNAMENTAL = "ornamental"
    TOURISM = "tourism"


class OcopCriteria(enum.StrEnum):
    """The set of criteria a product was scored against."""

    V2019 = "1048/2019"
    V2023 = "148/2023"


class OcopProcedure(enum.StrEnum):
    """The procedure the rating followed. Decision 1489/QĐ-TTg (2025) changed the procedure of
    Decision 148/QĐ-TTg (2023) (the commune proposes, the province rates, 90 points and more go
    to the Ministry), not its criteria."""

    V2019 = "1048/2019"
    V2023 = "148/2023"
    V2025 = "1489/2025"


class OcopLevel(enum.StrEnum):
    PROVINCIAL = "provincial"
    NATIONAL = "national"


class OcopStatus(enum.StrEnum):
    ACTIVE = "active"
    RERATED = "rerated"
    REVOKED = "revoked"


ocop_asset = Table(
    "ocop_asset",
    Base.metadata,
    Column("ocop_product_id", ForeignKey("ocop_product.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", ForeignKey("ip_asset.id", ondelete="CASCADE"), primary_key=True),
)


class OcopProduct(Audited, Base):
    """An OCOP rating of a product: score, stars, decision; valid 36 months."""

    __tablename__ = "ocop_product"
    __audit_exclude__ = frozenset({"name_key"})  # derived from name
    __table_args__ = (
        _check_in("product_group", OcopGroup),
        _check_in("criteria_version", OcopCriteria),
        _check_in("procedure_version", OcopProcedure),
        _check_in("rating_level", OcopLevel),
        _check_in("status", OcopStatus),
        CheckConstraint("stars BETWEEN 3 AND 5", name="stars"),
        CheckConstraint("score BETWEEN 0 AND 100", name="score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), index=True)
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    product_group: Mapped[str] = mapped_column(String(20))
    criteria_version: Mapped[str] = mapped_column(String(20))
    procedure_version: Mapped[str] = mapped_column(
        String(20), default=OcopProcedure.V2023, server_default=OcopProcedure.V2023.value
    )
    score: Mapped[int]
    stars: Mapped[int]
    rating_level: Mapped[str] = mapped_column(String(20))
    decision_number: Mapped[str] = mapped_column(String(100))
    decision_date: Mapped[dt.date] = mapped_column(Date)
    expiry_date: Mapped[dt.date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(20), default=OcopStatus.ACTIVE)
    gtins: Mapped[list[str]] = mapped_column(JSON, default=list)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("ocop_product.id"))
    is_demo: Mapped[bool] = mapped_column(default=False)

    producer: Mapped[Organisation] = relationship()
    assets: Mapped[list[IPAsset]] = relationship(secondary=ocop_asset, order_by="IPAsset.name")


class Target(Audited, Base):
    """A goal of the province, e.g. 4 GIs by 2025 (Chỉ thị 01/CT-UBND)."""

    __tablename__ = "target"
    __table_args__ = (UniqueConstraint("metric", "by_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # geographical_indication | certification_mark | collective_mark | mark
    # | applications_growth (a yearly rate, e.g. 0.05)
    metric: Mapped[str] = mapped_column(String(40))
    value: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    by_year: Mapped[int]
    source: Mapped[str] = mapped_column(Text, default="")
