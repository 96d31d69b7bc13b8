"""The data layer: declarative base, naming convention, engine and the per-request session.

Nothing here connects while the app is created: the engine is lazy, and the session
for a request or CLI command is opened on first use and closed when the app context
ends. Services only ``flush()``; the one place that commits is :func:`commit_boundary`
(the request, the CLI command, the worker step).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from flask import Flask, g
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Set before the first migration so constraint names agree on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both databases.

    SQLite stores no offset, so values are normalised to UTC on the way in and
    marked UTC on the way out; PostgreSQL keeps ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware datetime (UTC)")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size`` (the values of one ``IN`` list)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it
    # over (SQLAlchemy's documented recipe) so nested transactions and rollbacks work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def make_engine(url: str, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and foreign keys on every connection."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        # No pre-ping (it costs a round trip on every request); connections are recycled
        # instead, and one that died fails its request once and is discarded.
        kwargs["pool_recycle"] = 300
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


RECYCLE_SECONDS = 300  # a kept connection older than this is replaced (idle timeouts)
READERS_PER_PROCESS = 15  # at most this many reads at once; more wait for a free one
READER_WAIT_SECONDS = 30
_INHERITED: list[Any] = []  # a forked child's copies of its parent's readers: never touched
_READERS_MADE = threading.Lock()


class _Readers:
    """The reader's connections, per process: PostgreSQL in autocommit, each kept checked
    out of its pool and reused, at most ``READERS_PER_PROCESS`` of them (a thread with
    none free waits for one to be given back)."""

    def __init__(self, main: Engine) -> None:
        self.pid = os.getpid()
        self.engine = (
            main
            if main.dialect.name == "sqlite"
            else create_engine(
                main.url,
                isolation_level="AUTOCOMMIT",
                pool_size=READERS_PER_PROCESS,
                max_overflow=0,
                pool_recycle=RECYCLE_SECONDS,
                pool_reset_on_return=None,  # autocommit: nothing to roll back
                # The label read parses timestamps as ISO text (options the URL gives kept).
                connect_args={
                    "options": " ".join(
                        filter(None, [main.url.query.get("options"), "-c datestyle=ISO,YMD"])
                    )
                },
            )
        )
        self._free: list[Any] = []
        self._open = 0  # connections taken from the pool (free or in use)
        self._changed = threading.Condition()

    def take(self) -> Any:
        connection = self._fresh_free()  # the common case: no lock
        if connection is not None:
            return connection
        deadline = time.monotonic() + READER_WAIT_SECONDS
        with self._changed:
            while True:
                connection = self._fresh_free()
                if connection is not None:
                    return connection
                if self._open < READERS_PER_PROCESS:
                    self._open += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no reader connection free in {READER_WAIT_SECONDS} s")
                # Connections are given back without a lock, so look again shortly.
                self._changed.wait(min(0.05, remaining))
        try:
            connection = self.engine.raw_connection()
        except BaseException:
            self.drop(None)
            raise
        connection.info["nguon.since"] = time.monotonic()
        return connection

    def _fresh_free(self) -> Any | None:
        """A free connection young enough to use; older ones go back to their pool."""
        while True:
            try:
                connection = self._free.pop()  # atomic
            except IndexError:
                return None
            if time.monotonic() - connection.info["nguon.since"] < RECYCLE_SECONDS:
                return connection
            connection.close()  # back to its pool, which replaces it
            with self._changed:
                self._open -= 1

    def give(self, connection: Any) -> None:
        self._free.append(connection)  # atomic

    def drop(self, connection: Any | None) -> None:
        """A connection that failed: closed for good; a waiting thread may open another."""
        if connection is not None:
            connection.invalidate()
        with self._changed:
            self._open -= 1
            self._changed.notify()

    def close(self) -> None:
        if self.pid != os.getpid():  # a forked child: the sockets are the parent's
            if self.engine.dialect.name != "sqlite":
                self.engine.dispose(close=False)
            return
        with self._changed:
            free, self._free = self._free, []
            self._open -= len(free)
        for connection in free:
            connection.close()
        if self.engine.dialect.name != "sqlite":
            self.engine.dispose()


def with_timeouts(url: str, connect_timeout: int | None, statement_timeout: float | None) -> str:
    """``url`` with libpq's ``connect_timeout`` (seconds) and a server-side
    ``statement_timeout`` (seconds; 0 or ``None``: none) added, PostgreSQL only.

    Values the URL already sets are kept. Both reach every connection the app opens (the
    reader's too, which builds on the same URL), so a database that accepts connections
    and never answers, or a runaway query, cannot hold a worker past them.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    query = dict(parsed.query)
    if connect_timeout and "connect_timeout" not in query:
        query["connect_timeout"] = str(connect_timeout)
    options = query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    if statement_timeout and "statement_timeout" not in options:
        milliseconds = max(1, round(statement_timeout * 1000))
        query["options"] = " ".join(filter(None, [options, f"-c statement_timeout={milliseconds}"]))
    return parsed.set(query=query).render_as_string(hide_password=False)


class Database:
    """The Flask extension: one engine per app, one session per app context."""

    def __init__(self) -> None:
        self._factories: dict[int, sessionmaker[Session]] = {}
        self._bound: set[int] = set()

    def init_app(self, app: Flask) -> None:
        url = with_timeouts(
            app.config["DATABASE_URL"],
            app.config.get("DB_CONNECT_TIMEOUT"),
            app.config.get("DB_STATEMENT_TIMEOUT"),
        )
        engine = make_engine(url, echo=app.config["SQLALCHEMY_ECHO"])
        app.extensions["nguon.db"] = engine
        self._factories[id(app)] = sessionmaker(bind=engine, expire_on_commit=False)
        app.teardown_appcontext(self._close_session)

    @staticmethod
    def engine(app: Flask) -> Engine:
        return app.extensions["nguon.db"]

    @staticmethod
    def dispose(app: Flask) -> None:
        """Close every pooled connection of ``app`` (its engine and its reader's)."""
        app.extensions["nguon.db"].dispose()
        readers = app.extensions.pop("nguon.db.reader", None)
        if readers is not None:
            readers.close()

    def bind(self, app: Flask, connection: Connection) -> None:
        """Make ``app``'s sessions run inside ``connection`` (tests' outer transaction).

        Commits then release a SAVEPOINT, so a test can roll everything back.
        """
        self._factories[id(app)] = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        self._bound.add(id(app))

    def is_bound(self, app: Flask) -> bool:
        """Whether ``app``'s sessions run inside a given connection (tests)."""
        return id(app) in self._bound

    def unbind(self, app: Flask) -> None:
        self._factories[id(app)] = sessionmaker(bind=self.engine(app), expire_on_commit=False)
        self._bound.discard(id(app))

    @contextmanager
    def reader(self, app: Flask, *, in_session: bool = False) -> Iterator[Any]:
        """A DB-API connection for one quick read outside the session's transaction.

        For the hottest read of all (the resolver's label lookup): PostgreSQL answers in
        autocommit, one round trip with no BEGIN/COMMIT around it, on a connection kept
        checked out between reads (no pool round per read); SQLite's raw connection reads
        without a transaction anyway. With ``in_session``, and always for a bound app
        (tests), the read is the session's own."""
        if in_session or id(app) in self._bound:
            yield self.session.connection().connection
            return
        readers = app.extensions.get("nguon.db.reader")
        if readers is None or readers.pid != os.getpid():
            with _READERS_MADE:  # one per process, however many threads start at once
                readers = app.extensions.get("nguon.db.reader")
                if readers is None or readers.pid != os.getpid():
                    if readers is not None:  # forked: the parent's connections are its own
                        _INHERITED.append(readers)
                    readers = app.extensions["nguon.db.reader"] = _Readers(self.engine(app))
        if readers.engine is self.engine(app):  # SQLite: the pool's own connection
            connection = readers.engine.raw_connection()
            try:
                yield connection
            finally:
                connection.close()
            return
        connection = readers.take()
        try:
            yield connection
        except readers.engine.dialect.loaded_dbapi.Error:
            readers.drop(connection)  # broken or in doubt: the next read takes a new one
            raise
        except BaseException:
            readers.give(connection)
            raise
        readers.give(connection)

    @property
    def session(self) -> Session:
        """The session of the current app context (created on first use)."""
        session = g.get("_nguon_session")
        if session is None:
            from flask import current_app

            session = self._factories[id(current_app._get_current_object())]()  # type: ignore[attr-defined]
            g._nguon_session = session
        return session

    @staticmethod
    def _close_session(_exc: BaseException | None = None) -> None:
        session = g.pop("_nguon_session", None)
        if session is not None:
            session.close()


db = Database()


def count_rows(query: Any) -> int:
    """How many rows a ``select`` gives (its ORDER BY dropped: counting needs none)."""
    from sqlalchemy import func, select

    return db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def page_rows(query: Any, limit: int, offset: int) -> list[Any]:
    return list(db.session.scalars(query.limit(limit).offset(offset)))


MAX_PAGE = 10**6  # a page number beyond this is read as this one (no offset overflows)


def paginate(query: Any, page: int, size: int) -> tuple[list[Any], int, int]:
    """(items of ``page``, total count, number of pages) for a ``select``; ``page`` is
    clamped to 1 .. :data:`MAX_PAGE`."""
    import math

    total = count_rows(query)
    page = min(max(page, 1), MAX_PAGE)
    return page_rows(query, size, (page - 1) * size), total, max(1, math.ceil(total / size))


@contextmanager
def commit_boundary() -> Iterator[Session]:
    """Commit what the block did, or roll all of it back if it raises.

    For CLI commands and worker steps; requests use the same rule in
    ``nguon.app`` (commit on success, roll back on error).
    """
    session = db.session
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
