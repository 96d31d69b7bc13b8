"""Operations: liveness, readiness with a broken database, timeouts and log lines."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

from nguon.db import make_engine, with_timeouts
from tests.conftest import make_test_app


def test_healthz_is_liveness_without_the_database(tmp_path: Path) -> None:
    broken = make_test_app(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}", tmp_path)
    response = broken.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_when_ready(client: Any) -> None:
    from nguon.health import migration_heads

    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "revision": ", ".join(sorted(migration_heads()))}


def _not_ready(app: Flask, lang: str = "en") -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    response = app.test_client().get("/readyz", headers={"Accept-Language": lang})
    elapsed = time.monotonic() - start
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"]
    return response.json, elapsed


def test_readyz_with_a_missing_database(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("postgresql"):
        url = (
            make_url(database_url)
            .set(database=f"nguon_missing_{uuid.uuid4().hex[:8]}")
            .render_as_string(hide_password=False)
        )
    else:
        url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    app = make_test_app(url, tmp_path, DB_CONNECT_TIMEOUT=2)
    body, elapsed = _not_ready(app)
    assert body["detail"] == "The database cannot be reached."
    assert elapsed < 5
    body, _ = _not_ready(app, "vi")
    assert body["detail"] == "Không kết nối được cơ sở dữ liệu."


@pytest.fixture
def hung_database() -> Iterator[int]:
    """A TCP listener that accepts connections and never answers; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_readyz_with_a_hung_database_answers_within_seconds(
    hung_database: int, tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{hung_database}/nguon"
    app = make_test_app(url, tmp_path, DB_CONNECT_TIMEOUT=2)
    body, elapsed = _not_ready(app)
    assert body["detail"] == "The database cannot be reached."
    assert elapsed < 6, elapsed


def test_readyz_without_the_schema(tmp_path: Path) -> None:
    app = make_test_app(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
    body, _ = _not_ready(app)
    assert body["detail"] == "The database has no schema yet: run “nguon db upgrade”."


def test_readyz_with_an_old_schema(tmp_path: Path) -> None:
    from nguon.health import migration_heads

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('654252465ad1')"))
    engine.dispose()
    body, _ = _not_ready(make_test_app(url, tmp_path))
    (head,) = migration_heads()
    assert body["detail"] == (
        f"The database schema is at revision 654252465ad1 but this code needs {head}:"
        " run “nguon db upgrade”."
    )


def test_timeouts_reach_the_postgresql_url() -> None:
    url = with_timeouts("postgresql+psycopg://u@h/db", 5, 25)
    query = make_url(url).query
    assert query["connect_timeout"] == "5"
    assert query["options"] == "-c statement_timeout=25000"
    # What the URL sets itself is kept; other options stay.
    kept = make_url(
        with_timeouts("postgresql+psycopg://u@h/db?connect_timeout=9&options=-c%20x%3D1", 5, 2.5)
    ).query
    assert kept["connect_timeout"] == "9"
    assert kept["options"] == "-c x=1 -c statement_timeout=2500"
    assert with_timeouts("postgresql+psycopg://u@h/db", 5, 0).count("statement") == 0
    assert with_timeouts("sqlite:///x.db", 5, 25) == "sqlite:///x.db"


def test_statement_timeout_is_applied(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    app = make_test_app(database_url, tmp_path, DB_STATEMENT_TIMEOUT=0.2)
    from nguon.db import db

    engine = db.engine(app)
    with engine.connect() as conn:
        assert conn.scalar(text("SHOW statement_timeout")) == "200ms"
        with pytest.raises(Exception, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(2)"))
    db.dispose(app)


def test_timeout_settings_are_strict() -> None:
    from nguon.config import ConfigError, load_settings

    assert load_settings({"NGUON_DB_STATEMENT_TIMEOUT": "10"})["DB_STATEMENT_TIMEOUT"] == 10
    for name, value in [
        ("NGUON_DB_STATEMENT_TIMEOUT", "nan"),
        ("NGUON_DB_STATEMENT_TIMEOUT", "-1"),
        ("NGUON_DB_CONNECT_TIMEOUT", "1"),
        ("NGUON_DB_CONNECT_TIMEOUT", "soon"),
        ("NGUON_LOG_FORMAT", "xml"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value})


# --- log lines -------------------------------------------------------------------------

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _boom_app(database_url: str, tmp_path: Path, log_format: str) -> Flask:
    app = make_test_app(database_url, tmp_path, TESTING=False, LOG_FORMAT=log_format)

    def boom() -> str:
        raise ZeroDivisionError("the unexpected")

    app.add_url_rule("/boom", view_func=boom)
    return app


@pytest.fixture
def restore_logging(app: Flask) -> Iterator[None]:
    yield
    from nguon import logs

    logs.configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])


def test_text_log_lines(
    database_url: str, tmp_path: Path, capsys: Any, restore_logging: None
) -> None:
    app = _boom_app(database_url, tmp_path, "text")
    capsys.readouterr()
    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    lines = capsys.readouterr().err.splitlines()
    records = [line for line in lines if re.match(TIME, line)]
    assert records == [
        next(line for line in records if "unhandled error" in line)
    ]  # one record for the exception
    assert re.fullmatch(
        TIME + r" ERROR \[req-42\] nguon\.errors: unhandled error on GET /boom", records[0]
    )
    rest = "\n".join(lines[lines.index(records[0]) + 1 :])
    assert "Traceback (most recent call last)" in rest
    assert "ZeroDivisionError: the unexpected" in rest


def test_json_log_lines(
    database_url: str, tmp_path: Path, capsys: Any, restore_logging: None
) -> None:
    import logging

    app = _boom_app(database_url, tmp_path, "json")
    capsys.readouterr()
    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-43"})
    assert response.status_code == 500
    logging.getLogger("nguon.test").warning("outside a request")
    lines = capsys.readouterr().err.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert len(entries) == 2
    boom, outside = entries
    assert re.fullmatch(TIME, boom["time"])
    assert boom["level"] == "ERROR"
    assert boom["logger"] == "nguon.errors"
    assert boom["request_id"] == "req-43"
    assert boom["message"] == "unhandled error on GET /boom"
    assert "Traceback (most recent call last)" in boom["exception"]
    assert "ZeroDivisionError: the unexpected" in boom["exception"]
    assert outside["request_id"] == "-"
    assert outside["level"] == "WARNING"


# --- a database fault in any request: 503 with the reason, not a bare 500 ----------------


def test_a_page_without_its_database_answers_503(tmp_path: Path) -> None:
    app = make_test_app(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}", tmp_path)
    client = app.test_client()
    page = client.get("/registry/")
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "10"
    assert "Không kết nối được cơ sở dữ liệu. Vui lòng thử lại sau ít phút." in page.get_data(
        as_text=True
    )
    api = client.get("/api/v1/registry/assets")
    assert api.status_code == 503
    assert api.mimetype == "application/problem+json"
    assert api.json["detail"] == "The database cannot be reached. Please try again in a moment."


def test_a_statement_past_the_timeout_answers_503(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    from nguon.db import db

    app = make_test_app(database_url, tmp_path, DB_STATEMENT_TIMEOUT=0.2)

    def slow() -> str:
        db.session.execute(text("SELECT pg_sleep(3)"))
        return "done"

    app.add_url_rule("/api/v1/slow", view_func=slow)
    start = time.monotonic()
    response = app.test_client().get("/api/v1/slow")
    assert time.monotonic() - start < 2
    assert response.status_code == 503
    assert response.json["detail"] == (
        "The database took too long to answer. Please try again in a moment."
    )
    db.dispose(app)
