"""Scan logging and the clone rules that count scans.

Every resolution of a code is written as a ``scan`` row, the label's counters move, and
the count rules run (an item code scanned too often; a lot code scanned more often than
units were made). How it is written is set by ``NGUON_SCAN_FLUSH_SECONDS``:

- ``0`` (the default): in the request's own transaction, before the answer leaves.
- more than 0: queued in the process and written in one transaction per interval (two
  statements on PostgreSQL, whatever the number of scans), which is what a busy resolver
  needs: a scan costs its request no database write. A background thread writes the
  queue; it is written at exit too (gunicorn's graceful stop, SIGTERM), a failed write is
  retried, and the page adds the scans still queued in its process to the count it shows.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from flask import Flask, current_app
from sqlalchemy import bindparam, func, select, text, update

from nguon.audit import acting_as
from nguon.db import commit_boundary, db, utcnow
from nguon.i18n import _l, records_language
from traceability.models import Batch, CloneAlarm, Label, LabelKind, Scan

log = logging.getLogger(__name__)
LABEL = Label.__table__
SCAN = Scan.__table__
QUEUE_LIMIT = 100_000  # queued scans beyond this are written in the request instead
CHUNK = 500


class PendingScan(NamedTuple):
    """A scan as the request saw it, before it is written."""

    ref: str
    label_id: int | None
    at: dt.datetime
    path: str
    verdict: str
    fingerprint: str


# PostgreSQL: the scans go in by one binary COPY (psycopg writes the rows in C: no
# statement text to build or parse, no timestamps to print and read back), and the
# counters move in one statement, each column one array literal of integers (times as
# microseconds since the epoch): psycopg adapting thousands of values one by one held the
# GIL long enough to slow the requests beside it. The count update returns only the codes
# a count rule may concern: live item codes past the limit, live lot codes.
PG_COPY = f"COPY scan ({', '.join(PendingScan._fields)}) FROM STDIN (FORMAT BINARY)"
# PendingScan's fields, typed for the binary format.
PG_COPY_TYPES = ("varchar", "int4", "timestamptz", "varchar", "varchar", "varchar")
PG_COUNT = text(
    "WITH moved AS (UPDATE label SET scan_count = label.scan_count + v.n, "
    "last_scan_at = TIMESTAMPTZ 'epoch' + v.last_us * INTERVAL '1 microsecond', "
    "first_scan_at = COALESCE(label.first_scan_at, "
    "TIMESTAMPTZ 'epoch' + v.first_us * INTERVAL '1 microsecond'), "
    "scanned_by = v.fp "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:ns AS integer[]), "
    "CAST(:firsts AS bigint[]), CAST(:lasts AS bigint[]), CAST(:fps AS text[])) "
    "AS v(id, n, first_us, last_us, fp) "
    "WHERE label.id = v.id "
    "RETURNING label.id, label.kind, label.scan_count, label.batch_id, "
    "label.flagged_at IS NULL AND label.voided_at IS NULL AS live) "
    "SELECT id, kind, scan_count, batch_id FROM moved "
    "WHERE live AND (kind <> 'item' OR scan_count > :limit)"
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
HEX = re.compile(r"[0-9a-f]*")
MICROSECOND = dt.timedelta(microseconds=1)


def new_ref() -> str:
    """A new scan's reference, as 32 hex digits: 48 bits of Unix milliseconds, then 80
    random bits (the layout of a UUIDv7). Unguessable (it is the consumer's key to add a
    place to their own scan), and each new one sorts after the earlier ones, so the unique
    index on it grows at its right edge rather than touching a random page per scan."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def write_scans(scans: Sequence[PendingScan]) -> None:
    """Write ``scans`` in the current session's transaction and apply the count rules."""
    if not scans:
        return
    # Per label: how many scans, the first, the last, and the last one's client.
    per_label: dict[int, list[Any]] = {}
    for scan in scans:
        if scan.label_id is None:
            continue
        seen = per_label.get(scan.label_id)
        if seen is None:
            per_label[scan.label_id] = [1, scan.at, scan.at, scan.fingerprint]
        else:
            seen[0] += 1
            seen[1], seen[2] = min(seen[1], scan.at), max(seen[2], scan.at)
            if scan.at >= seen[2]:
                seen[3] = scan.fingerprint
    ids = sorted(per_label)
    counts = [(label_id, *per_label[label_id]) for label_id in ids]
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(PG_COPY) as copy:
            copy.set_types(PG_COPY_TYPES)
            for scan in scans:
                copy.write_row(scan)
        if ids:
            _, ns, firsts, lasts, fps = zip(*counts, strict=True)
            literals = {
                "ids": _int_array(ids),
                "ns": _int_array(ns),
                "firsts": _int_array((at - EPOCH) // MICROSECOND for at in firsts),
                "lasts": _int_array((at - EPOCH) // MICROSECOND for at in lasts),
                "fps": _fingerprint_array(fps),
            }
            limit = current_app.config["CLONE_MAX_SCANS"]
            rows = connection.execute(PG_COUNT, {**literals, "limit": limit}).all()
            _apply_count_rules([tuple(r) for r in rows])
        return
    connection.execute(SCAN.insert(), [s._asdict() for s in scans])
    if not ids:
        return
    connection.execute(
        update(LABEL)
        .where(LABEL.c.id == bindparam("b_id"))
        .values(
            scan_count=LABEL.c.scan_count + bindparam("b_n"),
            last_scan_at=bindparam("b_last"),
            first_scan_at=func.coalesce(LABEL.c.first_scan_at, bindparam("b_first")),
            scanned_by=bindparam("b_fp"),
        ),
        [
            {"b_id": i, "b_n": n, "b_first": first, "b_last": last, "b_fp": fp}
            for i, n, first, last, fp in counts
        ],
    )
    for start in range(0, len(ids), CHUNK):
        rows = connection.execute(
            select(LABEL.c.id, LABEL.c.kind, LABEL.c.scan_count, LABEL.c.batch_id).where(
                LABEL.c.id.in_(ids[start : start + CHUNK]),
                LABEL.c.flagged_at.is_(None),
                LABEL.c.voided_at.is_(None),
            )
        ).all()
        _apply_count_rules([tuple(r) for r in rows])


def _int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers."""
    return "{" + ",".join(map(str, values)) + "}"


def _fingerprint_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of client fingerprints. They are hex digits (see
    ``client_fingerprint``), so nothing needs escaping; anything else is written as ""
    (a client that matches nobody)."""
    return "{" + ",".join(f'"{v}"' if HEX.fullmatch(v) else '""' for v in values) + "}"


def _apply_count_rules(rows: Sequence[tuple[Any, ...]]) -> None:
    """Flag the live codes among ``rows`` (id, kind, count, batch) whose counts break a rule."""
    limit = current_app.config["CLONE_MAX_SCANS"]
    for label_id, kind, count, batch_id in rows:
        if kind == LabelKind.ITEM and count > limit:
            flag(
                label_id,
                "too_many_scans",
                _l(
                    "item code scanned %(count)d times (more than %(limit)d)",
                    count=count,
                    limit=limit,
                ),
            )
        elif kind == LabelKind.LOT:
            units = units_made(batch_id)
            if units is not None and count > units:
                flag(
                    label_id,
                    "lot_over_units",
                    _l(
                        "lot code scanned %(count)d times; %(units)d units were made",
                        count=count,
                        units=units,
                    ),
                )


def units_made(batch_id: int) -> int | None:
    """Units of a batch: its live item codes, else its quantity when counted in pieces."""
    items = db.session.scalar(
        select(func.count(Label.id)).where(
            Label.batch_id == batch_id, Label.kind == LabelKind.ITEM, Label.voided_at.is_(None)
        )
    )
    if items:
        return int(items)
    batch = db.session.get(Batch, batch_id)
    if batch is not None and batch.unit == "H87":
        return int(Decimal(batch.quantity))
    return None


def flag(label_id: int, rule: str, detail: Any, scan_ids: list[int] | None = None) -> None:
    """Flag a code and open an alarm, and a case, with the evidence (the scans).
    ``detail``: a lazy catalogue message, written in the service's own language."""
    with records_language():
        _flag(label_id, rule, str(detail), scan_ids)


def _flag(label_id: int, rule: str, detail: str, scan_ids: list[int] | None) -> None:
    from registry.enforcement.services import open_case_from_alarm

    db.session.execute(
        update(LABEL)
        .where(LABEL.c.id == label_id, LABEL.c.flagged_at.is_(None))
        .values(flagged_at=utcnow(), flag_reason=detail)
    )
    evidence = sorted(
        scan_ids
        or db.session.scalars(
            select(Scan.id).where(Scan.label_id == label_id).order_by(Scan.id.desc()).limit(50)
        )
    )
    alarm = CloneAlarm(label_id=label_id, rule=rule, detail=detail, scan_ids=evidence)
    db.session.add(alarm)
    label = db.session.get(Label, label_id)
    batch = db.session.get(Batch, label.batch_id)
    with acting_as("system:clone-detection"):  # not the anonymous scanner
        alarm.case_id = open_case_from_alarm(
            code=label.uri,
            rule=rule,
            detail=detail,
            scan_ids=evidence,
            label_id=label.id,
            batch_id=batch.id,
            asset_id=next((c.asset_id for c in batch.claims if c.asset_id), None),
        ).id


class ScanLog:
    """Where the resolver hands its scans: written at once, or queued and written in batches."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._queue: list[PendingScan] = []
        self._queued: Counter[int] = Counter()  # per label, scans not yet written
        self._queued_by: dict[int, str] = {}  # per label, the client of its last queued scan
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def interval(self) -> float:
        return self.app.config["SCAN_FLUSH_SECONDS"]

    @property
    def batched(self) -> bool:
        return self.interval > 0

    def record(self, scan: PendingScan) -> None:
        if not self.batched:
            write_scans([scan])
            return
        with self._lock:
            self._start_if_needed()
            if len(self._queue) < QUEUE_LIMIT:
                self._queue.append(scan)
                if scan.label_id is not None:
                    self._queued[scan.label_id] += 1
                    self._queued_by[scan.label_id] = scan.fingerprint
                return
        log.warning("scan queue full (%d): writing in the request", QUEUE_LIMIT)
        write_scans([scan])

    def queued(self, label_id: int) -> int:
        """Scans of ``label_id`` this process has queued and not yet written."""
        return self._queued.get(label_id, 0) if self.batched else 0

    def queued_by(self, label_id: int) -> str | None:
        """The client of the last scan of ``label_id`` still queued (None: none queued)."""
        return self._queued_by.get(label_id)

    def flush(self) -> int:
        """Write what is queued, in one transaction; returns how many scans were written.

        On a failure the scans go back to the head of the queue and are tried again."""
        with self._lock:
            batch, self._queue = self._queue, []
        if not batch:
            return 0
        try:
            with self.app.app_context(), commit_boundary():
                write_scans(batch)
        except Exception:
            log.exception("writing %d scans failed; they stay queued", len(batch))
            with self._lock:
                self._queue[:0] = batch  # tried again at the next interval
            return 0
        with self._lock:
            for scan in batch:
                if scan.label_id is not None:
                    left = self._queued[scan.label_id] - 1
                    if left > 0:
                        self._queued[scan.label_id] = left
                    else:
                        del self._queued[scan.label_id]
                        self._queued_by.pop(scan.label_id, None)
        return len(batch)

    def close(self) -> None:
        """Stop the writer and write everything still queued (at exit)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=30)
        for _attempt in range(3):
            self.flush()
            if not self._queue:
                return
            time.sleep(0.5)
        log.error("%d scans could not be written at exit", len(self._queue))

    def _start_if_needed(self) -> None:
        pid = os.getpid()
        if self._pid == pid and self._thread is not None:
            return
        if self._pid != pid:  # a forked child starts with its own, empty queue
            self._queue, self._queued, self._queued_by = [], Counter(), {}
            self._stop = threading.Event()
        self._pid = pid
        self._thread = threading.Thread(target=self._run, name="nguon-scan-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        # A thread rather than the requests themselves: its waits on the database let
        # the worker go on answering, where a request writing the queue would hold it.
        while not self._stop.wait(self.interval):
            self.flush()


def init_app(app: Flask) -> None:
    app.extensions["nguon.scans"] = ScanLog(app)


def scan_log() -> ScanLog:
    return current_app.extensions["nguon.scans"]
