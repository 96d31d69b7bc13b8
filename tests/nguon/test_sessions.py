"""Server-side session revocation and sign-in answers that do not reveal accounts.

A copied session cookie (what an attacker holds after stealing it) must stop working
when its session is signed out, when the user's password, role or activity changes, and
after "sign out everywhere"; the same cookie kept working for 31 days before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from nguon.db import db
from nguon.models import User, UserSession
from tests.conftest import TEST_PASSWORD, csrf_from, login


def _copy(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _signed_in(app: Flask, client: FlaskClient, email: str) -> FlaskClient:
    assert login(client, email).status_code == 302
    thief = _copy(app, client)
    assert thief.get("/api/v1/me").status_code == 200  # the copy works, until...
    return thief


def _post(client: FlaskClient, path: str, page: str = "/account", **data: str) -> Any:
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def test_copied_cookie_is_refused_after_sign_out(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    _, email = make_user("officer")
    thief = _signed_in(app, client, email)
    assert _post(client, "/logout", page="/").status_code == 302
    assert thief.get("/api/v1/me").status_code == 401
    assert thief.get("/account").status_code == 302  # to the sign-in page


def test_sign_out_ends_only_that_session(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    _, email = make_user("officer")
    _signed_in(app, client, email)
    laptop = app.test_client()
    assert login(laptop, email).status_code == 302
    assert _post(client, "/logout", page="/").status_code == 302
    assert laptop.get("/api/v1/me").status_code == 200


def test_copied_cookie_is_refused_after_set_password_on_the_cli(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    from nguon.cli import main

    _, email = make_user("officer")
    thief = _signed_in(app, client, email)
    result = app.test_cli_runner().invoke(
        main, ["users", "set-password", email, "--password-stdin"], input="another long one\n"
    )
    assert result.exit_code == 0, result.output
    assert thief.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 401  # every session, this one too
    assert login(app.test_client(), email, "another long one").status_code == 302


def test_password_change_on_the_account_page_ends_the_other_sessions(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    _, email = make_user("cooperative")
    thief = _signed_in(app, client, email)
    wrong = _post(
        client,
        "/account",
        current_password="not the password",
        new_password="a new long password",
        confirm_password="a new long password",
    )
    assert wrong.status_code == 422
    assert thief.get("/api/v1/me").status_code == 200  # a refused change changes nothing
    changed = _post(
        client,
        "/account",
        current_password=TEST_PASSWORD,
        new_password="a new long password",
        confirm_password="a new long password",
    )
    assert changed.status_code == 302
    assert thief.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 200  # the browser that changed it goes on
    assert login(app.test_client(), email, "a new long password").status_code == 302


def test_copied_cookie_is_refused_after_a_role_change(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., Any],
    in_tx: Callable[..., Any],
) -> None:
    user_id, email = make_user("officer")
    thief = _signed_in(app, client, email)

    def promote() -> None:
        db.session.get(User, user_id).role = "admin"

    in_tx(promote)
    assert thief.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 401


def test_an_unrelated_change_keeps_the_sessions(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any], in_tx: Callable[..., Any]
) -> None:
    user_id, email = make_user("officer")
    _signed_in(app, client, email)

    def rename() -> None:
        db.session.get(User, user_id).name = "Nguyễn Văn A"

    in_tx(rename)
    assert client.get("/api/v1/me").status_code == 200


def test_copied_cookie_is_refused_after_disable(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    from nguon.cli import main

    _, email = make_user("officer")
    thief = _signed_in(app, client, email)
    assert app.test_cli_runner().invoke(main, ["users", "disable", email]).exit_code == 0
    assert thief.get("/api/v1/me").status_code == 401


def test_sign_out_everywhere(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any], bearer: Callable[..., Any]
) -> None:
    user_id, email = make_user("officer")
    thief = _signed_in(app, client, email)
    laptop = app.test_client()
    assert login(laptop, email).status_code == 302
    page = client.get("/account").get_data(as_text=True)
    assert 'action="/account/sign-out-everywhere"' in page
    response = _post(client, "/account/sign-out-everywhere")
    assert response.status_code == 302
    for browser in (client, thief, laptop):
        assert browser.get("/api/v1/me").status_code == 401
    with app.app_context():
        assert db.session.query(UserSession).filter_by(user_id=user_id).count() == 0
    assert login(app.test_client(), email).status_code == 302  # signing in again works


def test_api_tokens_outlive_a_password_change(
    app: Flask, make_user: Callable[..., Any], in_tx: Callable[..., Any]
) -> None:
    """Tokens are separate credentials, revoked one by one (documented)."""
    from nguon import services

    user_id, _ = make_user("officer")
    secret = in_tx(lambda: services.create_token(db.session.get(User, user_id), "erp").secret)
    in_tx(lambda: services.set_password(db.session.get(User, user_id), "another long one"))
    client = app.test_client()
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    )


def test_a_cookie_without_a_server_session_is_refused(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    """A cookie signed by the key but naming no recorded session (what main issued before
    this change, or a forged ``_user_id``) authenticates nobody."""
    user_id, _ = make_user("officer")
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
    assert client.get("/api/v1/me").status_code == 401


# --- sign-in answers ---------------------------------------------------------------------


def _answer(response: Any) -> tuple[int, str, dict[str, str]]:
    """What a response tells: status, body without its CSRF token, headers without ids."""
    body = re.sub(r'value="[^"]+"', 'value="…"', response.get_data(as_text=True))
    body = re.sub(r'name="csrf-token" content="[^"]+"', "", body)
    skip = {"set-cookie", "x-request-id", "content-length"}
    headers = {k: v for k, v in response.headers.items() if k.lower() not in skip}
    return response.status_code, body, headers


def test_unknown_and_real_emails_get_the_same_answers_lockout_included(
    app: Flask, make_user: Callable[..., Any]
) -> None:
    _, real = make_user("officer", email="real.person@test.nguon.vn")
    unknown = "nobody.here@test.nguon.vn"
    limit = app.config["LOGIN_MAX_ATTEMPTS"]
    answers: dict[str, list[Any]] = {}
    for email in (real, unknown):
        browser = app.test_client()
        answers[email] = [
            _answer(login(browser, email, "wrong password!")) for _ in range(limit + 2)
        ]
    assert [a[0] for a in answers[real]] == [401] * (limit - 1) + [429] * 3
    for mine, theirs in zip(answers[real], answers[unknown], strict=True):
        status, body, headers = mine
        assert (status, body.replace(real, unknown)) == theirs[:2]
        assert {k: v for k, v in headers.items() if k != "Retry-After"} == {
            k: v for k, v in theirs[2].items() if k != "Retry-After"
        }
        assert ("Retry-After" in headers) == ("Retry-After" in theirs[2])
    # The right password is refused while locked, like any password for an unknown email.
    assert login(app.test_client(), real).status_code == 429


def test_unknown_and_real_emails_cost_one_hash_check_each(
    app: Flask, make_user: Callable[..., Any], monkeypatch: Any
) -> None:
    """Timing: both paths check one password hash of the configured method (the unknown
    one used a cheap 1000-round hash before: 5 ms against 110 ms)."""
    import werkzeug.security

    from nguon import services

    checked: list[str] = []
    original = werkzeug.security.check_password_hash

    def spy(pwhash: str, password: str) -> bool:
        checked.append(pwhash.split("$", 1)[0])
        return original(pwhash, password)

    monkeypatch.setattr(services, "check_password_hash", spy)
    _, real = make_user("officer")
    login(app.test_client(), real, "wrong password!")
    login(app.test_client(), "nobody@test.nguon.vn", "wrong password!")
    assert checked == [app.config["PASSWORD_HASH_METHOD"]] * 2


def test_the_current_password_on_the_account_page_cannot_be_guessed_without_limit(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    """A stolen session could otherwise try passwords there, then change it: the guesses
    count towards the same lockout as sign-in."""
    _, email = make_user("officer")
    _signed_in(app, client, email)
    limit = app.config["LOGIN_MAX_ATTEMPTS"]

    def change(current: str) -> Any:
        return _post(
            client,
            "/account",
            current_password=current,
            new_password="a new long password",
            confirm_password="a new long password",
        )

    statuses = [change(f"guess number {n}").status_code for n in range(limit)]
    assert statuses == [422] * (limit - 1) + [429]
    locked = change(TEST_PASSWORD)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert login(app.test_client(), email).status_code == 429  # sign-in is locked too
