"""Place sharing: a consumer may tell, for their own scan, the province they are in.

Nothing is chosen for them (the list starts empty and a share needs a choice), and the
distance rule compares different clients: a buyer's own shares never flag their code.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

from flask import current_app
from markupsafe import Markup
from sqlalchemy import func, select

from nguon.db import db
from nguon.formatting import format_decimal
from nguon.i18n import _, records_language
from registry.models import AdminUnit
from traceability import scans, services
from traceability.models import Label, LabelKind, Scan

_PROVINCE_CACHE: list[tuple[str, str, float, float]] = []
_OPTIONS: dict[str, Markup] = {}


def provinces() -> list[tuple[str, str, float, float]]:
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


def province_options() -> Markup:
    """The <option>s of the place question (none selected), rendered once per process."""
    if "html" not in _OPTIONS:
        _OPTIONS["html"] = Markup("").join(
            Markup('<option value="{}">{}</option>').format(code, name)
            for code, name, _lat, _lon in provinces()
        )
    return _OPTIONS["html"]


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def record_place(scan: Scan, latitude: float, longitude: float, place: str) -> str | None:
    """Attach a shared place to a scan and apply the distance rule; returns the alarm
    detail when the code is flagged. The rule compares the last place shared by another
    client: a buyer who shares twice (or from two places) never flags their own code."""
    scan.latitude, scan.longitude, scan.place = round(latitude, 2), round(longitude, 2), place
    label = db.session.get(Label, scan.label_id) if scan.label_id else None
    if label is None:
        return None
    if label.first_scan_place is None:
        label.first_scan_place = place
    detail = None
    window = dt.timedelta(hours=current_app.config["CLONE_WINDOW_HOURS"])
    previous = db.session.execute(
        select(Scan.id, Scan.fingerprint)
        .where(Scan.label_id == label.id, Scan.id != scan.id, Scan.place.isnot(None))
        .order_by(Scan.id.desc())
        .limit(1)
    ).first()
    if (
        label.kind == LabelKind.ITEM
        and label.last_latitude is not None
        and label.last_place_at
        and scan.at - label.last_place_at <= window
        and label.flagged_at is None
        and previous is not None
        and previous.fingerprint != scan.fingerprint
    ):
        km = distance_km(label.last_latitude, label.last_longitude, latitude, longitude)
        if km > current_app.config["CLONE_DISTANCE_KM"]:
            hours = (scan.at - label.last_place_at).total_seconds() / 3600
            with records_language():  # the alarm is the officers' record
                detail = _(
                    "item code scanned in %(first)s and %(second)s, %(km)s km apart, within "
                    "%(hours)s hours",
                    first=label.last_place,
                    second=place,
                    km=format_decimal(round(km)),
                    hours=format_decimal(round(hours, 1)),
                )
            db.session.flush()
            scans.flag(label.id, "far_apart", detail, [previous.id, scan.id])
    label.last_latitude, label.last_longitude = latitude, longitude
    label.last_place_at, label.last_place = scan.at, place
    db.session.flush()
    return detail


def scan_by_ref(ref: str) -> Scan | None:
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


def clear() -> None:
    _PROVINCE_CACHE.clear()
    _OPTIONS.clear()
