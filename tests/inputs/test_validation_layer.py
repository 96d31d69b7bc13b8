"""The one validation layer (nguon.inputs): each kind of hostile input is refused with a
4xx naming what was wrong, on every surface, and a refused request stores nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from nguon import inputs
from nguon.db import db
from nguon.errors import PROBLEM_MIME
from tests.conftest import csrf_from

JSON = "application/json"


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == PROBLEM_MIME
    return response.get_json()


def _fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


# --- ids and page numbers -------------------------------------------------------------


@pytest.mark.parametrize("big", ["3000000000", "10000000000000000000", "9" * 30])
def test_ids_beyond_any_column_are_404(
    logged_in: Callable[..., FlaskClient], bearer: Callable[..., dict], big: str
) -> None:
    """An id no column can hold is a 404 on pages and in the API (it was a 500 on
    PostgreSQL: integer out of range; and on SQLite beyond 64 bits)."""
    client = logged_in("officer")
    assert client.get(f"/registry/assets/{big}").status_code == 404
    assert client.get(f"/traceability/batches/{big}").status_code == 404
    response = client.get(f"/api/v1/registry/assets/{big}", headers=bearer("admin"))
    _problem(response, 404)


@pytest.mark.parametrize("page", ["10000000000000000000", "-1", "0", "3000000000"])
def test_page_numbers_out_of_range_never_fail(
    logged_in: Callable[..., FlaskClient], bearer: Callable[..., dict], page: str
) -> None:
    """HTML lists show a page (clamped); the API refuses a page beyond its documented
    maximum with 422 naming ``page``."""
    client = logged_in("officer")
    for url in ("/registry/cases", "/traceability/batches", "/traceability/products"):
        assert client.get(f"{url}?page={page}").status_code == 200, url
    response = client.get(f"/api/v1/users?page={page}", headers=bearer("admin"))
    if int(page) in range(1, inputs.MAX_PAGE + 1):
        assert response.status_code == 200
    else:
        assert "page" in str(_problem(response, 422)["errors"])


# --- strings ---------------------------------------------------------------------------


def test_string_longer_than_its_column_is_refused_naming_the_field(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], make_org: Callable[..., int]
) -> None:
    """``phone`` has no length in the schema; the flush check reads String(30) from the
    column and refuses with 422 naming it. Nothing is stored."""
    from registry.models import Organisation

    org_id = make_org()
    response = client.patch(
        f"/api/v1/registry/organisations/{org_id}",
        json={"phone": "9" * 31, "name": "Tên mới"},
        headers=bearer("admin"),
    )
    body = _problem(response, 422)
    assert _fields(body) == {"phone"}
    assert "30" in body["errors"][0]["message"]
    with app.app_context():
        assert db.session.get(Organisation, org_id).name != "Tên mới"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"name": "a\\u0000b"}', "NUL"),
        (b'{"name": "\\ud800"}', "surrogate"),
        (b'{"name": NaN}', "NaN"),
        (b'{"name": Infinity}', "Infinity"),
        (b'{"name": 1e400}', "too large"),
        (b'{"name": 1' + b"0" * 30 + b"}", "too large"),
        (b'{"name": "\xff\xfe"}', "UTF-8"),
        (b"[" * 1000 + b"]" * 1000, "nested"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "nested"),
        (b'{"n\\u0000": 1}', "NUL"),
        (b'["ok", {"x": ["\\uDFFF"]}]', "surrogate"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
    ],
)
def test_json_that_is_not_strict_is_400(
    client: FlaskClient,
    bearer: Callable[..., dict],
    make_org: Callable[..., int],
    raw: bytes,
    why: str,
) -> None:
    """NUL, lone surrogates, NaN/Infinity, numbers beyond 64 bits or infinite as floats,
    bytes that are not UTF-8 and nesting deeper than MAX_JSON_DEPTH are refused with 400
    problem+json, in the API and in EPCIS capture alike."""
    org_id = make_org()
    headers = {**bearer("admin"), "Content-Type": JSON}
    response = client.patch(f"/api/v1/registry/organisations/{org_id}", data=raw, headers=headers)
    assert why.lower() in _problem(response, 400)["detail"].lower()
    response = client.post(
        "/epcis/capture", data=raw, headers={**headers, "Content-Type": "application/ld+json"}
    )
    _problem(response, 400)


def test_nesting_up_to_the_limit_is_read() -> None:
    """The limit is a limit, not an off-by-one: exactly MAX_JSON_DEPTH levels parse, and
    brackets inside strings do not count."""
    depth = inputs.MAX_JSON_DEPTH
    assert inputs.load_json(b"[" * depth + b"]" * depth) is not None
    assert inputs.load_json(json.dumps({"s": "[" * 5000}).encode()) == {"s": "[" * 5000}
    with pytest.raises(inputs.InvalidInput):
        inputs.load_json(b"[" * (depth + 1) + b"]" * (depth + 1))
    with pytest.raises(inputs.InvalidInput):
        inputs.load_json('["\ud800"]')  # a lone surrogate in text given as str
    # a surrogate pair, and an escaped backslash before "u0000", are ordinary text
    assert inputs.load_json(b'["\\ud83c\\udf3e", "\\\\u0000"]') == ["\U0001f33e", "\\u0000"]
    assert inputs.load_json(b'{"a": 9223372036854775807, "b": -1.5e10}') == {
        "a": 2**63 - 1,
        "b": -1.5e10,
    }


def test_login_form_refuses_nul_and_bytes_that_are_not_utf8(client: FlaskClient) -> None:
    """A NUL in the login form is refused by the form, naming the field (it was a 500 on
    PostgreSQL); bytes that are not UTF-8 are refused before any view reads them. Both in
    the visitor's language; nobody is signed in."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    sentences = {
        b"a%00b%40x.vn": "Có ký tự không được phép",  # beside the field, by the form
        b"a%ffb%40x.vn": "không phải UTF-8 hoặc có ký tự NUL",  # by the request screen
    }
    for email, sentence in sentences.items():
        response = client.post(
            "/login",
            data=b"email=" + email + b"&password=x&csrf_token=" + token.encode(),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 400, email
        assert sentence in response.get_data(as_text=True), email
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("query", ["q=%ff%fe", "q=a%00b", "q=%ed%a0%80"])
def test_query_strings_that_are_not_utf8_text_are_400(
    client: FlaskClient, bearer: Callable[..., dict], query: str
) -> None:
    response = client.get(f"/api/v1/registry/organisations?{query}", headers=bearer("admin"))
    _problem(response, 400)
    assert client.get(f"/report?{query}").status_code == 400


# --- what the database refuses ----------------------------------------------------------------


def test_unique_conflict_is_409_naming_the_field(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], make_org: Callable[..., int]
) -> None:
    """A GLN another organisation has (the service does not look) reaches the database's
    unique constraint: 409 naming ``gln`` on SQLite and PostgreSQL, nothing changed."""
    from registry.models import Organisation

    headers = bearer("admin")
    first, second = make_org(), make_org()
    gln = "8930000000019"
    assert (
        client.patch(
            f"/api/v1/registry/organisations/{first}", json={"gln": gln}, headers=headers
        ).status_code
        == 200
    ), "the GLN is valid"
    response = client.patch(
        f"/api/v1/registry/organisations/{second}",
        json={"gln": gln, "name": "Đổi tên"},
        headers=headers,
    )
    assert _fields(_problem(response, 409)) == {"gln"}
    with app.app_context():
        assert db.session.get(Organisation, second).name != "Đổi tên"


def test_missing_reference_is_422_naming_the_field(
    app: Flask, make_org: Callable[..., int]
) -> None:
    """A foreign key naming no row: the error names the column on both databases (SQLite
    says only "FOREIGN KEY constraint failed"; the failed statement is read)."""
    from traceability.models import Product

    with app.test_request_context("/api/v1/traceability/products", method="POST"):
        db.session.add(Product(gtin="08930000000026", name="x", producer_id=make_org() + 10**6))
        with pytest.raises(IntegrityError) as caught:
            db.session.flush()
        db.session.rollback()
        error = inputs.integrity_problem(caught.value)
    assert error.status == 422
    assert set(error.errors) == {"producer_id"}


# --- numbers ----------------------------------------------------------------------------


def test_decimal_overflowing_its_column_is_422(app: Flask, make_org: Callable[..., int]) -> None:
    """Numeric(12, 4) holds 8 digits before the point: more is refused naming the field
    (PostgreSQL would raise numeric field overflow, a 500)."""
    from decimal import Decimal

    from nguon.errors import DomainValidationError
    from registry.models import ProductionArea

    with app.test_request_context("/"):
        area = ProductionArea(
            code="X-1",
            crop="vải thiều",
            owner_id=make_org(),
            hectares=Decimal("123456789.5"),
            geometry={"type": "Point", "coordinates": [106.5, 21.3]},
        )
        db.session.add(area)
        with pytest.raises(DomainValidationError) as caught:
            db.session.flush()
        db.session.rollback()
    assert "hectares" in caught.value.errors


def test_superscript_digits_on_the_report_form_store_nothing(
    app: Flask, client: FlaskClient
) -> None:
    """ "¹²" passes str.isdigit() but is no number: the report form refuses it or ignores
    it, never a 5xx, and no report is stored from a refused form."""
    from registry.enforcement.models import Report

    with app.app_context():
        before = db.session.scalar(select(db_count(Report)))
    page = client.get("/report").get_data(as_text=True)
    token = csrf_from(page)
    response = client.post(
        "/report",
        data={"csrf_token": token, "asset_id": "¹²", "goods_value_vnd": "¹²³", "description": ""},
    )
    assert response.status_code < 500
    if response.status_code >= 400:
        with app.app_context():
            assert db.session.scalar(select(db_count(Report))) == before


def db_count(model: Any) -> Any:
    from sqlalchemy import func

    return func.count(model.id)
