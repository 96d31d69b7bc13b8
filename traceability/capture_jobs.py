"""EPCIS capture jobs processed outside the request (GS1 REST binding: 202 + ``/capture/{id}``).

A capture of more than ``EPCIS_CAPTURE_INLINE_EVENTS`` events (default 2,000) is
checked in the request (JSON, schema, contexts: the answers a client must get at once)
and answered 202 with its job still running; the events are kept in the job's
``payload`` and stored by a runner:

- ``EPCIS_CAPTURE_RUNNER=thread`` (the default): a thread of the process that answered,
  started with the request;
- ``EPCIS_CAPTURE_RUNNER=worker`` (production with several web processes): the
  ``nguon epcis jobs`` command (README), which polls for waiting jobs.

One job is one transaction: its events and the job's outcome are committed together, so
a job is never half-stored. A runner first *claims* the job (one conditional UPDATE:
``attempts + 1`` and ``claimed_at``), so two runners never take the same job. A job whose
runner died (process killed, machine rebooted) keeps its claim until the lease
(``LEASE``, 10 minutes) runs out; any runner then takes it again from the start, which
is safe because nothing of the failed attempt was committed. A job whose processing
raised is retried the same way; after ``MAX_ATTEMPTS`` it fails cleanly (``running``
false, ``success`` false, the reason in ``errors``, nothing stored). A refusal by a rule
(ownership 403, an event the hash cannot take, an unknown context) fails the job at once
with the reason, nothing stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app
from sqlalchemy import or_, select, update

from nguon.db import commit_boundary, db, utcnow
from nguon.errors import DomainValidationError
from traceability import epcis
from traceability.models import CaptureJob

log = logging.getLogger(__name__)
LEASE = dt.timedelta(minutes=10)  # a claim older than this belongs to a dead runner
MAX_ATTEMPTS = 3


_GC_LOCK = threading.Lock()
_gc_pauses = 0  # captures of this process running with the collector paused
_gc_was_enabled = True


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a capture is checked or stored.

    A 10,000-event document is some 300,000 containers (dicts, lists) alive until the
    capture ends; every collection the allocations trigger walks them all again, for
    nothing: they are not garbage. Paused, a capture of 10,000 events takes about 15 %
    less time (``bench/epcis_bench.py``). Reference counting still frees every object
    that is in no cycle, so memory does not grow beyond the capture's own; the
    collector is enabled again when the last capture of the process ends (the ``gc``
    switch is the process's, so the pauses of concurrent captures are counted), and
    the next collection finds whatever cycles were left meanwhile. A collector that
    was disabled before stays disabled."""
    global _gc_pauses, _gc_was_enabled
    with _GC_LOCK:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def runs_outside(count: int) -> bool:
    """Whether a capture of ``count`` events is stored outside the request."""
    return count > current_app.config.get("EPCIS_CAPTURE_INLINE_EVENTS", 2000)


def enqueue(
    job: CaptureJob,
    events: list[dict[str, Any]],
    context: list[Any],
    organisation_id: int | None,
    places: list[int] | None = None,
    capture_digests: list[str] | None = None,
    hashes: dict[str, Any] | None = None,
) -> None:
    """Keep ``events`` in ``job`` for a runner (committed with the request); ``places``:
    each event's index in the document (events refused under ``proceed`` left out);
    ``capture_digests``: each event's (``epcis.capture_digests``), to store with it;
    ``hashes``: a helper's event hashes of these events (``hash_workers.compute``)."""
    job.payload = {
        "events": events,
        "context": context,
        "places": places,
        "capture_digests": capture_digests,
        "hashes": hashes,
    }
    job.organisation_id = organisation_id
    job.running = True


def start(app: Flask, job_id: int) -> None:
    """Have the job processed as configured: a thread here, or nothing (a worker polls).

    A test app whose sessions share one connection processes the job in the request."""
    if db.is_bound(app):
        if claim(job_id, wait=0):
            process(job_id, commit=False)
        return
    if app.config.get("EPCIS_CAPTURE_RUNNER", "thread") == "thread":
        thread = threading.Thread(
            target=_thread_main, args=(app, job_id), name=f"capture-job-{job_id}", daemon=True
        )
        thread.start()


def _thread_main(app: Flask, job_id: int) -> None:
    with app.app_context():
        try:
            # The request commits the job after this thread starts: wait for it.
            if claim(job_id, wait=30):
                process(job_id)
            run_waiting()  # and any job a dead runner left behind
        except Exception:  # a thread has no one to report to but the log
            log.exception("capture job %s: runner thread failed", job_id)


def _waiting(now: dt.datetime) -> Any:
    return (
        CaptureJob.running.is_(True),
        CaptureJob.payload.is_not(None),
        or_(CaptureJob.claimed_at.is_(None), CaptureJob.claimed_at < now - LEASE),
    )


def claim(
    job_id: int | None = None, *, wait: float = 0, exclude: frozenset[int] = frozenset()
) -> int | None:
    """Claim ``job_id`` (or the oldest waiting job): its id, or None when it is not
    waiting (done, taken by a live runner, or not committed within ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        with commit_boundary() as session:
            now = utcnow()
            if job_id is None:
                query = select(CaptureJob.id).where(*_waiting(now))
                if exclude:
                    query = query.where(CaptureJob.id.not_in(exclude))
                candidate = session.scalar(query.order_by(CaptureJob.id).limit(1))
            else:
                candidate = job_id
            if candidate is not None:
                taken = session.execute(
                    update(CaptureJob)
                    .where(CaptureJob.id == candidate, *_waiting(now))
                    .values(claimed_at=now, attempts=CaptureJob.attempts + 1)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if taken == 1:
                    return candidate
        if job_id is None or time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def process(job_id: int, *, commit: bool = True) -> None:
    """Store a claimed job's events and its outcome in one transaction."""
    session = db.session
    session.expire_all()
    job = session.get(CaptureJob, job_id)
    if job is None or job.payload is None:
        return
    payload = job.payload
    try:
        with gc_paused(), session.begin_nested():
            result = epcis.store_events(
                payload["events"],
                payload["context"],
                organisation_id=job.organisation_id,
                times_checked=True,  # every time was read in the request (epcis_api)
                job=job,
                error_behaviour=job.error_behaviour,
                capture_digests=payload.get("capture_digests"),
                hashed=payload.get("hashes"),
            )
            places = payload.get("places") or []
            job.errors = [
                *(job.errors or []),
                *({"path": _in_document(e["path"], places), "message": e["message"]}
                  for e in result.errors),
            ]  # fmt: skip
            job.captured, job.duplicates = len(result.stored), len(result.duplicates)
            _finish(job, success=not job.errors)
        if commit:
            session.commit()
    except (epcis.EpcisError, DomainValidationError) as exc:
        if commit:
            session.rollback()
        _refused(job_id, exc, commit)
    except Exception:
        log.exception("capture job %s: attempt failed", job_id)
        if commit:
            session.rollback()
            _retry_or_fail(job_id)
        else:
            raise


def _in_document(path: str, places: list[int]) -> str:
    """``/<index among the stored events>/…`` as the event's place in the document."""
    head, _sep, rest = path.lstrip("/").partition("/")
    if head.isdigit() and int(head) < len(places):
        head = str(places[int(head)])
    return f"/epcisBody/eventList/{head}" + (f"/{rest}" if rest else "")


def _finish(job: CaptureJob, *, success: bool) -> None:
    job.running, job.success, job.finished_at = False, success, utcnow()
    job.payload, job.claimed_at = None, None


def _refused(job_id: int, exc: Exception, commit: bool) -> None:
    session = db.session
    job = session.get(CaptureJob, job_id)
    if isinstance(exc, epcis.EpcisError):
        error = {"path": f"/epcisBody/eventList{exc.path}", "message": exc.message}
    else:
        error = {"path": "/epcisBody/eventList", "message": str(exc)}
    job.errors = [*(job.errors or []), error]
    job.captured = job.duplicates = 0
    _finish(job, success=False)
    if commit:
        session.commit()


def _retry_or_fail(job_id: int) -> None:
    with commit_boundary() as session:
        job = session.get(CaptureJob, job_id)
        if job is None or not job.running:
            return
        if job.attempts >= MAX_ATTEMPTS:
            job.errors = [
                *(job.errors or []),
                {
                    "path": "/",
                    "message": f"the capture failed {job.attempts} times; nothing stored",
                },
            ]
            job.captured = job.duplicates = 0
            _finish(job, success=False)
        else:
            job.claimed_at = None  # waiting again, for the next runner


def run_waiting(limit: int | None = None) -> int:
    """Process waiting jobs (oldest first) until none is left or ``limit`` were done; a
    job whose attempt failed waits for the next pass."""
    seen: set[int] = set()
    while limit is None or len(seen) < limit:
        job_id = claim(exclude=frozenset(seen))
        if job_id is None:
            break
        seen.add(job_id)
        process(job_id)
    return len(seen)
