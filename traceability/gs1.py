"""GS1 identifiers: GTIN, GLN, lot and serial, GS1 Digital Link URIs, EPC URNs.

Parsing and check digits are biip's (the library of the field); this module only turns
its answers into the service's errors and builds the URIs it prints on labels.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gln import Gln
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gtin import Gtin
from flask_babel import gettext

from nguon.i18n import N_
from nguon.inputs import is_digits

# GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1).
CHARSET_82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+$")
MAX_LOT_LENGTH = 20
_CHECK_DIGIT = re.compile(r"Expected (\d), got (\d)")


class IdentifierError(ValueError):
    """An identifier that is not valid; the message says what is wrong, in English (for
    programs: the resolver's problem details); ``words`` holds the catalogue's msgid and its
    values, so :meth:`in_words` tells a person in their language."""

    def __init__(self, message: str, words: tuple[str, dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.words = words

    def in_words(self) -> str:
        if self.words is None:
            return str(self)
        msgid, values = self.words
        if "what" in values:
            values = {**values, "what": gettext(values["what"])}
        return gettext(msgid, **values)


def _explain(exc: ParseError, what: str, value: str) -> IdentifierError:
    text = str(exc)
    found = _CHECK_DIGIT.search(text)
    if found:
        return IdentifierError(
            f"{what} {value}: check digit should be {found[1]} (got {found[2]})",
            (
                N_("%(what)s %(value)s: check digit should be %(expected)s (got %(got)s)"),
                {"what": what, "value": value, "expected": found[1], "got": found[2]},
            ),
        )
    return IdentifierError(f"{what} {value!r}: {text}")


def parse_gtin(value: str) -> str:
    """A GTIN-8/12/13/14 as its canonical 14 digits; IdentifierError says what is wrong."""
    value = value.strip()
    if not is_digits(value) or len(value) not in (8, 12, 13, 14):
        raise IdentifierError(
            f"GTIN {value!r}: must be 8, 12, 13 or 14 digits",
            (N_("GTIN %(value)r: must be 8, 12, 13 or 14 digits"), {"value": value}),
        )
    try:
        return Gtin.parse(value).as_gtin_14()
    except ParseError as exc:
        raise _explain(exc, "GTIN", value) from None


def parse_gln(value: str) -> str:
    value = value.strip()
    if not is_digits(value) or len(value) != 13:
        raise IdentifierError(
            f"GLN {value!r}: must be 13 digits",
            (N_("GLN %(value)r: must be 13 digits"), {"value": value}),
        )
    try:
        return Gln.parse(value).value
    except ParseError as exc:
        raise _explain(exc, "GLN", value) from None


def check_lot(value: str, what: str = "lot") -> str:
    """A lot or serial: 1–20 characters of GS1's 82-character set."""
    if not value:
        raise IdentifierError(
            f"{what}: must not be empty", (N_("%(what)s: must not be empty"), {"what": what})
        )
    if len(value) > MAX_LOT_LENGTH:
        raise IdentifierError(
            f"{what} {value!r}: at most {MAX_LOT_LENGTH} characters",
            (
                N_("%(what)s %(value)r: at most %(max)d characters"),
                {"what": what, "value": value, "max": MAX_LOT_LENGTH},
            ),
        )
    if not CHARSET_82.match(value):
        bad = sorted({ch for ch in value if not CHARSET_82.match(ch)})
        raise IdentifierError(
            f"{what} {value!r}: characters not in the GS1 set: {' '.join(map(repr, bad))}",
            (
                N_("%(what)s %(value)r: characters not in the GS1 set: %(bad)s"),
                {"what": what, "value": value, "bad": " ".join(map(repr, bad))},
            ),
        )
    return value


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def encode(value: str) -> str:
    """``value`` percent-encoded for a Digital Link path segment or query value: the
    canonical form labels carry. GS1 Digital Link 1.2 (URI syntax, 4.x) percent-encodes
    ``# / % & + , ! ( ) * ' : ; < = > ?`` of the 82-character set; ``"`` is encoded too,
    as RFC 3986 does not allow it in a URI. ``quote(value, safe="")`` encodes exactly
    those of the set (it keeps only letters, digits and ``- . _ ~``), in upper-case hex;
    the common case (letters and digits only: every serial we issue) costs one match."""
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")


def decode_once(segment: str) -> str:
    """A path segment or query value as received (still percent-encoded) decoded exactly
    once, as UTF-8; IdentifierError for a ``%`` not followed by two hex digits or bytes
    that are not UTF-8 (a raw ``%`` is written ``%25``)."""
    if "%" not in segment:
        if segment.isascii():
            return segment
        raw = segment.encode("latin-1", "replace")  # WSGI strings carry bytes as latin-1
    else:
        if _BAD_ESCAPE.search(segment):
            raise IdentifierError(f"{segment!r}: a % must be followed by two hex digits")
        raw = unquote_to_bytes(segment.encode("latin-1", "replace"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise IdentifierError(f"{segment!r}: not UTF-8 once percent-decoded") from None


@dataclass(frozen=True)
class DigitalLink:
    """The parts of a GS1 Digital Link URI for a trade item."""

    gtin: str  # 14 digits
    cpv: str | None = None  # AI 22, consumer product variant
    lot: str | None = None  # AI 10
    serial: str | None = None  # AI 21
    attributes: dict[str, str] = field(default_factory=dict)  # e.g. {"17": "260624"}

    @functools.cached_property  # a scan's answer writes it three or four times
    def path(self) -> str:
        """The canonical path: qualifiers in the order 22, 10, 21; values percent-encoded."""
        parts = [f"/01/{self.gtin}"]
        for ai, value in (("22", self.cpv), ("10", self.lot), ("21", self.serial)):
            if value is not None:
                parts.append(f"/{ai}/{encode(value)}")
        return "".join(parts)

    def uri(self, base_url: str) -> str:
        query = "&".join(f"{ai}={encode(v)}" for ai, v in sorted(self.attributes.items()))
        return base_url.rstrip("/") + self.path + (f"?{query}" if query else "")


def parse_digital_link(uri: str) -> DigitalLink:
    """Parse any GS1 Digital Link URI (any host, GTIN-8/12/13/14, qualifiers in any
    valid form); IdentifierError says what is wrong."""
    try:
        parsed = GS1DigitalLinkURI.parse(uri)
    except ParseError as exc:
        raise _explain(exc, "Digital Link", uri) from None
    values = {es.ai.ai: es.value for es in parsed.element_strings}
    if "01" not in values:
        raise IdentifierError(f"Digital Link {uri!r}: only GTIN-based links (01) are served here")
    gtin = parse_gtin(values.pop("01"))
    lot, serial, cpv = values.pop("10", None), values.pop("21", None), values.pop("22", None)
    return DigitalLink(gtin=gtin, cpv=cpv, lot=lot, serial=serial, attributes=values)


def digital_link_path(path: str) -> DigitalLink:
    """Parse just the path (and query) of a Digital Link request on this host."""
    return parse_digital_link("https://id.gs1.org" + path)


# --- EPC URNs (EPC Tag Data Standard) ---------------------------------------------------------

_URN = re.compile(
    r"^urn:epc:(?:id|class):(?P<scheme>sgtin|lgtin):(?P<cp>\d+)\.(?P<ir>\d+)\.(?P<rest>.+)$"
)


def _gtin_from_urn(company_prefix: str, indicator_item: str) -> str:
    body = indicator_item[0] + company_prefix + indicator_item[1:]
    if len(body) != 13:
        raise IdentifierError("EPC URN: company prefix and item reference must total 13 digits")
    return body + str(gs1_standard_check_digit(body))


@functools.lru_cache(maxsize=4096)
def product_key(identifier: str) -> tuple[str, str | None, str | None] | None:
    """(GTIN-14, lot, serial) for an SGTIN/LGTIN as URN or Digital Link; None otherwise.

    Kept per process: a capture names the same lot class in many events, and a Digital
    Link parse (biip) costs ~0.1 ms."""
    if identifier.startswith("urn:epc:"):
        match = _URN.match(identifier)
        if not match:
            return None
        gtin = _gtin_from_urn(match["cp"], match["ir"])
        rest = unquote(match["rest"])
        return (gtin, None, rest) if match["scheme"] == "sgtin" else (gtin, rest, None)
    plain = _PLAIN_LINK.fullmatch(identifier)
    if plain and gs1_standard_check_digit(plain[1][:-1]) == int(plain[1][-1]):
        return plain[1], plain[2], plain[3]  # what biip reads in it, without its parser
    return _digital_link_key(identifier)


# A Digital Link in its plainest form (GTIN-14, lot and serial of letters, digits, - and _,
# nothing percent-encoded, no query): a capture's EPCs are nearly all like this, and
# biip's parser costs ~0.1 ms each (tests compare both on generated links).
_PLAIN_LINK = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?/01/(\d{14})"
    r"(?:/10/([A-Za-z0-9_-]{1,20}))?(?:/21/([A-Za-z0-9_-]{1,20}))?",
    re.ASCII,
)


def _digital_link_key(identifier: str) -> tuple[str, str | None, str | None] | None:
    if urlsplit(identifier).scheme in ("http", "https") and "/01/" in identifier:
        try:
            link = parse_digital_link(identifier)
        except IdentifierError:
            return None
        return link.gtin, link.lot, link.serial
    return None
