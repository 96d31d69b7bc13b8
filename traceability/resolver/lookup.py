"""Look up: the label a link names, read in one statement.

The hottest read of all (every scan): plain SQL, prepared once per connection on
PostgreSQL and run through libpq itself, outside any transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import psycopg
from flask import Flask, current_app
from psycopg import pq

from nguon.db import db
from traceability.gs1 import DigitalLink


class LabelState(NamedTuple):
    """What the verdict needs to know of a label, as read before this scan."""

    id: int
    batch_id: int
    kind: str
    voided_at: dt.datetime | None
    void_reason: str | None
    flagged_at: dt.datetime | None
    flag_reason: str | None
    scan_count: int
    first_scan_at: dt.datetime | None
    first_scan_place: str | None
    scanned_by: str | None = None  # the one client of its scans, "" for several


COLUMNS = (
    "l.id, l.batch_id, l.kind, l.voided_at, l.void_reason, l.flagged_at, "
    "l.flag_reason, l.scan_count, l.first_scan_at, l.first_scan_place, l.scanned_by "
)
# %s placeholders (psycopg), turned into ? for sqlite3.
LOOKUP_SQL = {
    # An item code: GTIN + serial (unique), in the lot the link names.
    "item": f"SELECT {COLUMNS}FROM label l JOIN batch b ON b.id = l.batch_id "
    "WHERE l.gtin = %s AND l.serial = %s AND b.lot = %s",
    "item_any_lot": f"SELECT {COLUMNS}FROM label l WHERE l.gtin = %s AND l.serial = %s",
    # A lot code: the live one if there is one, else the voided one (it says "voided").
    "lot": f"SELECT {COLUMNS}FROM label l JOIN batch b ON b.id = l.batch_id "
    "JOIN product p ON p.id = b.product_id "
    "WHERE p.gtin = %s AND b.lot = %s AND l.kind = 'lot' "
    "ORDER BY CASE WHEN l.voided_at IS NULL THEN 0 ELSE 1 END, l.id DESC LIMIT 1",
}
LOOKUP_SQL_QMARK = {key: sql.replace("%s", "?") for key, sql in LOOKUP_SQL.items()}
WIDTH = len(LabelState._fields)


def lookup(
    link: DigitalLink,
    *,
    in_session: bool = False,
    app: Flask | None = None,
    any_lot: bool = False,
) -> LabelState | None:
    """The label ``link`` names, read in one statement; None when this service never issued
    it (or the lot in the link is not the code's lot, or the link names a consumer product
    variant: no code printed here carries one). Read outside any transaction, unless
    ``in_session``: then in the request's session, so what it just changed is seen.
    ``any_lot``: an item code by GTIN and serial alone, for a caller that checks the lot
    itself (one index read instead of two)."""
    if link.cpv is not None:
        return None
    if link.serial is not None:
        key = "item" if link.lot is not None and not any_lot else "item_any_lot"
        params: tuple[str, ...] = (link.gtin, link.serial)
        if key == "item":
            params += (link.lot,)  # type: ignore[assignment]
    elif link.lot is not None:
        key, params = "lot", (link.gtin, link.lot)
    else:
        return None
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        row = _read(app, in_session, key, params)
    except psycopg.OperationalError:
        if in_session:
            raise
        # A kept connection the server or the network closed while it was idle: the
        # reader dropped it; once more on another.
        row = _read(app, in_session, key, params)
    if row is None:
        return None
    return LabelState(
        row[0],
        row[1],
        row[2],
        _aware(row[3]),
        row[4],
        _aware(row[5]),
        row[6],
        row[7],
        _aware(row[8]),
        row[9],
        row[10],
    )


def _read(app: Flask, in_session: bool, key: str, params: tuple[str, ...]) -> Any:
    """One label row, by ``LOOKUP_SQL[key]``, or None."""
    with db.reader(app, in_session=in_session) as connection:
        driver = getattr(connection, "driver_connection", None) or connection
        if (
            isinstance(driver, psycopg.Connection)
            and driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
        ):  # no transaction open on it: the reader's autocommit connection, or a session's
            # that has not begun yet (either way the read sees what is committed)
            return _read_prepared(driver.pgconn, driver.info.encoding, key, params)
        qmark = db.engine(app).dialect.paramstyle == "qmark"  # sqlite3
        cursor = connection.cursor()
        try:
            cursor.execute((LOOKUP_SQL_QMARK if qmark else LOOKUP_SQL)[key], params)
            return cursor.fetchone()
        finally:
            cursor.close()


# Named for their columns: a connection prepared by an older release keeps its own.
STATEMENT_NAMES = {key: f"nguon_lookup_{key}_v{WIDTH}".encode() for key in LOOKUP_SQL}
# Prepared statements this connection lacks (26000), or whose result type a migration
# changed (0A000, "cached plan must not change result type"): prepared afresh.
REPREPARE = {b"26000", b"0A000"}


def _read_prepared(pgconn: Any, encoding: str, key: str, params: tuple[str, ...]) -> Any:
    """The lookup through libpq itself (PQexecPrepared: in C, the GIL released), outside
    any transaction: about 15 µs less per scan than a psycopg cursor. The statement is
    prepared on the connection when it is missing; the row comes back as text (ISO dates:
    the reader's connections ask for them). psycopg's OperationalError on failure."""
    name = STATEMENT_NAMES[key]
    values = [value.encode(encoding) for value in params]
    result = pgconn.exec_prepared(name, values)
    if result.status == pq.ExecStatus.FATAL_ERROR and (
        result.error_field(pq.DiagnosticField.SQLSTATE) in REPREPARE
    ):
        pgconn.exec_(b"DEALLOCATE " + name)  # fails harmlessly when there is none
        _check(pgconn, pgconn.prepare(name, _numbered(LOOKUP_SQL[key])), pq.ExecStatus.COMMAND_OK)
        result = pgconn.exec_prepared(name, values)
    _check(pgconn, result, pq.ExecStatus.TUPLES_OK)
    if result.ntuples == 0:
        return None
    text = [result.get_value(0, column) for column in range(WIDTH)]
    row = [None if value is None else value.decode(encoding) for value in text]
    return (int(row[0]), int(row[1]), *row[2:7], int(row[7]), *row[8:])  # type: ignore[arg-type]


def _numbered(sql: str) -> bytes:
    """%s placeholders as libpq's $1, $2..."""
    parts = sql.split("%s")
    return (
        "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)).encode() + parts[-1].encode()
    )


def _check(pgconn: Any, result: Any, wanted: Any) -> None:
    if result is None or result.status != wanted:
        message = (result.error_message if result is not None else pgconn.error_message) or b""
        raise psycopg.OperationalError(message.decode(errors="replace") or "lookup failed")


def _aware(value: Any) -> dt.datetime | None:
    """A timestamp as the ORM gives it: aware UTC (raw reads give ISO text: SQLite's
    without an offset, PostgreSQL's with one)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
