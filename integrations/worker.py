"""The sync worker: leases outbox rows, sends them to the portal, and records the outcome.

- Several workers may run on PostgreSQL: rows are leased with ``FOR UPDATE SKIP LOCKED``
  and a lease time; on SQLite only one worker runs (a file lock refuses a second).
- Dependencies first: a row waits until the rows of what it depends on are done.
- Retries back off exponentially with jitter and honour ``Retry-After``; an invalid
  record is parked at once with the portal's reasons, any other after N attempts.
- Each attempt reuses the row's frozen body and Idempotency-Key: a lost answer is
  retried without creating a second record.
- Trace records accepted "for later" are polled until accepted or rejected.
- SIGTERM: the current row is finished, the other leased rows are released.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import random
import signal
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import or_, select, update

from integrations import mapping
from integrations.models import OutboxRow, OutboxState
from integrations.outbox import enqueue
from integrations.portal import Outcome, PortalClient
from nguon.db import commit_boundary, db, utcnow

LEASE = dt.timedelta(seconds=60)
POLL_EVERY = dt.timedelta(seconds=0.2)
POLL_CONCURRENCY = 8


class WorkerRefused(RuntimeError):
    """Another worker already runs on this SQLite database."""


@dataclass
class Stats:
    sent: int = 0
    done: int = 0
    retried: int = 0
    parked: int = 0
    rejected: int = 0
    polled: int = 0


class SyncWorker:
    def __init__(
        self,
        app: Flask,
        client: PortalClient,
        epcis_client: Any = None,
        *,
        name: str | None = None,
        batch_size: int = 20,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 60.0,
    ) -> None:
        self.app, self.client = app, client
        self.clients: dict[str, Any] = {"portal": client}
        if epcis_client is not None:
            self.clients["epcis"] = epcis_client
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"
        self.batch_size, self.max_attempts = batch_size, max_attempts
        self.base_delay, self.max_delay = base_delay, max_delay
        self.stop = threading.Event()
        self.stats = Stats()
        self._lock_file: Any = None
        self._dependency_cache: dict[Any, str | None] = {}

    # --- running ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())

    def acquire_single_worker_lock(self) -> None:
        """SQLite: one worker at a time (a second one refuses to start)."""
        with self.app.app_context():
            if db.engine(self.app).dialect.name != "sqlite":
                return
        path = Path(self.app.instance_path) / "sync-worker.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WorkerRefused("another sync worker is running on this SQLite database") from None
        self._lock_file = handle

    def run(
        self, *, once: bool = False, max_rows: int | None = None, idle_sleep: float = 0.2
    ) -> Stats:
        """Work until stopped (``once``: until nothing is due; ``max_rows``: at most that many)."""
        self.acquire_single_worker_lock()
        handled = 0
        try:
            while not self.stop.is_set():
                budget = (
                    self.batch_size
                    if max_rows is None
                    else min(self.batch_size, max_rows - handled)
                )
                ids = self.lease(budget) if budget > 0 else []
                singles = self.process_batch(ids) if len(ids) > 1 else ids
                handled += len(ids) - len(singles)
                for position, row_id in enumerate(singles):
                    if self.stop.is_set():
                        self.release(singles[position:])
                        break
                    self.process(row_id)
                    handled += 1
                polled = self.poll()
                if max_rows is not None and handled >= max_rows:
                    break
                if not ids and not polled:
                    if once and not self.has_work():
                        break
                    self.stop.wait(idle_sleep)
        finally:
            self.release_all()
            if self._lock_file is not None:
                self._lock_file.close()
        return self.stats

    def has_work(self) -> bool:
        """Rows still pending or sent (any due time): what --once waits for."""
        with self.app.app_context():
            return (
                db.session.scalar(
                    select(OutboxRow.id)
                    .where(
                        OutboxRow.state.in_((OutboxState.PENDING, OutboxState.SENT)),
                        OutboxRow.target.in_(list(self.clients)),
                    )
                    .limit(1)
                )
                is not None
            )

    # --- leasing -------------------------------------------------------------------------

    def lease(self, count: int) -> list[int]:
        now = utcnow()
        with self.app.app_context(), commit_boundary() as session:
            query = (
                select(OutboxRow.id)
                .where(
                    OutboxRow.state == OutboxState.PENDING,
                    OutboxRow.next_attempt_at <= now,
                    OutboxRow.target.in_(list(self.clients)),
                    or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                )
                .order_by(OutboxRow.priority, OutboxRow.id)
                .limit(count)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(ids))
                    .values(lease_owner=self.name, lease_until=now + LEASE)
                )
            return ids

    def release(self, ids: list[int]) -> None:
        if not ids:
            return
        with self.app.app_context(), commit_boundary() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids), OutboxRow.lease_owner == self.name)
                .values(lease_owner=None, lease_until=None)
            )

    def release_all(self) -> None:
        with self.app.app_context(), commit_boundary() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.lease_owner == self.name)
                .values(lease_owner=None, lease_until=None)
            )

    # --- one row -----------------------------------------------------------------------------

    def _delay(self, attempts: int, retry_after: float | None) -> dt.timedelta:
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
        jittered = random.uniform(backoff / 2, backoff)  # noqa: S311 - jitter, not a secret
        return dt.timedelta(seconds=max(jittered, retry_after or 0))

    def process(self, row_id: int) -> None:
        self._dependency_cache = {}
        with self.app.app_context(), commit_boundary() as session:
            row = session.get(OutboxRow, row_id)
            if row is None or row.lease_owner != self.name or row.state != OutboxState.PENDING:
                return
            if not self._prepare(row):
                return
            client = self.clients[row.target]
            outcome = client.call(row.method, row.path, row.payload, row.idempotency_key)
            self._record(row, outcome)

    def _prepare(self, row: OutboxRow) -> bool:
        """Freeze the row's call (first attempt only); False when it cannot go now."""
        if row.payload is not None:
            return True
        try:
            call = mapping.call_for(row.kind, row.record_id)
        except mapping.Unsendable as exc:
            self._park(row, [str(exc)])
            return False
        waiting = self._waiting_for(call.dependencies, row.id)
        if waiting:
            row.next_attempt_at = utcnow() + dt.timedelta(seconds=self.base_delay)
            row.lease_owner = row.lease_until = None
            row.last_error = f"waiting for {waiting}"
            return False
        row.payload, row.method, row.path = call.body, call.method, call.path
        return True

    def process_batch(self, ids: list[int]) -> list[int]:
        """Send the leased trace records in one batch call (the portal takes up to 100);
        returns the ids left to send one by one."""
        self._dependency_cache = {}
        with self.app.app_context(), commit_boundary() as session:
            rows = list(
                session.scalars(
                    select(OutboxRow).where(OutboxRow.id.in_(ids)).order_by(OutboxRow.id)
                )
            )
            batch = [
                r
                for r in rows
                if r is not None
                and r.kind == "trace_record"
                and r.lease_owner == self.name
                and r.state == OutboxState.PENDING
            ]
            mapping.preload("trace_record", [r.record_id for r in batch if r.payload is None])
            batch = [r for r in batch if self._prepare(r)][:100]
            if len(batch) < 2:
                return [i for i in ids if i not in {r.id for r in batch}] + [r.id for r in batch]
            records = [{**r.payload, "idempotency_key": r.idempotency_key} for r in batch]
            key = str(
                uuid.uuid5(uuid.NAMESPACE_URL, "|".join(sorted(r.idempotency_key for r in batch)))
            )
            outcome = self.client.call(
                "POST", "/api/v1/trace-records:batch", {"records": records}, key
            )
            results = (
                (outcome.body or {}).get("results") if isinstance(outcome.body, dict) else None
            )
            if outcome.kind != "ok" or not isinstance(results, list):
                for row in batch:
                    self._record(row, outcome)
            else:
                for result in results:
                    row = batch[result["index"]]
                    if result.get("status") == "error":
                        errors = result.get("errors") or [result.get("error")]
                        self._record(
                            row,
                            Outcome(
                                "invalid",
                                422,
                                result,
                                reasons=errors,
                                error="refused by the portal",
                            ),
                        )
                    else:
                        self._record(row, Outcome("ok", 202, {"record_id": result["record_id"]}))
            done = {r.id for r in batch}
            return [i for i in ids if i not in done]

    def _waiting_for(self, dependencies: tuple[tuple[str, str], ...], row_id: int) -> str | None:
        """A dependency not yet done; one the outbox never held is enqueued (sent first).
        Answers are remembered for the current step: rows of a batch share dependencies."""
        cache = self._dependency_cache
        key = dependencies
        if key in cache:
            return cache[key]
        cache[key] = answer = self._check_dependencies(dependencies)
        return answer

    def _check_dependencies(self, dependencies: tuple[tuple[str, str], ...]) -> str | None:
        for kind, record_id in dependencies:
            states = set(
                db.session.scalars(
                    select(OutboxRow.state).where(
                        OutboxRow.kind == kind, OutboxRow.record_id == record_id
                    )
                )
            )
            if not states:
                enqueue(db.session.connection(), {(kind, record_id)})
                return f"{kind} {record_id}"
            if OutboxState.DONE not in states and states & {OutboxState.PENDING, OutboxState.SENT}:
                return f"{kind} {record_id}"
        return None

    def _park(self, row: OutboxRow, reasons: list[Any], error: str = "") -> None:
        row.state, row.reasons = OutboxState.PARKED, reasons
        row.last_error = error or "; ".join(map(str, reasons))[:2000]
        row.lease_owner = row.lease_until = None
        self.stats.parked += 1

    def _record(self, row: OutboxRow, outcome: Outcome) -> None:
        row.attempts += 1
        row.lease_owner = row.lease_until = None
        if outcome.kind == "ok":
            self.stats.sent += 1
            remote = (
                (outcome.body or {}).get("record_id") if isinstance(outcome.body, dict) else None
            )
            if outcome.status == 202 and remote:
                row.state, row.remote_id = OutboxState.SENT, remote
                row.next_attempt_at = utcnow() + POLL_EVERY
            else:
                row.state = OutboxState.DONE
                self.stats.done += 1
            row.last_error = None
            return
        if outcome.kind == "invalid":
            self._park(row, outcome.reasons, outcome.error)
            return
        row.last_error = outcome.error or f"HTTP {outcome.status}"
        if row.attempts >= self.max_attempts:
            self._park(row, [f"gave up after {row.attempts} attempts: {row.last_error}"])
            return
        row.next_attempt_at = utcnow() + self._delay(row.attempts, outcome.retry_after)
        self.stats.retried += 1

    # --- polling records the portal accepted for later ----------------------------------------

    def _status_of(self, row: OutboxRow) -> Outcome:
        return self.client.call("GET", f"/api/v1/trace-records/{row.remote_id}")

    def poll(self) -> int:
        now = utcnow()
        with self.app.app_context(), commit_boundary() as session:
            query = (
                select(OutboxRow)
                .where(
                    OutboxRow.state == OutboxState.SENT,
                    OutboxRow.next_attempt_at <= now,
                    or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                )
                .order_by(OutboxRow.id)
                .limit(self.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            # The status calls are independent: ask them a few at a time.
            with ThreadPoolExecutor(max_workers=POLL_CONCURRENCY) as pool:
                outcomes = list(pool.map(self._status_of, rows))
            for row, outcome in zip(rows, outcomes, strict=True):
                self.stats.polled += 1
                body = outcome.body if isinstance(outcome.body, dict) else {}
                status = body.get("status")
                if outcome.kind == "ok" and status == "accepted":
                    row.state, row.reasons = OutboxState.DONE, []
                    self.stats.done += 1
                elif outcome.kind == "ok" and status == "rejected":
                    row.state, row.reasons = OutboxState.REJECTED, body.get("reasons", [])
                    self.stats.rejected += 1
                else:
                    row.next_attempt_at = utcnow() + self._delay(2, outcome.retry_after)
            return len(rows)


def resend(row: OutboxRow) -> None:
    """An officer's "resend after correction": a new row (new key, body built from the
    corrected record); the rejected row stays as the history of what was refused."""
    enqueue(db.session.connection(), {(row.kind, row.record_id)})


def retry(row: OutboxRow) -> None:
    """An officer's "retry" of a parked row: same key and body, attempts reset."""
    row.state, row.attempts, row.next_attempt_at = OutboxState.PENDING, 0, utcnow()
    row.lease_owner = row.lease_until = None
