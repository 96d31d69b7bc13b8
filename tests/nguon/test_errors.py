"""One error shape for the API (problem+json), friendly pages for people, safe headers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import make_test_app

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def test_api_not_found_is_problem_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json.keys() >= PROBLEM_KEYS
    assert response.json["status"] == 404
    assert response.json["title"] == "Not Found"


def test_validation_errors_name_each_field_and_rule(
    client: FlaskClient, bearer: Callable[..., dict]
) -> None:
    response = client.post(
        "/api/v1/users",
        json={"email": "not-an-email", "role": "king", "password": "short"},
        headers=bearer("admin"),
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = {e["field"]: e["message"] for e in response.json["errors"]}
    assert errors == {
        "email": "Not a valid email address.",
        "role": "Must be one of: admin, officer, cooperative.",
        "password": "Length must be between 10 and 1000.",
    }
    assert "email: Not a valid email address." in response.json["detail"]


def test_query_parameter_errors_carry_their_location(
    client: FlaskClient, bearer: Callable[..., dict]
) -> None:
    response = client.get("/api/v1/users?page=zero", headers=bearer("officer"))
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "query.page"


def test_malformed_json_is_a_problem(client: FlaskClient, bearer: Callable[..., dict]) -> None:
    response = client.post(
        "/api/v1/tokens",
        data="{not json",
        content_type="application/json",
        headers=bearer("officer"),
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_method_not_allowed(client: FlaskClient) -> None:
    response = client.put("/api/v1/me")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_request_size_cap(database_url: str, tmp_path: Path) -> None:
    small = make_test_app(database_url, tmp_path, MAX_CONTENT_LENGTH=2048)
    response = small.test_client().post(
        "/api/v1/tokens", data=b"x" * 4096, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_html_pages_get_a_friendly_page(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Không tìm thấy trang" in html
    assert "Traceback" not in html


def test_unexpected_error_is_a_500_without_a_stack_trace(database_url: str, tmp_path: Path) -> None:
    broken = make_test_app(database_url, tmp_path, TESTING=False)

    @broken.get("/api/v1/boom")
    def boom() -> str:
        raise ZeroDivisionError("secret internals")

    @broken.get("/boom")
    def boom_page() -> str:
        raise ZeroDivisionError("secret internals")

    api = broken.test_client().get("/api/v1/boom")
    assert api.status_code == 500
    assert api.mimetype == "application/problem+json"
    assert "secret internals" not in api.get_data(as_text=True)
    page = broken.test_client().get("/boom")
    assert page.status_code == 500
    assert "secret internals" not in page.get_data(as_text=True)
    assert "Đã có lỗi xảy ra" in page.get_data(as_text=True)


def test_security_headers_on_every_response(client: FlaskClient, app: Flask) -> None:
    for path in ("/", "/login", "/api/v1/me", "/static/css/nguon.css", "/missing"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert headers["X-Request-ID"]


def test_pages_have_no_inline_script_or_style(client: FlaskClient) -> None:
    """The CSP forbids inline code, so the pages must not rely on any."""
    for path in ("/", "/login"):
        html = client.get(path).get_data(as_text=True)
        assert "<script" not in html
        assert "style=" not in html
        assert "<style" not in html


def test_openapi_document_describes_the_api(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    assert spec["info"]["title"] == "Nguồn"
    assert {"/api/v1/me", "/api/v1/tokens", "/api/v1/users", "/api/v1/audit"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_health_check(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
