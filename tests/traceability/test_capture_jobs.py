"""Large captures run outside the request: in a thread by default, or in ``nguon epcis
jobs``; a job is stored whole or not at all, and a crashed one is taken up again."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from nguon.db import commit_boundary, db, utcnow
from traceability import capture_jobs, epcis, epcis_hash, hash_workers
from traceability.models import CaptureJob, EpcisEvent


def _event(n: int, time_: str = "2026-06-10T06:30:00+07:00") -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": time_,
        "eventTimeZoneOffset": "+07:00",
        "epcList": [f"https://id.gs1.org/01/09506000134352/21/job{n}"],
        "action": "OBSERVE",
        "bizStep": "shipping",
    }


def _document(events: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "@context": [epcis.EPCIS_CONTEXT],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-06-12T08:00:00+07:00",
            "epcisBody": {"eventList": events},
        }
    )


@pytest.fixture
def jobs_app(own_app: Flask) -> Iterator[Flask]:
    own_app.config["EPCIS_CAPTURE_INLINE_EVENTS"] = 5
    yield own_app


@pytest.fixture
def officer(jobs_app: Flask) -> dict[str, str]:
    from nguon import services
    from nguon.models import User

    with jobs_app.app_context(), commit_boundary():
        user = services.create_user("jobs@nguon.vn", "officer", password="jobs-password-1")
        secret = services.create_token(db.session.get(User, user.id), "jobs").secret
    return {"Authorization": f"Bearer {secret}"}


def _stored(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(EpcisEvent))


def _job(app: Flask, job_id: int) -> CaptureJob:
    with app.app_context():
        return db.session.get(CaptureJob, job_id)


def _post(app: Flask, headers: dict, events: list[dict[str, Any]]) -> Any:
    return app.test_client().post(
        "/epcis/capture",
        data=_document(events),
        content_type="application/ld+json",
        headers=headers,
    )


class Crash(RuntimeError):
    pass


def _crash(*_args: Any, **_kwargs: Any) -> None:
    raise Crash("the runner died after inserting the events")


def test_a_large_capture_is_stored_by_a_thread(jobs_app: Flask, officer: dict) -> None:
    response = _post(jobs_app, officer, [_event(n) for n in range(12)])
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.json["running"] is True
    client = jobs_app.test_client()
    deadline = time.monotonic() + 60
    while True:
        job = client.get(response.headers["Location"], headers=officer).json
        if not job["running"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (job["running"], job["success"], job["captured"]) == (False, True, 12)
    assert _stored(jobs_app) == 12
    assert _job(jobs_app, int(job["captureID"])).payload is None


def test_the_worker_command_stores_waiting_jobs(jobs_app: Flask, officer: dict) -> None:
    jobs_app.config["EPCIS_CAPTURE_RUNNER"] = "worker"
    response = _post(jobs_app, officer, [_event(n) for n in range(8)])
    assert response.status_code == 202
    time.sleep(0.2)
    assert _stored(jobs_app) == 0  # nothing ran it in the web process
    from nguon.cli import main

    result = CliRunner().invoke(
        main, ["epcis", "jobs", "--once"], obj=ScriptInfo(create_app=lambda: jobs_app)
    )
    assert result.exit_code == 0, result.output
    assert "1 capture job(s) processed" in result.output
    job = _job(jobs_app, int(response.json["captureID"]))
    assert (job.running, job.success, job.captured, job.attempts) == (False, True, 8, 1)
    assert _stored(jobs_app) == 8


def test_a_crash_mid_job_stores_nothing_and_the_job_resumes(jobs_app: Flask, officer: dict) -> None:
    jobs_app.config["EPCIS_CAPTURE_RUNNER"] = "worker"
    job_id = int(_post(jobs_app, officer, [_event(n) for n in range(9)]).json["captureID"])
    epcis.events_stored.connect(_crash)  # fires after the rows are inserted
    try:
        with jobs_app.app_context():
            assert capture_jobs.run_waiting() == 1
    finally:
        epcis.events_stored.disconnect(_crash)
    job = _job(jobs_app, job_id)
    assert (job.running, job.attempts, job.claimed_at) == (True, 1, None)
    assert _stored(jobs_app) == 0  # never half-stored
    with jobs_app.app_context():
        assert capture_jobs.run_waiting() == 1
    job = _job(jobs_app, job_id)
    assert (job.running, job.success, job.captured, job.attempts) == (False, True, 9, 2)
    assert _stored(jobs_app) == 9


def test_a_dead_runners_job_is_taken_again_after_the_lease(jobs_app: Flask, officer: dict) -> None:
    jobs_app.config["EPCIS_CAPTURE_RUNNER"] = "worker"
    job_id = int(_post(jobs_app, officer, [_event(n) for n in range(7)]).json["captureID"])
    with jobs_app.app_context():
        assert capture_jobs.claim() == job_id  # ... and the process is killed
        assert capture_jobs.run_waiting() == 0  # a live claim is respected
        with commit_boundary():
            db.session.get(CaptureJob, job_id).claimed_at = utcnow() - dt.timedelta(minutes=11)
        assert capture_jobs.run_waiting() == 1
    job = _job(jobs_app, job_id)
    assert (job.running, job.success, job.captured, job.attempts) == (False, True, 7, 2)


def test_a_job_that_keeps_failing_fails_cleanly(jobs_app: Flask, officer: dict) -> None:
    jobs_app.config["EPCIS_CAPTURE_RUNNER"] = "worker"
    job_id = int(_post(jobs_app, officer, [_event(n) for n in range(6)]).json["captureID"])
    epcis.events_stored.connect(_crash)
    try:
        with jobs_app.app_context():
            for _ in range(capture_jobs.MAX_ATTEMPTS + 1):
                capture_jobs.run_waiting()
    finally:
        epcis.events_stored.disconnect(_crash)
    job = _job(jobs_app, job_id)
    assert (job.running, job.success, job.captured) == (False, False, 0)
    assert job.attempts == capture_jobs.MAX_ATTEMPTS and job.payload is None
    assert "nothing stored" in job.errors[-1]["message"]
    assert _stored(jobs_app) == 0


@pytest.mark.parametrize("helper", [False, True], ids=["hashed-by-the-job", "by-a-helper"])
def test_a_bad_time_is_refused_at_once(jobs_app: Flask, officer: dict, helper: bool) -> None:
    jobs_app.config["EPCIS_HASH_PROCESSES"] = int(helper)
    if helper:
        with jobs_app.app_context():
            assert hash_workers.prepare(wait=60)
    events = [_event(n) for n in range(6)] + [_event(6, "0001-01-01T00:00:00+14:00")]
    response = _post(jobs_app, officer, events)
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "/epcisBody/eventList/6/eventTime"
    assert _stored(jobs_app) == 0
    with jobs_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaptureJob)) == 0


def test_a_refusal_in_the_job_fails_it_naming_the_event(
    jobs_app: Flask, officer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs_app.config["EPCIS_CAPTURE_RUNNER"] = "worker"
    response = _post(jobs_app, officer, [_event(n) for n in range(6)])
    assert response.status_code == 202

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise epcis.EpcisError("may not name this", "/3/epcList/0")

    monkeypatch.setattr(capture_jobs.epcis, "store_events", refuse)
    with jobs_app.app_context():
        capture_jobs.run_waiting()
    job = jobs_app.test_client().get(response.headers["Location"], headers=officer).json
    assert (job["running"], job["success"], job["captured"]) == (False, False, 0)
    assert job["errors"][0]["path"] == "/epcisBody/eventList/3/epcList/0"
    assert _stored(jobs_app) == 0


def _validated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many events each schema validation of a document was given."""
    seen: list[int] = []
    check = epcis._fast_validator()

    def counting(document: Any) -> Any:
        seen.append(len(document["epcisBody"]["eventList"]))
        return check(document)

    monkeypatch.setattr(epcis, "_fast_validator", lambda: counting)
    return seen


def _eight_captured(
    app: Flask, headers: dict, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[int], list[dict[str, Any]]]:
    """Eight events captured by a job; how many events each validation was given."""
    seen = _validated(monkeypatch)
    app.config["EPCIS_CAPTURE_RUNNER"] = "worker"
    events = [_event(n) for n in range(8)]
    _post(app, headers, events)
    with app.app_context():
        capture_jobs.run_waiting()
    return seen, events


def test_a_resent_event_is_not_validated_again(
    jobs_app: Flask, officer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, events = _eight_captured(jobs_app, officer, monkeypatch)
    assert seen == [8]
    with jobs_app.app_context():
        digests = set(db.session.scalars(select(EpcisEvent.capture_digest)))
    assert len(digests) == 8 and None not in digests

    # The same events again (a retry), in another order, keys in another order, and two
    # new ones: only the new ones are validated, and every old one is a duplicate.
    again = [{key: e[key] for key in reversed(list(e))} for e in reversed(events)]
    response = _post(jobs_app, officer, [*again, _event(100), _event(101)])
    assert response.status_code == 202, response.get_data(as_text=True)
    assert seen == [8, 2]
    with jobs_app.app_context():
        capture_jobs.run_waiting()
    job = _job(jobs_app, int(response.json["captureID"]))
    assert (job.success, job.captured, job.duplicates) == (True, 2, 8)


def test_a_resent_event_changed_in_one_field_is_validated_and_refused(
    jobs_app: Flask, officer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, events = _eight_captured(jobs_app, officer, monkeypatch)
    changed = [dict(e) for e in events]
    changed[5]["action"] = "OBSERVED"  # not one of ADD, OBSERVE, DELETE
    response = _post(jobs_app, officer, changed)
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "/epcisBody/eventList/5/action"
    assert seen[-1] == 1  # only the changed event was validated
    with jobs_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CaptureJob)) == 1
    assert _stored(jobs_app) == 8


def test_an_event_stored_without_a_capture_is_validated(
    jobs_app: Flask, officer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a capture's schema check vouches for an event: one stored by the service
    itself (a cooperative's recorded step) has no capture digest."""
    with jobs_app.app_context(), commit_boundary():
        epcis.store_events([_event(1)], [], organisation_id=None)
    seen = _validated(monkeypatch)
    response = _post(jobs_app, officer, [_event(1)])
    assert response.status_code == 202
    assert seen == [1]
    assert response.json["duplicates"] == 1


def test_the_collector_is_paused_while_a_job_runs_and_resumes_after(
    jobs_app: Flask, officer: dict
) -> None:
    import gc

    jobs_app.config["EPCIS_CAPTURE_RUNNER"] = "worker"
    job_id = int(_post(jobs_app, officer, [_event(n) for n in range(9)]).json["captureID"])
    during: list[bool] = []

    def look(*_args: Any, **_kwargs: Any) -> None:
        during.append(gc.isenabled())

    epcis.events_stored.connect(look)
    try:
        with jobs_app.app_context():
            assert capture_jobs.run_waiting() == 1
    finally:
        epcis.events_stored.disconnect(look)
    assert during == [False] and gc.isenabled()
    assert _job(jobs_app, job_id).success is True

    # A crash inside the pause, pauses within pauses, and a collector that was off.
    with pytest.raises(Crash), capture_jobs.gc_paused():
        with capture_jobs.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer capture is still running
        raise Crash("inside")
    assert gc.isenabled()
    gc.disable()
    try:
        with capture_jobs.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def _capture_with(app: Flask, headers: dict, events: list[dict[str, Any]]) -> tuple[dict, list]:
    """Capture ``events`` through a job run here: the job's payload hashes and the
    stored eventIDs in the document's order."""
    app.config["EPCIS_CAPTURE_RUNNER"] = "worker"
    response = _post(app, headers, events)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = int(response.json["captureID"])
    hashes = _job(app, job_id).payload["hashes"]
    with app.app_context():
        assert capture_jobs.run_waiting() == 1
        stored = db.session.scalars(
            select(EpcisEvent.event_id)
            .where(EpcisEvent.capture_job_id == job_id)
            .order_by(EpcisEvent.id)
        ).all()
    assert _job(app, job_id).success is True
    return hashes, stored


def test_a_helper_process_hashes_while_the_request_checks(jobs_app: Flask, officer: dict) -> None:
    """The helper's hashes are the ones the job would compute (and the reference's)."""
    events = [_event(n, f"2026-06-10T06:{n:02d}:00.{n:03d}+07:00") for n in range(10)]
    events[3] = {**events[3], "bizStep": "receiving", "disposition": "in_progress"}
    events[7] = {**events[7], "eventID": "urn:uuid:6f1ad1b4-58a4-4c4e-9c49-4a5b8b0f0e7a"}
    jobs_app.config["EPCIS_HASH_PROCESSES"] = 1
    with jobs_app.app_context():
        assert hash_workers.prepare(wait=60)
    hashes, stored = _capture_with(jobs_app, officer, events)
    assert hashes is not None and hashes["missing"] == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    expected = epcis_hash.reference_hashes([e for e in events if "eventID" not in e], [])
    assert [stored[i] for i in hashes["missing"]] == expected
    assert stored[7] == events[7]["eventID"]
    assert hashes["hashes"] == expected
    with jobs_app.app_context():  # the times the helper read are the events' own
        times = db.session.scalars(
            select(EpcisEvent.event_time).where(EpcisEvent.event_id.in_(stored))
        ).all()
    assert hashes["times"] is not None
    assert sorted(times) == sorted(epcis.parse_time(e["eventTime"]) for e in events)


def test_without_the_helpers_answer_the_job_hashes(
    jobs_app: Flask, officer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper that fails, or answers too late, costs time, never an event."""
    from concurrent.futures import Future

    def failed(*_args: Any) -> Future:
        future: Future = Future()
        future.set_exception(RuntimeError("the helper died"))
        return future

    events = [_event(n) for n in range(8)]
    monkeypatch.setattr(hash_workers, "start", failed)
    hashes, stored = _capture_with(jobs_app, officer, events)
    assert hashes is None
    assert stored == epcis_hash.reference_hashes(events, [])

    monkeypatch.setattr(hash_workers, "start", lambda *_args: Future())  # never answers
    monkeypatch.setattr(hash_workers, "WAIT", 0.01)
    more = [_event(n) for n in range(20, 28)]
    hashes, stored = _capture_with(jobs_app, officer, more)
    assert hashes is None
    assert stored == epcis_hash.reference_hashes(more, [])

    # Helpers still starting are not waited for at all.
    monkeypatch.setattr(hash_workers, "WAIT", 30)
    monkeypatch.setattr(hash_workers, "_warm", threading.Event())
    started = time.monotonic()
    assert hash_workers.collect(Future()) is None
    assert time.monotonic() - started < 1
