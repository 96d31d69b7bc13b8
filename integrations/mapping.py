"""The one place that knows the portal's payloads (PORTAL_CONTRACT.md). When the portal
publishes its real specification, this module is what changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from nguon.db import db
from registry.models import Organisation
from traceability import services
from traceability.gs1 import DigitalLink
from traceability.models import (
    Batch,
    Claim,
    EpcisEvent,
    Label,
    LabelKind,
    Location,
    Product,
)


class NotReady(Exception):
    """The record depends on one the portal does not have yet (sent first, by priority)."""


class Unsendable(Exception):
    """The record cannot be expressed in the contract (e.g. an organisation without tax code)."""


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any]
    dependencies: tuple[tuple[str, str], ...] = ()  # (kind, record id) that must be done


def organisation(org_id: str) -> Call:
    org = db.session.get(Organisation, int(org_id))
    if org is None:
        raise Unsendable(f"organisation {org_id} no longer exists")
    if not org.tax_code:
        raise Unsendable(f"{org.name} has no tax code; the portal keys organisations by it")
    body = {
        "name": org.name,
        "address": org.address,
        "admin_unit_code": org.admin_unit_code,
        "gln": org.gln,
        "contacts": {"phone": org.phone, "email": org.email},
    }
    return Call("PUT", f"/api/v1/organizations/{org.tax_code}", body)


def location(location_id: str) -> Call:
    place = db.session.get(Location, int(location_id))
    if place is None:
        raise Unsendable(f"location {location_id} no longer exists")
    code = place.gln or f"LOC-{place.id}"
    body = {
        "location_trace_code": place.identifier,
        "name": place.name,
        "address": place.address,
        "lat": place.latitude,
        "lon": place.longitude,
        "kind": place.kind,
    }
    return Call(
        "PUT", f"/api/v1/locations/{code}", body, (("organisation", str(place.organisation_id)),)
    )


def _certifications(assets: list[Any]) -> list[dict[str, Any]]:
    return [{"kind": a.kind, "number": a.certificate_number, "name": a.name} for a in assets]


def product(product_id: str) -> Call:
    item = db.session.get(Product, int(product_id))
    if item is None:
        raise Unsendable(f"product {product_id} no longer exists")
    producer = item.producer
    base = current_app.config["PUBLIC_URL"]
    body = {
        "name": item.name,
        "image_url": f"{base}/traceability/images/{item.image_sha256}"
        if item.image_sha256
        else None,
        "brand": item.brand,
        "producer_tax_code": producer.tax_code,
        "origin": producer.address,
        "standards": list(item.standards or []),
        "certifications": _certifications(services.backed_assets(item)),
        "safety_warnings": item.safety_warnings,
    }
    return Call("PUT", f"/api/v1/products/{item.gtin}", body, (("organisation", str(producer.id)),))


BATCH_OPTIONS = (
    selectinload(Batch.claims).selectinload(Claim.asset),
    selectinload(Batch.claims).selectinload(Claim.ocop_product),
    joinedload(Batch.product),
    joinedload(Batch.producer),
)


def preload(kind: str, record_ids: list[str]) -> None:
    """Load many records in a few queries before their calls are built one by one."""
    if kind == "trace_record" and record_ids:
        loaded = (
            db.session.scalars(
                select(Batch)
                .where(Batch.id.in_([int(i) for i in record_ids]))
                .options(*BATCH_OPTIONS)
            )
            .unique()
            .all()
        )
        # The identity map holds objects weakly: keep them alive for this unit of work.
        db.session.info.setdefault("preloaded", []).extend(loaded)
        ids = [b.id for b in loaded]
        counts = db.session.info.setdefault("label_counts", {})
        counts.update({i: 0 for i in ids})
        counts.update(dict(db.session.execute(
            select(Label.batch_id, func.count(Label.id))
            .where(Label.batch_id.in_(ids), Label.kind == LabelKind.ITEM, Label.voided_at.is_(None))
            .group_by(Label.batch_id)
        ).all()))  # fmt: skip
        # The same events, and the same filter, as services.batch_events.
        db.session.info.setdefault("events", {}).update(services.lots_events(loaded))


def trace_record(batch_id: str) -> Call:
    batch = db.session.get(Batch, int(batch_id))  # preloaded with its claims when batched
    if batch is None:
        raise Unsendable(f"batch {batch_id} no longer exists")
    serials = db.session.info.get("label_counts", {}).get(batch.id)
    if serials is None:
        serials = db.session.scalar(
            select(func.count(Label.id)).where(
                Label.batch_id == batch.id, Label.kind == LabelKind.ITEM, Label.voided_at.is_(None)
            )
        )
    events = db.session.info.get("events", {}).get(batch.id)
    if events is None:
        events = services.batch_events(batch)
    stages = [
        {
            "stage": (e.document.get("bizStep") or e.event_type),
            "product_trace_code": services.lot_class(batch),
            "location_trace_code": (
                e.document.get("bizLocation") or e.document.get("readPoint") or {}
            ).get("id"),
            "event_time": e.document["eventTime"],
            "epcis_event_id": e.event_id,
        }
        for e in events
    ]
    certifications = [
        {"kind": c.asset.kind, "number": c.asset.certificate_number, "name": c.asset.name}
        for c in batch.claims
        if c.asset is not None
    ] + [
        {"kind": "ocop", "number": c.ocop_product.decision_number, "name": c.ocop_product.name}
        for c in batch.claims
        if c.ocop_product is not None
    ]
    body = {
        "trace_code": DigitalLink(batch.product.gtin, lot=batch.lot).uri(
            current_app.config["PUBLIC_URL"]
        ),
        "gtin": batch.product.gtin,
        "lot": batch.lot,
        "serials": {"count": int(serials or 0)},
        "producer_tax_code": batch.producer.tax_code,
        "production_date": batch.production_date.isoformat(),
        "expiry_date": batch.expiry_date.isoformat() if batch.expiry_date else None,
        "quantity": {"value": float(batch.quantity), "uom": batch.unit},
        "stages": stages,
        "certifications": certifications,
        "standards": list(batch.product.standards or []),
    }
    return Call(
        "POST",
        "/api/v1/trace-records",
        body,
        (("organisation", str(batch.producer_id)), ("product", str(batch.product_id))),
    )


def epcis_event(event_pk: str) -> Call:
    """The event as an EPCISDocument for a repository's /capture."""
    from traceability import epcis

    stored = db.session.get(EpcisEvent, int(event_pk))
    if stored is None:
        raise Unsendable(f"event {event_pk} no longer exists")
    return Call("POST", "/capture", epcis.epcis_document([stored]))


BUILDERS = {
    "epcis_event": epcis_event,
    "organisation": organisation,
    "location": location,
    "product": product,
    "trace_record": trace_record,
}


def call_for(kind: str, record_id: str) -> Call:
    return BUILDERS[kind](record_id)
