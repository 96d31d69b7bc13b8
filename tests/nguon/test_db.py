"""The reader: quick reads outside the session, on a connection kept between reads."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text

from nguon.db import db


def read(app: Any, sql: str) -> Any:
    with db.reader(app) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(sql)
            return cursor.fetchone()[0]
        finally:
            cursor.close()


def test_reader_reads_outside_the_session(own_app: Any) -> None:
    assert read(own_app, "SELECT 1") == 1


def test_reader_keeps_its_connection_and_replaces_a_broken_one(own_app: Any) -> None:
    url = db.engine(own_app).url
    if url.get_backend_name() != "postgresql":
        pytest.skip("SQLite's reader is the pool's own connection, one per read")
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
    with admin.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": replaced}
        ).scalar()
    admin.dispose()
    assert left == 0
