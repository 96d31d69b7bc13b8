"""The batch card: everything the page, the passport and the linkset show about a batch.

Read once per TTL (its product, origin, marks and journey change rarely) and kept in a
small per-process cache; each scan only adds its own verdict. The card holds what
Decree 37/2026/NĐ-CP asks a record to hold (Art. 23(5)) and a look-up to show (Art.
23(7)): name, image, producer and address, origin, key events with their times, brand
with the lot, expiry, standards applied.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import current_app, url_for

from nguon.db import db
from registry.admin_units import now_part_of
from registry.models import AdminUnit, IPAsset, OcopProduct, ProductionArea
from traceability import epcis, services
from traceability.models import Batch, Product
from traceability.resolver.origin_map import origin_map

CARD_TTL = 60.0  # seconds a batch's card is reused before it is read again
JOURNEY_LINES = 24  # lines of the consumer's timeline at most
CARD_SLOTS = 4096
HOME_ZONE = "Asia/Ho_Chi_Minh"


class CardCache:
    """A small LRU of batch cards with a time-to-live; per process, nothing shared."""

    def __init__(self, ttl: float, slots: int) -> None:
        self.ttl, self.slots = ttl, slots
        self._items: OrderedDict[int, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: int) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < time.monotonic():
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: int, card: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, card)
            self._items.move_to_end(key)
            while len(self._items) > self.slots:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


cards = CardCache(CARD_TTL, CARD_SLOTS)


@functools.lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_event_time(event: dict[str, Any]) -> str | None:
    """An event's time where it happened, as ISO 8601 with that place's offset: its own
    eventTimeZoneOffset (EPCIS 2.0 requires one), else Vietnam's time. ``eventTime``
    2026-06-16T00:30:00Z with offset +07:00 is 2026-06-16T07:30:00+07:00."""
    value = event.get("eventTime")
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    offset = event.get("eventTimeZoneOffset")
    where: dt.tzinfo = zone(HOME_ZONE)
    if isinstance(offset, str) and len(offset) == 6 and offset[0] in "+-":
        try:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
        except ValueError:
            pass
        else:
            sign = -1 if offset[0] == "-" else 1
            where = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    return moment.astimezone(where).isoformat()


def today(config: Any) -> dt.date:
    """Today's date in the service's time zone (when a lot's use-by date has passed)."""
    return dt.datetime.now(zone(config.get("BABEL_DEFAULT_TIMEZONE") or HOME_ZONE)).date()


def journey(
    stages: list[dict[str, Any]], limit: int = JOURNEY_LINES
) -> tuple[list[dict[str, Any]], int]:
    """The consumer's timeline of ``stages`` (oldest first): each line a stage with
    ``count`` (the events it stands for) and ``last_local_time`` / ``last_event_time``
    (its last event's), and how many lines were left out.

    A season's capture names each of thousands of boxes in its own event: the timeline
    would be thousands of lines on a phone. Events in a row of one step at one place
    are one line; when that still makes more than ``limit`` lines, every event of one
    step at one place is (in the order each first happened), then every event of one
    step; past ``limit`` lines, the rest are counted. (In a row: the same time zone
    offset too, so a line's times are in one place's time unless it had to group.)"""

    def lines(key: Any, contiguous: bool) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        by_key: dict[Any, dict[str, Any]] = {}
        for stage in stages:
            k = key(stage)
            if contiguous:
                line = found[-1] if found and by_key.get(k) is found[-1] else None
            else:
                line = by_key.get(k)
            if line is None:
                line = by_key[k] = {**stage, "count": 0}
                found.append(line)
            line["count"] += 1
            line["last_local_time"] = stage["local_time"]
            line["last_event_time"] = stage["event_time"]
        return found

    def step_and_place(stage: dict[str, Any]) -> Any:
        return (stage["stage"], stage["location_trace_code"])

    def step_place_and_offset(stage: dict[str, Any]) -> Any:
        return (*step_and_place(stage), stage.get("event_time_zone_offset"))

    shown = lines(step_place_and_offset, contiguous=True)
    if len(shown) > limit:
        shown = lines(step_and_place, contiguous=False)
    if len(shown) > limit:
        shown = lines(lambda stage: stage["stage"], contiguous=False)
    return shown[:limit], max(0, len(shown) - limit)


def _stage(event: dict[str, Any]) -> str:
    if event.get("type") == "TransformationEvent":
        return "process"
    return epcis.bare_cbv(event.get("bizStep")) or event.get("type", "")


def _certifications(batch: Batch) -> tuple[list[dict[str, Any]], list[tuple[Any, str]]]:
    certifications: list[dict[str, Any]] = []
    zones: list[tuple[Any, str]] = []
    for claim in batch.claims:
        if claim.asset is not None:
            asset: IPAsset = claim.asset
            certifications.append(
                {
                    "kind": asset.kind,
                    "name": asset.name,
                    "number": asset.certificate_number,
                    "valid_to": asset.expiry_date.isoformat() if asset.expiry_date else None,
                    "url": url_for("registry.asset", asset_id=asset.id),
                    "demo": "certificate_number" in (asset.demo_fields or []),
                }
            )
            if asset.area:
                zones.append((asset.area, asset.name))
        elif claim.ocop_product is not None:
            ocop: OcopProduct = claim.ocop_product
            certifications.append(
                {
                    "kind": "ocop",
                    "name": ocop.name,
                    "number": ocop.decision_number,
                    "stars": ocop.stars,
                    "valid_to": ocop.expiry_date.isoformat(),
                    "url": None,
                    "demo": ocop.is_demo,
                }
            )
        elif claim.scheme:
            for area in batch.areas:
                cert = services.registry.valid_certificate(
                    area, claim.scheme, batch.production_date
                )
                if cert:
                    certifications.append(
                        {
                            "kind": claim.scheme,
                            "name": cert.issuer,
                            "number": cert.number,
                            "valid_to": cert.valid_to.isoformat(),
                            "url": None,
                            "demo": area.is_demo,
                        }
                    )
    return certifications, zones


def batch_card(batch_id: int) -> dict[str, Any] | None:
    """Everything the page and the passport show about a batch, read once per TTL."""
    card = cards.get(batch_id)
    if card is not None:
        return card
    batch = db.session.get(Batch, batch_id)
    if batch is None:
        return None
    product: Product = batch.product
    producer = batch.producer
    unit = db.session.get(AdminUnit, producer.admin_unit_code) if producer.admin_unit_code else None
    certifications, zones = _certifications(batch)
    areas: list[ProductionArea] = list(batch.areas)
    map_svg, place = origin_map([(a.geometry, a.code) for a in areas], zones)
    lot_class = services.lot_class(batch)
    base = current_app.config["PUBLIC_URL"]
    stages = [
        {
            "stage": _stage(e.document),
            "event_time": e.document.get("eventTime"),
            "event_time_zone_offset": e.document.get("eventTimeZoneOffset"),
            "local_time": local_event_time(e.document),
            "location_trace_code": (
                e.document.get("bizLocation") or e.document.get("readPoint") or {}
            ).get("id"),
            "product_trace_code": lot_class,
            "epcis_event_id": e.event_id,
        }
        for e in services.batch_events(batch)  # the public view's events (who may write what)
    ]
    card = {
        "batch_id": batch.id,
        "gtin": product.gtin,
        "lot": batch.lot,
        "lot_class": lot_class,
        "product": {
            "name": product.name,
            "brand": product.brand,
            "description": product.description,
            "image": url_for("traceability.image", sha256=product.image_sha256)
            if product.image_sha256
            else None,
        },
        "producer": {
            "name": producer.name,
            "address": producer.address,
            "address_now_part_of": now_part_of(producer.address or ""),
            "tax_code": producer.tax_code,
            "gln": producer.gln,
            "admin_unit": unit.name if unit else None,
            "demo": producer.is_demo,
        },
        "origin": {
            "areas": [{"code": a.code, "crop": a.crop, "hectares": str(a.hectares)} for a in areas],
            "commune": place.commune if place else None,
            "province": place.province if place else None,
            "district": next(
                (c["name"] for c in certifications if c["kind"] == "geographical_indication"), None
            ),
        },
        "map_svg": str(map_svg),
        "certifications": certifications,
        "standards": list(product.standards or []),
        "safety_warnings": product.safety_warnings,
        "production_date": batch.production_date.isoformat(),
        "expiry_date": batch.expiry_date.isoformat() if batch.expiry_date else None,
        "expired": bool(batch.expiry_date and batch.expiry_date < today(current_app.config)),
        "best_before": batch.best_before,
        "quantity": {"value": float(batch.quantity), "uom": batch.unit},
        "stages": stages,
        "journey": (journey_lines := journey(stages))[0],
        "journey_more": journey_lines[1],
        "events_url": f"{base}/epcis/events?MATCH_epcClass=" + quote(lot_class, safe=""),
        "demo": batch.is_demo or product.is_demo,
    }
    cards.put(batch_id, card)
    return card
