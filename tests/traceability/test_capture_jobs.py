"""Large captures run outside the request: in a thread by default, or in ``nguon epcis
jobs``; a job is stored whole or not at all, and a crashed one is taken up again."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from nguon.db import commit_boundary, db, utcnow
from traceability import capture_jobs, epcis
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


def test_a_bad_time_is_refused_at_once(jobs_app: Flask, officer: dict) -> None:
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
