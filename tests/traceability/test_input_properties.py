"""Property tests (hypothesis): arbitrary strings, numbers and nested JSON pushed through
the HTML forms, the public report form and EPCIS capture never give a 5xx, and a refused
request stores nothing (the counted tables are unchanged unless the answer is a redirect
to what was saved, or a 2xx capture)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from nguon.db import db
from tests.conftest import TEST_PASSWORD, csrf_from, login

EXAMPLES = 25
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
HOSTILE = [
    "x" * 5000,
    "a\x00b",
    "¹²³",
    "١٢٣",
    "-1",
    "3000000000",
    "10000000000000000000",
    "9" * 40,
    "1e400",
    "NaN",
    "Infinity",
    "0001-01-01",
    "9999-12-31",
    "",
]
RAW = [b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\x80"]  # not UTF-8, an encoded surrogate, overlong NUL
form_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(HOSTILE),
    st.sampled_from(RAW),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
TABLES = ("product", "batch", "organisation", "ip_asset", "report", "epcis_event", "claim")
FIELD = re.compile(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"', re.I)


def counts() -> dict[str, int]:
    from sqlalchemy import table

    return {t: db.session.scalar(select(func.count()).select_from(table(t))) for t in TABLES}


def encoded(fields: dict[str, str | bytes]) -> bytes:
    return "&".join(
        quote_from_bytes(k.encode())
        + "="
        + quote_from_bytes(v if isinstance(v, bytes) else v.encode("utf-8", "surrogatepass"))
        for k, v in fields.items()
    ).encode()


def fuzz_form(app: Flask, client: FlaskClient, page: str) -> None:
    html = client.get(page).get_data(as_text=True)
    names = sorted({n for n in FIELD.findall(html) if n != "csrf_token"})
    assert names, f"{page} shows no form"
    token = csrf_from(html)

    @given(values=st.fixed_dictionaries({name: form_values for name in names}))
    @SETTINGS
    def run(values: dict[str, Any]) -> None:
        with app.app_context():
            before = counts()
        response = client.post(
            page,
            data=encoded({**values, "csrf_token": token}),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code < 500, (page, values)
        if not 300 <= response.status_code < 400:
            with app.app_context():
                assert counts() == before, (page, values, response.status_code)

    run()


@pytest.fixture
def coop_client(client: FlaskClient, trace: dict, in_tx: Callable[..., Any]) -> FlaskClient:
    from nguon import services

    email = "nhap-lieu@htx-phuongson.vn"
    in_tx(
        lambda: services.create_user(
            email, "cooperative", password=TEST_PASSWORD, organisation_id=trace["coop"]
        )
    )
    assert login(client, email).status_code == 302
    return client


@pytest.mark.parametrize("page", ["/traceability/products/new", "/traceability/batches/new"])
def test_cooperative_forms_never_fail(app: Flask, coop_client: FlaskClient, page: str) -> None:
    fuzz_form(app, coop_client, page)


@pytest.mark.parametrize(
    "page",
    ["/registry/manage/organisations/new", "/registry/manage/assets/new", "/account/tokens"],
)
def test_officer_forms_never_fail(
    app: Flask, logged_in: Callable[..., FlaskClient], page: str
) -> None:
    fuzz_form(app, logged_in("officer"), page)


@pytest.mark.parametrize("page", ["/report", "/login"])
def test_public_forms_never_fail(app: Flask, client: FlaskClient, page: str) -> None:
    fuzz_form(app, client, page)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(HOSTILE),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
EVENT = {
    "type": "ObjectEvent",
    "eventTime": "2026-06-12T08:00:00+07:00",
    "eventTimeZoneOffset": "+07:00",
    "action": "OBSERVE",
    "bizStep": "inspecting",
}
EVENT_KEYS = [
    "type",
    "eventTime",
    "eventTimeZoneOffset",
    "action",
    "bizStep",
    "disposition",
    "epcList",
    "quantityList",
    "readPoint",
    "bizLocation",
    "ilmd",
    "sensorElementList",
    "eventID",
]


def test_epcis_capture_never_fails(app: Flask, client: FlaskClient, coop_headers: dict) -> None:
    """Arbitrary values for an event's members, and arbitrary documents: 2xx, 4xx, never
    5xx; a refused capture stores no event."""
    headers = {**coop_headers, "Content-Type": "application/ld+json"}

    @given(
        changes=st.dictionaries(st.sampled_from(EVENT_KEYS), json_values, max_size=3),
        whole=st.one_of(st.none(), json_values),
    )
    @SETTINGS
    def run(changes: dict[str, Any], whole: Any) -> None:
        document = {
            "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-06-12T08:00:00+07:00",
            "epcisBody": {"eventList": [{**EVENT, **changes}]},
        }
        for body in (document, whole) if whole is not None else (document,):
            with app.app_context():
                before = counts()
            response = client.post("/epcis/capture", data=json.dumps(body), headers=headers)
            assert response.status_code < 500, (body, response.get_data(as_text=True)[:300])
            if response.status_code >= 400:
                with app.app_context():
                    assert counts() == before

    run()
