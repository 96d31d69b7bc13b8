"""The GS1 Digital Link resolver, the consumer page and the digital product passport.

The hot path is the scan of a code: one indexed lookup of the label, the batch's card
from a short-lived in-process cache (its product, origin, marks and journey change
rarely), one INSERT of the scan and one UPDATE of the label's counters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

from biip.checksums import gs1_standard_check_digit
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from markupsafe import Markup
from sqlalchemy import and_, func, select, update

from nguon.auth import csrf_exempt
from nguon.db import db, utcnow
from nguon.errors import problem
from nguon.i18n import _
from nguon.ratelimit import limiter, public_limit
from registry import geo
from registry.models import AdminUnit, IPAsset, OcopProduct, ProductionArea
from traceability import epcis, services
from traceability.gs1 import DigitalLink, IdentifierError, check_lot, digital_link_path
from traceability.models import (
    Batch,
    CloneAlarm,
    Label,
    LabelKind,
    Product,
    Scan,
)

bp = Blueprint("resolver", __name__)
LABEL = Label.__table__
SCAN = Scan.__table__
CANONICAL = re.compile(r"^/01/(\d{14})(?:/10/([^/]+))?(?:/21/([^/]+))?$")
CARD_TTL = 60.0  # seconds a batch's card is reused before it is read again
CARD_SLOTS = 4096
JSON_TYPES = ("application/json", "application/ld+json")
LINKSET = "application/linkset+json"


# --- the batch card (cached) -------------------------------------------------------------------


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


def _stage(event: dict[str, Any]) -> str:
    if event.get("type") == "TransformationEvent":
        return "process"
    return epcis.bare_cbv(event.get("bizStep")) or event.get("type", "")


def _local_time(value: str | None) -> str:
    """An event's own local time, as people write it: 10/06/2026 06:30."""
    if not value:
        return ""
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return value


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
    certifications = []
    layers = []
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
                layers.append(geo.Layer(asset.area, "zone", asset.name))
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
    areas: list[ProductionArea] = list(batch.areas)
    for area in areas:
        layers.append(geo.Layer(area.geometry, "plot", area.code))
    events = services.batch_events(batch)
    stages = [
        {
            "stage": _stage(e.document),
            "event_time": e.document.get("eventTime"),
            "when": _local_time(e.document.get("eventTime")),
            "location_trace_code": (
                e.document.get("bizLocation") or e.document.get("readPoint") or {}
            ).get("id"),
            "product_trace_code": services.lot_class(batch),
            "epcis_event_id": e.event_id,
        }
        for e in events
    ]
    card = {
        "batch_id": batch.id,
        "gtin": product.gtin,
        "lot": batch.lot,
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
            "tax_code": producer.tax_code,
            "admin_unit": unit.name if unit else None,
            "demo": producer.is_demo,
        },
        "origin": {
            "areas": [{"code": a.code, "crop": a.crop, "hectares": str(a.hectares)} for a in areas],
            "district": next(
                (c["name"] for c in certifications if c["kind"] == "geographical_indication"), None
            ),
        },
        "map_svg": str(geo.svg_map(layers, width=360, height=240, title=_("Origin area")))
        if layers
        else "",
        "certifications": certifications,
        "standards": list(product.standards or []),
        "safety_warnings": product.safety_warnings,
        "production_date": batch.production_date.isoformat(),
        "expiry_date": batch.expiry_date.isoformat() if batch.expiry_date else None,
        "best_before": batch.best_before,
        "quantity": {"value": float(batch.quantity), "uom": batch.unit},
        "stages": stages,
        "units_made": _units_made(batch),
        "demo": batch.is_demo or product.is_demo,
    }
    cards.put(batch_id, card)
    return card


def _units_made(batch: Batch) -> int | None:
    items = db.session.scalar(
        select(func.count(Label.id)).where(
            Label.batch_id == batch.id, Label.kind == LabelKind.ITEM, Label.voided_at.is_(None)
        )
    )
    if items:
        return int(items)
    if batch.unit == "H87":
        return int(Decimal(batch.quantity))
    return None


# --- lookup and verdict -----------------------------------------------------------------------

LABEL_COLUMNS = (
    Label.id,
    Label.batch_id,
    Label.kind,
    Label.voided_at,
    Label.void_reason,
    Label.flagged_at,
    Label.flag_reason,
    Label.scan_count,
    Label.first_scan_at,
    Label.first_scan_place,
)


def find_label(link: DigitalLink) -> Any:
    """The issued label for ``link``, or None (never issued here, or lot mismatch)."""
    if link.serial is not None:
        row = db.session.execute(
            select(*LABEL_COLUMNS, Batch.lot)
            .join(Batch, Batch.id == Label.batch_id)
            .where(Label.gtin == link.gtin, Label.serial == link.serial)
        ).first()
        if row is None or (link.lot is not None and row.lot != link.lot):
            return None
        return row
    if link.lot is None:
        return None
    return db.session.execute(
        select(*LABEL_COLUMNS, Batch.lot)
        .join(Batch, Batch.id == Label.batch_id)
        .join(Product, Product.id == Batch.product_id)
        .where(
            Product.gtin == link.gtin,
            Batch.lot == link.lot,
            Label.kind == LabelKind.LOT,
            Label.voided_at.is_(None),
        )
    ).first()


def verdict_of(label: Any) -> str:
    if label is None:
        return "unknown"
    if label.voided_at is not None:
        return "voided"
    if label.flagged_at is not None:
        return "suspicious"
    if label.scan_count and label.kind == LabelKind.ITEM:
        return "scanned_before"
    return "genuine"


def fingerprint() -> str:
    """A daily-salted hash of the client's address and agent: counts repeat visitors
    within a day without keeping who they are."""
    day = dt.date.today().isoformat().encode()
    salt = hmac.new(current_app.config["SECRET_KEY"].encode(), day, hashlib.sha256).digest()
    client = f"{request.remote_addr}|{request.user_agent.string}".encode()
    return hmac.new(salt, client, hashlib.sha256).hexdigest()[:32]


def log_scan(
    label: Any, verdict: str, *, now: dt.datetime | None = None, counted: bool = False
) -> int:
    """Record the scan and apply the count rules; returns the scan id. ``counted``: the
    label's counters were already moved by :func:`count_scan`."""
    connection = db.session.connection()
    now = now or utcnow()
    scan_id = connection.execute(
        SCAN.insert()
        .values(
            label_id=label.id if label else None,
            at=now,
            path=request.path[:300],
            verdict=verdict,
            fingerprint=fingerprint(),
        )
        .returning(SCAN.c.id)
    ).scalar_one()
    if label is None:
        return scan_id
    if not counted:
        connection.execute(
            update(LABEL)
            .where(LABEL.c.id == label.id)
            .values(
                scan_count=LABEL.c.scan_count + 1,
                last_scan_at=now,
                first_scan_at=func.coalesce(LABEL.c.first_scan_at, now),
            )
        )
    count = label.scan_count if counted else (label.scan_count or 0) + 1
    if label.flagged_at is None and label.voided_at is None:
        config = current_app.config
        if label.kind == LabelKind.ITEM and count > config["CLONE_MAX_SCANS"]:
            flag(
                label.id,
                "too_many_scans",
                f"item code scanned {count} times (more than {config['CLONE_MAX_SCANS']})",
            )
        elif label.kind == LabelKind.LOT:
            units = (batch_card(label.batch_id) or {}).get("units_made")
            if units is not None and count > units:
                flag(
                    label.id,
                    "lot_over_units",
                    f"lot code scanned {count} times; {units} units were made",
                )
    return scan_id


def flag(label_id: int, rule: str, detail: str, scan_ids: list[int] | None = None) -> None:
    """Flag a code and open an alarm with the evidence (the scans)."""
    now = utcnow()
    db.session.execute(
        update(Label.__table__)
        .where(Label.__table__.c.id == label_id, Label.__table__.c.flagged_at.is_(None))
        .values(flagged_at=now, flag_reason=detail)
    )
    evidence = scan_ids or list(
        db.session.scalars(
            select(Scan.id).where(Scan.label_id == label_id).order_by(Scan.id.desc()).limit(50)
        )
    )
    db.session.add(
        CloneAlarm(label_id=label_id, rule=rule, detail=detail, scan_ids=sorted(evidence))
    )
    from registry.enforcement.services import open_case_from_alarm

    label = db.session.get(Label, label_id)
    batch = db.session.get(Batch, label.batch_id)
    asset = next((c.asset_id for c in batch.claims if c.asset_id), None)
    open_case_from_alarm(
        code=label.uri,
        rule=rule,
        detail=detail,
        scan_ids=sorted(evidence),
        label_id=label.id,
        batch_id=batch.id,
        asset_id=asset,
    )


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def record_place(scan: Scan, latitude: float, longitude: float, place: str) -> str | None:
    """Attach a shared place to a scan and apply the distance rule; returns the alarm
    detail when the code is flagged."""
    scan.latitude, scan.longitude, scan.place = round(latitude, 2), round(longitude, 2), place
    label = db.session.get(Label, scan.label_id) if scan.label_id else None
    if label is None:
        return None
    if label.first_scan_place is None:
        label.first_scan_place = place
    detail = None
    window = dt.timedelta(hours=current_app.config["CLONE_WINDOW_HOURS"])
    if (
        label.kind == LabelKind.ITEM
        and label.last_latitude is not None
        and label.last_place_at
        and scan.at - label.last_place_at <= window
        and label.flagged_at is None
    ):
        km = distance_km(label.last_latitude, label.last_longitude, latitude, longitude)
        if km > current_app.config["CLONE_DISTANCE_KM"]:
            previous = db.session.scalar(
                select(Scan.id)
                .where(Scan.label_id == label.id, Scan.id != scan.id, Scan.place.isnot(None))
                .order_by(Scan.id.desc())
            )
            hours = (scan.at - label.last_place_at).total_seconds() / 3600
            detail = (
                f"item code scanned in {label.last_place} and {place}, {km:.0f} km apart, "
                f"within {hours:.1f} hours"
            )
            db.session.flush()
            flag(label.id, "far_apart", detail, [i for i in (previous, scan.id) if i])
    label.last_latitude, label.last_longitude = latitude, longitude
    label.last_place_at, label.last_place = scan.at, place
    db.session.flush()
    return detail


def scan_token(scan_id: int) -> str:
    mac = hmac.new(
        current_app.config["SECRET_KEY"].encode(), f"scan:{scan_id}".encode(), hashlib.sha256
    )
    return f"{scan_id}.{mac.hexdigest()[:24]}"


def read_scan_token(token: str) -> int | None:
    scan_id, _, _mac = token.partition(".")
    if not scan_id.isdigit() or not hmac.compare_digest(scan_token(int(scan_id)), token):
        return None
    return int(scan_id)


# --- routes ------------------------------------------------------------------------------------


@bp.get("/01/<path:rest>")
@limiter.limit(public_limit)
def resolve(rest: str) -> Any:
    link = canonical_link(request.path)
    if link is None:
        # GTIN-8/12/13, qualifiers out of order, convenience names: biip parses, we redirect.
        try:
            parsed = digital_link_path(normalise_path(request.path) + _query())
        except IdentifierError as exc:
            return not_issued(str(exc))
        return redirect(parsed.path + _query(), 301)
    wanted = negotiated()
    if wanted == "linkset":
        label = find_label(link)
        if label is None:
            return not_issued(_("This code was not issued by Nguồn."))
        return linkset(link, batch_card(label.batch_id))
    now = utcnow()
    label = count_scan(link, now)
    if label is None:
        log_scan(None, "unknown")
        g.commit_despite_error = True  # the 404 still records the attempt
        return not_issued(_("This code was not issued by Nguồn."))
    before = previous_state(label, now)
    verdict = verdict_of(before)
    scan_id = log_scan(label, verdict, now=now, counted=True)
    card = batch_card(label.batch_id)
    if wanted == "json":
        return passport(link, before, verdict, card)
    return consumer_page(card, link, before, verdict, scan_token(scan_id))


def canonical_link(path: str) -> DigitalLink | None:
    """The link when ``path`` is already canonical (the shape this service prints), else None.

    The labels we issue always take this path, so it avoids a full parse; the check digit
    and the character sets are still checked."""
    match = CANONICAL.match(path)
    if match is None:
        return None
    gtin, lot, serial = match.group(1), match.group(2), match.group(3)
    if int(gtin[-1]) != gs1_standard_check_digit(gtin[:-1]):
        return None
    try:
        lot = check_lot(unquote(lot)) if lot is not None else None
        serial = check_lot(unquote(serial), "serial") if serial is not None else None
    except IdentifierError:
        return None
    if quote(lot or "", safe="") != (match.group(2) or "") or quote(serial or "", safe="") != (
        match.group(3) or ""
    ):
        return None  # encoded differently from the canonical form: redirect
    return DigitalLink(gtin, lot=lot, serial=serial)


def negotiated() -> str:
    if request.args.get("linkType") == "linkset":
        return "linkset"
    best = request.accept_mimetypes.best_match(
        ["text/html", LINKSET, *JSON_TYPES], default="text/html"
    )
    return "linkset" if best == LINKSET else "json" if best in JSON_TYPES else "html"


_RETURNED = (
    LABEL.c.id,
    LABEL.c.batch_id,
    LABEL.c.kind,
    LABEL.c.voided_at,
    LABEL.c.void_reason,
    LABEL.c.flagged_at,
    LABEL.c.flag_reason,
    LABEL.c.scan_count,
    LABEL.c.first_scan_at,
    LABEL.c.first_scan_place,
)


def count_scan(link: DigitalLink, now: dt.datetime) -> Any:
    """Count a scan of ``link`` and read the label back, in one statement (UPDATE ...
    RETURNING); None when this service never issued the code."""
    if link.lot is None:
        return None
    batch_of_lot = (
        select(Batch.id)
        .join(Product, Product.id == Batch.product_id)
        .where(Product.gtin == link.gtin, Batch.lot == link.lot)
        .scalar_subquery()
    )
    if link.serial is not None:
        target = and_(
            LABEL.c.gtin == link.gtin,
            LABEL.c.serial == link.serial,
            LABEL.c.batch_id == batch_of_lot,
        )
    else:
        lot_label = (
            select(LABEL.c.id)
            .where(
                LABEL.c.batch_id == batch_of_lot,
                LABEL.c.kind == LabelKind.LOT,
                LABEL.c.voided_at.is_(None),
            )
            .limit(1)
            .scalar_subquery()
        )
        target = LABEL.c.id == lot_label
    statement = (
        update(LABEL)
        .where(target)
        .values(
            scan_count=LABEL.c.scan_count + 1,
            last_scan_at=now,
            first_scan_at=func.coalesce(LABEL.c.first_scan_at, now),
        )
        .returning(*_RETURNED)
    )
    return db.session.connection().execute(statement).first()


@dataclass(frozen=True)
class LabelState:
    """A label as it was before this scan."""

    id: int
    batch_id: int
    kind: str
    voided_at: dt.datetime | None
    void_reason: str | None
    flagged_at: dt.datetime | None
    flag_reason: str | None
    scan_count: int
    first_scan_at: dt.datetime | None
    first_scan_place: str | None


def previous_state(row: Any, now: dt.datetime) -> LabelState:
    first = row.first_scan_at
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=dt.UTC)
    return LabelState(
        row.id,
        row.batch_id,
        row.kind,
        row.voided_at,
        row.void_reason,
        row.flagged_at,
        row.flag_reason,
        row.scan_count - 1,
        None if first == now else first,
        row.first_scan_place,
    )


def consumer_page(
    card: dict[str, Any],
    link: DigitalLink,
    code: Any,
    verdict: str,
    token: str | None,
    shared: str | None = None,
) -> str:
    locale = str(get_locale())
    fragments = card.setdefault("_html", {})
    if locale not in fragments:  # the batch's part of the page, rendered once per TTL
        # render_template escaped every value: the result is safe HTML.
        fragments[locale] = Markup(render_template("public/_card.html", card=card))  # noqa: S704
    return render_template(
        "public/consumer.html",
        card=card,
        card_html=fragments[locale],
        link=link,
        code=code,
        verdict=verdict,
        scan_token=token,
        province_options=_province_options(),
        uri=_public_uri(link),
        shared=shared,
    )


ALPHA_KEYS = {"gtin": "01", "cpv": "22", "lot": "10", "ser": "21"}  # DL 1.x convenience names
QUALIFIER_ORDER = {"22": 0, "10": 1, "21": 2}


def normalise_path(path: str) -> str:
    """Put qualifiers in the 22/10/21 order and spell AIs numerically, so the one parser
    (biip) sees the canonical shape; anything else is left for it to refuse."""
    parts = [p for p in path.split("/") if p]
    if len(parts) % 2:
        return path
    pairs = [(ALPHA_KEYS.get(parts[i], parts[i]), parts[i + 1]) for i in range(0, len(parts), 2)]
    head, qualifiers = pairs[0], pairs[1:]
    if all(ai in QUALIFIER_ORDER for ai, _v in qualifiers):
        qualifiers.sort(key=lambda pair: QUALIFIER_ORDER[pair[0]])
    return "".join(f"/{ai}/{value}" for ai, value in [head, *qualifiers])


def _query() -> str:
    return f"?{request.query_string.decode()}" if request.query_string else ""


def _public_uri(link: DigitalLink) -> str:
    return link.uri(current_app.config["PUBLIC_URL"])


def not_issued(detail: str) -> Any:
    if negotiated() != "html":
        return problem(404, detail, title="Not issued here")
    return render_template("public/not_issued.html", detail=detail), 404


def passport(link: DigitalLink, label: Any, verdict: str, card: dict[str, Any]) -> Response:
    """The digital product passport (Decree 37/2026/NĐ-CP) as JSON."""
    body = {
        "trace_code": _public_uri(link),
        "gtin": card["gtin"],
        "lot": card["lot"],
        "serial": link.serial,
        "product": card["product"],
        "producer": card["producer"],
        "origin": card["origin"],
        "traceability_stages": card["stages"],
        "certifications": card["certifications"],
        "standards": card["standards"],
        "production_date": card["production_date"],
        "expiry_date": card["expiry_date"],
        "safety_warnings": card["safety_warnings"],
        "verdict": verdict,
        "scan_count": (label.scan_count or 0) + 1,
        "demo_data": card["demo"],
    }
    response = current_app.response_class(current_app.json.dumps(body), mimetype="application/json")
    response.headers["Vary"] = "Accept"
    response.headers["Cache-Control"] = "no-store"
    return response


def linkset(link: DigitalLink, card: dict[str, Any] | None) -> Response:
    """An RFC 9264 linkset with GS1 link types."""
    uri = _public_uri(link)
    base = current_app.config["PUBLIC_URL"]
    links: dict[str, Any] = {
        "anchor": uri,
        "https://gs1.org/voc/defaultLink": [
            {"href": uri, "title": card["product"]["name"] if card else ""}
        ],
        "https://gs1.org/voc/pip": [
            {
                "href": uri,
                "type": "text/html",
                "hreflang": ["vi", "en"],
                "title": card["product"]["name"] if card else "",
            }
        ],
        "https://gs1.org/voc/traceability": [
            {
                "href": f"{base}/epcis/events?MATCH_epcClass="
                + quote(services_lot_class(link), safe=""),
                "type": "application/ld+json",
                "title": "EPCIS 2.0 events of this lot",
            }
        ],
    }
    if card:
        links["https://gs1.org/voc/certificationInfo"] = [
            {"href": base + c["url"], "title": f"{c['name']} {c['number'] or ''}".strip()}
            for c in card["certifications"]
            if c.get("url")
        ]
    response = current_app.response_class(
        current_app.json.dumps({"linkset": [links]}), mimetype=LINKSET
    )
    response.headers["Link"] = f'<{uri}>; rel="linkset"; type="{LINKSET}"'
    return response


def services_lot_class(link: DigitalLink) -> str:
    return f"https://id.gs1.org/01/{link.gtin}/10/{quote(link.lot or '', safe='')}"


@bp.get("/.well-known/gs1resolver")
def resolver_description() -> Response:
    base = current_app.config["PUBLIC_URL"]
    return current_app.response_class(
        current_app.json.dumps(
            {
                "name": "Nguồn — provincial traceability resolver",
                "resolverRoot": base,
                "supportedPrimaryKeys": ["01"],
                "supportedQualifiers": {"01": ["22", "10", "21"]},
                "linkTypeDefaultCanBeLinkset": True,
                "supportedContextValuesEnumerated": {"lang": ["vi", "en"]},
                "supportedLinkType": [
                    {
                        "namespace": "https://gs1.org/voc/",
                        "prefix": "gs1:",
                        "profile": "https://gs1.org/voc/?show=linktypes",
                    },
                ],
                "contact": {"name": "Sở Khoa học và Công nghệ"},
            }
        ),
        mimetype="application/json",
    )


_PROVINCE_CACHE: list[tuple[str, str, float, float]] = []


def _provinces() -> list[tuple[str, str, float, float]]:
    """Current provinces with a point each (their first commune with coordinates)."""
    if not _PROVINCE_CACHE:
        rows = db.session.execute(
            select(AdminUnit.code, AdminUnit.name)
            .where(AdminUnit.level == "province", AdminUnit.valid_to.is_(None))
            .order_by(AdminUnit.name_key)
        ).all()
        points = dict(
            db.session.execute(
                select(AdminUnit.parent_code, func.avg(AdminUnit.latitude).label("lat"))
                .where(AdminUnit.latitude.isnot(None))
                .group_by(AdminUnit.parent_code)
            ).all()
        )
        lons = dict(
            db.session.execute(
                select(AdminUnit.parent_code, func.avg(AdminUnit.longitude))
                .where(AdminUnit.longitude.isnot(None))
                .group_by(AdminUnit.parent_code)
            ).all()
        )
        _PROVINCE_CACHE.extend(
            (code, name, float(points[code]), float(lons[code]))
            for code, name in rows
            if code in points
        )
    return _PROVINCE_CACHE


@bp.post("/scans/<token>/place")
@limiter.limit(public_limit)
@csrf_exempt
def share_place(token: str) -> Any:
    """The consumer chose to share a coarse place (a province) for this scan."""
    scan_id = read_scan_token(token)
    scan = db.session.get(Scan, scan_id) if scan_id else None
    if scan is None:
        abort(404, description="unknown scan")
    places = {code: (name, lat, lon) for code, name, lat, lon in _provinces()}
    code = request.form.get("province", "")
    if code not in places:
        abort(400, description="choose a province from the list")
    name, lat, lon = places[code]
    if scan.place is None:
        record_place(scan, lat, lon, name)
    # Show the page again (without counting another scan), with the verdict as it is now.
    link = digital_link_path(scan.path)
    label = find_label(link)
    return consumer_page(
        batch_card(label.batch_id), link, label, verdict_of(label), None, shared=name
    )


_OPTIONS: dict[str, Markup] = {}


def _province_options() -> Markup:
    """The <option>s of the place question, rendered once per process."""
    if "html" not in _OPTIONS:
        _OPTIONS["html"] = Markup("").join(
            Markup('<option value="{}">{}</option>').format(code, name)
            for code, name, _lat, _lon in _provinces()
        )
    return _OPTIONS["html"]


@bp.record_once
def _link_reports_to_codes(_state: Any) -> None:
    from registry.enforcement.services import register_code_resolver

    register_code_resolver(code_for_report)


def code_for_report(code: str) -> dict[str, Any] | None:
    """What a reported code belongs to: its label, batch and the marks the batch claims."""
    from urllib.parse import urlsplit

    path = urlsplit(code).path if "://" in code else code
    if not path.startswith("/01/"):
        return None
    try:
        link = digital_link_path(normalise_path(path))
    except IdentifierError:
        return None
    label = find_label(link)
    if label is None:
        return None
    batch = db.session.get(Batch, label.batch_id)
    assets = [c.asset_id for c in batch.claims if c.asset_id] if batch else []
    return {"label_id": label.id, "batch_id": label.batch_id, "asset_ids": assets}


def clear_caches() -> None:
    cards.clear()
    _PROVINCE_CACHE.clear()
    _OPTIONS.clear()
