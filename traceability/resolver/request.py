"""Parse and canonicalise: what a request for a Digital Link asks for, decided once.

Both paths that answer scans (the Flask view and the fast path below it) call
:func:`parse` with the path exactly as it arrived, still percent-encoded: a lot such as
``LN/2026-02`` travels as ``LN%2F2026-02``, and a server that decoded the path first
could no longer tell that ``/`` from a separator. Each value is decoded exactly once.

The outcome is one of:

- ``resolve``: a well-formed link in (or equivalent to) the canonical form this service
  prints; answered in place. Another percent-encoding of the same values, or a trailing
  slash, is the same code and gets the same answer (never a redirect to itself).
- ``redirect``: a well-formed link in another shape (a GTIN-8/12/13, qualifiers out of
  order, DL 1.0's convenience names); 301 to the canonical form, the query passed on.
- ``malformed``: not a valid Digital Link (syntax, check digit, a value outside its
  AI's format, such as ``?17=ABC``): 400.
- ``not_found``: well formed, but for a key this service does not serve (another
  primary key than a GTIN): 404, in the resolver's words;
- ``not_a_link``: one path segment that does not decompress to a Digital Link: the
  site's plain 404.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from biip.checksums import gs1_standard_check_digit
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from traceability.gs1 import (
    DigitalLink,
    IdentifierError,
    check_lot,
    decode_once,
    encode,
    parse_digital_link,
    parse_gtin,
)

# The shape this service prints, as it arrives: /01/<GTIN-14>[/10/<lot>][/21/<serial>].
CANONICAL = re.compile(r"^/01/(\d{14})(?:/10/([^/]+))?(?:/21/([^/]+))?/?$")
COMPRESSED = re.compile(r"^/([A-Za-z0-9_-]{8,160})/?$")  # base64url, one segment
KEY_QUALIFIERS = ("22", "10", "21")  # of AI 01, in the order DL 1.2 writes them
ALPHA_KEYS = {"gtin": "01", "cpv": "22", "lot": "10", "ser": "21"}  # DL 1.0 names
AI_KEY = re.compile(r"^\d{2,4}$")
MAX_FIELDS = 50  # query pairs read at most
# gs1-compression logs a stack trace for every string it cannot decompress, on a logger
# it names "__name__": hostile paths would fill the log.
logging.getLogger("__name__").setLevel(logging.CRITICAL)
MAX_PATH = 400  # a GTIN and three 20-character values, each fully percent-encoded, fit


@dataclass(frozen=True, slots=True)
class Parsed:
    """What the request names, and how to answer it."""

    outcome: str  # "resolve" | "redirect" | "malformed" | "not_found" | "not_a_link"
    link: DigitalLink | None = None
    location: str = ""  # redirect: the canonical path and the query passed on
    detail: str = ""  # malformed, not_found: what is wrong, in words
    same_as: str = ""  # a compressed request: the uncompressed path (and query)


def parse(path: str, query: str = "") -> Parsed:
    """Decide what ``path`` (as received, percent-encoded) and ``query`` (raw) ask for."""
    match = CANONICAL.match(path)
    if match is not None and (not query or not _has_ai_safely(query)):
        link = _canonical(match)
        if link is not None:
            return Parsed("resolve", link)
    if COMPRESSED.match(path) and not path.startswith("/01/"):
        return _compressed(path.strip("/"), query)
    return _full(path, query)


def _has_ai_safely(query: str) -> bool:
    try:
        return _has_ai(query)
    except IdentifierError:
        return True  # the full parse names the fault


def _canonical(match: re.Match[str]) -> DigitalLink | None:
    """The link of a path in the printed shape, or None to let the full parse explain."""
    gtin, lot, serial = match.groups()
    if int(gtin[-1]) != gs1_standard_check_digit(gtin[:-1]):
        return None
    try:
        lot = check_lot(decode_once(lot)) if lot is not None else None
        serial = check_lot(decode_once(serial), "serial") if serial is not None else None
    except IdentifierError:
        return None
    return DigitalLink(gtin, lot=lot, serial=serial)


def _has_ai(query: str) -> bool:
    return any(AI_KEY.match(key) for key, _value in _pairs(query))


def _pairs(query: str) -> list[tuple[str, str]]:
    """The query's key/value pairs (at most MAX_FIELDS; beyond that it is refused)."""
    try:
        return parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise IdentifierError(f"more than {MAX_FIELDS} query parameters") from None


def _full(path: str, query: str) -> Parsed:
    """Every other shape: checked piece by piece so that each fault is named."""
    if len(path) > MAX_PATH:
        return Parsed("malformed", detail=f"the path is longer than {MAX_PATH} characters")
    trimmed = path[:-1] if path.endswith("/") and len(path) > 1 else path
    segments = trimmed.split("/")[1:]
    if not segments or any(not s for s in segments):
        return Parsed("malformed", detail="empty path segment")
    if len(segments) % 2:
        return Parsed(
            "malformed",
            detail=f"a Digital Link path is AI/value pairs; {trimmed!r} has an extra segment",
        )
    pairs = [
        (ALPHA_KEYS.get(segments[i], segments[i]), segments[i + 1])
        for i in range(0, len(segments), 2)
    ]
    reshaped = any(segments[i] in ALPHA_KEYS for i in range(0, len(segments), 2))
    (primary, raw_gtin), qualifiers = pairs[0], pairs[1:]
    if primary != "01":
        if AI_KEY.match(primary):
            return Parsed(
                "not_found", detail=f"only GTINs (AI 01) are served here, not AI {primary}"
            )
        return Parsed("malformed", detail=f"{primary!r} is not a GS1 Application Identifier")
    values: dict[str, str] = {}
    for ai, raw in qualifiers:
        if ai not in KEY_QUALIFIERS:
            return Parsed(
                "malformed",
                detail=f"{ai!r} is not a key qualifier of a GTIN (22, 10 or 21, in that order)",
            )
        if ai in values:
            return Parsed("malformed", detail=f"AI {ai} appears twice")
        try:
            values[ai] = decode_once(raw)
        except IdentifierError as exc:
            return Parsed("malformed", detail=str(exc))
    order = [ai for ai, _raw in qualifiers]
    reshaped |= order != sorted(order, key=KEY_QUALIFIERS.index)
    try:
        gtin_text = decode_once(raw_gtin)
        gtin = parse_gtin(gtin_text)
        reshaped |= gtin != gtin_text
        cpv = check_lot(values["22"], "consumer product variant") if "22" in values else None
        lot = check_lot(values["10"]) if "10" in values else None
        serial = check_lot(values["21"], "serial") if "21" in values else None
        link = DigitalLink(gtin, cpv=cpv, lot=lot, serial=serial)
        attributes = _attributes(link, query)
    except IdentifierError as exc:
        return Parsed("malformed", detail=str(exc))
    link = DigitalLink(gtin, cpv=cpv, lot=lot, serial=serial, attributes=attributes)
    if reshaped:
        return Parsed("redirect", link, location=link.path + (f"?{query}" if query else ""))
    return Parsed("resolve", link)


def _attributes(link: DigitalLink, query: str) -> dict[str, str]:
    """The GS1 data attributes of the query (``?17=261231``), each checked against its AI's
    format by biip; other keys (linkType, lang, a campaign's own) are not GS1's to check."""
    pairs = [(k, v) for k, v in _pairs(query) if AI_KEY.match(k)]
    if not pairs:
        return {}
    text = "&".join(f"{key}={encode(value)}" for key, value in pairs)
    checked = parse_digital_link(f"https://id.gs1.org{link.path}?{text}")
    if (checked.cpv, checked.lot, checked.serial) != (link.cpv, link.lot, link.serial):
        raise IdentifierError("a key qualifier belongs in the path, not the query")
    return checked.attributes


def _compressed(code: str, query: str) -> Parsed:
    """A compressed Digital Link (GS1 Digital Link: Compression), answered as its long form."""
    from gs1 import decompress_gs1_digital_link  # gs1-compression

    try:
        long_uri = decompress_gs1_digital_link(f"https://id.gs1.org/{code}", use_short_text=False)
    except Exception:  # the library raises many types for what is not a compressed link
        long_uri = None
    if not isinstance(long_uri, str) or "/01/" not in long_uri:
        return Parsed("not_a_link", detail="not a compressed Digital Link of a GTIN")
    parts = urlsplit(long_uri)
    long_query = "&".join(q for q in (parts.query, query) if q)
    parsed = parse(parts.path, long_query)
    if parsed.link is None:
        return parsed
    same_as = parsed.link.path + (f"?{parts.query}" if parts.query else "")
    return Parsed("resolve", parsed.link, same_as=same_as)


def raw_path(environ: dict[str, Any]) -> str:
    """The request's path as the client sent it, still percent-encoded: the server's raw
    request line (``RAW_URI``: gunicorn, werkzeug; ``REQUEST_URI``: uWSGI, mod_wsgi), else
    ``PATH_INFO`` quoted again (which cannot tell a ``%2F`` from a ``/``)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if not raw.startswith("/"):  # an absolute-form request line
            raw = urlsplit(raw).path or "/"
        path = raw.partition("?")[0].partition("#")[0]
        script = environ.get("SCRIPT_NAME", "")
        if script and path.startswith(script):
            path = path[len(script) :]
        return path
    return quote(environ.get("PATH_INFO", ""), safe="/", encoding="latin-1")


# --- what the client asks for -----------------------------------------------------------------

LINKSET = "application/linkset+json"
JSON_TYPES = ("application/json", "application/ld+json")


@functools.lru_cache(maxsize=256)
def accept_kind(accept: str) -> str:
    """What an Accept header asks for: "html", "json" or "linkset" (browsers and apps
    send a handful of distinct headers, so the parse is kept)."""
    best = parse_accept_header(accept or None, MIMEAccept).best_match(
        ["text/html", LINKSET, *JSON_TYPES], default="text/html"
    )
    return "linkset" if best == LINKSET else "json" if best in JSON_TYPES else "html"
