"""The reader: quick reads outside the session, on connections kept between reads."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from nguon import db as db_module
from nguon.db import db


def read(app: Any, sql: str) -> Any:
    with db.reader(app) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(sql)
            return cursor.fetchone()[0]
        finally:
            cursor.close()


def postgres_only(app: Any) -> Any:
    url = db.engine(app).url
    if url.get_backend_name() != "postgresql":
        pytest.skip("SQLite's reader is the pool's own connection, one per read")
    return url


def backend_gone(admin: Any, pid: int) -> bool:
    """Whether PostgreSQL's backend ``pid`` has exited (it takes a moment)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with admin.connect() as connection:
            left = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar()
        if not left:
            return True
        time.sleep(0.05)
    return False


def test_reader_reads_outside_the_session(own_app: Any) -> None:
    assert read(own_app, "SELECT 1") == 1


def test_reader_keeps_its_connection_and_replaces_a_broken_one(own_app: Any) -> None:
    url = postgres_only(own_app)
    first = read(own_app, "SELECT pg_backend_pid()")
    assert read(own_app, "SELECT pg_backend_pid()") == first  # the same connection, kept
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    with pytest.raises(db.engine(own_app).dialect.loaded_dbapi.Error):
        read(own_app, "SELECT pg_backend_pid()")  # the server closed it under us
    replaced = read(own_app, "SELECT pg_backend_pid()")
    assert replaced != first
    db.dispose(own_app)  # closes the kept connection too
    try:
        assert backend_gone(admin, replaced)
    finally:
        admin.dispose()


def test_more_readers_than_connections_wait_their_turn(
    own_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres_only(own_app)
    monkeypatch.setattr(db_module, "READERS_PER_PROCESS", 2)
    pids: list[int] = []
    errors: list[BaseException] = []

    def sleepy_read() -> None:
        try:
            with db.reader(own_app) as connection:
                cursor = connection.cursor()
                cursor.execute("SELECT pg_backend_pid(), pg_sleep(0.2)")
                pids.append(cursor.fetchone()[0])
                cursor.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sleepy_read) for _ in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == [] and len(pids) == 6
    assert len(set(pids)) == 2  # two connections, shared in turn
    assert time.monotonic() - started < 10  # nobody waited for a pool timeout


def test_label_read_survives_a_connection_closed_while_idle(own_app: Any) -> None:
    """A kept connection the server closed (idle timeout, restart): the next scan's
    read is answered on another connection, not refused."""
    url = postgres_only(own_app)
    from tests.factories import lot_code
    from traceability import resolver

    link = lot_code(own_app)
    with own_app.app_context():
        found = resolver.lookup(link, app=own_app)
        kept = read(own_app, "SELECT pg_backend_pid()")
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept})
        try:
            assert backend_gone(admin, kept)
        finally:
            admin.dispose()
        assert resolver.lookup(link, app=own_app) == found
