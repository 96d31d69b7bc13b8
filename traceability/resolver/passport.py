"""Represent, for a program: the digital product passport (JSON).

Decree 37/2026/NĐ-CP, Art. 32(1): name and GTIN; the producer's name, address and
identifier (tax code or GLN); origin; traceability information; certifications; production
and expiry dates; safety warnings. The batch's part is serialised once per TTL; each scan
writes its own four members in front of it, as the app's JSON provider would.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask

from traceability.gs1 import DigitalLink

LEGAL_BASIS = "Decree 37/2026/ND-CP, Art. 32(1)"
PASSPORT_FIELDS = {
    "gtin": "gtin",
    "lot": "lot",
    "product": "product",
    "producer": "producer",
    "origin": "origin",
    "traceability_stages": "stages",
    "traceability_events": "events_url",
    "certifications": "certifications",
    "standards": "standards",
    "production_date": "production_date",
    "expiry_date": "expiry_date",
    "expired": "expired",
    "safety_warnings": "safety_warnings",
    "demo_data": "demo",
}


def passport_static(app: Flask, card: dict[str, Any], *, render: bool = True) -> str | None:
    """The batch's part of the passport, serialised once per TTL (None if not yet, and
    not ``render``)."""
    static = card.get("_passport")
    if static is None and render:
        body = {k: card[v] for k, v in PASSPORT_FIELDS.items()}
        body["legal_basis"] = LEGAL_BASIS
        static = card["_passport"] = app.json.dumps(body)
    return static


def passport_json(app: Flask, link: DigitalLink, label: Any, verdict: str, static: str) -> str:
    """This code's part of the passport (trace code, serial, verdict, count) and the batch's:
    the four members written as the app's JSON provider writes a dict (keys sorted), which
    a test checks."""
    ascii_only = app.json.ensure_ascii  # type: ignore[attr-defined]
    serial = json.dumps(link.serial, ensure_ascii=ascii_only)
    uri = json.dumps(canonical(link).uri(app.config["PUBLIC_URL"]), ensure_ascii=ascii_only)
    own = (
        f'{{"scan_count": {(label.scan_count or 0) + 1}, "serial": {serial}, '
        f'"trace_code": {uri}, "verdict": "{verdict}"'
    )
    return f"{own}, {static[1:]}"


def canonical(link: DigitalLink) -> DigitalLink:
    """The link as the code itself, without the request's data attributes."""
    if not link.attributes:
        return link
    return DigitalLink(link.gtin, cpv=link.cpv, lot=link.lot, serial=link.serial)
