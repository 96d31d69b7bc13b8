"""The circuit breaker of a destination, shared by its workers through the database.

``failures`` transient failures in a row (connection refused, timeouts, 5xx, from any
worker) open the circuit: no worker calls the destination then, except one probe every
``probe_every`` seconds, claimed by one worker at a time. The first answer that reaches
the destination closes it again, and every row that was waiting on the outage is due
at once, its failing clock restarted: an outage of any length drains by itself. A
destination that refuses our credentials is held the same way ("refused").

Each change is a short transaction of its own, after the worker's step has committed,
so a worker never holds the channel's row while it waits for the destination.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from integrations.models import Circuit, OutboxRow, OutboxState, SyncChannel
from integrations.portal import Outcome
from nguon.db import commit_boundary, db, utcnow

HEARTBEAT = dt.timedelta(seconds=5)  # how often a running worker says so
WORKER_STALE = dt.timedelta(minutes=2)  # no heartbeat for this long: "no worker running"
REREAD = 0.5  # seconds a worker trusts its last reading of the channel


@dataclass(frozen=True)
class Snapshot:
    """The channel as a worker last read it."""

    circuit: str = Circuit.CLOSED
    failures: int = 0
    unreachable_since: dt.datetime | None = None
    next_probe_at: dt.datetime | None = None
    last_error: str | None = None
    worker_seen_at: dt.datetime | None = None

    @property
    def closed(self) -> bool:
        return self.circuit == Circuit.CLOSED


def ensure_channel(target: str) -> SyncChannel:
    """The destination's row in the current session (created when missing)."""
    session = db.session
    channel = session.get(SyncChannel, target, with_for_update=True)
    if channel is not None:
        return channel
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    session.execute(
        insert(SyncChannel)
        .values(target=target, circuit=Circuit.CLOSED, failures=0)
        .on_conflict_do_nothing()
    )
    return session.get_one(SyncChannel, target, with_for_update=True, populate_existing=True)


def snapshot_of(channel: SyncChannel | None) -> Snapshot:
    if channel is None:
        return Snapshot()
    return Snapshot(
        channel.circuit,
        channel.failures,
        channel.unreachable_since,
        channel.next_probe_at,
        channel.last_error,
        channel.worker_seen_at,
    )


class Breaker:
    def __init__(self, app: Flask, target: str, *, failures: int, probe_every: float) -> None:
        self.app, self.target = app, target
        self.threshold = failures
        self.probe_every = dt.timedelta(seconds=probe_every)
        self.state = Snapshot()
        self._last_beat: dt.datetime | None = None
        self._read_at: float | None = None

    def read(self, fresh: bool = False) -> Snapshot:
        """The channel as the workers left it (read at most every ``REREAD`` unless
        ``fresh``: another worker's change is seen that late at most; this one's at once)."""
        now = time.monotonic()
        if not fresh and self._read_at is not None and now - self._read_at < REREAD:
            return self.state
        with self.app.app_context():
            self.state = snapshot_of(db.session.get(SyncChannel, self.target))
        self._read_at = now
        return self.state

    def heartbeat(self, worker: str) -> None:
        """At most every few seconds: this worker runs (the officers' page shows it)."""
        now = utcnow()
        if self._last_beat is not None and now - self._last_beat < HEARTBEAT:
            return
        with self.app.app_context(), commit_boundary():
            channel = ensure_channel(self.target)
            channel.worker_seen_at, channel.worker_name = now, worker[:100]
            self.state = snapshot_of(channel)
        self._last_beat = now

    def claim_probe(self) -> bool:
        """Whether this worker may send the one probe due now (the others wait)."""
        now = utcnow()
        if self.state.closed or (self.state.next_probe_at and self.state.next_probe_at > now):
            return False
        with self.app.app_context(), commit_boundary() as session:
            claimed = session.execute(
                update(SyncChannel)
                .where(
                    SyncChannel.target == self.target,
                    SyncChannel.circuit != Circuit.CLOSED,
                    SyncChannel.next_probe_at <= now,
                )
                .values(next_probe_at=now + self.probe_every)
            ).rowcount
        return claimed == 1

    def record(self, outcomes: list[Outcome]) -> bool:
        """Count the step's answers; True when they closed an open circuit."""
        if not outcomes:
            return False
        quiet = all(o.reached and o.kind != "refused" for o in outcomes)
        if quiet and self.state.closed and self.state.failures == 0:
            return False  # the common case (all well, and known to be) writes nothing
        now = utcnow()
        closed_now = False
        with self.app.app_context(), commit_boundary() as session:
            channel = ensure_channel(self.target)
            for outcome in outcomes:
                if outcome.kind == "refused":
                    if channel.circuit == Circuit.CLOSED:
                        channel.unreachable_since = now
                    channel.circuit, channel.next_probe_at = Circuit.REFUSED, now + self.probe_every
                    channel.last_error = outcome.error[:2000]
                elif outcome.reached:
                    closed_now |= channel.circuit != Circuit.CLOSED
                    channel.circuit, channel.failures = Circuit.CLOSED, 0
                    channel.failing_since = channel.unreachable_since = None
                    channel.next_probe_at = None
                    channel.last_success_at = now
                else:
                    channel.failures += 1
                    channel.failing_since = channel.failing_since or now
                    channel.last_error = (outcome.error or f"HTTP {outcome.status}")[:2000]
                    if channel.circuit == Circuit.CLOSED and channel.failures >= self.threshold:
                        channel.circuit = Circuit.OPEN
                        channel.unreachable_since = channel.failing_since
                        channel.next_probe_at = now + self.probe_every
            if closed_now:
                # Back: every row that waited on the outage is due now, with a fresh clock.
                session.execute(
                    update(OutboxRow)
                    .where(
                        OutboxRow.target == self.target,
                        OutboxRow.state == OutboxState.PENDING,
                        OutboxRow.failing_since.is_not(None),
                    )
                    .values(failing_since=None, next_attempt_at=now)
                )
            self.state = snapshot_of(channel)
        return closed_now
