"""The one place that knows the portal's payloads and answers (``PORTAL_CONTRACT.md`` in
this folder: the shared contract and its amendments). When the portal publishes its real
specification, this module is what changes; the outbox and the worker ask it what to
send and what an answer means, never the shape of either."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

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
    body: dict[str, Any] | None
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


def _stage(batch: Batch, event: EpcisEvent) -> dict[str, Any]:
    return {
        "stage": (event.document.get("bizStep") or event.event_type),
        "product_trace_code": services.lot_class(batch),
        "location_trace_code": (
            event.document.get("bizLocation") or event.document.get("readPoint") or {}
        ).get("id"),
        "event_time": event.document["eventTime"],
        "epcis_event_id": event.event_id,
    }


def trace_record(batch_id: str, held: tuple[str, int] | None = None) -> Call:
    """The batch's record as it now stands: a new record (POST), or, when the portal
    already holds one (``held``: its record id and revision), the next revision of it."""
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
    # The events the public may see of this batch (traceability's one filter): a record
    # shows what the consumer's page shows. Preloaded for a batch call (lots_events).
    events = db.session.info.get("events", {}).get(batch.id)
    if events is None:
        events = services.batch_events(batch)
    # An event declared erroneous (EPCIS errorDeclaration) no longer tells the batch's
    # story: the record as it now stands leaves it out (its corrections are events too).
    stages = [_stage(batch, e) for e in events if not e.document.get("errorDeclaration")]
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
        "trace_code": trace_code(batch),
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
    dependencies = (("organisation", str(batch.producer_id)), ("product", str(batch.product_id)))
    if held is not None:
        remote_id, revision = held
        return Call(
            "PUT",
            f"/api/v1/trace-records/{quote(remote_id, safe='')}",
            {**body, "revision": revision + 1},
            dependencies,
        )
    return Call("POST", "/api/v1/trace-records", body, dependencies)


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


def call_for(kind: str, record_id: str, held: tuple[str, int] | None = None) -> Call:
    """The call that sends a record; ``held``: the portal's id and revision of it."""
    if held is not None:
        return BUILDERS[kind](record_id, held)  # type: ignore[call-arg]
    return BUILDERS[kind](record_id)


# --- the portal's trace-record answers ----------------------------------------------------

BATCH_PATH = "/api/v1/trace-records:batch"
BATCH_LIMIT = 100


def batch_call(records: list[tuple[dict[str, Any], str]]) -> Call:
    """New records in one call: (body, idempotency key) each, at most ``BATCH_LIMIT``."""
    return Call(
        "POST", BATCH_PATH, {"records": [{**body, "idempotency_key": k} for body, k in records]}
    )


@dataclass(frozen=True)
class Taken:
    """What the portal said of one record it took or refused."""

    ok: bool
    remote_id: str | None = None
    revision: int | None = None
    reasons: tuple[Any, ...] = ()


def taken(body: Any) -> Taken:
    """The answer to a POST (202) or PUT (200) of a trace record."""
    if not isinstance(body, dict) or not isinstance(body.get("record_id"), str):
        return Taken(False, reasons=("the portal's answer names no record_id",))
    revision = body.get("revision")
    return Taken(True, body["record_id"][:64], revision if isinstance(revision, int) else 1)


def batch_results(body: Any, count: int) -> list[Taken] | None:
    """The batch call's answer, one per record sent in order; None if unreadable."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return None
    found: dict[int, Taken] = {}
    for result in results:
        if not isinstance(result, dict) or not isinstance(result.get("index"), int):
            return None
        if result.get("status") == "error":
            errors = result.get("errors") or [result.get("error")]
            found[result["index"]] = Taken(False, reasons=tuple(errors))
        else:
            found[result["index"]] = taken(result)
    if sorted(found) != list(range(count)):
        return None
    return [found[i] for i in range(count)]


def status_call(remote_id: str) -> Call:
    return Call("GET", f"/api/v1/trace-records/{quote(remote_id, safe='')}", None)


@dataclass(frozen=True)
class Verdict:
    status: str  # "pending" | "accepted" | "rejected"
    revision: int | None
    reasons: list[Any]


def verdict(body: Any) -> Verdict:
    """The portal's word on a record (GET): its status, the revision it concerns."""
    if not isinstance(body, dict) or body.get("status") not in ("pending", "accepted", "rejected"):
        return Verdict("pending", None, [])
    revision = body.get("revision")
    reasons = body.get("reasons")
    return Verdict(
        body["status"],
        revision if isinstance(revision, int) else None,
        reasons if isinstance(reasons, list) else [],
    )


def current_revision(body: Any) -> int | None:
    """A 409 revision_conflict's account of the revision the portal holds."""
    if isinstance(body, dict) and isinstance(body.get("current_revision"), int):
        return body["current_revision"]
    return None


def trace_code(batch: Batch) -> str:
    return DigitalLink(batch.product.gtin, lot=batch.lot).uri(current_app.config["PUBLIC_URL"])


def find_call(code: str) -> Call:
    """Reconciliation: the records the portal holds under a trace code."""
    return Call("GET", "/api/v1/trace-records?" + urlencode({"trace_code": code}), None)


def found_ids(body: Any) -> list[str] | None:
    if not isinstance(body, list):
        return None
    ids = [r.get("record_id") for r in body if isinstance(r, dict)]
    return [i for i in ids if isinstance(i, str)] if len(ids) == len(body) else None
