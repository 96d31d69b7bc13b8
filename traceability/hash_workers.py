"""The event hashes of a large capture, computed by a helper process while the request
checks the document against the schema.

The schema check (fastjsonschema) and the reference event hash (``epcis_hash``) are both
pure Python: one process does them one after the other, about 1.5 s and 1.1 s for
10,000 events here. A capture stored by a job (``capture_jobs.runs_outside``) hands its
body to a helper process before its schema is checked; by the time it is, the hashes
are back, and they travel in the job's payload, so the job only looks up and stores.

- ``EPCIS_HASH_PROCESSES`` (default: 1 on a machine with more than one core, else 0):
  helper processes per app process; 0 leaves the hashing to the job.
- Helpers start with the first large capture of an app process (a process that only
  ever takes small ones holds none), with ``spawn`` (a fresh interpreter: none of the
  server's sockets, threads or database connections), and live as long as the
  process; until they are ready, a large capture's job hashes.
- The helper's answer is an optimisation, never the only path: a helper that died, an
  event the algorithm refuses, or an answer later than ``WAIT`` seconds after the
  schema check is logged, and the job hashes the events itself (and refuses them,
  naming the event, as it always did).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import datetime as dt
import json
import logging
import multiprocessing
import threading
from concurrent.futures import Future
from typing import Any

from flask import current_app

log = logging.getLogger(__name__)
WAIT = 5.0  # seconds a request waits for the helper once its own checks are done
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)
_LOCK = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_size = 0
_warm = threading.Event()  # the helpers have started and imported the hashing code


def processes() -> int:
    """The helper processes configured for this app (0: none; ``nguon.config``)."""
    return int(current_app.config["EPCIS_HASH_PROCESSES"])


def _executor(size: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool, _pool_size
    with _LOCK:
        if _pool is None or _pool_size != size:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            context = multiprocessing.get_context("spawn")
            _pool, _pool_size = concurrent.futures.ProcessPoolExecutor(size, context), size
            _warm.clear()
            for _ in range(size):
                _pool.submit(_ready).add_done_callback(_warmed)
        return _pool


def _ready() -> bool:
    from traceability import epcis_hash  # noqa: F401  (what a first document would import)

    return True


def _warmed(future: Future[bool]) -> None:
    if not future.cancelled() and future.exception() is None:
        _warm.set()


def prepare(wait: float = 0) -> bool:
    """Start this app's helpers if they are not running (``spawn`` takes about a second:
    the first large capture of a process starts them, and is hashed by its job unless
    they are ready); with ``wait``, block up to that many seconds until they are.
    Whether they are ready."""
    if processes() <= 0:
        return False
    _executor(processes())
    return _warm.wait(wait) if wait else _warm.is_set()


@atexit.register
def _shutdown() -> None:
    """Stop the helpers before the interpreter tears its modules down."""
    global _pool
    with _LOCK:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _forget(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    global _pool
    with _LOCK:
        if _pool is pool:
            _pool = None
            _warm.clear()
    pool.shutdown(wait=False, cancel_futures=True)


def start(body: bytes, context: list[Any]) -> Future[dict[str, Any]] | None:
    """Have a helper hash the events of ``body`` (a capture document's bytes, already
    parsed once as strict JSON) under ``context`` (``epcis.extra_context``); None when
    no helper is configured or one cannot be started."""
    size = processes()
    if size <= 0:
        return None
    pool = _executor(size)
    try:
        return pool.submit(compute, body, context)
    except Exception:  # a broken pool: a new one next time
        log.warning("event hash helper unavailable; the capture job hashes", exc_info=True)
        _forget(pool)
        return None


def collect(future: Future[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The helper's answer (:func:`compute`), or None when it has none within ``WAIT``
    seconds, or at once while the helpers are still starting (the job then hashes)."""
    if future is None:
        return None
    warm = _warm.is_set()
    try:
        return future.result(timeout=WAIT if warm else 0)
    except concurrent.futures.TimeoutError:
        future.cancel()  # not to hash, later, what the job hashes (if it has not begun)
        if warm:
            log.warning("event hash helper slower than %s s; the capture job hashes", WAIT)
    except concurrent.futures.process.BrokenProcessPool:
        log.warning("event hash helper died; the capture job hashes")
        if _pool is not None:
            _forget(_pool)
    except Exception as exc:  # the job meets the same fault and names it
        log.info("event hash helper refused the document (%r); the job decides", exc)
    return None


def compute(body: bytes, context: list[Any]) -> dict[str, Any]:
    """In a helper process: for the events of ``body`` without an eventID, what
    ``epcis._assign_event_ids`` would compute.

    ``{"count": events in the document, "times": [each event's eventTime in
    microseconds since 1970 UTC] or None when one is not a time, "missing": [index of
    each event without eventID], "iris": [the document's vocabulary IRIs], "digests":
    [content digest of each], "hashes": [reference event hash of each]}``. Raises what
    ``epcis_hash`` raises."""
    from traceability import epcis_hash, epcis_time

    events = json.loads(body)["epcisBody"]["eventList"]
    try:
        times = [
            (epcis_time.parse_rfc3339(event.get("eventTime")) - EPOCH) // MICROSECOND
            for event in events
        ]
    except (epcis_time.TimeError, TypeError, AttributeError):
        times = None  # the request reads them itself, and names the one it cannot
    missing = [i for i, event in enumerate(events) if not event.get("eventID")]
    chosen = [events[i] for i in missing]
    iris = epcis_hash.document_iris(chosen, context) if chosen else frozenset()
    return {
        "count": len(events),
        "times": times,
        "missing": missing,
        "iris": sorted(iris),
        "digests": epcis_hash.content_digests(chosen, context, iris),
        "hashes": epcis_hash.event_hashes(chosen, context, iris),
    }


def event_time(microseconds: int) -> dt.datetime:
    """A time of :func:`compute`'s ``times`` as the aware UTC datetime it was read as."""
    return EPOCH + dt.timedelta(microseconds=microseconds)
