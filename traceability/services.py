"""Traceability services: products, batches and their claims, lineage, guided events.

They flush, never commit. Claims are checked against the registry only through
``registry.services`` (traceability never reads registry tables on its own).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import extract, select, tuple_

from nguon.db import db
from nguon.errors import DomainValidationError
from nguon.i18n import _
from nguon.text import nfc, search_key
from registry import geo
from registry import services as registry
from registry.models import (
    AssetStatus,
    IPAsset,
    OcopProduct,
    Organisation,
    ProductionArea,
)
from traceability import evidence, ownership
from traceability.error_declarations import declarations_of, is_declared
from traceability.gs1 import IdentifierError, check_lot, parse_gtin
from traceability.models import Batch, Claim, ClaimKind, ClaimStatus, EpcisEvent, EventEpc, Product

MASS_TO_KG = {"KGM": Decimal(1), "TNE": Decimal(1000)}


class Problems(registry.Problems):
    pass


# --- products ------------------------------------------------------------------------------

PRODUCT_FIELDS = (
    "name",
    "brand",
    "producer_id",
    "description",
    "standards",
    "safety_warnings",
    "ocop_product_id",
)


def save_product(data: Mapping[str, Any], product: Product | None = None) -> Product:
    """Create or update a product; the GTIN is checked (check digit included) and kept as
    GTIN-14. Linked assets must exist; an OCOP rating must be the producer's."""
    product = product or Product(standards=[])
    problems = Problems()
    if "gtin" in data:
        try:
            gtin = parse_gtin(str(data["gtin"]))
        except IdentifierError as exc:
            problems.add("gtin", exc.in_words())
        else:
            taken = db.session.scalar(
                select(Product.id).where(Product.gtin == gtin, Product.id != (product.id or 0))
            )
            if taken:
                problems.add("gtin", _("GTIN %(gtin)s is already registered", gtin=gtin))
            product.gtin = gtin
    elif product.gtin is None:
        problems.add("gtin", _("is required"))
    for key in PRODUCT_FIELDS:
        if key in data:
            value = data[key]
            setattr(product, key, nfc(value) if isinstance(value, str) else value)
    if not product.name:
        problems.add("name", _("is required"))
    if product.producer_id is None or db.session.get(Organisation, product.producer_id) is None:
        problems.add("producer_id", _("must be an existing organisation"))
    product.standards = [nfc(s) for s in product.standards or [] if s and nfc(s)]
    if product.ocop_product_id is not None:
        ocop = db.session.get(OcopProduct, product.ocop_product_id)
        if ocop is None:
            problems.add("ocop_product_id", _("no such OCOP rating"))
        elif ocop.producer_id != product.producer_id:
            problems.add("ocop_product_id", _("this OCOP rating belongs to another producer"))
        elif "ocop_product_id" in data and not registry.ocop_is_valid(ocop, local_today()):
            problems.add(
                "ocop_product_id",
                _("%(name)s: this OCOP rating is not in force today", name=ocop.name),
            )
    if "asset_ids" in data:
        assets = [db.session.get(IPAsset, i) for i in data["asset_ids"]]
        if any(a is None for a in assets):
            problems.add("asset_ids", _("every linked mark or GI must exist"))
        else:
            product.assets = assets  # type: ignore[assignment]
    if ("asset_ids" in data or "producer_id" in data) and product.producer_id is not None:
        for asset in product.assets:
            if not asset_backs(asset, product.producer_id, local_today()):
                problems.add(
                    "asset_ids",
                    _(
                        "%(asset)s: the producer is neither its holder nor an active "
                        "authorised user of it today",
                        asset=asset.name,
                    ),
                )
    problems.raise_if_any()
    product.name_key = search_key(product.name)
    db.session.add(product)
    db.session.flush()
    return product


def local_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


def asset_backs(asset: IPAsset, producer_id: int, on: dt.date) -> bool:
    """Whether the registry lets ``producer_id`` show ``asset`` (a mark or GI) on ``on``:
    it holds the asset, or is an active authorised user of it that day (the rule a batch
    claim follows; DESIGN.md "Who may write what")."""
    return (
        asset.holder_id == producer_id
        or registry.active_authorisation(producer_id, asset.id, on) is not None
    )


def backed_assets(product: Product, on: dt.date | None = None) -> list[IPAsset]:
    """The product's linked marks and GIs that the registry backs for its producer."""
    day = on or local_today()
    return [a for a in product.assets if asset_backs(a, product.producer_id, day)]


IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
IMAGE_MAX_BYTES = 5 * 1024 * 1024


def set_product_image(product: Product, content: bytes) -> None:
    """Keep a PNG/JPEG/WebP product image (checked by content, ≤ 5 MiB) by its SHA-256."""
    media = next((t for magic, t in IMAGE_TYPES.items() if content.startswith(magic)), None)
    if media is None and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        media = "image/webp"
    if media is None:
        raise DomainValidationError({"image": _("must be a PNG, JPEG or WebP image")})
    if len(content) > IMAGE_MAX_BYTES:
        raise DomainValidationError({"image": _("must be at most 5 MiB")})
    digest = hashlib.sha256(content).hexdigest()
    path = Path(current_app.instance_path) / "images" / digest[:2] / digest
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".part").write_bytes(content)
        path.with_suffix(".part").replace(path)
    product.image_sha256, product.image_type = digest, media
    db.session.flush()


# --- batches and claims ------------------------------------------------------------------------


@dataclass
class ClaimCheck:
    """The outcome of one claim: each condition checked, in order, with its facts (told in
    words by :mod:`traceability.evidence` in the reader's language)."""

    kind: str
    label: str
    asset_id: int | None = None
    ocop_product_id: int | None = None
    scheme: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def condition(self, key: str, ok: bool, /, **facts: Any) -> bool:
        self.evidence.append({"condition": key, "ok": ok, "facts": facts})
        return ok

    @property
    def accepted(self) -> bool:
        return all(e["ok"] for e in self.evidence)

    @property
    def failure(self) -> str | None:
        failed = next((e for e in self.evidence if not e["ok"]), None)
        return evidence.refusal(self.label, failed) if failed else None


def _in_kg(quantity: Decimal, unit: str) -> Decimal | None:
    factor = MASS_TO_KG.get(unit)
    return None if factor is None else Decimal(quantity) * factor


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _kg(value: Decimal) -> str:
    return str(Decimal(value).quantize(Decimal(1)))


def check_asset_claim(batch: Batch, asset: IPAsset, check: ClaimCheck) -> None:
    """GI / collective / certification mark: the registry must back it on the batch's day."""
    day = batch.production_date
    producer = db.session.get(Organisation, batch.producer_id)
    if not check.condition(
        "asset_kind", asset.kind == check.kind, asset=asset.name, kind=asset.kind,
        expected=check.kind,
    ):  # fmt: skip
        return
    in_force = (
        asset.status == AssetStatus.GRANTED
        and (asset.grant_date or day) <= day
        and (asset.expiry_date is None or day <= asset.expiry_date)
    )
    if not check.condition(
        "asset_in_force", in_force, asset=asset.name, day=_iso(day), status=asset.status,
        expiry=None if in_force else _iso(asset.expiry_date),
    ):  # fmt: skip
        return
    user = registry.active_authorisation(batch.producer_id, asset.id, day)
    name = producer.name if producer else str(batch.producer_id)
    if not check.condition(
        "authorised_user",
        user is not None,
        producer=name,
        asset=asset.name,
        day=_iso(day),
        user_code=user.user_code if user else None,
        decision=user.decision_number if user else None,
    ):
        return
    if not check.condition("areas_declared", bool(batch.areas)):
        return
    if asset.area:
        outside = [a.code for a in batch.areas if not geo.inside(a.geometry, asset.area)]
        check.condition(
            "areas_inside_zone",
            not outside,
            areas=outside or [a.code for a in batch.areas],
            asset=asset.name,
        )
    _check_yield(batch, check)
    if user.yearly_ceiling is not None:
        _check_ceiling(batch, asset, user, check)


def _check_yield(batch: Batch, check: ClaimCheck) -> None:
    kg = _in_kg(batch.quantity, batch.unit)
    if not check.condition("quantity_unit", kg is not None, unit=batch.unit):
        return
    missing = [a.code for a in batch.areas if a.expected_yield_kg_per_ha is None]
    if not check.condition("yield_known", not missing, areas=missing):
        return
    capacity = sum(
        (Decimal(a.hectares) * Decimal(a.expected_yield_kg_per_ha) for a in batch.areas), Decimal(0)
    )
    tolerance = Decimal(current_app.config["YIELD_TOLERANCE"])
    allowed = capacity * (1 + tolerance)
    check.condition(
        "quantity_within_yield",
        kg <= allowed,
        kg=_kg(kg),
        capacity=_kg(capacity),
        allowed=_kg(allowed),
        tolerance=str(tolerance),
    )


def _check_ceiling(batch: Batch, asset: IPAsset, user: Any, check: ClaimCheck) -> None:
    year = batch.production_date.year
    earlier = db.session.execute(
        select(Batch.quantity, Batch.unit)
        .join(Claim, Claim.batch_id == Batch.id)
        .where(
            Claim.asset_id == asset.id,
            Claim.status == ClaimStatus.ACCEPTED,
            Batch.producer_id == batch.producer_id,
            Batch.id != (batch.id or 0),
            extract("year", Batch.production_date) == year,
        )
    ).all()
    ceiling = _in_kg(user.yearly_ceiling, user.ceiling_unit) or Decimal(user.yearly_ceiling)
    used = sum((_in_kg(q, u) or Decimal(q) for q, u in earlier), Decimal(0))
    total = used + (_in_kg(batch.quantity, batch.unit) or Decimal(batch.quantity))
    check.condition(
        "within_yearly_ceiling",
        total <= ceiling,
        year=str(year),
        total=_kg(total),
        ceiling=_kg(ceiling),
        used=_kg(used),
    )


def check_ocop_claim(batch: Batch, ocop: OcopProduct, check: ClaimCheck) -> None:
    day = batch.production_date
    product = db.session.get(Product, batch.product_id)
    same_product = product is not None and (
        product.ocop_product_id == ocop.id
        or product.gtin in (ocop.gtins or [])
        or any(parse_gtin_safe(g) == product.gtin for g in ocop.gtins or [])
    )
    if not check.condition("ocop_product", same_product, name=ocop.name, stars=ocop.stars):
        return
    check.condition("ocop_producer", ocop.producer_id == batch.producer_id)
    valid = registry.ocop_is_valid(ocop, day)
    check.condition(
        "ocop_valid",
        valid,
        stars=ocop.stars,
        day=_iso(day),
        ocop_status=ocop.status,
        from_date=_iso(ocop.decision_date),
        to_date=_iso(ocop.expiry_date),
    )


def parse_gtin_safe(value: str) -> str | None:
    try:
        return parse_gtin(value)
    except IdentifierError:
        return None


def check_gap_claim(batch: Batch, scheme: str, check: ClaimCheck) -> None:
    day = batch.production_date
    if not check.condition("areas_declared", bool(batch.areas)):
        return
    for area in batch.areas:
        cert = registry.valid_certificate(area, scheme, day)
        check.condition(
            f"certificate:{area.code}",
            cert is not None,
            area=area.code,
            scheme=scheme,
            number=cert.number if cert else None,
            valid_to=_iso(cert.valid_to) if cert else None,
            day=_iso(day),
        )


def evaluate_claim(batch: Batch, request: Mapping[str, Any]) -> ClaimCheck:
    kind = request.get("kind")
    if kind in (
        ClaimKind.GEOGRAPHICAL_INDICATION,
        ClaimKind.COLLECTIVE_MARK,
        ClaimKind.CERTIFICATION_MARK,
    ):
        asset = db.session.get(IPAsset, request.get("asset_id") or 0)
        check = ClaimCheck(
            kind,
            evidence.claim_title(kind, asset.name if asset else None),
            asset_id=asset.id if asset else None,
        )
        if check.condition("asset_exists", asset is not None):
            check_asset_claim(batch, asset, check)
        return check
    if kind == ClaimKind.OCOP:
        ocop = db.session.get(OcopProduct, request.get("ocop_product_id") or 0)
        check = ClaimCheck(
            kind,
            evidence.claim_title(kind, ocop.name if ocop else None, ocop.stars if ocop else None),
            ocop_product_id=ocop.id if ocop else None,
        )
        if check.condition("ocop_exists", ocop is not None):
            check_ocop_claim(batch, ocop, check)
        return check
    if kind == ClaimKind.GAP:
        scheme = request.get("scheme") or "vietgap"
        check = ClaimCheck(kind, evidence.claim_title(kind, scheme), scheme=scheme)
        check_gap_claim(batch, scheme, check)
        return check
    check = ClaimCheck(str(kind), str(kind))
    check.condition("kind", False, kind=repr(kind))
    return check


BATCH_FIELDS = ("lot", "quantity", "unit", "production_date", "expiry_date", "best_before", "notes")


def save_batch(data: Mapping[str, Any], *, acting_organisation_id: int | None = None) -> Batch:
    """Register a batch with its claims. Every claim is checked against the registry on
    the batch's production date; if any is refused, nothing is saved and each refused
    claim is reported with the condition that failed.

    ``acting_organisation_id``: a cooperative user registers batches of its own products only.
    """
    problems = Problems()
    product = db.session.get(Product, data.get("product_id") or 0)
    if product is None:
        raise DomainValidationError({"product_id": _("must be an existing product")})
    if acting_organisation_id is not None and product.producer_id != acting_organisation_id:
        raise DomainValidationError(
            {"product_id": _("this product belongs to another organisation")}
        )
    batch = Batch(
        product_id=product.id, producer_id=product.producer_id, unit="KGM", best_before=False
    )
    batch.product = product
    for key in BATCH_FIELDS:
        if key in data:
            setattr(batch, key, nfc(data[key]) if isinstance(data[key], str) else data[key])
    try:
        check_lot(batch.lot or "", _("lot"))
    except IdentifierError as exc:
        problems.add("lot", exc.in_words())
    if batch.lot and db.session.scalar(
        select(Batch.id).where(Batch.product_id == product.id, Batch.lot == batch.lot)
    ):
        problems.add("lot", _("lot %(lot)s of this product is already registered", lot=batch.lot))
    if batch.quantity is None or Decimal(batch.quantity) <= 0:
        problems.add("quantity", _("must be more than 0"))
    if batch.production_date is None:
        problems.add("production_date", _("is required"))
    elif batch.expiry_date is not None and batch.expiry_date < batch.production_date:
        problems.add("expiry_date", _("cannot be before the production date"))
    areas = [db.session.get(ProductionArea, i) for i in data.get("area_ids", [])]
    if any(a is None for a in areas):
        problems.add("area_ids", _("every production area must exist"))
    elif any(a.owner_id != batch.producer_id for a in areas):
        problems.add("area_ids", _("the areas must belong to the producer"))
    problems.raise_if_any()
    batch.areas = areas  # type: ignore[assignment]
    checks = [evaluate_claim(batch, request) for request in data.get("claims", [])]
    refused = {f"claims.{i}": c.failure for i, c in enumerate(checks) if not c.accepted}
    if refused:
        raise DomainValidationError({k: v for k, v in refused.items() if v})
    for check in checks:
        batch.claims.append(
            Claim(
                kind=check.kind,
                asset_id=check.asset_id,
                ocop_product_id=check.ocop_product_id,
                scheme=check.scheme,
                status=ClaimStatus.ACCEPTED,
                evidence=check.evidence,
            )
        )
    db.session.add(batch)
    db.session.flush()
    return batch


def batch_by_lot(gtin: str, lot: str) -> Batch | None:
    return db.session.scalar(
        select(Batch).join(Product).where(Product.gtin == gtin, Batch.lot == lot)
    )


# --- lineage --------------------------------------------------------------------------------


@dataclass
class LineageNode:
    gtin: str
    lot: str
    depth: int
    batch_id: int | None = None
    via_event: str | None = None
    from_lot: tuple[str, str] | None = None


def _neighbours(gtin: str, lot: str, direction: str) -> list[tuple[str, str, str]]:
    """Lots one transformation away: (gtin, lot, eventID). ``direction`` down = outputs
    made from this lot; up = inputs this lot was made from."""
    mine, theirs = (("input", "input_quantity"), ("output", "output_quantity"))
    if direction == "up":
        mine, theirs = theirs, mine
    own = select(EventEpc.event_pk).where(
        EventEpc.gtin == gtin, EventEpc.lot == lot, EventEpc.role.in_(mine)
    )
    rows = db.session.execute(
        select(EventEpc.gtin, EventEpc.lot, EpcisEvent)
        .join(EpcisEvent, EpcisEvent.id == EventEpc.event_pk)
        .where(
            EventEpc.event_pk.in_(own),
            EventEpc.role.in_(theirs),
            EventEpc.lot.isnot(None),
            EpcisEvent.event_type == "TransformationEvent",
        )
        .order_by(EventEpc.gtin, EventEpc.lot)
    ).all()
    # A stranger's transformation naming this lot links nothing (the ownership rule), nor
    # does one declared erroneous (EPCIS error declaration).
    events = list({e.id: e for _g, _l, e in rows}.values())
    failing = ownership.refusals(events)
    declared = {e.event_id for e in events if is_declared(e)}
    if events:
        declared |= set(declarations_of([e.event_id for e in events]))
    return [
        (g, lt, e.event_id)
        for g, lt, e in rows
        if e.id not in failing and e.event_id not in declared
    ]


def lineage(batch: Batch, direction: str, max_depth: int = 50) -> list[LineageNode]:
    """Every lot upstream ("up": what it was made from) or downstream ("down": what was
    made from it), breadth first, each once, with the event that links it."""
    start = (batch.product.gtin, batch.lot)
    seen = {start}
    queue = deque([(start, 0)])
    nodes: list[LineageNode] = []
    while queue:
        (gtin, lot), depth = queue.popleft()
        if depth >= max_depth:
            continue
        for next_gtin, next_lot, event_id in _neighbours(gtin, lot, direction):
            key = (next_gtin, next_lot)
            if key in seen:
                continue
            seen.add(key)
            found = batch_by_lot(next_gtin, next_lot)
            nodes.append(
                LineageNode(
                    next_gtin,
                    next_lot,
                    depth + 1,
                    found.id if found else None,
                    event_id,
                    (gtin, lot),
                )
            )
            queue.append((key, depth + 1))
    return nodes


def batch_events(batch: Batch, *, public: bool = True) -> list[EpcisEvent]:
    """Every event naming this lot (as a class or through its item codes), oldest first;
    ``public``: only those that pass the ownership rule (see :func:`lots_events`)."""
    return lots_events([batch], public=public)[batch.id]


def lots_events(batches: Sequence[Batch], *, public: bool = True) -> dict[int, list[EpcisEvent]]:
    """The events of each batch (by id), oldest first, read in one query.

    ``public`` (the default: the consumer page, the passport, the batch history, the
    portal record) keeps only events that pass the ownership rule today
    (``ownership.refusals``): an organisation's event about a lot it neither owns nor
    received is left out. ``public=False`` gives every event (officers see them, marked
    with ``ownership.refusals``)."""
    by_lot = {(b.product.gtin, b.lot): b.id for b in batches}
    found: dict[int, list[EpcisEvent]] = {b.id: [] for b in batches}
    if not by_lot:
        return found
    rows = db.session.execute(
        select(EventEpc.gtin, EventEpc.lot, EpcisEvent)
        .join(EpcisEvent, EpcisEvent.id == EventEpc.event_pk)
        .where(tuple_(EventEpc.gtin, EventEpc.lot).in_(list(by_lot)))
        .order_by(EpcisEvent.event_time, EpcisEvent.id)
    ).all()
    seen: set[tuple[int, int]] = set()
    for gtin, lot, event in rows:
        batch_id = by_lot[(gtin, lot)]
        if (batch_id, event.id) not in seen:
            seen.add((batch_id, event.id))
            found[batch_id].append(event)
    # An EPCIS error declaration retracts its event: the declaration row itself is never a
    # step of the story; the retracted event is hidden from the public (officers see it,
    # with the reason: ``error_declarations.declarations_of``).
    declared = {e.event_id for es in found.values() for e in es if is_declared(e)}
    found = {
        i: [e for e in es if not e.error_declaration and not (public and e.event_id in declared)]
        for i, es in found.items()
    }
    if public:  # the one filter step
        failing = ownership.refusals(list({e.id: e for es in found.values() for e in es}.values()))
        found = {i: [e for e in es if e.id not in failing] for i, es in found.items()}
    return found


def lot_class(batch: Batch, base: str = "https://id.gs1.org") -> str:
    """The lot as an EPC class (a Digital Link with AI 10)."""
    from urllib.parse import quote

    return f"{base}/01/{batch.product.gtin}/10/{quote(batch.lot, safe='')}"


# --- guided events ------------------------------------------------------------------------------

GUIDED_STEPS = {
    # step: (event type, CBV bizStep, disposition, action)
    "harvest": ("ObjectEvent", "commissioning", "active", "ADD"),
    "pack": ("ObjectEvent", "packing", "in_progress", "OBSERVE"),
    "ship": ("ObjectEvent", "shipping", "in_transit", "OBSERVE"),
    "receive": ("ObjectEvent", "receiving", "in_progress", "OBSERVE"),
    "process": ("TransformationEvent", "commissioning", "active", None),
}


def guided_event(step: str, batch: Batch, data: Mapping[str, Any]) -> dict[str, Any]:
    """An EPCIS event for a guided form, filled from the batch, its areas and locations."""
    if step not in GUIDED_STEPS:
        raise DomainValidationError(
            {"step": _("must be one of %(steps)s", steps=", ".join(GUIDED_STEPS))}
        )
    event_type, biz_step, disposition, action = GUIDED_STEPS[step]
    when: dt.datetime = data["event_time"]
    offset = when.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if offset else "+07:00"
    quantity = data.get("quantity") or batch.quantity
    event: dict[str, Any] = {
        "type": event_type,
        "eventTime": when.isoformat(),
        "eventTimeZoneOffset": offset,
        "bizStep": biz_step,
        "disposition": disposition,
    }
    element = {"epcClass": lot_class(batch), "quantity": float(quantity), "uom": batch.unit}
    if event_type == "ObjectEvent":
        event["action"] = action
        event["epcList"] = []
        event["quantityList"] = [element]
    if step == "harvest":
        event["ilmd"] = {
            "cbvmda:lotNumber": batch.lot,
            "cbvmda:harvestStartDate": str(batch.production_date),
        }
        if batch.expiry_date:
            event["ilmd"]["cbvmda:itemExpirationDate"] = str(batch.expiry_date)
    if step == "process":
        output = data.get("output_batch")
        if output is None:
            raise DomainValidationError({"output_batch_id": _("processing needs the lot it makes")})
        event["inputQuantityList"] = [element]
        event["outputQuantityList"] = [
            {"epcClass": lot_class(output), "quantity": float(output.quantity), "uom": output.unit}
        ]
    location = data.get("location")
    area = batch.areas[0] if batch.areas and step == "harvest" else None
    if location is not None:
        event["bizLocation"] = {"id": location}
        event["readPoint"] = {"id": location}
    elif area is not None:
        event["bizLocation"] = {"id": f"urn:nguon:area:{area.code}"}
    for party, key in (("source", "sourceList"), ("destination", "destinationList")):
        if data.get(party):
            event[key] = [{"type": "owning_party", party: data[party]}]
    return event
