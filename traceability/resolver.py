"""The GS1 Digital Link resolver, the consumer page and the digital product passport.

The hot path is the scan of a code: one indexed read of the label (one round trip, no
transaction around it), the batch's page and passport from a short-lived in-process cache
(its product, origin, marks and journey change rarely) with only the verdict filled in,
and the scan handed to :mod:`traceability.scans` (written in the request, or queued and
written in batches).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import math
import re
import threading
import time
from collections import OrderedDict
from typing import Any, NamedTuple
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import psycopg
from biip.checksums import gs1_standard_check_digit
from flask import (
    Blueprint,
    Flask,
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
from markupsafe import Markup, escape
from psycopg import pq
from sqlalchemy import func, select
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from nguon.auth import csrf_exempt
from nguon.db import db, utcnow
from nguon.errors import problem
from nguon.i18n import _
from nguon.ratelimit import limiter, public_limit
from registry import geo
from registry.models import AdminUnit, IPAsset, OcopProduct, ProductionArea
from traceability import epcis, scans, services
from traceability.gs1 import (
    DigitalLink,
    IdentifierError,
    check_lot,
    digital_link_path,
    encode,
)
from traceability.models import (
    Batch,
    Label,
    LabelKind,
    Product,
    Scan,
)

bp = Blueprint("resolver", __name__)
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


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local_scan_time(value: dt.datetime, zone: str) -> str:
    """A scan's time in the service's time zone, written like the journey's times."""
    return value.astimezone(_zone(zone)).strftime("%d/%m/%Y %H:%M")


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
    lot_class = services.lot_class(batch)
    stages = [
        {
            "stage": _stage(e.document),
            "event_time": e.document.get("eventTime"),
            "when": _local_time(e.document.get("eventTime")),
            "location_trace_code": (
                e.document.get("bizLocation") or e.document.get("readPoint") or {}
            ).get("id"),
            "product_trace_code": lot_class,
            "epcis_event_id": e.event_id,
        }
        for e in events
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
        "demo": batch.is_demo or product.is_demo,
    }
    cards.put(batch_id, card)
    return card


# --- lookup and verdict -----------------------------------------------------------------------


def as_now(label: LabelState, log: scans.ScanLog) -> tuple[LabelState, str]:
    """The label with this process's scans still waiting to be written counted in, and
    its verdict."""
    queued = log.queued(label.id)
    if queued:
        label = label._replace(scan_count=label.scan_count + queued)
    return label, verdict_of(label)


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
    """This request's client fingerprint (see :func:`client_fingerprint`)."""
    return client_fingerprint(
        current_app.config["SECRET_KEY"], request.remote_addr, request.user_agent.string
    )


def client_fingerprint(secret: str, address: str | None, agent: str) -> str:
    """A daily-salted hash of the client's address and agent: counts repeat visitors
    within a day without keeping who they are."""
    return _fingerprint(secret, dt.date.today().isoformat(), address, agent)


@functools.lru_cache(maxsize=4096)  # a phone scanning box after box: hashed once a day
def _fingerprint(secret: str, day: str, address: str | None, agent: str) -> str:
    salt = hmac.new(secret.encode(), day.encode(), hashlib.sha256).digest()
    return hmac.new(salt, f"{address}|{agent}".encode(), hashlib.sha256).hexdigest()[:32]


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
            scans.flag(label.id, "far_apart", detail, [i for i in (previous, scan.id) if i])
    label.last_latitude, label.last_longitude = latitude, longitude
    label.last_place_at, label.last_place = scan.at, place
    db.session.flush()
    return detail


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
    label = lookup(link)
    if wanted == "linkset":
        if label is None:
            return not_issued(_("This code was not issued by Nguồn."))
        return linkset(link, batch_card(label.batch_id))
    log = scans.scan_log()
    path, ref, now = request.path[:300], scans.new_ref(), utcnow()
    if label is None:
        log.record(scans.PendingScan(ref, None, now, path, "unknown", fingerprint()))
        g.commit_despite_error = True  # the 404 still records the attempt
        return not_issued(_("This code was not issued by Nguồn."))
    label, verdict = as_now(label, log)
    log.record(scans.PendingScan(ref, label.id, now, path, verdict, fingerprint()))
    card = batch_card(label.batch_id)
    if wanted == "json":
        return passport(link, label, verdict, card)
    response = current_app.response_class(consumer_page(card, link, label, verdict, ref))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Accept"
    return response


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
    if encode(lot or "") != (match.group(2) or "") or encode(serial or "") != (
        match.group(3) or ""
    ):
        return None  # encoded differently from the canonical form: redirect
    return DigitalLink(gtin, lot=lot, serial=serial)


def negotiated() -> str:
    if request.args.get("linkType") == "linkset":
        return "linkset"
    return accept_kind(request.headers.get("Accept", ""))


@functools.lru_cache(maxsize=256)
def accept_kind(accept: str) -> str:
    """What an Accept header asks for: "html", "json" or "linkset" (browsers and apps
    send a handful of distinct headers, so the parse is kept)."""
    best = parse_accept_header(accept or None, MIMEAccept).best_match(
        ["text/html", LINKSET, *JSON_TYPES], default="text/html"
    )
    return "linkset" if best == LINKSET else "json" if best in JSON_TYPES else "html"


class LabelState(NamedTuple):
    """What the verdict needs to know of a label, as read before this scan."""

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


# Plain SQL, because this read is the hottest path of all (no statement building per
# request); %s placeholders (psycopg), turned into ? for sqlite3.
LOOKUP_SQL = {
    # An item code: GTIN + serial (unique), in the lot the link names.
    "item": "SELECT l.id, l.batch_id, l.kind, l.voided_at, l.void_reason, l.flagged_at, "
    "l.flag_reason, l.scan_count, l.first_scan_at, l.first_scan_place "
    "FROM label l JOIN batch b ON b.id = l.batch_id "
    "WHERE l.gtin = %s AND l.serial = %s AND b.lot = %s",
    "item_any_lot": "SELECT l.id, l.batch_id, l.kind, l.voided_at, l.void_reason, l.flagged_at, "
    "l.flag_reason, l.scan_count, l.first_scan_at, l.first_scan_place "
    "FROM label l WHERE l.gtin = %s AND l.serial = %s",
    # A lot code: the live one if there is one, else the voided one (it says "voided").
    "lot": "SELECT l.id, l.batch_id, l.kind, l.voided_at, l.void_reason, l.flagged_at, "
    "l.flag_reason, l.scan_count, l.first_scan_at, l.first_scan_place "
    "FROM label l JOIN batch b ON b.id = l.batch_id JOIN product p ON p.id = b.product_id "
    "WHERE p.gtin = %s AND b.lot = %s AND l.kind = 'lot' "
    "ORDER BY CASE WHEN l.voided_at IS NULL THEN 0 ELSE 1 END, l.id DESC LIMIT 1",
}


LOOKUP_SQL_QMARK = {key: sql.replace("%s", "?") for key, sql in LOOKUP_SQL.items()}


def lookup(
    link: DigitalLink,
    *,
    in_session: bool = False,
    app: Flask | None = None,
    any_lot: bool = False,
) -> LabelState | None:
    """The label ``link`` names, read in one statement; None when this service never issued
    it (or the lot in the link is not the code's lot). Read outside any transaction, unless
    ``in_session``: then in the request's session, so what it just changed is seen.
    ``any_lot``: an item code by GTIN and serial alone, for a caller that checks the lot
    itself (one index read instead of two)."""
    if link.serial is not None:
        key = "item" if link.lot is not None and not any_lot else "item_any_lot"
        params: tuple[str, ...] = (link.gtin, link.serial)
        if key == "item":
            params += (link.lot,)  # type: ignore[assignment]
    elif link.lot is not None:
        key, params = "lot", (link.gtin, link.lot)
    else:
        return None
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        row = _read(app, in_session, key, params)
    except psycopg.OperationalError:
        if in_session:
            raise
        # A kept connection the server or the network closed while it was idle: the
        # reader dropped it; once more on another.
        row = _read(app, in_session, key, params)
    if row is None:
        return None
    return LabelState(
        row[0],
        row[1],
        row[2],
        _aware(row[3]),
        row[4],
        _aware(row[5]),
        row[6],
        row[7],
        _aware(row[8]),
        row[9],
    )


def _read(app: Flask, in_session: bool, key: str, params: tuple[str, ...]) -> Any:
    """One label row, by ``LOOKUP_SQL[key]``, or None."""
    with db.reader(app, in_session=in_session) as connection:
        driver = getattr(connection, "driver_connection", None) or connection
        if (
            isinstance(driver, psycopg.Connection)
            and driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
        ):  # no transaction open on it: the reader's autocommit connection, or a session's
            # that has not begun yet (either way the read sees what is committed)
            return _read_prepared(driver.pgconn, driver.info.encoding, key, params)
        qmark = db.engine(app).dialect.paramstyle == "qmark"  # sqlite3
        cursor = connection.cursor()
        try:
            cursor.execute((LOOKUP_SQL_QMARK if qmark else LOOKUP_SQL)[key], params)
            return cursor.fetchone()
        finally:
            cursor.close()


STATEMENT_NAMES = {key: f"nguon_lookup_{key}".encode() for key in LOOKUP_SQL}
# Prepared statements this connection lacks (26000), or whose result type a migration
# changed (0A000, "cached plan must not change result type"): prepared afresh.
REPREPARE = {b"26000", b"0A000"}


def _read_prepared(pgconn: Any, encoding: str, key: str, params: tuple[str, ...]) -> Any:
    """The lookup through libpq itself (PQexecPrepared: in C, the GIL released), outside
    any transaction: about 15 µs less per scan than a psycopg cursor. The statement is
    prepared on the connection when it is missing; the row comes back as text (ISO dates:
    the reader's connections ask for them). psycopg's OperationalError on failure."""
    name = STATEMENT_NAMES[key]
    values = [value.encode(encoding) for value in params]
    result = pgconn.exec_prepared(name, values)
    if result.status == pq.ExecStatus.FATAL_ERROR and (
        result.error_field(pq.DiagnosticField.SQLSTATE) in REPREPARE
    ):
        pgconn.exec_(b"DEALLOCATE " + name)  # fails harmlessly when there is none
        _check(pgconn, pgconn.prepare(name, _numbered(LOOKUP_SQL[key])), pq.ExecStatus.COMMAND_OK)
        result = pgconn.exec_prepared(name, values)
    _check(pgconn, result, pq.ExecStatus.TUPLES_OK)
    if result.ntuples == 0:
        return None
    text = [result.get_value(0, column) for column in range(10)]
    row = [None if value is None else value.decode(encoding) for value in text]
    return (int(row[0]), int(row[1]), *row[2:7], int(row[7]), *row[8:])  # type: ignore[arg-type]


def _numbered(sql: str) -> bytes:
    """%s placeholders as libpq's $1, $2..."""
    parts = sql.split("%s")
    return (
        "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)).encode() + parts[-1].encode()
    )


def _check(pgconn: Any, result: Any, wanted: Any) -> None:
    if result is None or result.status != wanted:
        message = (result.error_message if result is not None else pgconn.error_message) or b""
        raise psycopg.OperationalError(message.decode(errors="replace") or "lookup failed")


def _aware(value: Any) -> dt.datetime | None:
    """A timestamp as the ORM gives it: aware UTC (raw reads give ISO text: SQLite's
    without an offset, PostgreSQL's with one)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


SLOT = "\x00"


def _slot(name: str) -> Markup:
    return Markup(f"{SLOT}{name}{SLOT}")  # noqa: S704  (a fixed marker, no user text)


def fill(parts: list[str], values: dict[str, str]) -> str:
    """A page kept as text split at its slots, with each slot's (safe) value filled in."""
    return "".join(values[part] if i % 2 else part for i, part in enumerate(parts))


def page_parts(card: dict[str, Any], locale: str, *, render: bool = True) -> list[str] | None:
    """The batch's consumer page in ``locale``, split at the slots each scan fills in;
    rendered once per TTL and language (None if not yet rendered and not ``render``)."""
    pages = card.setdefault("_page", {})
    parts = pages.get(locale)
    if parts is None and render:
        # render_template escaped every value, so the pieces are safe HTML.
        html = render_template(
            "public/consumer.html",
            card=card,
            card_html=Markup(render_template("public/_card.html", card=card)),  # noqa: S704
            slot=_slot,
        )
        parts = pages[locale] = html.split(SLOT)
    return parts


def consumer_page(
    card: dict[str, Any],
    link: DigitalLink,
    code: Any,
    verdict: str,
    ref: str | None,
    shared: str | None = None,
) -> str:
    """The consumer page: the batch's part rendered once per TTL and language, with the
    scan's own parts (verdict, serial, place form, report link) filled into its slots."""
    locale = str(get_locale())
    return page_html(
        current_app.config,
        page_parts(card, locale),  # type: ignore[arg-type]
        scan_fragment(locale, verdict, code, link, shared),  # type: ignore[arg-type]
        share_form(locale) if ref else None,
        link,
        code,
        verdict,
        ref,
    )


def page_html(
    config: Any,
    parts: list[str],
    scan_parts: list[str],
    form: str | None,
    link: DigitalLink,
    code: Any,
    verdict: str,
    ref: str | None,
) -> str:
    """Fill a page's slots: the scan's verdict and serial, its place question (``form``,
    with the scan's reference) and the report link."""
    first = code.first_scan_at
    reason = code.flag_reason if verdict == "suspicious" else code.void_reason
    scan = fill(
        scan_parts,
        {
            "count": str(code.scan_count),
            "first": _local_scan_time(first, config["BABEL_DEFAULT_TIMEZONE"]) if first else "",
            "place": escape(code.first_scan_place or ""),
            "reason": escape(reason or ""),
            "serial": escape(link.serial or ""),
        },
    )
    own = {
        "scan": scan,
        "share": form.replace(_REF, ref) if form is not None and ref else "",
        "report": quote(link.uri(config["PUBLIC_URL"]), safe=""),
    }
    return fill(parts, own)


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


def not_issued(detail: str) -> Any:
    if negotiated() != "html":
        return problem(404, detail, title="Not issued here")
    return render_template("public/not_issued.html", detail=detail), 404


PASSPORT_FIELDS = {
    "gtin": "gtin",
    "lot": "lot",
    "product": "product",
    "producer": "producer",
    "origin": "origin",
    "traceability_stages": "stages",
    "certifications": "certifications",
    "standards": "standards",
    "production_date": "production_date",
    "expiry_date": "expiry_date",
    "safety_warnings": "safety_warnings",
    "demo_data": "demo",
}


def passport(link: DigitalLink, label: Any, verdict: str, card: dict[str, Any]) -> Response:
    """The digital product passport (Decree 37/2026/NĐ-CP) as JSON."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    body = passport_json(app, link, label, verdict, passport_static(app, card))
    response = app.response_class(body, mimetype="application/json")
    response.headers["Vary"] = "Accept"
    response.headers["Cache-Control"] = "no-store"
    return response


def passport_static(app: Flask, card: dict[str, Any], *, render: bool = True) -> str | None:
    """The batch's part of the passport, serialised once per TTL (None if not yet, and
    not ``render``)."""
    static = card.get("_passport")
    if static is None and render:
        static = card["_passport"] = app.json.dumps(
            {k: card[v] for k, v in PASSPORT_FIELDS.items()}
        )
    return static


def passport_json(app: Flask, link: DigitalLink, label: Any, verdict: str, static: str) -> str:
    """This code's part of the passport (trace code, serial, verdict, count) and the batch's:
    the four members written as the app's JSON provider writes a dict (keys sorted), which
    a test checks."""
    ascii_only = app.json.ensure_ascii  # type: ignore[attr-defined]
    serial = json.dumps(link.serial, ensure_ascii=ascii_only)
    uri = json.dumps(link.uri(app.config["PUBLIC_URL"]), ensure_ascii=ascii_only)
    own = (
        f'{{"scan_count": {(label.scan_count or 0) + 1}, "serial": {serial}, '
        f'"trace_code": {uri}, "verdict": "{verdict}"'
    )
    return f"{own}, {static[1:]}"


def linkset(link: DigitalLink, card: dict[str, Any]) -> Response:
    """An RFC 9264 linkset with GS1 link types."""
    base = current_app.config["PUBLIC_URL"]
    uri = link.uri(base)
    links: dict[str, Any] = {
        "anchor": uri,
        "https://gs1.org/voc/defaultLink": [{"href": uri, "title": card["product"]["name"]}],
        "https://gs1.org/voc/pip": [
            {
                "href": uri,
                "type": "text/html",
                "hreflang": ["vi", "en"],
                "title": card["product"]["name"],
            }
        ],
        "https://gs1.org/voc/traceability": [
            {
                "href": f"{base}/epcis/events?MATCH_epcClass=" + quote(card["lot_class"], safe=""),
                "type": "application/ld+json",
                "title": "EPCIS 2.0 events of this lot",
            }
        ],
    }
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
    """Current provinces with a point each (the mean of their communes' coordinates)."""
    if not _PROVINCE_CACHE:
        centres = {
            code: (float(lat), float(lon))
            for code, lat, lon in db.session.execute(
                select(
                    AdminUnit.parent_code,
                    func.avg(AdminUnit.latitude),
                    func.avg(AdminUnit.longitude),
                )
                .where(AdminUnit.latitude.isnot(None), AdminUnit.longitude.isnot(None))
                .group_by(AdminUnit.parent_code)
            )
        }
        _PROVINCE_CACHE.extend(
            (code, name, *centres[code])
            for code, name in services.registry.current_provinces()
            if code in centres
        )
    return _PROVINCE_CACHE


@bp.post("/scans/<ref>/place")
@limiter.limit(public_limit)
@csrf_exempt
def share_place(ref: str) -> Any:
    """The consumer chose to share a coarse place (a province) for this scan."""
    places = {code: (name, lat, lon) for code, name, lat, lon in _provinces()}
    code = request.form.get("province", "")
    if code not in places:
        abort(400, description="choose a province from the list")
    scan = _scan_by_ref(ref)
    if scan is None:
        abort(404, description="unknown scan")
    name, lat, lon = places[code]
    if scan.place is None:
        record_place(scan, lat, lon, name)
    # Show the page again (without counting another scan), with the verdict as it is now.
    link = digital_link_path(scan.path)
    label = lookup(link, in_session=True)  # the flag record_place may just have set
    return consumer_page(
        batch_card(label.batch_id), link, label, verdict_of(label), None, shared=name
    )


def _scan_by_ref(ref: str) -> Scan | None:
    """The scan named ``ref``; a scan still queued in this process is written first."""
    if not re.fullmatch(r"[0-9a-f]{32}", ref):
        return None
    scan = db.session.scalar(select(Scan).where(Scan.ref == ref))
    log = scans.scan_log()
    if scan is None and log.batched:
        log.flush()  # ours, if this process queued it; another process writes within its interval
        deadline = time.monotonic() + min(2 * log.interval + 0.5, 2.0)
        while scan is None and time.monotonic() < deadline:
            db.session.rollback()  # a fresh snapshot
            scan = db.session.scalar(select(Scan).where(Scan.ref == ref))
            if scan is None:
                time.sleep(min(0.1, log.interval))
    return scan


_SCAN_HTML: dict[tuple[Any, ...], list[str]] = {}


def scan_fragment(
    locale: str,
    verdict: str,
    code: Any,
    link: DigitalLink,
    shared: str | None,
    *,
    render: bool = True,
) -> list[str] | None:
    """The verdict, serial and thank-you note of one scan, split at the slots its values
    go in (None if not rendered yet, and not ``render``). A language's first render does
    every shape at once (verdicts, with or without serial, first time and place), so
    every later scan finds its shape ready."""
    shape = (
        verdict,
        link.serial is not None,
        bool(code.first_scan_at),
        bool(code.first_scan_place),
    )
    parts = _SCAN_HTML.get((locale, shared, shape))
    if parts is None and render:
        template = current_app.jinja_env.get_template("public/_scan.html")
        shapes = SCAN_SHAPES if shared is None else [shape]
        for verdict_, serial, first, place in shapes:
            html = template.render(
                verdict=verdict_,
                shared=shared,
                serial=serial,
                first=first,
                place=place,
                slot=_slot,
            )  # straight from the environment: no context processors
            _SCAN_HTML[(locale, shared, (verdict_, serial, first, place))] = html.split(SLOT)
        parts = _SCAN_HTML[(locale, shared, shape)]
    return parts


SCAN_SHAPES = list(
    itertools.product(("genuine", "scanned_before", "suspicious", "voided"), *[(False, True)] * 3)
)


_OPTIONS: dict[str, Markup] = {}
_FORMS: dict[str, str] = {}
_REF = "0" * 32  # where a scan's reference goes in the place form


def share_form(locale: str, *, render: bool = True) -> str | None:
    """The place question, with a stand-in for the scan's reference (rendered once per
    language; None if not yet, and not ``render``)."""
    form = _FORMS.get(locale)
    if form is None and render:
        form = _FORMS[locale] = render_template(
            "public/_share.html", ref=_REF, province_options=_province_options()
        )
    return form


def _province_options() -> Markup:
    """The <option>s of the place question, rendered once per process."""
    if "html" not in _OPTIONS:
        _OPTIONS["html"] = Markup("").join(
            Markup('<option value="{}">{}</option>').format(code, name)
            for code, name, _lat, _lon in _provinces()
        )
    return _OPTIONS["html"]


@bp.record_once
def _link_reports_to_codes(state: Any) -> None:
    from registry.enforcement.services import register_code_resolver

    register_code_resolver(code_for_report)
    scans.init_app(state.app)


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
    label = lookup(link, in_session=True)
    if label is None:
        return None
    batch = db.session.get(Batch, label.batch_id)
    assets = [c.asset_id for c in batch.claims if c.asset_id] if batch else []
    return {"label_id": label.id, "batch_id": label.batch_id, "asset_ids": assets}


def clear_caches() -> None:
    cards.clear()
    _PROVINCE_CACHE.clear()
    _OPTIONS.clear()
    _FORMS.clear()
    _SCAN_HTML.clear()
