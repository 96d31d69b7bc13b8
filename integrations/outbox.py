"""Writing outbox rows in the same transaction as the change they announce.

A session hook notices organisations, products, batches and label runs as they are
flushed; captured EPCIS events are announced by traceability's ``events_stored`` signal.
Either way the row is inserted on the flush's own connection: a rolled-back change
sends nothing, a committed one is never forgotten. The payload is built when the row
is sent, from the record as it is then, so a correction made before sending goes out.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, func, insert, inspect, or_, select, tuple_
from sqlalchemy.orm import Session, UOWTransaction

from integrations.circuit import WORKER_STALE
from integrations.models import PRIORITY, Circuit, OutboxRow, OutboxState, SyncChannel
from nguon.db import db, utcnow
from registry.models import Organisation
from traceability import corrections, epcis
from traceability.models import Batch, EpcisEvent, EventEpc, Label, LabelRun, Location, Product


def _changed(obj: Any, name: str) -> bool:
    return inspect(obj).attrs[name].history.has_changes()


def _wanted(session: Session) -> set[tuple[str, str]]:
    wanted: set[tuple[str, str]] = set()
    dirty = [o for o in session.dirty if session.is_modified(o)]
    # A void of some of a batch's labels, an event corrected in place (an EPCIS error
    # declaration): the batch's record changes too. Scans move label counters, which
    # the record does not show: those are no change of it.
    corrected = [o.id for o in dirty if isinstance(o, EpcisEvent) and _changed(o, "document")]
    wanted |= {
        ("trace_record", str(o.batch_id))
        for o in dirty
        if isinstance(o, Label) and _changed(o, "voided_at")
    }
    if corrected:
        lots = set(
            session.execute(
                select(EventEpc.gtin, EventEpc.lot).where(
                    EventEpc.event_pk.in_(corrected), EventEpc.lot.is_not(None)
                )
            ).all()
        )
        wanted |= {("trace_record", str(b)) for b in _batches_of(session, lots)}
    for obj in list(session.new) + dirty:
        if isinstance(obj, Organisation):
            wanted.add(("organisation", str(obj.id)))
        elif isinstance(obj, Location):
            wanted.add(("location", str(obj.id)))
        elif isinstance(obj, Product):
            wanted.add(("product", str(obj.id)))
        elif isinstance(obj, Batch):
            wanted.add(("trace_record", str(obj.id)))
        elif isinstance(obj, LabelRun):
            wanted.add(("trace_record", str(obj.batch_id)))
    return wanted


def enqueue(connection: Any, wanted: Iterable[tuple[str, str]], target: str = "portal") -> int:
    """Insert a pending row for each (kind, record id) not already waiting unsent."""
    wanted = set(wanted)
    if not wanted:
        return 0
    now = utcnow()
    # A row not yet frozen (its body is built when it is sent) takes this change too:
    # superseded unsent changes coalesce into one. A row a worker holds right now may
    # have read the record before this change: it does not count.
    waiting = set(
        connection.execute(
            select(OutboxRow.kind, OutboxRow.record_id).where(
                OutboxRow.state == OutboxState.PENDING,
                OutboxRow.method.is_(None),
                or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                OutboxRow.record_id.in_([r for _k, r in wanted]),
            )
        ).all()
    )
    rows = [
        {
            "kind": kind,
            "record_id": record_id,
            "priority": PRIORITY[kind],
            "target": target,
            "idempotency_key": str(uuid.uuid4()),
            "state": OutboxState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
            "reasons": [],
        }
        for kind, record_id in sorted(wanted)
        if (kind, record_id) not in waiting
    ]
    if rows:
        connection.execute(insert(OutboxRow), rows)
    return len(rows)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    wanted = _wanted(session)
    if wanted:
        enqueue(session.connection(), wanted)


def _events_stored(_sender: Any, session: Session, lots: set[tuple[str, str]],
                   event_pks: list[int] | None = None, **_: Any) -> None:  # fmt: skip
    """New events change a batch's stages: its trace record must be sent again; with an
    EPCIS repository configured, each event is pushed there too."""
    if event_pks and has_app_context() and current_app.config.get("EPCIS_PUSH_URL"):
        enqueue(
            session.connection(), {("epcis_event", str(pk)) for pk in event_pks}, target="epcis"
        )
    if not lots:
        return
    batch_ids = _batches_of(session, lots)
    enqueue(session.connection(), {("trace_record", str(b)) for b in batch_ids})


def _batches_of(session: Session, lots: Iterable[tuple[str, str]]) -> set[int]:
    pairs, batch_ids = sorted(lots), set()
    for start in range(0, len(pairs), 1000):  # one query per thousand lots, not per lot
        batch_ids.update(
            session.scalars(
                select(Batch.id)
                .join(Product, Product.id == Batch.product_id)
                .where(tuple_(Product.gtin, Batch.lot).in_(pairs[start : start + 1000]))
            )
        )
    return batch_ids


RATE_WINDOW = dt.timedelta(minutes=15)  # the delivery rate is measured over this


@dataclass
class Overview:
    """What officers (``/integrations/sync``) and operators (``nguon sync status``) watch."""

    sync_on: bool  # a portal is configured (NGUON_PORTAL_URL)
    counts: dict[str, int]
    oldest: OutboxRow | None  # the oldest row still waiting to be sent
    channels: list[SyncChannel]  # each destination: its circuit, its workers' heartbeat
    delivered: int  # rows the destinations took within RATE_WINDOW
    problems: list[OutboxRow]  # the latest parked or rejected rows
    failing: list[OutboxRow]  # rows being retried (none listed during an outage)
    now: dt.datetime = field(default_factory=utcnow)

    @property
    def waiting(self) -> int:
        return self.counts.get(OutboxState.PENDING, 0)

    @property
    def oldest_age(self) -> int | None:
        return (
            None
            if self.oldest is None
            else int((self.now - self.oldest.created_at).total_seconds())
        )

    @property
    def per_minute(self) -> float:
        return self.delivered / (RATE_WINDOW.total_seconds() / 60)

    @property
    def outages(self) -> list[SyncChannel]:
        return [c for c in self.channels if c.circuit != Circuit.CLOSED]

    @property
    def worker_seen_at(self) -> dt.datetime | None:
        seen = [c.worker_seen_at for c in self.channels if c.worker_seen_at is not None]
        return max(seen, default=None)

    @property
    def worker_running(self) -> bool:
        seen = self.worker_seen_at
        return seen is not None and self.now - seen < WORKER_STALE


def overview(problem_limit: int = 50, failing_limit: int = 50) -> Overview:
    session = db.session
    now = utcnow()
    counts = dict(
        session.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)).all()
    )
    oldest = session.scalars(
        select(OutboxRow)
        .where(OutboxRow.state == OutboxState.PENDING)
        .order_by(OutboxRow.created_at, OutboxRow.id)
        .limit(1)
    ).first()
    channels = list(session.scalars(select(SyncChannel).order_by(SyncChannel.target)))
    delivered = session.scalar(
        select(func.count(OutboxRow.id)).where(OutboxRow.sent_at >= now - RATE_WINDOW)
    )
    problems = session.scalars(
        select(OutboxRow)
        .where(OutboxRow.state.in_((OutboxState.PARKED, OutboxState.REJECTED)))
        .order_by(OutboxRow.id.desc())
        .limit(problem_limit)
    ).all()
    # During an outage every waiting row "fails" the same way: that is one state (the
    # channel's), not a list of rows. Rows of a destination that answers are listed.
    held = [c.target for c in channels if c.circuit != Circuit.CLOSED]
    failing = session.scalars(
        select(OutboxRow)
        .where(
            OutboxRow.state == OutboxState.PENDING,
            OutboxRow.failing_since.is_not(None),
            OutboxRow.target.not_in(held),
        )
        .order_by(OutboxRow.failing_since, OutboxRow.id)
        .limit(failing_limit)
    ).all()
    return Overview(
        sync_on=bool(current_app.config.get("PORTAL_URL")),
        counts=counts,
        oldest=oldest,
        channels=channels,
        delivered=delivered or 0,
        problems=list(problems),
        failing=list(failing),
        now=now,
    )


def waiting_by_target() -> dict[str, int]:
    """Rows waiting to be sent, per destination."""
    return dict(
        db.session.execute(
            select(OutboxRow.target, func.count())
            .where(OutboxRow.state == OutboxState.PENDING)
            .group_by(OutboxRow.target)
        ).all()
    )


def install() -> None:
    """Register the hooks (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
    epcis.events_stored.connect(_events_stored, weak=False)
    corrections.record_sent.connect(_was_sent, weak=False)


def _was_sent(_sender: Any, kind: str, record_id: str, **_: Any) -> bool:
    """Whether a record has gone to the portal (a later change is then a correction)."""
    return bool(
        db.session.scalar(
            select(func.count(OutboxRow.id)).where(
                OutboxRow.kind == kind,
                OutboxRow.record_id == record_id,
                OutboxRow.state.in_((OutboxState.SENT, OutboxState.DONE, OutboxState.SUPERSEDED)),
            )
        )
    )
