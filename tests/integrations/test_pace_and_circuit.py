"""The pace's schedule and the circuit breaker's states, on their own."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from integrations.circuit import Breaker
from integrations.models import Circuit, OutboxRow, OutboxState
from integrations.pace import MARGIN, DatabasePace, LocalPace, RedisPace, pace_for
from integrations.portal import Outcome
from nguon.db import db, utcnow
from tests.factories import lychee_batches
from tests.integrations.conftest import outbox_rows as rows
from tests.integrations.test_healing import redis_url

DOWN = Outcome("retry", error="ConnectionError: refused")
FINE = Outcome("ok", 200)


def paces(app: Flask) -> list[tuple[str, Any, Any]]:
    """(name, first, second): two paces of one destination that must share a schedule."""
    found: list[tuple[str, Any, Any]] = [("process", LocalPace(10), None)]
    with app.app_context():
        engine = db.engine(app)
    if engine.dialect.name == "postgresql":
        found.append(("database", DatabasePace(engine.url, "test-pace", 10),
                      DatabasePace(engine.url, "test-pace", 10)))  # fmt: skip
    url = redis_url()
    if url is not None:
        key = f"nguon:test:pace:{utcnow().timestamp()}"
        found.append(("redis", RedisPace(url, key, 10), RedisPace(url, key, 10)))
    return found


def test_calls_reserve_evenly_spaced_slots_shared_by_every_pace_of_a_destination(
    own_app: Flask,
) -> None:
    """Ten requests/s (nine with the margin): each reservation is one interval after the
    last, whichever of two workers' paces makes it; a Retry-After pushes the next slot
    past it for both. The delays are computed, not slept (reserve, not wait)."""
    interval = 1 / (10 * MARGIN)
    for name, first, second in paces(own_app):
        other = second or first
        # When each slot starts, on this process's clock (the reply's delay added to it).
        slots = [time.monotonic() + (first if n % 2 else other).reserve() for n in range(6)]
        steps = [b - a for a, b in itertools.pairwise(slots)]
        assert all(interval / 2 < step < interval * 1.5 for step in steps), (name, steps)
        first.hold(5.0)
        assert other.reserve() > 4.5, name
        for pace in {first, other}:
            pace.close()


def test_the_paces_of_an_app_follow_its_configuration(own_app: Flask) -> None:
    with own_app.app_context():
        dialect = db.engine(own_app).dialect.name
    pace = pace_for(own_app, "portal", 20)
    expected = DatabasePace if dialect == "postgresql" else LocalPace
    assert type(pace) is expected
    if expected is LocalPace:  # one schedule per process and destination
        assert pace_for(own_app, "portal", 20) is pace
    pace.close()
    if redis_url() is not None:
        own_app.config["RATELIMIT_STORAGE_URI"] = redis_url()
        shared = pace_for(own_app, "portal", 20)
        assert isinstance(shared, RedisPace) and "nguon:sync:pace:" in shared.key
        shared.close()


def breaker(app: Flask, **options: Any) -> Breaker:
    return Breaker(app, "portal", failures=options.get("failures", 3),
                   probe_every=options.get("probe_every", 60))  # fmt: skip


def test_failures_open_the_circuit_one_worker_probes_and_an_answer_closes_it(
    app: Flask, in_tx: Callable[..., Any], make_org: Callable[..., int]
) -> None:
    producer = make_org(tax_code="2400123456")
    in_tx(lambda: lychee_batches(producer, 2))

    def failing_rows() -> None:  # rows that failed during the outage, backed off far
        for row in db.session.scalars(select(OutboxRow)):
            row.failing_since = utcnow() - dt.timedelta(hours=2)
            row.next_attempt_at = utcnow() + dt.timedelta(minutes=10)

    in_tx(failing_rows)
    first, second = breaker(app), breaker(app)
    first.record([DOWN, DOWN])
    assert first.state.circuit == Circuit.CLOSED and first.state.failures == 2
    second.record([FINE])  # any answer resets the count
    second.record([DOWN, DOWN, DOWN])
    assert second.state.circuit == Circuit.OPEN
    assert second.state.unreachable_since is not None

    for b in (first, second):
        b.read(fresh=True)
    assert not first.claim_probe()  # the first probe is due only after probe_every

    def probe_due() -> None:
        from integrations.models import SyncChannel

        db.session.get(SyncChannel, "portal").next_probe_at = utcnow()

    in_tx(probe_due)
    first.read(fresh=True), second.read(fresh=True)
    assert [first.claim_probe(), second.claim_probe()] == [True, False]  # one prober
    assert first.record([FINE]) is True  # back
    waiting = [r for r in rows(app) if r.state == OutboxState.PENDING]
    assert waiting and all(r.failing_since is None for r in waiting)  # clocks restarted
    assert all(r.next_attempt_at <= utcnow() for r in waiting)  # due at once


def test_refused_credentials_hold_the_destination(app: Flask) -> None:
    refused = Outcome("refused", 401, error="bad client credentials")
    held = breaker(app)
    held.record([refused])
    assert held.state.circuit == Circuit.REFUSED and held.state.next_probe_at is not None
    assert held.record([FINE]) is True and held.state.circuit == Circuit.CLOSED


def test_a_change_during_a_send_gets_a_row_of_its_own(
    app: Flask, in_tx: Callable[..., Any], make_org: Callable[..., int]
) -> None:
    """A row a worker holds may have read the record before a change committed while it
    was being sent: the change does not fold into it, it gets a row of its own (sent
    after, as the next revision). A row nobody holds yet takes the change in."""
    from integrations.outbox import enqueue

    producer = make_org(tax_code="2400123456")
    (batch_id,) = in_tx(lambda: lychee_batches(producer, 1))
    key = ("trace_record", str(batch_id))

    def change() -> None:
        enqueue(db.session.connection(), {key})

    in_tx(change)
    assert len([r for r in rows(app) if r.kind == "trace_record"]) == 1  # folded in

    def lease() -> None:
        row = db.session.scalars(select(OutboxRow).where(OutboxRow.kind == "trace_record")).one()
        row.lease_owner, row.lease_until = "w1", utcnow() + dt.timedelta(minutes=1)

    in_tx(lease)
    in_tx(change)
    assert len([r for r in rows(app) if r.kind == "trace_record"]) == 2


def test_the_retired_attempt_limit_is_ignored_with_a_warning(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    from nguon.cli import main

    app.config["SYNC_MAX_ATTEMPTS"] = 8
    try:
        result = app.test_cli_runner().invoke(main, ["sync", "run", "--once"])
    finally:
        app.config["SYNC_MAX_ATTEMPTS"] = None
    assert "NGUON_SYNC_MAX_ATTEMPTS is retired and ignored" in caplog.text
    assert result.exit_code == 1 and "NGUON_PORTAL_URL is not set" in result.output


def test_an_answer_cut_in_the_middle_is_a_transient_failure() -> None:
    """A portal that stops while answering (a chunked body cut short) is a failure to
    retry, not an exception that stops the worker."""
    import requests

    from integrations.portal import PortalClient

    class Cut(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            if "oauth" in str(args[1]):
                response = requests.Response()
                response.status_code, response._content = 200, b'{"access_token": "t"}'
                return response
            raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")

        def post(self, url: Any, **kwargs: Any) -> Any:
            return self.request("POST", url, **kwargs)

    client = PortalClient("http://portal.invalid", "nguon", "secret", session=Cut())
    outcome = client.call("GET", "/api/v1/trace-records/TR-1")
    assert outcome.kind == "retry" and "ChunkedEncodingError" in outcome.error
