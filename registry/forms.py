"""Officer forms described as data: one macro draws them, one function reads them.

A posted form becomes the same dict the JSON API receives, so the same marshmallow
schema and the same service check it, and the page shows the same errors per field.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

from nguon.errors import DomainValidationError, flatten_messages
from nguon.formatting import parse_decimal_text, parse_local_datetime
from nguon.i18n import LABELS, _
from nguon.inputs import is_digits


@dataclass(frozen=True)
class FormField:
    name: str
    label: Any
    kind: str = (
        "text"  # text | textarea | date | number | select | multiselect | list | ints | json
        # | geometry (GeoJSON text, with the map editor and file import over it)
    )
    choices: Callable[[], Sequence[tuple[Any, Any]]] | None = None
    help: Any = ""
    required: bool = False

    def options(self) -> Sequence[tuple[Any, Any]]:
        return self.choices() if self.choices else ()


def enum_choices(kind: str, values: Sequence[str]) -> Callable[[], list[tuple[str, Any]]]:
    """Choices for stored English values, labelled through the catalogue."""

    def choices() -> list[tuple[str, Any]]:
        return [(v, LABELS.get(kind, {}).get(v, v)) for v in values]

    return choices


def parse_form(fields: Sequence[FormField], form: MultiDict[str, str]) -> dict[str, Any]:
    """The posted form as API input: empty inputs are absent (or None when cleared)."""
    data: dict[str, Any] = {}
    for field in fields:
        if field.kind == "multiselect":
            data[field.name] = [int(v) for v in form.getlist(field.name) if is_digits(v, 9)]
            continue
        raw = form.get(field.name, "").strip()
        if field.kind == "list":
            data[field.name] = [p.strip() for p in raw.replace("\n", ";").split(";") if p.strip()]
        elif field.kind == "ints":
            parts = [p.strip() for p in raw.replace(";", ",").split(",") if p.strip()]
            data[field.name] = [int(p) if is_digits(p.removeprefix("-"), 18) else p for p in parts]
        elif raw == "":
            data[field.name] = None
        elif field.kind == "number":
            # "5,5", "1.234,5" and "5.5" as people type them; anything else goes on to
            # the schema, which names the field.
            data[field.name] = parse_decimal_text(raw) or raw
        elif field.kind == "date" and (day := parse_local_datetime(raw)) is not None:
            data[field.name] = day.date().isoformat()  # "20/06/2026" as well as the picker's
        elif field.kind in ("json", "geometry"):
            try:
                data[field.name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                data[field.name] = {"_invalid_json": [exc.lineno, exc.colno]}
        else:
            data[field.name] = raw
    return data


def load(schema: Schema, data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Validate with the API's schema; missing optional fields are simply left out."""
    cleaned = {k: v for k, v in data.items() if v is not None or partial}
    if partial:  # a cleared optional field takes its default ("" for a name), not null
        from marshmallow import missing

        for key, value in list(cleaned.items()):
            field = schema.fields.get(key)
            if value is None and field is not None and not field.allow_none:
                if field.load_default is not missing:
                    cleaned[key] = field.load_default
                elif not field.required:
                    cleaned.pop(key)
    for key, value in list(cleaned.items()):
        if isinstance(value, dict) and "_invalid_json" in value:
            line, column = value["_invalid_json"]
            raise DomainValidationError(
                {
                    key: _(
                        "not valid JSON (line %(line)d, column %(column)d)",
                        line=line,
                        column=column,
                    )
                }
            )
    try:
        return schema.load(cleaned, partial=partial)
    except ValidationError as exc:
        raise DomainValidationError(
            {e["field"]: e["message"] for e in flatten_messages(exc.messages)}
        ) from None


def values_of(obj: Any, fields: Sequence[FormField]) -> dict[str, Any]:
    """Current values of ``obj`` as the form shows them."""
    values: dict[str, Any] = {}
    for field in fields:
        value = obj.get(field.name) if isinstance(obj, Mapping) else getattr(obj, field.name, None)
        values[field.name] = display(value, field)
    return values


def display(value: Any, field: FormField) -> Any:
    if value is None:
        return ""
    if field.kind == "multiselect":
        return [getattr(v, "id", v) for v in value]
    if field.kind == "list":
        return "; ".join(map(str, value))
    if field.kind == "ints":
        return ", ".join(map(str, value))
    if field.kind in ("json", "geometry"):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.date | Decimal):
        return str(value)
    return value
