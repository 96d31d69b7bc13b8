"""Sign-in, sign-out, CSRF and the lockout."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from nguon.db import db
from nguon.models import User
from tests.conftest import TEST_PASSWORD, csrf_from, login


def _failures(app: Flask, email: str) -> int:
    """The sign-in throttle's failure count for ``email`` (0 when it has no row)."""
    from nguon.models import LoginThrottle
    from nguon.services import throttle_key

    with app.app_context():
        row = db.session.get(LoginThrottle, throttle_key(email))
        return 0 if row is None else row.failed


def _expire_lock(email: str) -> None:
    from nguon.models import LoginThrottle
    from nguon.services import throttle_key

    db.session.get(LoginThrottle, throttle_key(email)).locked_until = dt.datetime.now(
        dt.UTC
    ) - dt.timedelta(seconds=1)


def _user(app: Flask, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def test_login_and_logout(client: FlaskClient, make_user: Callable[..., Any], app: Flask) -> None:
    """Right credentials sign in (the session then authenticates the API); logout ends it."""
    user_id, email = make_user("officer")
    response = login(client, email)
    assert response.status_code == 302
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json["email"] == email
    assert _user(app, user_id).last_login_at is not None

    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_login_without_csrf_token_is_refused(
    client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    """A login form posted without the CSRF token does not sign anyone in."""
    _, email = make_user("officer")
    response = client.post("/login", data={"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert client.get("/api/v1/me").status_code == 401


def test_logout_needs_csrf(client: FlaskClient, make_user: Callable[..., Any]) -> None:
    _, email = make_user("officer")
    login(client, email)
    assert client.post("/logout").status_code == 400
    assert client.get("/api/v1/me").status_code == 200


def test_wrong_password_counts(
    client: FlaskClient, make_user: Callable[..., Any], app: Flask
) -> None:
    _, email = make_user("officer")
    response = login(client, email, "wrong password!")
    assert response.status_code == 401
    assert "Sai email hoặc mật khẩu" in response.get_data(as_text=True)
    assert _failures(app, email) == 1
    assert _failures(app, email.upper()) == 1  # keyed by the normalised address
    # A success resets the counter.
    assert login(client, email).status_code == 302
    assert _failures(app, email) == 0


def test_unknown_email_answers_like_a_wrong_password(client: FlaskClient) -> None:
    response = login(client, "nobody@test.nguon.vn", "whatever-password")
    assert response.status_code == 401
    assert "Sai email hoặc mật khẩu" in response.get_data(as_text=True)


def test_lockout_after_repeated_failures(
    client: FlaskClient, make_user: Callable[..., Any], app: Flask, in_tx: Callable[..., Any]
) -> None:
    """After LOGIN_MAX_ATTEMPTS failures the account is locked, even for the right password,
    and the lock grows with each further failure; it lifts when its time has passed."""
    _, email = make_user("officer")
    limit = app.config["LOGIN_MAX_ATTEMPTS"]
    for _ in range(limit - 1):
        assert login(client, email, "wrong password!").status_code == 401
    locked = login(client, email, "wrong password!")
    assert locked.status_code == 429
    first_wait = int(locked.headers["Retry-After"])
    assert 0 < first_wait <= app.config["LOGIN_LOCKOUT_SECONDS"]

    refused = login(client, email)  # the right password, while locked
    assert refused.status_code == 429
    assert client.get("/api/v1/me").status_code == 401

    # Time passes: the lock has expired; one more failure doubles the wait.
    def expire() -> None:
        _expire_lock(email)

    in_tx(expire)
    again = login(client, email, "wrong password!")
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) > first_wait

    in_tx(expire)
    assert login(client, email).status_code == 302
    assert _failures(app, email) == 0


def test_disabled_account_cannot_sign_in(
    client: FlaskClient, make_user: Callable[..., Any], in_tx: Callable[..., Any]
) -> None:
    user_id, email = make_user("officer")

    def disable() -> None:
        db.session.get(User, user_id).active = False

    in_tx(disable)
    assert login(client, email).status_code == 401


def test_next_only_redirects_within_the_site(
    client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    _, email = make_user("officer")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=https://evil.example/steal",
        data={"email": email, "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_redirects_back_to_the_page_asked_for(client: FlaskClient) -> None:
    response = client.get("/audit/?table=user_account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/audit/")


def test_session_cookie_flags(client: FlaskClient, make_user: Callable[..., Any]) -> None:
    _, email = make_user("officer")
    response = login(client, email)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # served over http in tests


def test_secure_cookie_when_public_url_is_https(
    database_url: str, tmp_path: Any, make_user: Callable[..., Any]
) -> None:
    from tests.conftest import make_test_app

    https_app = make_test_app(
        database_url, tmp_path, PUBLIC_URL="https://nguon.example.vn", SESSION_COOKIE_SECURE=True
    )
    response = https_app.test_client().get("/login", base_url="https://nguon.example.vn")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Secure" in cookie
    assert "Strict-Transport-Security" in response.headers
