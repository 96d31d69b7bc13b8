"""Traceability records: products, batches and their claims, locations, EPCIS events."""

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
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nguon.audit import Audited
from nguon.db import Base, utcnow
from registry.models import IPAsset, OcopProduct, Organisation, ProductionArea

product_asset = Table(
    "product_asset",
    Base.metadata,
    Column("product_id", ForeignKey("product.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", ForeignKey("ip_asset.id", ondelete="RESTRICT"), primary_key=True),
)

batch_area = Table(
    "batch_area",
    Base.metadata,
    Column("batch_id", ForeignKey("batch.id", ondelete="CASCADE"), primary_key=True),
    Column("area_id", ForeignKey("production_area.id", ondelete="RESTRICT"), primary_key=True),
)


class Product(Audited, Base):
    """A trade item with its GTIN, made by one organisation."""

    __tablename__ = "product"
    __audit_exclude__ = frozenset({"name_key"})

    id: Mapped[int] = mapped_column(primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), unique=True)  # GTIN-14
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), default="")
    brand: Mapped[str] = mapped_column(String(200), default="")
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    standards: Mapped[list[str]] = mapped_column(JSON, default=list)  # TCVN, QCVN, VietGAP...
    safety_warnings: Mapped[str] = mapped_column(Text, default="")
    ocop_product_id: Mapped[int | None] = mapped_column(ForeignKey("ocop_product.id"))
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    image_type: Mapped[str | None] = mapped_column(String(30))
    is_demo: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    producer: Mapped[Organisation] = relationship()
    assets: Mapped[list[IPAsset]] = relationship(secondary=product_asset, order_by=IPAsset.id)
    ocop_product: Mapped[OcopProduct | None] = relationship()


class ClaimKind(enum.StrEnum):
    GEOGRAPHICAL_INDICATION = "geographical_indication"
    COLLECTIVE_MARK = "collective_mark"
    CERTIFICATION_MARK = "certification_mark"
    OCOP = "ocop"
    GAP = "gap"


class ClaimStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"


class Batch(Audited, Base):
    """A lot of a product: what, who, from where, how much, when."""

    __tablename__ = "batch"
    __table_args__ = (
        UniqueConstraint("product_id", "lot"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    lot: Mapped[str] = mapped_column(String(20))
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    unit: Mapped[str] = mapped_column(String(3), default="KGM")  # UN/CEFACT Rec. 20
    production_date: Mapped[dt.date] = mapped_column(Date)  # harvest or production day
    expiry_date: Mapped[dt.date | None] = mapped_column(Date)
    best_before: Mapped[bool] = mapped_column(default=False)  # "best before" vs "use by"
    notes: Mapped[str] = mapped_column(Text, default="")
    is_demo: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    product: Mapped[Product] = relationship()
    producer: Mapped[Organisation] = relationship()
    areas: Mapped[list[ProductionArea]] = relationship(
        secondary=batch_area, order_by=ProductionArea.code
    )
    claims: Mapped[list[Claim]] = relationship(
        back_populates="batch", order_by="Claim.id", cascade="all, delete-orphan"
    )

    @property
    def gtin(self) -> str:
        return self.product.gtin


class Claim(Audited, Base):
    """A batch's claim to a GI, a mark, an OCOP rating or a GAP certificate, with the
    registry's answer on the batch's date and the evidence (or the failed condition)."""

    __tablename__ = "claim"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("ip_asset.id"), index=True)
    ocop_product_id: Mapped[int | None] = mapped_column(ForeignKey("ocop_product.id"))
    scheme: Mapped[str | None] = mapped_column(String(20))  # GAP: vietgap, globalgap, organic
    status: Mapped[str] = mapped_column(String(10))
    # [{"condition", "ok", "detail"}] in the order they were checked.
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    checked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    batch: Mapped[Batch] = relationship(back_populates="claims")
    asset: Mapped[IPAsset | None] = relationship()
    ocop_product: Mapped[OcopProduct | None] = relationship()


class Location(Audited, Base):
    """A place events happen at (bizLocation/readPoint): by GLN or by area code."""

    __tablename__ = "location"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    gln: Mapped[str | None] = mapped_column(String(13), unique=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("production_area.id"))
    kind: Mapped[str] = mapped_column(String(30), default="site")  # farm, packhouse, warehouse...
    address: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]

    organisation: Mapped[Organisation] = relationship()

    @property
    def identifier(self) -> str:
        """The EPCIS identifier: an SGLN-style Digital Link, or the area's code as a URN."""
        if self.gln:
            return f"https://id.gs1.org/414/{self.gln}"
        return f"urn:nguon:location:{self.id}"


class Partner(Audited, Base):
    """A trading partner a cooperative entered by name and tax code (not in the registry),
    kept to be chosen again. In events it is ``urn:nguon:party:<tax code>``."""

    __tablename__ = "partner"
    __table_args__ = (UniqueConstraint("organisation_id", "tax_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    tax_code: Mapped[str] = mapped_column(String(14))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def identifier(self) -> str:
        return f"urn:nguon:party:{self.tax_code}"


class Correction(Audited, Base):
    """A change to a product or batch made after its labels were printed or its record
    was sent: what changed, why and who did it (the record is sent again)."""

    __tablename__ = "correction"
    __table_args__ = (Index(None, "record_table", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_table: Mapped[str] = mapped_column(String(30))
    record_id: Mapped[int]
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    reason: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class EpcisEvent(Base):
    """One EPCIS 2.0 event, kept as received (``document``), with indexed columns for
    the query interface. Not audited: events are append-only by nature."""

    __tablename__ = "epcis_event"
    __table_args__ = (
        Index(None, "event_time", "id"),
        Index(None, "biz_step", "event_time"),
        Index(None, "organisation_id", "event_time"),
        # An event and, beside it, its error declaration (EPCIS 2.0 §7.4.1.2): the same
        # eventID twice, told apart by ``error_declaration``.
        UniqueConstraint("event_id", "error_declaration"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(300))
    event_type: Mapped[str] = mapped_column(String(30), index=True)
    event_time: Mapped[dt.datetime]
    record_time: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str | None] = mapped_column(String(10))
    biz_step: Mapped[str | None] = mapped_column(String(200))  # bare CBV word when standard
    disposition: Mapped[str | None] = mapped_column(String(200), index=True)
    read_point: Mapped[str | None] = mapped_column(String(300), index=True)
    biz_location: Mapped[str | None] = mapped_column(String(300), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    capture_job_id: Mapped[int | None] = mapped_column(ForeignKey("capture_job.id"), index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The @context entries beyond EPCIS's own (user-extension namespaces), to give back.
    context: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # This row is the error declaration of the event with the same eventID; its
    # declarationTime and reason (bare CBV word when standard), for the query interface.
    error_declaration: Mapped[bool] = mapped_column(default=False, server_default=false())
    declaration_time: Mapped[dt.datetime | None] = mapped_column(index=True)
    error_reason: Mapped[str | None] = mapped_column(String(200))
    # For an eventID this repository computed: a digest of everything its hash depends
    # on (traceability.epcis_hash.content_digests), so a re-capture finds it unhashed.
    content_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    # For an event that passed the schema in a capture: a digest of it as the client sent
    # it (traceability.epcis.capture_digests), so the same event sent again is known to
    # be valid without validating it again.
    capture_digest: Mapped[str | None] = mapped_column(String(64), index=True)


class EventEpc(Base):
    """Every identifier an event names, with its role, for MATCH_* queries and lineage."""

    __tablename__ = "event_epc"
    __table_args__ = (
        Index(None, "epc", "role"),
        Index(None, "gtin", "lot"),
        # One item whichever its spelling (URN or Digital Link), for MATCH_ queries.
        Index("ix_event_epc_gtin_serial", "gtin", "serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_pk: Mapped[int] = mapped_column(
        ForeignKey("epcis_event.id", ondelete="CASCADE"), index=True
    )
    # epc | parent | child | input | output, and for EPC classes: quantity | child_quantity |
    # input_quantity | output_quantity
    role: Mapped[str] = mapped_column(String(20))
    epc: Mapped[str] = mapped_column(String(300))
    gtin: Mapped[str | None] = mapped_column(String(14))
    lot: Mapped[str | None] = mapped_column(String(20))
    serial: Mapped[str | None] = mapped_column(String(20))


class EpcisNamedQuery(Base):
    """A named query of the REST binding (``/epcis/queries``): its parameters as given
    (name -> list of values), private to the organisation that made it."""

    __tablename__ = "epcis_named_query"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CaptureJob(Base):
    """A capture request and its outcome (GET /epcis/capture/{id})."""

    __tablename__ = "capture_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    running: Mapped[bool] = mapped_column(default=True)
    success: Mapped[bool | None]
    error_behaviour: Mapped[str] = mapped_column(String(10), default="rollback")
    captured: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # A job processed outside the request (traceability.capture_jobs): what is left to
    # store ({"events": [...], "context": [...]}, cleared when done), for whom, and the
    # runner's claim (attempts so far, when the current one started).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[dt.datetime | None]


class LabelKind(enum.StrEnum):
    LOT = "lot"  # one code for the whole lot
    ITEM = "item"  # one random serial per unit


class LabelRun(Audited, Base):
    """A print run of codes for a batch: one lot-level code or N serialised item codes."""

    __tablename__ = "label_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    count: Mapped[int]
    item_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))  # per code, batch's unit
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    voided_at: Mapped[dt.datetime | None]
    void_reason: Mapped[str] = mapped_column(Text, default="")

    batch: Mapped[Batch] = relationship()


class Label(Base):
    """One issued code. Not audited row by row (millions); runs and voids are."""

    __tablename__ = "label"
    __table_args__ = (
        UniqueConstraint("gtin", "serial"),
        Index(None, "batch_id", "kind"),
        # Room on each page for the per-scan counter updates to stay in place (HOT).
        {"postgresql_with": {"fillfactor": 85}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("label_run.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"))
    kind: Mapped[str] = mapped_column(String(10))
    gtin: Mapped[str] = mapped_column(String(14))
    serial: Mapped[str | None] = mapped_column(String(20))
    voided_at: Mapped[dt.datetime | None]
    void_reason: Mapped[str | None] = mapped_column(Text)
    flagged_at: Mapped[dt.datetime | None]
    flag_reason: Mapped[str | None] = mapped_column(Text)
    scan_count: Mapped[int] = mapped_column(default=0)
    first_scan_at: Mapped[dt.datetime | None]
    first_scan_place: Mapped[str | None] = mapped_column(String(200))
    # The (daily-salted) fingerprint of the client of the code's last scan; None while
    # it was never scanned.
    scanned_by: Mapped[str | None] = mapped_column(String(32))
    last_scan_at: Mapped[dt.datetime | None]
    last_place_at: Mapped[dt.datetime | None]
    last_latitude: Mapped[float | None]
    last_longitude: Mapped[float | None]
    last_place: Mapped[str | None] = mapped_column(String(200))

    batch: Mapped[Batch] = relationship()

    @property
    def uri(self) -> str:
        from flask import current_app

        from traceability.gs1 import DigitalLink

        return DigitalLink(self.gtin, lot=self.batch.lot, serial=self.serial).uri(
            current_app.config["PUBLIC_URL"]
        )


class Scan(Base):
    """One resolution of a code: when, what verdict, a coarse place if shared, and a
    daily-salted fingerprint instead of the client's address."""

    __tablename__ = "scan"
    __table_args__ = (Index(None, "label_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # A random reference given to the consumer's page (to share a place for this scan);
    # chosen before the row is written, so a queued scan can be named already.
    ref: Mapped[str | None] = mapped_column(String(32), unique=True)
    label_id: Mapped[int | None] = mapped_column(ForeignKey("label.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    path: Mapped[str] = mapped_column(String(300))
    verdict: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(32))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    place: Mapped[str | None] = mapped_column(String(200))


class CloneAlarm(Base):
    """A clone rule fired for a code: the rule, its evidence (scans), and its handling."""

    __tablename__ = "clone_alarm"

    id: Mapped[int] = mapped_column(primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id"), index=True)
    rule: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(Text)
    scan_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(10), default="open")  # AlarmStatus
    case_id: Mapped[int | None] = mapped_column(ForeignKey("infringement_case.id"), index=True)
    handled_at: Mapped[dt.datetime | None]
    handled_by: Mapped[str | None] = mapped_column(String(300))
    handled_reason: Mapped[str] = mapped_column(Text, default="", server_default="")

    label: Mapped[Label] = relationship()
