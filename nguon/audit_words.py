"""The audit log in words: what each record and field is called, values formatted for
people, references named and linked, and who acted said plainly.

The shell knows no domain table; each package registers its tables (:func:`register_table`)
with their name, the page a record opens on, the labels of their fields, and which fields
point to which table. What is not registered falls back to readable defaults.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from flask_babel import format_date, format_datetime, format_number
from markupsafe import Markup, escape

from nguon.i18n import _, _l, label

Titles = Callable[[Iterable[int]], dict[int, str]]


@dataclass
class TableWords:
    name: Any  # lazy string: "Production area"
    endpoint: str | None = None  # the page of one record
    id_arg: str = "id"
    fields: dict[str, Any] = field(default_factory=dict)  # field -> lazy label
    refs: dict[str, str] = field(default_factory=dict)  # field -> table it points to
    values: dict[str, str] = field(default_factory=dict)  # field -> LABELS kind of its values
    titles: Titles | None = None  # ids -> what people call those records


TABLES: dict[str, TableWords] = {}

# Words for fields many tables share; a table's own words win.
COMMON_FIELDS: dict[str, Any] = {
    "id": _l("Number in the system"),
    "name": _l("Name"),
    "kind": _l("Kind"),
    "status": _l("Status"),
    "state": _l("State"),
    "code": _l("Code"),
    "title": _l("Title"),
    "description": _l("Description"),
    "note": _l("Note"),
    "notes": _l("Notes"),
    "address": _l("Address"),
    "phone": _l("Phone"),
    "email": _l("Email"),
    "created_at": _l("Created"),
    "is_demo": _l("Demo data"),
    "decision_number": _l("Decision number"),
    "decision_date": _l("Decision date"),
    "valid_from": _l("Valid from"),
    "valid_to": _l("Valid to"),
    "expiry_date": _l("Expiry date"),
    "products": _l("Products"),
    "organisation_id": _l("Organisation"),
    "owner_id": _l("Owner"),
    "producer_id": _l("Producer"),
    "holder_id": _l("Holder (marks)"),
    "managing_organisation_id": _l("Managing organisation (GIs)"),
    "asset_id": _l("Mark or GI"),
    "area_id": _l("Production area"),
    "batch_id": _l("Batch"),
    "product_id": _l("Product"),
    "case_id": _l("Case"),
    "user_id": _l("User"),
    "assignee_id": _l("Assignee"),
    "created_by_id": _l("Created by"),
    "confirmed_by_id": _l("Confirmed by"),
    "confirmed_by": _l("Confirmed by"),
    "confirmed_at": _l("Confirmed"),
    "admin_unit_code": _l("Administrative unit"),
    "gln": _l("GLN"),
    "gtin": _l("GTIN"),
    "hectares": _l("Hectares"),
    "geometry": _l("Geometry (GeoJSON point or polygon)"),
    "area": _l("Zone (GeoJSON polygon)"),
    "number": _l("Number"),
    "on_date": _l("Date"),
    "source": _l("Source"),
    "value": _l("Value"),
}
# Values never shown (hashes of secrets, derived search keys).
HIDDEN = {"id", "secret_hash", "password_hash", "name_key", "search_key", "district_key"}
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def register_table(table: str, words: TableWords) -> None:
    TABLES[table] = words


def table_name(table: str) -> str:
    words = TABLES.get(table)
    return str(words.name) if words else table.replace("_", " ")


def field_label(table: str, name: str) -> str:
    words = TABLES.get(table)
    found = (words.fields.get(name) if words else None) or COMMON_FIELDS.get(name)
    return str(found) if found is not None else name.replace("_", " ")


def record_url(table: str, record_id: Any) -> str | None:
    words = TABLES.get(table)
    if words is None or words.endpoint is None:
        return None
    try:
        return url_for(words.endpoint, **{words.id_arg: int(record_id)})
    except (ValueError, TypeError):
        return None
    except Exception:
        return None


@dataclass
class Change:
    label: str
    before: Markup
    after: Markup


@dataclass
class Entry:
    """An audit entry as a person reads it."""

    at: dt.datetime
    actor: str
    actor_url: str | None
    action: str
    action_code: str  # insert | update | delete
    record: str
    record_url: str | None
    table: str
    record_id: str
    changes: list[Change]


def actor_words(actor: str, actor_id: int | None, users: dict[int, str]) -> str:
    """Who acted, plainly: a user's name and email, the command or worker, the system task,
    or a member of the public (a report filed without an account)."""
    if actor_id is not None and actor_id in users:
        return users[actor_id]
    if actor == "anonymous":
        return _("a member of the public (no account)")
    if actor.startswith("cli:"):
        who, _sep, command = actor[4:].partition(" (")
        command = command.rstrip(")")
        if command:
            return _("command %(command)s, run by %(who)s", command=command, who=who)
        return _("command line, run by %(who)s", who=who)
    if actor.startswith("system:"):
        return _("the system: %(task)s", task=actor[7:].replace("-", " "))
    if actor == "system":
        return _("the system")
    return actor


def in_words(entries: list[Any], user_titles: Titles) -> list[Entry]:
    """``AuditEntry`` rows as people read them; names of referenced records are looked up
    once per page, table by table."""
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        words = TABLES.get(entry.record_table)
        for name, pair in (entry.changes or {}).items():
            target = words.refs.get(name) if words else None
            if target:
                wanted.setdefault(target, set()).update(
                    v for v in pair if isinstance(v, int) and not isinstance(v, bool)
                )
        if entry.actor_id is not None:
            wanted.setdefault("user_account", set()).add(entry.actor_id)
        if words is not None and words.titles is not None and _int(entry.record_id) is not None:
            wanted.setdefault(entry.record_table, set()).add(_int(entry.record_id))
    titles: dict[str, dict[int, str]] = {}
    for table, ids in wanted.items():
        finder = (
            user_titles if table == "user_account" else getattr(TABLES.get(table), "titles", None)
        )
        titles[table] = finder(ids) if finder and ids else {}
    out = []
    for entry in entries:
        changes = [
            Change(
                field_label(entry.record_table, name),
                _value(entry.record_table, name, pair[0], titles),
                _value(entry.record_table, name, pair[1], titles),
            )
            for name, pair in (entry.changes or {}).items()
            if name not in HIDDEN
        ]
        record_title = titles.get(entry.record_table, {}).get(_int(entry.record_id))
        out.append(
            Entry(
                at=entry.at,
                actor=actor_words(entry.actor, entry.actor_id, titles.get("user_account", {})),
                actor_url=None,
                action=label("action", entry.action),
                action_code=entry.action,
                record=f"{table_name(entry.record_table)} {record_title or '#' + entry.record_id}",
                record_url=record_url(entry.record_table, entry.record_id),
                table=entry.record_table,
                record_id=entry.record_id,
                changes=changes,
            )
        )
    return out


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _value(table: str, name: str, value: Any, titles: dict[str, dict[int, str]]) -> Markup:
    """One value for people: references named and linked, enums in words, dates in the
    reader's format, booleans as yes/no, shapes summarised."""
    if value is None or value == "" or value == []:
        return Markup("—")
    words = TABLES.get(table)
    target = words.refs.get(name) if words else None
    if target and isinstance(value, int):
        text = titles.get(target, {}).get(value) or f"#{value}"
        url = record_url(target, value)
        if url:
            return Markup('<a href="{}">{}</a>').format(url, text)
        return escape(text)
    kind = words.values.get(name) if words else None
    if kind and isinstance(value, str):
        return escape(label(kind, value))
    if isinstance(value, bool):
        return escape(_("yes") if value else _("no"))
    if isinstance(value, int) and name.endswith("_vnd"):
        return escape(format_number(value) + " ₫")
    if isinstance(value, str) and ISO_DATETIME.match(value):
        try:
            return escape(format_datetime(dt.datetime.fromisoformat(value), "short"))
        except ValueError:
            return escape(value)
    if isinstance(value, str) and ISO_DATE.match(value):
        try:
            return escape(format_date(dt.date.fromisoformat(value)))
        except ValueError:
            return escape(value)
    if isinstance(value, dict) and value.get("type") in ("Point", "Polygon", "MultiPolygon"):
        return escape(_shape_words(value))
    if isinstance(value, list):
        return escape("; ".join(str(v) for v in value if not isinstance(v, dict | list))[:300])
    if isinstance(value, dict):
        return escape(", ".join(f"{k}: {v}" for k, v in value.items())[:300])
    return escape(str(value)[:500])


def _shape_words(value: dict[str, Any]) -> str:
    if value["type"] == "Point":
        lon, lat = value["coordinates"][:2]
        return _("a point at %(lat).5f, %(lon).5f", lat=lat, lon=lon)
    polygons = [value["coordinates"]] if value["type"] == "Polygon" else value["coordinates"]
    points = sum(len(ring) - 1 for polygon in polygons for ring in polygon[:1])
    return _("%(n)d polygon(s), %(points)d corners", n=len(polygons), points=points)
