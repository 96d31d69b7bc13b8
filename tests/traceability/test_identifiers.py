"""GS1 identifiers and Digital Link URIs (biip parses; we build and explain)."""

from __future__ import annotations

import pytest
from biip.checksums import gs1_standard_check_digit
from hypothesis import given, settings
from hypothesis import strategies as st

from traceability import gs1
from traceability.gs1 import (
    CHARSET_82,
    DigitalLink,
    IdentifierError,
    check_lot,
    parse_digital_link,
    parse_gln,
    parse_gtin,
    product_key,
)

GS1_CHARS = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def with_check_digit(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


@pytest.mark.parametrize(
    ("value", "gtin14"),
    [
        ("12345670", "00000012345670"),
        ("036000291452", "00036000291452"),
        ("8930000000019", "08930000000019"),
        ("08930000000019", "08930000000019"),
    ],
)
def test_gtin_lengths_become_gtin14(value: str, gtin14: str) -> None:
    assert parse_gtin(value) == gtin14


def test_gtin_errors_say_what_is_wrong() -> None:
    with pytest.raises(IdentifierError, match="check digit should be 9 \\(got 7\\)"):
        parse_gtin("8930000000017")
    with pytest.raises(IdentifierError, match="must be 8, 12, 13 or 14 digits"):
        parse_gtin("893000000")
    with pytest.raises(IdentifierError, match="check digit should be"):
        parse_gln("8930000000018")
    assert parse_gln("8930000000019") == "8930000000019"


def test_lot_character_set_and_length() -> None:
    assert check_lot("LN2026-001") == "LN2026-001"
    with pytest.raises(IdentifierError, match="at most 20 characters"):
        check_lot("X" * 21)
    with pytest.raises(IdentifierError, match="not in the GS1 set: ' ' 'ả'"):
        check_lot("Lo vải 1")


@given(
    body=st.text(alphabet="0123456789", min_size=12, max_size=12),
    lot=st.text(alphabet=GS1_CHARS, min_size=1, max_size=20),
    serial=st.one_of(st.none(), st.text(alphabet=GS1_CHARS, min_size=1, max_size=20)),
    expiry=st.one_of(st.none(), st.dates().map(lambda d: d.strftime("%y%m%d"))),
)
def test_digital_link_round_trip(
    body: str, lot: str, serial: str | None, expiry: str | None
) -> None:
    """Any GTIN, lot and serial from the GS1 set survive build -> biip parse unchanged."""
    gtin = "0" + with_check_digit(body)
    link = DigitalLink(gtin, lot=lot, serial=serial, attributes={"17": expiry} if expiry else {})
    uri = link.uri("https://nguon.example.vn")
    parsed = parse_digital_link(uri)
    assert parsed == link
    assert parsed.path == link.path
    assert product_key(uri) == (gtin, lot, serial)


@given(st.text(alphabet="0123456789", min_size=7, max_size=7))
def test_gtin8_and_13_canonicalise(body: str) -> None:
    gtin8 = with_check_digit(body)
    assert parse_gtin(gtin8) == "000000" + gtin8
    link = parse_digital_link(f"https://example.vn/01/{gtin8}/10/A1")
    assert link.gtin == "000000" + gtin8


def test_qualifier_order_is_canonical() -> None:
    link = DigitalLink("08930000000019", cpv="2A", lot="L1", serial="S1")
    assert link.path == "/01/08930000000019/22/2A/10/L1/21/S1"


def test_epc_urns() -> None:
    assert product_key("urn:epc:class:lgtin:8930000.000001.LN2026-001") == (
        "08930000000019",
        "LN2026-001",
        None,
    )
    assert product_key("urn:epc:id:sgtin:8930000.000001.X%2F1") == ("08930000000019", None, "X/1")
    assert product_key("urn:epc:id:sscc:8930000.0000000001") is None
    assert CHARSET_82.match("AZaz09!%")


def test_encode_is_quote() -> None:
    """The fast percent-encoding gives exactly what urllib's quote(safe="") gives."""
    import random
    import string
    from urllib.parse import quote

    from traceability.gs1 import encode

    chars = string.printable + "ảệ~€"
    rng = random.Random(5)
    samples = ["", "ABC123", "a-b_c.d~e", "x y", "%41", "Vải"]
    samples += ["".join(rng.choice(chars) for _ in range(rng.randint(0, 12))) for _ in range(5000)]
    assert [encode(s) for s in samples] == [quote(s, safe="") for s in samples]


_LINK_PART = st.text(alphabet="AZaz09_-./%!", min_size=0, max_size=22)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["https://id.gs1.org", "http://example.com:8080", "https://a-b.vn", "ftp://x"]),
    st.one_of(
        st.from_regex(r"\d{14}", fullmatch=True),
        st.builds(
            lambda body: body + str(gs1_standard_check_digit(body)),
            st.from_regex(r"\d{13}", fullmatch=True),
        ),
        st.from_regex(r"\d{8,13}", fullmatch=True),
    ),
    st.one_of(st.none(), _LINK_PART),
    st.one_of(st.none(), _LINK_PART),
    st.sampled_from(["", "?17=260101", "/22/x"]),
)
def test_product_key_of_a_digital_link_is_biips_reading(
    host: str, gtin: str, lot: str | None, serial: str | None, tail: str
) -> None:
    """The plain-link shortcut gives exactly what biip's parser reads (or None)."""
    link = f"{host}/01/{gtin}"
    link += "" if lot is None else f"/10/{lot}"
    link += "" if serial is None else f"/21/{serial}"
    link += tail
    gs1.product_key.cache_clear()
    assert gs1.product_key(link) == gs1._digital_link_key(link)
