"""Role checks: 401 for nobody, 403 for the wrong role, 200 for the right one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

NEW_USER = {"email": "new.officer@test.nguon.vn", "role": "officer", "password": "long enough pw"}


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("cooperative", 403), ("officer", 200), ("admin", 200)],
)
def test_listing_users_is_for_staff(
    client: FlaskClient, bearer: Callable[..., dict], role: str | None, expected: int
) -> None:
    headers = bearer(role) if role else {}
    response = client.get("/api/v1/users", headers=headers)
    assert response.status_code == expected
    if expected == 403:
        assert "officer" in response.json["detail"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("cooperative", 403), ("officer", 403), ("admin", 201)],
)
def test_creating_users_is_for_admins(
    client: FlaskClient, bearer: Callable[..., dict], role: str | None, expected: int
) -> None:
    headers = bearer(role) if role else {}
    response = client.post("/api/v1/users", json=NEW_USER, headers=headers)
    assert response.status_code == expected
    admin = bearer("admin")
    users = client.get("/api/v1/users?page_size=100", headers=admin).json
    assert (NEW_USER["email"] in {u["email"] for u in users}) == (expected == 201)


@pytest.mark.parametrize(
    ("role", "expected"),
    [("cooperative", 403), ("officer", 200), ("admin", 200)],
)
def test_audit_page_is_for_staff(
    logged_in: Callable[..., FlaskClient], role: str, expected: int
) -> None:
    assert logged_in(role).get("/audit/").status_code == expected


def test_anonymous_page_visitor_is_sent_to_login(client: FlaskClient) -> None:
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_navigation_depends_on_role(logged_in: Callable[..., FlaskClient]) -> None:
    """Officers see the audit log in the navigation; cooperative users do not."""
    coop = logged_in("cooperative").get("/", follow_redirects=True).get_data(as_text=True)
    assert "/audit/" not in coop
    assert "/account/tokens" in coop


def test_navigation_for_officer(logged_in: Callable[..., FlaskClient]) -> None:
    assert "/audit/" in logged_in("officer").get("/").get_data(as_text=True)


def test_cooperative_user_needs_an_organisation(
    client: FlaskClient, bearer: Callable[..., dict], make_org: Callable[..., Any]
) -> None:
    admin = bearer("admin")
    body = {"email": "htx1@test.nguon.vn", "role": "cooperative", "password": "long enough pw"}
    missing = client.post("/api/v1/users", json=body, headers=admin)
    assert missing.status_code == 422
    assert missing.json["errors"] == [
        {"field": "organisation_id", "message": "a cooperative user must belong to an organisation"}
    ]
    org_id = make_org()
    ok = client.post("/api/v1/users", json={**body, "organisation_id": org_id}, headers=admin)
    assert ok.status_code == 201
    assert ok.json["organisation_id"] == org_id
    unknown = client.post(
        "/api/v1/users",
        json={**body, "email": "htx2@test.nguon.vn", "organisation_id": 999999},
        headers=admin,
    )
    assert unknown.status_code == 422
    assert unknown.json["errors"][0]["field"] == "organisation_id"


def test_permission_helpers() -> None:
    """can_access_organisation: staff see every organisation, a cooperative only its own."""
    from types import SimpleNamespace

    from nguon.auth import can_access_organisation

    def user(role: str, org: int | None = None) -> Any:
        return SimpleNamespace(is_authenticated=True, role=role, organisation_id=org)

    assert can_access_organisation(7, user("officer"))
    assert can_access_organisation(7, user("admin"))
    assert can_access_organisation(7, user("cooperative", 7))
    assert not can_access_organisation(8, user("cooperative", 7))
    assert not can_access_organisation(None, user("cooperative", 7))
    assert not can_access_organisation(7, SimpleNamespace(is_authenticated=False))
