"""Writing outbox rows in the same transaction as the change they announce.

A session hook notices organisations, products, batches and label runs as they are
flushed; captured EPCIS events are announced by traceability's ``events_stored`` signal.
Either way the row is inserted on the flush's own connection: a rolled-back change
sends nothing, a committed one is never forgotten. The payload is built when the row
is sent, from the record as it is then, so a correction made before sending goes out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, func, insert, select, tuple_
from sqlalchemy.orm import Session, UOWTransaction

from integrations.models import PRIORITY, OutboxRow, OutboxState
from nguon.db import db, utcnow
from registry.models import Organisation
from traceability import corrections, epcis
from traceability.models import Batch, LabelRun, Location, Product


def _wanted(session: Session) -> set[tuple[str, str]]:
    wanted: set[tuple[str, str]] = set()
    for obj in list(session.new) + [o for o in session.dirty if session.is_modified(o)]:
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
    waiting = set(
        connection.execute(
            select(OutboxRow.kind, OutboxRow.record_id).where(
                OutboxRow.state == OutboxState.PENDING,
                OutboxRow.attempts == 0,
                OutboxRow.record_id.in_([r for _k, r in wanted]),
            )
        ).all()
    )
    now = utcnow()
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
    pairs, batch_ids = sorted(lots), set()
    for start in range(0, len(pairs), 1000):  # one query per thousand lots, not per lot
        batch_ids.update(
            session.scalars(
                select(Batch.id)
                .join(Product, Product.id == Batch.product_id)
                .where(tuple_(Product.gtin, Batch.lot).in_(pairs[start : start + 1000]))
            )
        )
    enqueue(session.connection(), {("trace_record", str(b)) for b in batch_ids})


def summary(problem_limit: int) -> tuple[dict[str, int], int | None, list[OutboxRow]]:
    """What officers and operators watch: rows by state, the oldest pending row's age in
    seconds, and the latest parked or rejected rows."""
    session = db.session
    counts = dict(
        session.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)).all()
    )
    oldest = session.scalar(
        select(func.min(OutboxRow.created_at)).where(OutboxRow.state == OutboxState.PENDING)
    )
    problems = session.scalars(
        select(OutboxRow)
        .where(OutboxRow.state.in_((OutboxState.PARKED, OutboxState.REJECTED)))
        .order_by(OutboxRow.id.desc())
        .limit(problem_limit)
    ).all()
    age = None if oldest is None else int((utcnow() - oldest).total_seconds())
    return counts, age, list(problems)


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
                OutboxRow.state.in_((OutboxState.SENT, OutboxState.DONE)),
            )
        )
    )
