"""Reconciliation: our batches against the records the portal holds, and the repairs.

One look-up per batch (the contract's ``GET /api/v1/trace-records?trace_code=``), every
one at the portal's pace; a 429 is waited out and asked again, so the answers are all
real. A run keeps its cursor (the last batch compared) and what it found in the
database, committed as it goes: an interrupted run resumes where it stopped.

What it finds, and what ``repair`` does about it:

- ``missing``: the portal lost a record we delivered: forget its id and send it anew;
- ``duplicated``: the portal holds several records for one batch: the one we update is
  kept, the others are listed with their ids for the portal's operator to remove (the
  contract gives us no way to delete);
- ``unknown_here``: the portal holds a record we have no id for (its answer was lost
  long ago): adopt it, so the next change updates it instead of adding another;
- ``other_id``: the portal holds one record, not the one we have: adopt it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import joinedload

from integrations import mapping
from integrations.models import PortalRecord, ReconcileRun
from integrations.outbox import enqueue
from integrations.portal import Outcome
from nguon.db import db, utcnow
from traceability.models import Batch

CHUNK = 20  # batches compared between two commits of the run's progress
MAX_FAILURES = 5  # transient failures in a row: the portal is down, stop (resume later)
BACKOFF = 0.5  # seconds before asking again after the first of those; doubles each time
KIND = "trace_record"


class PortalUnreachable(RuntimeError):
    """The portal stopped answering; the run resumes from its cursor next time."""


@dataclass(frozen=True)
class Difference:
    kind: str  # missing | duplicated | unknown_here | other_id | unreadable
    batch_id: int
    trace_code: str
    held: str | None = None  # the record id we update
    found: tuple[str, ...] = ()  # the record ids the portal holds
    repaired: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "batch_id": self.batch_id,
            "trace_code": self.trace_code,
            "held": self.held,
            "found": list(self.found),
            "repaired": self.repaired,
        }


def current_run(restart: bool, repair: bool) -> ReconcileRun:
    """The unfinished run to resume, or a new one (``restart``: always a new one)."""
    run = None
    if not restart:
        run = db.session.scalars(
            select(ReconcileRun)
            .where(ReconcileRun.finished_at.is_(None))
            .order_by(ReconcileRun.id.desc())
            .limit(1)
        ).first()
    if run is None:
        run = ReconcileRun(total=db.session.scalar(select(func.count(Batch.id))) or 0,
                           repair=repair, differences=[])  # fmt: skip
        db.session.add(run)
        db.session.flush()
    run.repair = run.repair or repair
    return run


def remaining(run: ReconcileRun) -> int:
    return db.session.scalar(select(func.count(Batch.id)).where(Batch.id > run.cursor)) or 0


def _ask(client: Any, call: mapping.Call, wait: Callable[[float], None]) -> Outcome:
    """The portal's answer; a 429 (its pace already held back) is asked again, a transient
    failure a few times before the run stops."""
    failures = 0
    while True:
        outcome = client.call(call.method, call.path, call.body)
        if outcome.kind == "throttled":
            continue  # the client's pace waits out the Retry-After before the next call
        if outcome.kind != "retry":
            return outcome
        failures += 1
        if failures >= MAX_FAILURES:
            raise PortalUnreachable(outcome.error or f"HTTP {outcome.status}")
        wait(min(30.0, BACKOFF * 2 ** (failures - 1)))


def _revision_of(client: Any, remote_id: str, wait: Callable[[float], None]) -> int:
    outcome = _ask(client, mapping.status_call(remote_id), wait)
    verdict = mapping.verdict(outcome.body) if outcome.kind == "ok" else None
    return verdict.revision if verdict and verdict.revision else 1


def compare(
    batch: Batch, client: Any, repair: bool, wait: Callable[[float], None]
) -> Difference | None:
    """Compare one batch; with ``repair``, mend what can be mended (flushes)."""
    code = mapping.trace_code(batch)
    outcome = _ask(client, mapping.find_call(code), wait)
    found = mapping.found_ids(outcome.body) if outcome.kind == "ok" else None
    record = db.session.get(PortalRecord, (KIND, str(batch.id)))
    held = record.remote_id if record is not None else None
    if found is None:
        return Difference("unreadable", batch.id, code, held)
    if held is not None and not found:
        if repair:  # the portal lost it: a new record, sent from the batch as it stands
            db.session.execute(
                delete(PortalRecord).where(
                    PortalRecord.kind == KIND, PortalRecord.record_id == str(batch.id)
                )
            )
            enqueue(db.session.connection(), {(KIND, str(batch.id))})
        return Difference("missing", batch.id, code, held, (), repair)
    if len(found) > 1:
        if repair and held not in found:
            _adopt(batch, found[0], _revision_of(client, found[0], wait))
        return Difference("duplicated", batch.id, code, held, tuple(found), repair)
    if found and held != found[0]:
        if repair:
            _adopt(batch, found[0], _revision_of(client, found[0], wait))
        return Difference(
            "unknown_here" if held is None else "other_id", batch.id, code, held, tuple(found),
            repair,
        )  # fmt: skip
    return None


def _adopt(batch: Batch, remote_id: str, revision: int) -> None:
    record = db.session.get(PortalRecord, (KIND, str(batch.id)))
    if record is None:
        db.session.add(PortalRecord(kind=KIND, record_id=str(batch.id), remote_id=remote_id,
                                    revision=revision))  # fmt: skip
    else:
        record.remote_id, record.revision = remote_id, revision
    db.session.flush()


def chunks(run: ReconcileRun) -> Iterator[list[Batch]]:
    """The batches after the run's cursor, a chunk at a time (read as they come)."""
    while True:
        found = list(
            db.session.scalars(
                select(Batch)
                .where(Batch.id > run.cursor)
                .options(joinedload(Batch.product))
                .order_by(Batch.id)
                .limit(CHUNK)
            )
        )
        if not found:
            return
        yield found


def advance(run: ReconcileRun, batch: Batch, difference: Difference | None) -> None:
    run.cursor, run.checked = batch.id, run.checked + 1
    if difference is not None:
        run.differences = [*run.differences, difference.as_json()]


def finish(run: ReconcileRun) -> None:
    run.finished_at = utcnow()
