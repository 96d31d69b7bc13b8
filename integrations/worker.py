"""The sync worker: leases outbox rows, sends them, and records the outcome.

- Several workers may run on PostgreSQL: rows are leased with ``FOR UPDATE SKIP LOCKED``
  and a lease time; on SQLite only one worker runs (a file lock refuses a second).
- Dependencies first: a row waits until the rows of what it depends on are done; a
  change of a record the portal holds waits for the earlier row of that record, then
  goes as the next revision of it (an update, never a second record).
- Time, not attempts, decides when a row gives up: a transient failure (connection
  refused, timeout, 5xx) is retried with capped exponential backoff and full jitter for
  ``SYNC_RETRY_FOR``; a 429 waits its Retry-After and is no failure at all; only an
  answer that can never succeed (400/422 with the portal's reasons, an authorisation
  refused or expired) parks a row at once.
- Each destination has a circuit breaker shared by every worker (``integrations.circuit``):
  while it is open nothing is sent but a probe now and then, and no row's clock runs.
- Every call goes through the destination's one pace (``integrations.pace``).
- Each attempt reuses the row's frozen body and Idempotency-Key: a lost answer is
  retried without creating a second record.
- Records accepted "for later" are polled (by a thread of their own, while rows are
  sent), less often as they age, until decided.
- SIGTERM: the current row is finished, the other leased rows are released.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import random
import signal
import socket
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import delete, func, or_, select, update

from integrations import delivery, mapping
from integrations.circuit import HEARTBEAT, Breaker
from integrations.models import Circuit, OutboxRow, OutboxState, PortalRecord
from integrations.outbox import enqueue
from integrations.portal import Outcome
from nguon.db import commit_boundary, db, utcnow

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=60)
POLL_CONCURRENCY = 8
WAIT_FOR_DEPENDENCY = dt.timedelta(seconds=0.2)


class WorkerRefused(RuntimeError):
    """Another worker already runs on this SQLite database."""


@dataclass(frozen=True)
class SyncSettings:
    """The worker's time constants (``NGUON_SYNC_*``; tests shorten them)."""

    retry_for: float = 86400.0
    backoff_base: float = 1.0
    backoff_max: float = 600.0
    circuit_failures: int = 5
    probe_every: float = 30.0
    poll_first: float = 0.2  # seconds after a record was taken before its fate is asked
    poll_max: float = 300.0  # an undecided record is asked at least this often

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> SyncSettings:
        values = {
            "retry_for": config.get("SYNC_RETRY_FOR"),
            "backoff_base": config.get("SYNC_BACKOFF_BASE"),
            "backoff_max": config.get("SYNC_BACKOFF_MAX"),
            "circuit_failures": config.get("SYNC_CIRCUIT_FAILURES"),
            "probe_every": config.get("SYNC_PROBE_SECONDS"),
        }
        known = {f.name for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if k in known})
        return cls(**{k: v for k, v in values.items() if v is not None})


@dataclass
class Stats:
    sent: int = 0
    done: int = 0
    retried: int = 0  # transient failures
    throttled: int = 0  # 429s (waited for, never held against a row)
    parked: int = 0
    rejected: int = 0
    superseded: int = 0
    polled: int = 0
    probes: int = 0
    outages: int = 0  # circuits this worker saw close again


class SyncWorker:
    def __init__(
        self,
        app: Flask,
        client: Any = None,
        epcis_client: Any = None,
        *,
        clients: Mapping[str, Any] | None = None,
        name: str | None = None,
        batch_size: int = 20,
        settings: SyncSettings | None = None,
    ) -> None:
        self.app = app
        self.clients: dict[str, Any] = dict(clients or {})
        if client is not None:
            self.clients["portal"] = client
        if epcis_client is not None:
            self.clients["epcis"] = epcis_client
        self.client = self.clients.get("portal")
        self.name = (
            name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"
        )[:64]
        self.batch_size = batch_size
        self.settings = settings or SyncSettings.from_config(app.config)
        self.breakers = {
            target: Breaker(
                app,
                target,
                failures=self.settings.circuit_failures,
                probe_every=self.settings.probe_every,
            )
            for target in self.clients
        }
        self.stop = threading.Event()
        self.stats = Stats()
        self._lock_file: Any = None
        self._dependency_cache: dict[Any, str | None] = {}
        # What a step knows of the records its rows send (see _load_records).
        self._first_pending: dict[tuple[str, str], int] = {}
        self._held: dict[tuple[str, str], PortalRecord | None] = {}
        self._parked: set[tuple[str, str]] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._poll_lock = threading.Lock()
        self._poll_failures = 0  # transient failures in a row within the current poll

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
        """Work until stopped (``once``: until nothing is left to send or poll;
        ``max_rows``: at most that many). Records taken for later are polled by a thread
        of their own meanwhile, so that sending never waits for polling."""
        self.acquire_single_worker_lock()
        handled = 0
        polling = threading.Event()
        # An app bound to one connection (the tests' rolled-back transaction) cannot serve
        # two threads: it polls in the loop instead.
        inline = db.is_bound(self.app)
        poller = threading.Thread(
            target=self._poll_loop, args=(polling, idle_sleep), name=f"{self.name} poller"
        )
        if not inline:
            poller.start()
        try:
            while not self.stop.is_set():
                live = self._live_targets()
                budget = (
                    self.batch_size
                    if max_rows is None
                    else min(self.batch_size, max_rows - handled)
                )
                ids = self.lease(budget, live) if budget > 0 and live else []
                singles = self.process_batch(ids) if len(ids) > 1 else ids
                handled += len(ids) - len(singles)
                for position, row_id in enumerate(singles):
                    if self.stop.is_set():
                        self.release(singles[position:])
                        break
                    self.process(row_id)
                    handled += 1
                polled = self.poll(live) if inline and live else 0
                if max_rows is not None and handled >= max_rows:
                    break
                if not ids and not polled:
                    if once and not self.has_work():
                        break
                    self.stop.wait(self._idle_time(idle_sleep, live))
        finally:
            polling.set()
            if poller.is_alive():
                poller.join()
            self.release_all()
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
            if self._lock_file is not None:
                self._lock_file.close()
        return self.stats

    def _poll_loop(self, done: threading.Event, idle_sleep: float) -> None:
        """Ask the verdicts of records taken for later until ``done`` (the poller thread)."""
        while not done.is_set():
            live = [t for t, b in self.breakers.items() if b.state.closed]
            try:
                polled = self.poll(live) if live else 0
            except Exception:  # a lost database connection, say: log it, try again later
                logger.exception("polling failed; trying again")
                polled = 0
                done.wait(max(idle_sleep, 1.0))
            if not polled:
                done.wait(self._next_poll_in(live, idle_sleep))

    def _next_poll_in(self, targets: list[str], idle_sleep: float) -> float:
        """Seconds until the next record is due to be asked (at least ``idle_sleep``, at
        most a second: a record the main loop sends meanwhile is due in poll_first)."""
        with self.app.app_context():
            due = db.session.scalar(
                select(func.min(OutboxRow.next_attempt_at)).where(
                    OutboxRow.state == OutboxState.SENT, OutboxRow.target.in_(targets)
                )
            )
        ceiling = min(1.0, self.settings.poll_first)
        if due is None:
            return max(idle_sleep, ceiling)
        return min(max(idle_sleep, (due - utcnow()).total_seconds()), max(idle_sleep, ceiling))

    def _live_targets(self) -> list[str]:
        """The destinations calls may go to now; a held one gets its probe when due."""
        live = []
        for target, breaker in self.breakers.items():
            breaker.heartbeat(self.name)
            state = breaker.read()
            if state.closed:
                live.append(target)
            elif breaker.claim_probe():
                self.probe(target)
                if breaker.state.closed:
                    live.append(target)
        return live

    def _idle_time(self, idle_sleep: float, live: list[str]) -> float:
        if len(live) == len(self.breakers):
            return idle_sleep
        now = utcnow()
        probes = [
            (b.state.next_probe_at - now).total_seconds()
            for b in self.breakers.values()
            if not b.state.closed and b.state.next_probe_at is not None
        ]
        return max(idle_sleep, min([HEARTBEAT.total_seconds(), *probes]))

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

    # --- probing a destination that is down ---------------------------------------------------

    def probe(self, target: str) -> None:
        """One call to a held destination: the oldest row waiting for it (however long
        its backoff), else a record waiting for its verdict, else a fresh token."""
        self.stats.probes += 1
        breaker = self.breakers[target]
        if breaker.state.circuit == Circuit.OPEN:
            ids = self.lease(1, [target], ignore_due=True)
            if ids and self.process(ids[0], probe=True):
                return
            if self.poll([target], limit=1, ignore_due=True):
                return
        client = self.clients[target]
        if hasattr(client, "probe"):
            self._count(target, [client.probe()])

    # --- leasing -------------------------------------------------------------------------

    def lease(self, count: int, targets: list[str], ignore_due: bool = False) -> list[int]:
        now = utcnow()
        with self.app.app_context(), commit_boundary() as session:
            query = (
                select(OutboxRow.id)
                .where(
                    OutboxRow.state == OutboxState.PENDING,
                    OutboxRow.target.in_(targets),
                    or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                )
                .order_by(OutboxRow.priority, OutboxRow.id)
                .limit(count)
            )
            if not ignore_due:
                query = query.where(OutboxRow.next_attempt_at <= now)
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

    def _backoff(self, attempts: int, retry_after: float | None) -> dt.timedelta:
        """Capped exponential backoff with full jitter, never sooner than Retry-After."""
        ceiling = min(
            self.settings.backoff_max, self.settings.backoff_base * 2 ** min(attempts - 1, 40)
        )
        jittered = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
        return dt.timedelta(seconds=max(jittered, retry_after or 0))

    def _count(self, target: str, outcomes: list[Outcome]) -> None:
        """Tell the destination's circuit breaker what the step's calls met."""
        if self.breakers[target].record(outcomes):
            self.stats.outages += 1

    def process(self, row_id: int, probe: bool = False) -> bool:
        """Send one leased row; False when no call was made (it waits, or was parked)."""
        self._dependency_cache = {}
        outcome: Outcome | None = None
        with self.app.app_context(), commit_boundary() as session:
            row = session.get(OutboxRow, row_id)
            if row is None or row.lease_owner != self.name or row.state != OutboxState.PENDING:
                return False
            target = row.target
            if not probe and not self.breakers[target].state.closed:
                row.lease_owner = row.lease_until = None  # held back: the outage is one state
                return False
            self._load_records([row])
            if not self._prepare(row):
                return False
            outcome = delivery.send(self.clients[target], row)
            self._record(row, outcome, probe=probe)
        self._count(target, [outcome])
        return True

    def _load_records(self, rows: list[OutboxRow]) -> None:
        """For the step's rows of kinds the destination keeps with revisions, in three
        queries whatever their number: the first row of each record still to be sent
        (it goes first), what the portal holds of each, and which have parked rows."""
        self._first_pending, self._held, self._parked = {}, {}, set()
        revised = [r for r in rows if delivery.DELIVERIES[r.kind].revised]
        for kind in {r.kind for r in revised}:
            ids = list({r.record_id for r in revised if r.kind == kind})
            of_kind = (OutboxRow.kind == kind, OutboxRow.record_id.in_(ids))
            self._first_pending.update(
                ((kind, record_id), first)
                for record_id, first in db.session.execute(
                    select(OutboxRow.record_id, func.min(OutboxRow.id))
                    .where(*of_kind, OutboxRow.state == OutboxState.PENDING)
                    .group_by(OutboxRow.record_id)
                )
            )
            held = db.session.scalars(
                select(PortalRecord).where(
                    PortalRecord.kind == kind, PortalRecord.record_id.in_(ids)
                )
            )
            self._held.update({(kind, i): None for i in ids})
            self._held.update({(kind, r.record_id): r for r in held})
            self._parked.update(
                (kind, record_id)
                for record_id in db.session.scalars(
                    select(OutboxRow.record_id)
                    .where(*of_kind, OutboxRow.state == OutboxState.PARKED)
                    .distinct()
                )
            )

    def _portal_record(self, row: OutboxRow) -> PortalRecord | None:
        key = (row.kind, row.record_id)
        if key not in self._held:
            self._held[key] = db.session.get(PortalRecord, key)
        return self._held[key]

    def _wait(self, row: OutboxRow, why: str) -> None:
        row.next_attempt_at = utcnow() + WAIT_FOR_DEPENDENCY
        row.lease_owner = row.lease_until = None
        row.last_error = why

    def _prepare(self, row: OutboxRow) -> bool:
        """Freeze the row's call (first attempt only); False when it cannot go now."""
        if row.payload is not None:
            return True
        kind = delivery.DELIVERIES[row.kind]
        held = None
        if kind.revised:
            first = self._first_pending.get((row.kind, row.record_id), row.id)
            if first < row.id:
                self._wait(row, f"waiting for row {first} of the same record")
                return False
            record = self._portal_record(row)
            held = (record.remote_id, record.revision) if record is not None else None
        try:
            call = kind.build(row.record_id, held) if held else kind.build(row.record_id)
        except mapping.Unsendable as exc:
            self._park(row, [str(exc)])
            return False
        waiting = self._waiting_for(call.dependencies, row.id)
        if waiting:
            self._wait(row, f"waiting for {waiting}")
            return False
        row.payload, row.method, row.path = call.body, call.method, call.path
        if kind.revised:
            row.remote_id = held[0] if held else None
            row.revision = held[1] + 1 if held else 1
        return True

    def _refreeze(self, row: OutboxRow, why: str) -> None:
        """The call as frozen can never succeed, and the destination did not apply it:
        build it again from the record as it stands, under a new Idempotency-Key."""
        row.payload = row.method = row.path = None  # method NULL: "not frozen" (enqueue)
        row.idempotency_key = str(uuid.uuid4())
        row.next_attempt_at, row.last_error = utcnow(), why
        self.stats.retried += 1

    def process_batch(self, ids: list[int]) -> list[int]:
        """Send the leased new trace records in one batch call (the portal takes up to
        100); returns the ids left to send one by one."""
        self._dependency_cache = {}
        outcome: Outcome | None = None
        with self.app.app_context(), commit_boundary() as session:
            rows = list(
                session.scalars(
                    select(OutboxRow).where(OutboxRow.id.in_(ids)).order_by(OutboxRow.id)
                )
            )
            batch = [
                r
                for r in rows
                if r.kind == "trace_record"
                and r.target == "portal"
                and r.lease_owner == self.name
                and r.state == OutboxState.PENDING
            ]
            mapping.preload("trace_record", [r.record_id for r in batch if r.payload is None])
            self._load_records(batch)
            with session.no_autoflush:  # the frozen bodies are written once, at the commit
                prepared = [r for r in batch if self._prepare(r)]
            # Only new records travel together; an update goes on its own (PUT).
            batch = [r for r in prepared if r.method == "POST"][: mapping.BATCH_LIMIT]
            if len(batch) < 2:
                return list(ids)  # one by one (a row that waits or was parked is skipped)
            call = mapping.batch_call([(r.payload, r.idempotency_key) for r in batch])
            key = str(
                uuid.uuid5(uuid.NAMESPACE_URL, "|".join(sorted(r.idempotency_key for r in batch)))
            )
            outcome = self.client.call(call.method, call.path, call.body, key)
            results = (
                mapping.batch_results(outcome.body, len(batch)) if outcome.kind == "ok" else None
            )
            if outcome.kind == "ok" and results is None:
                outcome = Outcome("retry", outcome.status, error="unreadable batch answer")
            if results is None:
                for row in batch:
                    self._record(row, outcome)
            else:
                for row, result in zip(batch, results, strict=True):
                    if result.ok:
                        self._record(row, Outcome("ok", 202, {"record_id": result.remote_id}))
                    else:
                        self._record(row, Outcome("invalid", 422, reasons=list(result.reasons),
                                                  error="refused by the portal"))  # fmt: skip
            sent = {r.id for r in batch}
        self._count("portal", [outcome])
        return [i for i in ids if i not in sent]

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

    def _taken(self, row: OutboxRow, outcome: Outcome, now: dt.datetime) -> None:
        """The destination took the row: a record it keeps gets its id and revision noted
        (the next change updates it), and is asked for its verdict later."""
        self.stats.sent += 1
        row.sent_at, row.failing_since, row.last_error = now, None, None
        if not delivery.DELIVERIES[row.kind].revised:
            row.state = OutboxState.DONE
            self.stats.done += 1
            return
        taken = mapping.taken(outcome.body)
        if not taken.ok or taken.remote_id is None:
            self._park(row, list(taken.reasons))
            return
        revision = max(taken.revision or 1, row.revision or 1)
        record = self._portal_record(row)
        if record is None:
            record = PortalRecord(kind=row.kind, record_id=row.record_id,
                                  remote_id=taken.remote_id, revision=revision)  # fmt: skip
            db.session.add(record)
            self._held[(row.kind, row.record_id)] = record
        else:
            record.remote_id, record.revision = taken.remote_id, revision
        row.state, row.remote_id, row.revision = OutboxState.SENT, taken.remote_id, revision
        row.next_attempt_at = now + dt.timedelta(seconds=self.settings.poll_first)
        if (row.kind, row.record_id) not in self._parked:
            return
        # Earlier rows of this record that never reached the portal are history now.
        superseded = db.session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.kind == row.kind,
                OutboxRow.record_id == row.record_id,
                OutboxRow.id < row.id,
                OutboxRow.state == OutboxState.PARKED,
            )
            .values(state=OutboxState.SUPERSEDED)
        ).rowcount
        self.stats.superseded += superseded or 0

    def _record(self, row: OutboxRow, outcome: Outcome, *, probe: bool = False) -> None:
        now = utcnow()
        row.attempts += 1
        row.lease_owner = row.lease_until = None
        revised = delivery.DELIVERIES[row.kind].revised
        if outcome.kind == "ok":
            self._taken(row, outcome, now)
        elif outcome.kind == "throttled":
            # The destination's pace, not the row's fault: wait and try again, no clock.
            self.stats.throttled += 1
            row.last_error = "rate limited"
            row.next_attempt_at = now + dt.timedelta(seconds=outcome.retry_after or 1.0)
        elif outcome.kind == "conflict" and revised and row.method == "PUT":
            current = mapping.current_revision(outcome.body)
            record = self._portal_record(row)
            if current is None or record is None:
                self._park(row, [outcome.error or "revision conflict"])
                return
            record.revision = current
            self._refreeze(row, f"the portal holds revision {current}: sent again as the next")
        elif (
            outcome.kind == "invalid" and revised and row.method == "PUT" and outcome.status == 404
        ):
            # The portal no longer knows the record: forget its id, send it anew.
            self._held.pop((row.kind, row.record_id), None)
            db.session.execute(
                delete(PortalRecord).where(
                    PortalRecord.kind == row.kind,
                    PortalRecord.record_id == row.record_id,
                    PortalRecord.remote_id == row.remote_id,
                )
            )
            self._refreeze(row, f"the portal does not know record {row.remote_id}: sent anew")
        elif outcome.kind == "invalid":
            self._park(row, outcome.reasons, outcome.error)
        elif outcome.kind == "refused":
            self._park(row, [f"the destination refused our credentials: {outcome.error}"])
        else:  # transient: connection refused or reset, timeout, 5xx, another 409
            self.stats.retried += 1
            row.last_error = outcome.error or f"HTTP {outcome.status}"
            row.failing_since = row.failing_since or now
            failing_for = (now - row.failing_since).total_seconds()
            # While the destination is down (open circuit, or this is its probe), no row's
            # clock runs: the outage is one state, and every row waits it out.
            counts = not probe and self.breakers[row.target].state.closed
            if counts and failing_for >= self.settings.retry_for:
                self._park(row, [f"kept failing for {round(failing_for)} s: {row.last_error}"])
                return
            row.next_attempt_at = now + self._backoff(row.attempts, outcome.retry_after)

    # --- polling records the portal accepted for later ----------------------------------------

    def _status_of(self, row_target: tuple[str, str]) -> Outcome | None:
        """One record's verdict (in a poll thread); None, not asked, once as many calls
        in a row as there are threads failed: the destination is down, the rest wait."""
        if self._poll_failures >= POLL_CONCURRENCY:
            return None
        target, remote_id = row_target
        call = mapping.status_call(remote_id)
        outcome = self.clients[target].call(call.method, call.path, call.body)
        with self._poll_lock:
            self._poll_failures = 0 if outcome.reached else self._poll_failures + 1
        return outcome

    def _poll_delay(self, row: OutboxRow, now: dt.datetime) -> dt.timedelta:
        """An undecided record is asked again after half its age (within bounds)."""
        age = (now - (row.sent_at or row.updated_at or now)).total_seconds()
        first, most = self.settings.poll_first, self.settings.poll_max
        return dt.timedelta(seconds=min(most, max(first, age / 2)))

    def poll(self, targets: list[str], limit: int | None = None, ignore_due: bool = False) -> int:
        now = utcnow()
        outcomes: list[Outcome] = []
        with self.app.app_context(), commit_boundary() as session:
            query = (
                select(OutboxRow)
                .where(
                    OutboxRow.state == OutboxState.SENT,
                    OutboxRow.target.in_(targets),
                    OutboxRow.remote_id.is_not(None),
                    or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                )
                .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                .limit(limit or self.batch_size)
            )
            if not ignore_due:
                query = query.where(OutboxRow.next_attempt_at <= now)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            if not rows:
                return 0
            # The status calls are independent: ask them a few at a time (at the pace);
            # when a whole round fails, the destination is down: the rest wait.
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=POLL_CONCURRENCY)
            self._poll_failures = 0
            answers = self._pool.map(self._status_of, [(r.target, r.remote_id or "") for r in rows])
            asked: list[OutboxRow] = []
            for row, outcome in zip(rows, answers, strict=True):
                if outcome is None:
                    continue  # not asked: the destination looked down
                self.stats.polled += 1
                self._verdict(row, outcome, utcnow())
                asked.append(row)
                outcomes.append(outcome)
        for target in {r.target for r in asked}:
            self._count(target, [o for r, o in zip(asked, outcomes, strict=True)
                                 if r.target == target])  # fmt: skip
        return len(asked)

    def _verdict(self, row: OutboxRow, outcome: Outcome, now: dt.datetime) -> None:
        if outcome.kind == "ok":
            verdict = mapping.verdict(outcome.body)
            if verdict.revision is not None and verdict.revision > (row.revision or 1):
                row.state = OutboxState.SUPERSEDED  # a later revision speaks for the record
                self.stats.superseded += 1
            elif verdict.status == "accepted":
                row.state, row.reasons = OutboxState.DONE, []
                self.stats.done += 1
            elif verdict.status == "rejected":
                row.state, row.reasons = OutboxState.REJECTED, verdict.reasons
                self.stats.rejected += 1
            else:
                row.next_attempt_at = now + self._poll_delay(row, now)
        elif outcome.kind == "invalid" and outcome.status == 404:
            self._park(row, [f"the portal no longer knows record {row.remote_id}"])
        elif outcome.kind == "throttled":
            self.stats.throttled += 1
            row.next_attempt_at = now + dt.timedelta(seconds=outcome.retry_after or 1.0)
        else:  # not known yet; asked again later (a verdict never parks a row)
            row.next_attempt_at = now + self._backoff(2, outcome.retry_after)


def resend(row: OutboxRow) -> None:
    """An officer's "resend after correction": a new row (new key, body built from the
    corrected record, an update of the portal's record when it holds one); the old row
    stays as the history of what was refused."""
    enqueue(db.session.connection(), {(row.kind, row.record_id)}, target=row.target)


def retry(row: OutboxRow) -> None:
    """An officer's "retry" of a parked row: same key and body, its clock restarted."""
    row.state, row.attempts, row.next_attempt_at = OutboxState.PENDING, 0, utcnow()
    row.failing_since = None
    row.lease_owner = row.lease_until = None


def retry_parked() -> int:
    """An officer's "retry every parked row" (e.g. once credentials are fixed)."""
    rows = list(db.session.scalars(select(OutboxRow).where(OutboxRow.state == OutboxState.PARKED)))
    for row in rows:
        retry(row)
    return len(rows)
