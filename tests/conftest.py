"""Fixtures: one app per session on the chosen database, one rolled-back transaction per test.

The database is SQLite in a temporary folder, or PostgreSQL when
``NGUON_TEST_DATABASE_URL`` is set (``make test`` runs the suite on both). The schema is
built by the real migrations, so every run also checks that they apply.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from nguon.db import commit_boundary, db, make_engine

TEST_PASSWORD = "correct horse battery"


def test_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("NGUON_TEST_DATABASE_URL")
    if url:
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def ensure_postgres_database(url: str, *, fresh: bool) -> None:
    """Create the database named in ``url`` if missing; with ``fresh``, empty it."""
    parsed = make_url(url)
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        )
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    if fresh:
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def drop_postgres_database(url: str) -> None:
    parsed = make_url(url)
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return test_database_url(tmp_path_factory)


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


def make_test_app(database_url: str, instance_path: Path, **overrides: Any) -> Flask:
    from nguon import create_app

    os.environ["NGUON_INSTANCE_PATH"] = str(instance_path)
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-which-is-long-enough-0123456789",
        # Fast hashing in tests only; production uses scrypt.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # Limits are tested on their own (test_public_rate_limit); counts would leak across tests.
        "RATELIMIT_PUBLIC": "100000 per minute",
        **overrides,
    }
    return create_app(config)


@pytest.fixture(scope="session")
def app(database_url: str, instance_path: Path) -> Iterator[Flask]:
    from alembic import command

    from nguon.migrate import alembic_config

    if database_url.startswith("postgresql"):
        ensure_postgres_database(database_url, fresh=True)
    application = make_test_app(database_url, instance_path)
    command.upgrade(alembic_config(database_url), "head")
    yield application
    db.dispose(application)


@pytest.fixture(autouse=True)
def _transaction(app: Flask) -> Iterator[Connection]:
    """Run each test inside one outer transaction that is rolled back afterwards (the
    connection, for a test that takes its own savepoints)."""
    connection = db.engine(app).connect()
    outer = connection.begin()
    db.bind(app, connection)
    try:
        yield connection
    finally:
        db.unbind(app)
        outer.rollback()
        connection.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def in_tx(app: Flask) -> Callable[..., Any]:
    """Run ``fn()`` in its own app context as one committed unit; return its result."""

    def run(fn: Callable[[], Any]) -> Any:
        with app.app_context(), commit_boundary():
            return fn()

    return run


@pytest.fixture
def make_org(in_tx: Callable[..., Any]) -> Callable[..., int]:
    counter = iter(range(1, 10_000))

    def make(name: str | None = None, kind: str = "cooperative", **fields: Any) -> int:
        from registry.models import Organisation

        def create() -> int:
            n = next(counter)
            org = Organisation(name=name or f"HTX thử nghiệm {n}", kind=kind, **fields)
            db.session.add(org)
            db.session.flush()
            return org.id

        return in_tx(create)

    return make


@pytest.fixture
def make_user(in_tx: Callable[..., Any], make_org: Callable[..., int]) -> Callable[..., Any]:
    """make_user(role, email=None, org_id=None) -> (id, email); a cooperative gets an org."""
    counter = iter(range(1, 10_000))

    def make(role: str = "officer", email: str | None = None, org_id: int | None = None) -> Any:
        from nguon import services

        if role == "cooperative" and org_id is None:
            org_id = make_org()
        address = email or f"{role}{next(counter)}@test.nguon.vn"

        def create() -> tuple[int, str]:
            user = services.create_user(
                address, role, password=TEST_PASSWORD, organisation_id=org_id
            )
            return user.id, user.email

        return in_tx(create)

    return make


CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


def login(client: FlaskClient, email: str, password: str = TEST_PASSWORD) -> Any:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def logged_in(client: FlaskClient, make_user: Callable[..., Any]) -> Callable[..., FlaskClient]:
    """logged_in(role) -> the client, signed in as a new user of that role."""

    def sign_in(role: str = "officer") -> FlaskClient:
        _, email = make_user(role)
        response = login(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return sign_in


@pytest.fixture
def bearer(make_user: Callable[..., Any], in_tx: Callable[..., Any]) -> Callable[..., dict]:
    """bearer(role) -> Authorization headers with a fresh token for a new user."""

    def issue(role: str = "officer") -> dict[str, str]:
        from nguon import services
        from nguon.models import User

        user_id, _ = make_user(role)
        secret = in_tx(lambda: services.create_token(db.session.get(User, user_id), "t").secret)
        return {"Authorization": f"Bearer {secret}"}

    return issue


@pytest.fixture
def empty_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the suite's kind with nothing in it (migration tests)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    url = make_url(database_url).set(database=f"nguon_migr_{uuid.uuid4().hex[:8]}")
    rendered = url.render_as_string(hide_password=False)
    ensure_postgres_database(rendered, fresh=False)
    try:
        yield rendered
    finally:
        drop_postgres_database(rendered)


# Registry fixtures serve the registry's tests and every package built on it.
from tests.registry_fixtures import make_area, registry  # noqa: E402, F401


@pytest.fixture
def own_app(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """An app on a database of its own (committed data, real concurrent connections)."""
    from alembic import command

    from nguon.migrate import alembic_config

    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'own.db'}"
    else:
        url = (
            make_url(database_url)
            .set(database=f"nguon_own_{uuid.uuid4().hex[:8]}")
            .render_as_string(hide_password=False)
        )
        ensure_postgres_database(url, fresh=False)
    command.upgrade(alembic_config(url), "head")
    app = make_test_app(url, tmp_path / "instance")
    from traceability import resolver

    resolver.clear_caches()  # kept per process: another database's batches share their ids
    yield app
    db.dispose(app)
    if url.startswith("postgresql"):
        drop_postgres_database(url)
