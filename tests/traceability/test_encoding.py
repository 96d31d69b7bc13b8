"""Every printed code scans: lots, serials and variants over GS1's whole 82-character set.

A value of the set makes a URI that this service prints, that its QR code carries, and
that the resolver (through Flask and through the fast path) resolves to exactly that
value: the path is matched as it arrived, each value decoded exactly once.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import Connection

from tests.traceability.test_fastpath import fast_path

# GS1 General Specifications, figure 7.11-1: the 82 characters of AI encodable set 82.
CHARSET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
VALUES = st.text(alphabet=CHARSET_82, min_size=1, max_size=20)
JSON = {"Accept": "application/json"}


def test_the_set_has_82_characters() -> None:
    assert len(set(CHARSET_82)) == 82


def scanned_path(uri: str) -> str:
    """The path (and query) a phone requests after reading the label's QR code."""
    from traceability import labels

    image = Image.open(io.BytesIO(labels.png(uri)))
    (text,) = [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.QRCode)]
    assert text == uri
    parts = urlsplit(text)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def product(trace: dict) -> int:
    return trace["product"]


def issue_codes(product_id: int, lot: str, serial: str) -> tuple[str, str]:
    """A batch with lot ``lot``, its lot code and one item code with serial ``serial``
    (serials are random when issued: this one is set afterwards); their URIs."""
    from nguon.db import db
    from traceability import labels, services
    from traceability.models import Label

    batch = services.save_batch(
        {
            "product_id": product_id,
            "lot": lot,
            "quantity": 10,
            "production_date": dt.date(2026, 6, 10),
        }
    )
    labels.issue_run(batch, "lot")
    run = labels.issue_run(batch, "item", 1, Decimal(1))
    item = db.session.query(Label).filter_by(run_id=run.id).one()
    item.serial = serial
    db.session.flush()
    gtin = batch.product.gtin
    return labels.label_uri(gtin, lot, None), labels.label_uri(gtin, lot, serial)


def both_paths(client: FlaskClient, path: str, **kwargs: Any) -> list[Any]:
    """The answer through Flask, then through the fast path (which the first one primed)."""
    app = client.application
    answers = []
    for fast in (False, True):
        app.config["RESOLVER_FAST_PATH"] = fast
        before = fast_path(app).answered
        try:
            answers.append(client.get(path, **kwargs))
        finally:
            app.config["RESOLVER_FAST_PATH"] = True
        assert fast_path(app).answered == before + fast, (path, fast)
    return answers


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lot=VALUES, serial=VALUES)
def test_issue_render_decode_resolve_round_trip(
    client: FlaskClient,
    app: Flask,
    product: int,
    _transaction: Connection,
    in_tx: Callable[..., Any],
    lot: str,
    serial: str,
) -> None:
    """Issue -> render the QR -> decode it -> resolve -> the same batch and serial, on
    both paths, for any lot and serial of the 82-character set."""
    from traceability import resolver

    savepoint = _transaction.begin_nested()
    try:
        lot_uri, item_uri = in_tx(lambda: issue_codes(product, lot, serial))
        resolver.clear_caches()
        for uri, expected_serial in ((item_uri, serial), (lot_uri, None)):
            path = scanned_path(uri)
            for response in both_paths(client, path, headers=JSON):
                assert response.status_code == 200, (uri, response.get_data(as_text=True))
                body = response.json
                assert body["lot"] == lot and body["serial"] == expected_serial
                assert body["trace_code"] == uri
            for page in both_paths(client, path):
                assert page.status_code == 200 and "verdict-" in page.get_data(as_text=True)
    finally:
        savepoint.rollback()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cpv=VALUES, lot=VALUES)
def test_a_variant_resolves_to_exactly_its_value(client: FlaskClient, cpv: str, lot: str) -> None:
    """AI 22 (which the resolver's description advertises) in any value of the set: the
    link is well formed, never redirected (to itself or elsewhere), and names exactly
    that variant; no code printed here carries one, so it is not issued here (404)."""
    from traceability.gs1 import DigitalLink

    link = DigitalLink("08930000000019", cpv=cpv, lot=lot)
    response = client.get(link.path, headers=JSON)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.json["identifiers"] == {
        "gtin": "08930000000019",
        "cpv": cpv,
        "lot": lot,
        "serial": None,
    }


@settings(max_examples=100, deadline=None)
@given(lot=VALUES, serial=VALUES, cpv=st.none() | VALUES)
def test_parse_decodes_the_printed_form_exactly_once(
    lot: str, serial: str, cpv: str | None
) -> None:
    """The shared parse (both paths call it) gives back each printed value, and treats a
    trailing slash or another percent-encoding of the same values as the same code."""
    import re

    from traceability.gs1 import DigitalLink
    from traceability.resolver.request import parse

    link = DigitalLink("08930000000019", cpv=cpv, lot=lot, serial=serial)
    parsed = parse(link.path)
    assert parsed.outcome == "resolve" and parsed.link == link
    assert parse(link.path + "/").link == link
    lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), link.path)
    assert parse(lower_hex).outcome == "resolve" and parse(lower_hex).link == link


@pytest.mark.parametrize(
    ("path", "lot"),
    [
        ("/01/08930000000019/10/LN%2F2026-02", "LN/2026-02"),
        ("/01/08930000000019/10/A%25B", "A%B"),
        ("/01/08930000000019/10/A%2525", "A%25"),
        ("/01/08930000000019/10/A%26B%2BC", "A&B+C"),
        ("/01/08930000000019/10/%22Q%22", '"Q"'),
        ("/01/08930000000019/10/a!b", "a!b"),  # a sub-delimiter sent as is: the same value
        ("/01/08930000000019/10/a%21b", "a!b"),
    ],
)
def test_the_issue_s_lots_scan(
    client: FlaskClient, trace: dict, in_tx: Callable[..., Any], path: str, lot: str
) -> None:
    """A lot such as LN/2026-02 is printed as LN%2F2026-02 and its label resolves (it used
    to answer 404: the path was decoded before it was matched, then decoded again)."""
    from traceability import resolver

    in_tx(lambda: issue_codes(trace["product"], lot, "S1"))
    resolver.clear_caches()
    response = client.get(path, headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["lot"] == lot


PIECES = [*CHARSET_82, "%", "/", "~", "#", " ", "é", "\x00", "%00", "%ZZ", "%C3", "%FF"]
PIECES += ["%ED%A0%80", "01", "10", "21", "22", "/10/", "/21/", "/22/"]
HOSTILE = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tail=HOSTILE, query=st.text(alphabet=CHARSET_82 + "=&%", max_size=40), fast=st.booleans())
def test_no_path_or_query_causes_a_5xx(
    client: FlaskClient, app: Flask, tail: str, query: str, fast: bool
) -> None:
    """Whatever follows /01/ (bad escapes, NUL, invalid UTF-8, stray slashes, AIs
    anywhere) and whatever the query: a 2xx, 3xx or 4xx on both paths, never a 5xx."""
    from urllib.parse import quote

    app.config["RESOLVER_FAST_PATH"] = fast
    try:
        path = "/01/" + quote(tail, safe="/%!\"&'()*+,-.:;<=>?_~")
        for method in ("GET", "HEAD"):
            response = client.open(f"{path}?{query}", method=method, headers=JSON)
            assert response.status_code < 500, (path, query, response.get_data(as_text=True))
    finally:
        app.config["RESOLVER_FAST_PATH"] = True
