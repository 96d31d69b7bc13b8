"""Numbers, dates and times as people write them: shown by Babel in the visitor's locale
(``20/06/2026``, ``1.234,5`` in Vietnamese) and read back from what they type (a decimal
comma, ``20/06/2026 06:30`` in the cooperative's time zone).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import flask_babel
from flask import Flask, current_app, has_app_context, has_request_context

# One date and one date-time pattern on every page, whatever the template asked for.
DATE = "dd/MM/yyyy"
DATETIME = "dd/MM/yyyy HH:mm"
TIME = "HH:mm"
DATE_FORMATS = {
    "date": DATE,
    "datetime": DATETIME,
    "time": TIME,
    "date.short": DATE,
    "date.medium": DATE,
    "datetime.short": DATETIME,
    "datetime.medium": DATETIME,
    "time.short": TIME,
    "time.medium": TIME,
}
DEFAULT_TIME_ZONE = "Asia/Ho_Chi_Minh"


def format_decimal(value: Any, pattern: str = "#,##0.###") -> str:
    """``1234.5`` as ``1.234,5`` (vi) or ``1,234.5`` (en); no trailing zeros."""
    if value is None or value == "":
        return ""
    return flask_babel.format_decimal(Decimal(str(value)), format=pattern)


_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:([.,\s])\d{3})+(?:([.,])\d+)?$")
_PLAIN = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$|^[+-]?[.,]\d+$")


def _language() -> str:
    if has_request_context():
        return str(flask_babel.get_locale() or "vi")
    return "vi"


def parse_decimal_text(raw: str) -> str | None:
    """What a person typed as a number, as a plain ``1234.5`` string, or None when it is
    not one. With both separators, or repeated ones, the last different one is the decimal
    ("1.234,5", "1,234.5", "12 000"). A lone separator is the decimal one ("5,5", "5.5"),
    except one followed by exactly three digits where the visitor's language groups with
    it: "20.000" is twenty thousand in Vietnamese, "20,000" in English."""
    text = raw.strip().replace("\u00a0", " ")
    if _PLAIN.match(text):
        grouping = "." if _language() == "vi" else ","
        head, sep, tail = text.rpartition(grouping)
        digits = head.lstrip("+-")
        if sep and len(tail) == 3 and digits.isdigit() and not digits.startswith("0"):
            return head + tail
        return text.replace(",", ".")
    match = _GROUPED.match(text)
    if match and match.group(1) != match.group(2):
        group = match.group(1)
        return text.replace(group, "").replace(",", ".")
    return None


def to_decimal(raw: str) -> Decimal | None:
    normal = parse_decimal_text(raw)
    if normal is None:
        return None
    try:
        value = Decimal(normal)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def time_zone() -> ZoneInfo:
    """The service's (the cooperative's) time zone: ``BABEL_DEFAULT_TIMEZONE``."""
    name = DEFAULT_TIME_ZONE
    if has_app_context():
        name = current_app.config.get("BABEL_DEFAULT_TIMEZONE") or name
    return ZoneInfo(name)


def local_now() -> dt.datetime:
    """Now, in the cooperative's time zone (never the server's clock with a fixed offset)."""
    return dt.datetime.now(time_zone()).replace(microsecond=0)


_DAY_FIRST = re.compile(
    r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T,]+(\d{1,2})[:hg](\d{2})(?::(\d{2}))?)?$"
)
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?$"
)


def parse_local_datetime(
    raw: str, time_text: str = "", zone: ZoneInfo | None = None
) -> dt.datetime | None:
    """A date and time as typed ("20/06/2026 06:30", "20/06/2026" + "06:30", or the
    ``2026-06-20`` / ``2026-06-20T06:30`` a date picker sends), read in the cooperative's
    time zone unless it names its own offset. None when it is not a real moment."""
    zone = zone or time_zone()
    text = " ".join(part for part in (raw.strip(), time_text.strip()) if part)
    moment = _read_moment(text, zone)
    # Far years are typing mistakes (and 0001 in UTC+7 has no UTC): 1900 to 2200 only.
    return moment if moment is not None and 1900 <= moment.year <= 2200 else None


def _read_moment(text: str, zone: ZoneInfo) -> dt.datetime | None:
    try:
        found = _DAY_FIRST.match(text)
        if found:
            day, month, year, hour, minute, second = found.groups()
            moment = dt.datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
            return moment.replace(tzinfo=zone)
        found = _ISO.match(text)
        if found:
            year, month, day, hour, minute, second, offset = found.groups()
            moment = dt.datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
            if offset:
                return dt.datetime.fromisoformat(
                    f"{moment.isoformat()}{offset.replace('Z', '+00:00')}"
                )
            return moment.replace(tzinfo=zone)
    except ValueError:  # 31/02, 25:00...
        return None
    return None


def install(app: Flask, babel: Any) -> None:
    """Babel's date formats and the ``number`` filter for every template."""
    babel.date_formats.update(DATE_FORMATS)
    app.jinja_env.filters["number"] = format_decimal
