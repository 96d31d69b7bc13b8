"""Claim evidence in words: each checked condition is stored as data (its name, whether it
held, and its facts) and told in the reader's language when shown, through the catalogue.

A record checked before evidence was stored as data keeps its English ``detail``; it is
shown as it was written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask_babel import format_date

from nguon.formatting import format_decimal
from nguon.i18n import _, _l, label

# (condition, held) -> sentence; the facts fill the placeholders.
SENTENCES: dict[tuple[str, bool], Any] = {
    ("asset_exists", True): _l("the mark or GI is in the registry"),
    ("asset_exists", False): _l("no such mark or GI in the registry"),
    ("asset_kind", True): _l("%(asset)s is a %(kind)s"),
    ("asset_kind", False): _l("%(asset)s is a %(kind)s, not a %(expected)s"),
    ("asset_in_force", True): _l("%(asset)s is protected on %(day)s"),
    ("asset_in_force", False): _l("%(asset)s is not in force on %(day)s (status: %(status)s)"),
    ("asset_expired", False): _l(
        "%(asset)s is not in force on %(day)s (status: %(status)s, expiry %(expiry)s)"
    ),
    ("authorised_user", True): _l(
        "%(producer)s is authorised user %(user_code)s (decision %(decision)s)"
    ),
    ("authorised_user", False): _l(
        "%(producer)s is not an active authorised user of %(asset)s on %(day)s"
    ),
    ("areas_declared", True): _l("the batch names its production areas"),
    ("areas_declared", False): _l("the batch names no production area"),
    ("areas_inside_zone", True): _l("areas %(areas)s lie inside the zone of %(asset)s"),
    ("areas_inside_zone", False): _l("areas %(areas)s lie outside the zone of %(asset)s"),
    ("quantity_unit", True): _l("the quantity is in %(unit)s"),
    ("quantity_unit", False): _l("a quantity in %(unit)s cannot be compared with yields in kg"),
    ("yield_known", True): _l("every area has an expected yield"),
    ("yield_known", False): _l("areas %(areas)s have no expected yield per hectare"),
    ("quantity_within_yield", True): _l(
        "%(kg)s kg ≤ %(allowed)s kg (the areas' %(capacity)s kg + %(tolerance)s)"
    ),
    ("quantity_within_yield", False): _l(
        "%(kg)s kg is more than the areas can yield: %(capacity)s kg (hectares × expected "
        "yield) + %(tolerance)s tolerance = %(allowed)s kg"
    ),
    ("within_yearly_ceiling", True): _l(
        "%(total)s kg in %(year)s ≤ the yearly ceiling of %(ceiling)s kg"
    ),
    ("within_yearly_ceiling", False): _l(
        "the batches of %(year)s would total %(total)s kg, over the yearly ceiling of "
        "%(ceiling)s kg (%(used)s kg already claimed)"
    ),
    ("ocop_exists", True): _l("the OCOP rating is in the registry"),
    ("ocop_exists", False): _l("no such OCOP rating"),
    ("ocop_product", True): _l("the product is the one rated (%(name)s)"),
    ("ocop_product", False): _l("the product is not the one rated %(stars)s★ (%(name)s)"),
    ("ocop_producer", True): _l("the rating is the producer's"),
    ("ocop_producer", False): _l("the OCOP rating belongs to another producer"),
    ("ocop_valid", True): _l("%(stars)s★ valid from %(from_date)s to %(to_date)s"),
    ("ocop_valid", False): _l(
        "the OCOP rating is not valid on %(day)s (%(ocop_status)s, %(from_date)s – %(to_date)s)"
    ),
    ("certificate", True): _l("area %(area)s: %(scheme)s %(number)s valid to %(valid_to)s"),
    ("certificate", False): _l("area %(area)s has no %(scheme)s certificate valid on %(day)s"),
    ("kind", False): _l("unknown claim kind %(kind)s"),
}

DATES = {"day", "expiry", "from_date", "to_date", "valid_to"}
NUMBERS = {"kg", "allowed", "capacity", "total", "ceiling", "used"}
LABELLED = {
    "kind": "asset_kind",
    "ocop_status": "ocop_status",
    "expected": "asset_kind",
    "status": "asset_status",
    "unit": "unit",
    "scheme": "scheme",
}


def _fact(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key in DATES:
        return format_date(dt.date.fromisoformat(str(value)))
    if key in NUMBERS:
        return format_decimal(value, "#,##0")
    if key == "tolerance":
        return format_decimal(value, "#,##0.#%")
    if key in LABELLED:
        return label(LABELLED[key], str(value))
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def describe(entry: Mapping[str, Any]) -> str:
    """One evidence line in the reader's language."""
    condition = str(entry.get("condition", "")).split(":", 1)[0]
    facts = entry.get("facts")
    if condition == "asset_in_force" and facts and facts.get("expiry"):
        condition = "asset_expired"
    sentence = SENTENCES.get((condition, bool(entry.get("ok"))))
    if sentence is None or facts is None:
        return str(entry.get("detail", condition))
    return str(sentence) % {key: _fact(key, value) for key, value in facts.items()}


def claim_title(kind: str, name: str | None, stars: int | None = None) -> str:
    """What a claim is about, as a refusal names it: the asset, the rating or the scheme."""
    if kind == "ocop":
        return f"OCOP {name} {stars}★" if name else "OCOP"
    if kind == "gap":
        return label("scheme", name or "vietgap")
    return name or _("unknown mark or GI")


def refusal(title: str, entry: Mapping[str, Any]) -> str:
    return _("%(claim)s: %(reason)s", claim=title, reason=describe(entry))
