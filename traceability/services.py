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
from traceability import ownership
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
            problems.add("gtin", str(exc))
        else:
            taken = db.session.scalar(
                select(Product.id).where(Product.gtin == gtin, Product.id != (product.id or 0))
            )
            if taken:
                problems.add("gtin", f"GTIN {gtin} is already registered")
            product.gtin = gtin
    elif product.gtin is None:
        problems.add("gtin", "is required")
    for key in PRODUCT_FIELDS:
        if key in data:
            value = data[key]
            setattr(product, key, nfc(value) if isinstance(value, str) else value)
    if not product.name:
        problems.add("name", "is required")
    if product.producer_id is None or db.session.get(Organisation, product.producer_id) is None:
        problems.add("producer_id", "must be an existing organisation")
    product.standards = [nfc(s) for s in product.standards or [] if s and nfc(s)]
    if product.ocop_product_id is not None:
        ocop = db.session.get(OcopProduct, product.ocop_product_id)
        if ocop is None:
            problems.add("ocop_product_id", "no such OCOP rating")
        elif ocop.producer_id != product.producer_id:
            problems.add("ocop_product_id", "this OCOP rating belongs to another producer")
        elif "ocop_product_id" in data and not registry.ocop_is_valid(ocop, local_today()):
            problems.add(
                "ocop_product_id",
                _("%(name)s: this OCOP rating is not in force today", name=ocop.name),
            )
    if "asset_ids" in data:
        assets = [db.session.get(IPAsset, i) for i in data["asset_ids"]]
        if any(a is None for a in assets):
            problems.add("asset_ids", "every linked mark or GI must exist")
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
        raise DomainValidationError({"image": "must be a PNG, JPEG or WebP image"})
    if len(content) > IMAGE_MAX_BYTES:
        raise DomainValidationError({"image": "must be at most 5 MiB"})
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
    """The outcome of one claim: each condition checked, in order, with its detail."""

    kind: str
    label: str
    asset_id: int | None = None
    ocop_product_id: int | None = None
    scheme: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def condition(self, name: str, ok: bool, detail: str) -> bool:
        self.evidence.append({"condition": name, "ok": ok, "detail": detail})
        return ok

    @property
    def accepted(self) -> bool:
        return all(e["ok"] for e in self.evidence)

    @property
    def failure(self) -> str | None:
        failed = next((e for e in self.evidence if not e["ok"]), None)
        return f"{self.label}: {failed['detail']}" if failed else None


def _in_kg(quantity: Decimal, unit: str) -> Decimal | None:
    factor = MASS_TO_KG.get(unit)
    return None if factor is None else Decimal(quantity) * factor


def check_asset_claim(batch: Batch, asset: IPAsset, check: ClaimCheck) -> None:
    """GI / collective / certification mark: the registry must back it on the batch's day."""
    day = batch.production_date
    producer = db.session.get(Organisation, batch.producer_id)
    if not check.condition(
        "asset_kind",
        asset.kind == check.kind,
        f"{asset.name} is a {asset.kind}, not a {check.kind}"
        if asset.kind != check.kind
        else f"{asset.name} is a {asset.kind}",
    ):
        return
    in_force = (
        asset.status == AssetStatus.GRANTED
        and (asset.grant_date or day) <= day
        and (asset.expiry_date is None or day <= asset.expiry_date)
    )
    if not check.condition(
        "asset_in_force",
        in_force,
        f"{asset.name} is protected on {day}"
        if in_force
        else f"{asset.name} is not in force on {day} (status {asset.status}"
        f"{', expiry ' + str(asset.expiry_date) if asset.expiry_date else ''})",
    ):
        return
    user = registry.active_authorisation(batch.producer_id, asset.id, day)
    name = producer.name if producer else f"organisation {batch.producer_id}"
    if not check.condition(
        "authorised_user",
        user is not None,
        f"{name} is authorised user {user.user_code} (decision {user.decision_number})"
        if user
        else f"{name} is not an active authorised user of {asset.name} on {day}",
    ):
        return
    if not check.condition(
        "areas_declared",
        bool(batch.areas),
        "the batch names its production areas"
        if batch.areas
        else "the batch names no production area to check against the zone",
    ):
        return
    if asset.area:
        outside = [a.code for a in batch.areas if not geo.inside(a.geometry, asset.area)]
        check.condition(
            "areas_inside_zone",
            not outside,
            f"areas {', '.join(a.code for a in batch.areas)} lie inside the zone of {asset.name}"
            if not outside
            else f"areas {', '.join(outside)} lie outside the zone of {asset.name}",
        )
    _check_yield(batch, check)
    if user.yearly_ceiling is not None:
        _check_ceiling(batch, asset, user, check)


def _check_yield(batch: Batch, check: ClaimCheck) -> None:
    kg = _in_kg(batch.quantity, batch.unit)
    if not check.condition(
        "quantity_unit",
        kg is not None,
        f"quantity in {batch.unit}"
        if kg is not None
        else f"a quantity in {batch.unit} cannot be compared with yields in kg",
    ):
        return
    missing = [a.code for a in batch.areas if a.expected_yield_kg_per_ha is None]
    if not check.condition(
        "yield_known",
        not missing,
        "every area has an expected yield"
        if not missing
        else f"areas {', '.join(missing)} have no expected yield per hectare",
    ):
        return
    capacity = sum(
        (Decimal(a.hectares) * Decimal(a.expected_yield_kg_per_ha) for a in batch.areas), Decimal(0)
    )
    tolerance = Decimal(current_app.config["YIELD_TOLERANCE"])
    allowed = capacity * (1 + tolerance)
    check.condition(
        "quantity_within_yield",
        kg <= allowed,
        f"{kg:.0f} kg ≤ {allowed:.0f} kg (areas' {capacity:.0f} kg + {tolerance:.0%})"
        if kg <= allowed
        else f"{kg:.0f} kg is more than the areas can yield: {capacity:.0f} kg "
        f"(hectares × expected yield) + {tolerance:.0%} tolerance = {allowed:.0f} kg",
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
        f"{total:.0f} kg in {year} ≤ yearly ceiling {ceiling:.0f} kg"
        if total <= ceiling
        else f"{year}'s batches would total {total:.0f} kg, over the yearly ceiling of "
        f"{ceiling:.0f} kg ({used:.0f} kg already claimed)",
    )


def check_ocop_claim(batch: Batch, ocop: OcopProduct, check: ClaimCheck) -> None:
    day = batch.production_date
    product = db.session.get(Product, batch.product_id)
    same_product = product is not None and (
        product.ocop_product_id == ocop.id
        or product.gtin in (ocop.gtins or [])
        or any(parse_gtin_safe(g) == product.gtin for g in ocop.gtins or [])
    )
    if not check.condition(
        "ocop_product",
        same_product,
        f"the product is the one rated ({ocop.name})"
        if same_product
        else f"the product is not the one rated {ocop.stars}★ ({ocop.name})",
    ):
        return
    check.condition(
        "ocop_producer",
        ocop.producer_id == batch.producer_id,
        "the rating is the producer's"
        if ocop.producer_id == batch.producer_id
        else "the OCOP rating belongs to another producer",
    )
    valid = registry.ocop_is_valid(ocop, day)
    check.condition(
        "ocop_valid",
        valid,
        f"{ocop.stars}★ valid from {ocop.decision_date} to {ocop.expiry_date}"
        if valid
        else f"the OCOP rating is not valid on {day} ({ocop.status}, "
        f"{ocop.decision_date} – {ocop.expiry_date})",
    )


def parse_gtin_safe(value: str) -> str | None:
    try:
        return parse_gtin(value)
    except IdentifierError:
        return None


def check_gap_claim(batch: Batch, scheme: str, check: ClaimCheck) -> None:
    day = batch.production_date
    if not check.condition(
        "areas_declared",
        bool(batch.areas),
        "the batch names its production areas"
        if batch.areas
        else "the batch names no production area",
    ):
        return
    for area in batch.areas:
        cert = registry.valid_certificate(area, scheme, day)
        check.condition(
            f"certificate:{area.code}",
            cert is not None,
            f"area {area.code}: {scheme} {cert.number} valid to {cert.valid_to}"
            if cert
            else f"area {area.code} has no {scheme} certificate valid on {day}",
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
            asset.name if asset else f"asset {request.get('asset_id')}",
            asset_id=asset.id if asset else None,
        )
        if check.condition(
            "asset_exists",
            asset is not None,
            "the asset is registered" if asset else "no such mark or GI in the registry",
        ):
            check_asset_claim(batch, asset, check)
        return check
    if kind == ClaimKind.OCOP:
        ocop = db.session.get(OcopProduct, request.get("ocop_product_id") or 0)
        check = ClaimCheck(
            kind,
            f"OCOP {ocop.name} {ocop.stars}★" if ocop else "OCOP",
            ocop_product_id=ocop.id if ocop else None,
        )
        if check.condition(
            "ocop_exists",
            ocop is not None,
            "the rating is registered" if ocop else "no such OCOP rating",
        ):
            check_ocop_claim(batch, ocop, check)
        return check
    if kind == ClaimKind.GAP:
        scheme = request.get("scheme") or "vietgap"
        check = ClaimCheck(kind, scheme, scheme=scheme)
        check_gap_claim(batch, scheme, check)
        return check
    check = ClaimCheck(str(kind), str(kind))
    check.condition("kind", False, f"unknown claim kind {kind!r}")
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
        raise DomainValidationError({"product_id": "must be an existing product"})
    if acting_organisation_id is not None and product.producer_id != acting_organisation_id:
        raise DomainValidationError({"product_id": "this product belongs to another organisation"})
    batch = Batch(
        product_id=product.id, producer_id=product.producer_id, unit="KGM", best_before=False
    )
    batch.product = product
    for key in BATCH_FIELDS:
        if key in data:
            setattr(batch, key, nfc(data[key]) if isinstance(data[key], str) else data[key])
    try:
        check_lot(batch.lot or "")
    except IdentifierError as exc:
        problems.add("lot", str(exc))
    if batch.lot and db.session.scalar(
        select(Batch.id).where(Batch.product_id == product.id, Batch.lot == batch.lot)
    ):
        problems.add("lot", f"lot {batch.lot} of this product is already registered")
    if batch.quantity is None or Decimal(batch.quantity) <= 0:
        problems.add("quantity", "must be more than 0")
    if batch.production_date is None:
        problems.add("production_date", "is required")
    elif batch.expiry_date is not None and batch.expiry_date < batch.production_date:
        problems.add("expiry_date", "cannot be before the production date")
    areas = [db.session.get(ProductionArea, i) for i in data.get("area_ids", [])]
    if any(a is None for a in areas):
        problems.add("area_ids", "every production area must exist")
    elif any(a.owner_id != batch.producer_id for a in areas):
        problems.add("area_ids", "the areas must belong to the producer")
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
    # A stranger's transformation naming this lot links nothing (the ownership rule).
    failing = ownership.refusals(list({e.id: e for _g, _l, e in rows}.values()))
    return [(g, lt, e.event_id) for g, lt, e in rows if e.id not in failing]


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
        raise DomainValidationError({"step": f"must be one of {', '.join(GUIDED_STEPS)}"})
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
            raise DomainValidationError({"output_batch_id": "processing needs the lot it makes"})
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
