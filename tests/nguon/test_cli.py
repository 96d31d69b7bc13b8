"""The admin CLI: users, tokens and the demo, each one transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from nguon import demo
from nguon.cli import main
from nguon.db import db
from nguon.models import User
from registry.models import Organisation


def run(app: Flask, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(main, list(args), input=input)


def test_users_create_with_password_on_stdin(app: Flask) -> None:
    result = run(
        app, "users", "create", "CanBo@Test.Nguon.vn", "--role", "officer", "--password-stdin",
        input="a long password\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "canbo@test.nguon.vn"))
        assert user is not None and user.role == "officer"
        assert user.password_hash and "a long password" not in user.password_hash


def test_users_create_refuses_bad_input_and_changes_nothing(app: Flask) -> None:
    with app.app_context():
        before = db.session.scalar(select(func.count(User.id)))
    short = run(app, "users", "create", "a@test.nguon.vn", "--role", "admin", "--password-stdin",
                input="short\n")  # fmt: skip
    assert short.exit_code == 1
    assert "password: must be at least 10 characters long" in short.output
    no_org = run(app, "users", "create", "b@test.nguon.vn", "--role", "cooperative",
                 "--password-stdin", input="a long password\n")  # fmt: skip
    assert no_org.exit_code == 1
    assert "organisation_id" in no_org.output
    bad_role = run(app, "users", "create", "c@test.nguon.vn", "--role", "king")
    assert bad_role.exit_code == 2
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == before


def test_users_create_cooperative_with_org(app: Flask, make_org) -> None:
    org_id = make_org()
    result = run(app, "users", "create", "htx@test.nguon.vn", "--role", "cooperative",
                 "--org", str(org_id), "--password-stdin", input="a long password\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    dup = run(app, "users", "create", "htx@test.nguon.vn", "--role", "officer",
              "--password-stdin", input="a long password\n")  # fmt: skip
    assert dup.exit_code == 1
    assert "đã có người dùng với email htx@test.nguon.vn" in dup.output  # the default language


def test_tokens_revoke_by_name(app: Flask, make_user) -> None:
    _, email = make_user("officer")
    assert run(app, "tokens", "create", email, "--name", "sync").exit_code == 0
    assert run(app, "tokens", "revoke", "sync", "--user", email).exit_code == 0
    listed = run(app, "tokens", "list", email)
    assert "revoked" in listed.output
    again = run(app, "tokens", "revoke", "nothing-like-this")
    assert again.exit_code == 1


def test_demo_load_is_idempotent_and_says_what_it_read(app: Flask) -> None:
    first = run(app, "demo", "load")
    assert first.exit_code == 0, first.output
    assert "asset list:" in first.output
    assert "admin@demo.nguon.vn / demo-admin-2026" in first.stdout
    with app.app_context():
        orgs = db.session.scalar(select(func.count(Organisation.id)))
        users = db.session.scalar(select(func.count(User.id)))
        coop = db.session.scalar(select(User).where(User.email == "htx@demo.nguon.vn"))
        assert coop.organisation is not None and coop.organisation.is_demo
        assert coop.organisation.name.endswith("(demo)")
    # The demo lot is fresh whenever the demo is loaded: its consumer page is not expired
    # (it was harvested on 10/06/2026, "past its use-by date" from 24/06/2026 on).
    page = app.test_client().get("/01/08930000000019/10/LN2026-001?lang=vi")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Chính hãng" in html and "quá hạn sử dụng" not in html
    second = run(app, "demo", "load")
    assert second.exit_code == 0
    assert "organisations: 0 created" in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Organisation.id))) == orgs
        assert db.session.scalar(select(func.count(User.id))) == users


def test_demo_without_shared_uses_the_bundled_copy(
    app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(demo, "SHARED_DATA", tmp_path / "absent.json")
    result = run(app, "demo", "load")
    assert result.exit_code == 0, result.output
    assert "is not present; using the project's own copy" in result.output


def test_bundled_copy_matches_the_shared_facts() -> None:
    """The project's copy has the same 28 assets as shared/ (when shared/ is beside us)."""
    bundled = demo.read_asset_data(demo.BUNDLED_DATA)
    assert len(bundled["assets"]) == 28
    if demo.SHARED_DATA.is_file():
        assert demo.read_asset_data(demo.SHARED_DATA)["assets"] == bundled["assets"]


def test_every_package_adds_its_commands() -> None:
    """The composition root registers each package's command group."""
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--help"])
    for group in ("db", "users", "tokens", "demo", "registry", "labels", "sync", "portal-sim"):
        assert f"  {group} " in result.output, group
