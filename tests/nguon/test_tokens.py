"""API tokens: issued once, stored hashed, named, revocable, with a last-used time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from nguon.cli import main
from nguon.db import db
from nguon.models import ApiToken
from tests.conftest import csrf_from


def test_cli_prints_only_the_token_and_it_works(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    """`nguon tokens create` prints the token alone on stdout; the API accepts it."""
    _, email = make_user("cooperative")
    result = app.test_cli_runner().invoke(main, ["tokens", "create", email, "--name", "erp"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngn_")
    token = lines[0]

    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json["email"] == email
    with app.app_context():
        row = db.session.scalars(select(ApiToken).where(ApiToken.name == "erp")).one()
        assert row.last_used_at is not None
        assert token.split("_", 2)[2] not in row.secret_hash  # only a hash is kept
        assert len(row.secret_hash) == 64


def test_revoked_token_is_refused(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict]
) -> None:
    headers = bearer("officer")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    key_id = headers["Authorization"].split("_")[1]
    result = app.test_cli_runner().invoke(main, ["tokens", "revoke", key_id])
    assert result.exit_code == 0, result.output
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json["detail"] == "token revoked"


def test_malformed_and_unknown_tokens(client: FlaskClient, bearer: Callable[..., dict]) -> None:
    good = bearer("officer")["Authorization"]
    cases = {
        "Bearer": "Authorization header must be 'Bearer <token>'",
        "Basic dXNlcjpwYXNz": "Authorization header must be 'Bearer <token>'",
        "Bearer not-a-token": "malformed token: expected ngn_<key id>_<secret>",
        good[:-4] + "AAAA": "unknown token",
        "Bearer ngn_000000000000_abc": "unknown token",
    }
    for header, detail in cases.items():
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.mimetype == "application/problem+json"
        assert response.json["detail"] == detail, header


def test_bad_token_on_html_page_is_401_not_a_redirect(client: FlaskClient) -> None:
    response = client.get("/audit/", headers={"Authorization": "Bearer ngn_000000000000_x"})
    assert response.status_code == 401


def test_api_issues_lists_and_revokes(client: FlaskClient, bearer: Callable[..., dict]) -> None:
    """The secret appears once in the creation answer and never in the list; a token
    client needs no CSRF token to write."""
    headers = bearer("cooperative")
    created = client.post("/api/v1/tokens", json={"name": "cân điện tử"}, headers=headers)
    assert created.status_code == 201
    secret = created.json["token"]
    assert secret.startswith("ngn_")
    listed = client.get("/api/v1/tokens", headers=headers)
    assert listed.status_code == 200
    assert secret not in listed.get_data(as_text=True)
    assert {t["name"] for t in listed.json} == {"t", "cân điện tử"}

    dup = client.post("/api/v1/tokens", json={"name": "cân điện tử"}, headers=headers)
    assert dup.status_code == 409
    assert dup.json["errors"][0]["field"] == "name"

    new_headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=new_headers).status_code == 200
    assert client.delete(f"/api/v1/tokens/{created.json['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=new_headers).status_code == 401


def test_cannot_revoke_someone_elses_token(
    client: FlaskClient, bearer: Callable[..., dict]
) -> None:
    mine = bearer("officer")
    theirs = bearer("officer")
    their_id = client.get("/api/v1/tokens", headers=theirs).json[0]["id"]
    assert client.delete(f"/api/v1/tokens/{their_id}", headers=mine).status_code == 404
    assert client.get("/api/v1/me", headers=theirs).status_code == 200


def test_cookie_session_write_needs_csrf(
    logged_in: Callable[..., FlaskClient],
) -> None:
    """A signed-in browser session must send the CSRF token for API writes."""
    client = logged_in("officer")
    refused = client.post("/api/v1/tokens", json={"name": "x"})
    assert refused.status_code == 400
    assert refused.mimetype == "application/problem+json"
    token = csrf_from(client.get("/account/tokens").get_data(as_text=True))
    accepted = client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRFToken": token})
    assert accepted.status_code == 201


def test_token_page_shows_the_secret_once(logged_in: Callable[..., FlaskClient]) -> None:
    client = logged_in("cooperative")
    page = client.get("/account/tokens").get_data(as_text=True)
    created = client.post(
        "/account/tokens", data={"name": "máy in nhãn", "csrf_token": csrf_from(page)}
    )
    html = created.get_data(as_text=True)
    assert created.status_code == 200
    secret = html.split('<code class="secret">')[1].split("</code>")[0]
    assert secret.startswith("ngn_")
    again = client.get("/account/tokens").get_data(as_text=True)
    assert "máy in nhãn" in again
    assert secret not in again
