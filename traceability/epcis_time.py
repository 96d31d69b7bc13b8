"""RFC 3339 times as the EPCIS 2.0 JSON schema accepts them (``"format": "date-time"``).

Every form the schema's validator lets through is either parsed to the right instant or
refused with a clear reason (issue 14), never an unhandled error:

- ``T`` or ``t`` between date and time, ``Z`` or ``z`` for UTC, offsets ``±HH:MM`` and
  ``±HHMM`` (hours 00–23);
- fractional seconds of any length: kept to the microsecond (Python's resolution),
  further digits are cut, not rounded (a time never moves into the next second);
- second ``60`` (a leap second, RFC 3339 §5.7): the instant one second after ``:59``,
  e.g. ``2016-12-31T23:59:60Z`` is ``2017-01-01T00:00:00Z`` (no leap-second table is
  consulted; this is how POSIX time counts it);
- refused: year ``0000`` and any time whose UTC instant falls outside years 0001–9999
  (``0001-01-01T00:00:00+14:00`` is in year 0 in UTC), and a time without an offset.
"""

from __future__ import annotations

import datetime as dt
import re

_RFC3339 = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)[Tt]"
    r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d\d:?\d\d)?\Z",
    re.ASCII,
)


class TimeError(ValueError):
    """A time this service cannot take; the message says why (an EPCIS problem detail,
    in English like the standard's, for the client program)."""


def parse_rfc3339(value: str) -> dt.datetime:
    """The UTC instant of an RFC 3339 date-time (aware ``datetime`` in UTC).

    Raises :class:`TimeError` for anything else (see the module's rules)."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        raise TimeError("not an RFC 3339 date-time, e.g. 2026-06-10T06:30:00+07:00")
    parts = match.groupdict()
    offset = parts["offset"]
    if offset is None:
        raise TimeError("a time needs its offset, e.g. 2026-06-10T06:30:00+07:00")
    year = int(parts["year"])
    if year == 0:
        raise TimeError("the year must be between 0001 and 9999")
    second = int(parts["second"])
    leap = second == 60
    fraction = (parts["fraction"] or "")[:6].ljust(6, "0")
    try:
        if offset in ("Z", "z"):
            zone = dt.UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[-2:])
            if hours > 23 or minutes > 59:
                raise ValueError
            zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        local = dt.datetime(
            year,
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"]),
            int(parts["minute"]),
            59 if leap else second,
            int(fraction),
            tzinfo=zone,
        )
    except ValueError:
        raise TimeError("not a valid date and time") from None
    try:
        instant = local.astimezone(dt.UTC)
        if leap:
            instant += dt.timedelta(seconds=1)
    except OverflowError:
        raise TimeError("the time in UTC must fall between the years 0001 and 9999") from None
    return instant
