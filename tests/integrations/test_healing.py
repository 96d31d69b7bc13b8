"""Sync that heals itself: outages drain without an officer, one pace for the portal,
updates update, and reconciliation finishes under the portal's rate limit."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from integrations.models import OutboxState, PortalRecord
from integrations.pace import pace_for
from integrations.portal import Outcome
from integrations.worker import SyncWorker
from nguon.db import commit_boundary, db
from tests.factories import lychee_batches
from tests.integrations.conftest import FAST
from tests.integrations.conftest import outbox_rows as rows

SHIPPED = dt.datetime(2026, 6, 12, 9, tzinfo=dt.UTC)


@pytest.fixture
def producer(make_org: Callable[..., int]) -> int:
    return make_org(name="HTX Vải thiều Phượng Sơn", tax_code="2400123456")


class Counting:
    """A client that counts the calls that met a transient failure."""

    def __init__(self, client: Any) -> None:
        self.client, self.failed = client, 0

    def call(self, *args: Any, **kwargs: Any) -> Outcome:
        outcome = self.client.call(*args, **kwargs)
        self.failed += outcome.kind == "retry"
        return outcome

    def probe(self) -> Outcome:
        return self.client.probe()


def record_event(batch_ids: list[int], producer: int, step: str = "ship", hour: int = 9) -> None:
    """A cooperative records an event on each batch (a shipment, say)."""
    from traceability import epcis, services
    from traceability.models import Batch

    for batch_id in batch_ids:
        batch = db.session.get(Batch, batch_id)
        event = services.guided_event(step, batch, {"event_time": SHIPPED.replace(hour=hour)})
        epcis.store_events([event], [], organisation_id=producer)


def test_an_outage_longer_than_the_old_budget_drains_by_itself(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    """300 records queued; the portal stops (connections refused) mid-delivery for 1.5 s:
    six times the retry period and far longer than the old eight attempts took with the
    same backoff (0.23 s). When it comes back every record arrives exactly once, no row
    was parked, no officer acted, and the stopped portal was not hammered."""
    in_tx(lambda: lychee_batches(producer, 300))
    sim = simulator(latency_ms=5)
    client = Counting(sim.client())
    settings = replace(FAST, retry_for=0.25, probe_every=0.1)
    worker = SyncWorker(app, client, settings=settings, batch_size=20)
    thread = threading.Thread(target=worker.run, kwargs={"once": True, "idle_sleep": 0.01})
    thread.start()
    deadline = time.monotonic() + 30
    while len(sim.state.records) < 40 and time.monotonic() < deadline:
        time.sleep(0.005)
    sim.stop()
    stopped_with = len(sim.state.records)
    time.sleep(1.5)
    failed_while_down = client.failed
    sim.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert 0 < stopped_with < 300  # the outage really came in the middle
    outbox = rows(app)
    assert {r.state for r in outbox} == {OutboxState.DONE}  # nothing parked, nothing left
    codes = [r["body"]["trace_code"] for r in sim.state.records.values()]
    assert len(codes) == len(set(codes)) == 300  # every record, exactly once
    assert not [k for k, n in sim.state.creations.items() if n > 1]
    # The circuit opened after 5 failures and probed every 0.1 s: a few dozen calls in
    # all, not one per row per backoff step.
    assert worker.stats.outages >= 1 and worker.stats.probes >= 5
    assert failed_while_down <= 5 + 8 + 1.5 / 0.1 + 5


def test_a_stopped_portal_is_one_state_on_the_officers_page(
    app: Flask,
    simulator: Callable[..., Any],
    in_tx: Callable[..., Any],
    producer: int,
    logged_in: Callable[..., Any],
) -> None:
    """During an outage the page says "unreachable since …, N rows waiting" once, lists
    no failing rows, and `nguon sync status` shows the same circuit."""
    from nguon.cli import main

    in_tx(lambda: lychee_batches(producer, 12))
    sim = simulator()
    sim.stop()
    worker = SyncWorker(app, sim.client(), settings=replace(FAST, probe_every=60))
    worker.stop.set()  # one loop only
    for _ in range(6):
        for row_id in worker.lease(20, ["portal"], ignore_due=True):
            worker.process(row_id)
    assert worker.breakers["portal"].state.circuit == "open"
    assert not [r for r in rows(app) if r.state == OutboxState.PARKED]
    app.config["PORTAL_URL"] = sim.url
    try:
        page = logged_in("officer").get("/integrations/sync?lang=en").get_data(as_text=True)
        status = app.test_cli_runner().invoke(main, ["sync", "status"]).output
    finally:
        app.config["PORTAL_URL"] = None
    assert page.count("unreachable since") == 1
    assert "14 rows waiting." in page  # the organisation, the product and 12 records
    assert "the waiting rows are held back" in page
    assert "Connection" not in page.split('id="failing"')[1]  # no row listed as failing
    assert "circuit portal\topen for" in status
    assert "oldest waiting\t" in status and "delivery rate\t" in status


def redis_url() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 6379), 0.5).close()
    except OSError:
        return None
    return "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("storage", ["database", "redis"])
def test_workers_share_one_pace_and_no_row_parks_for_429(
    own_app: Flask, simulator: Callable[..., Any], storage: str
) -> None:
    """A portal limited to 20 requests/s, records it decides only after 0.6 s (so they
    are polled several times), two workers (one on SQLite), and a retry period so short
    that a 429 counted as a failure would park rows: they share the pace (through
    PostgreSQL's row or Redis), none is parked, and the portal hardly ever says 429."""
    from registry.services import save_organisation

    if storage == "redis":
        url = redis_url()
        if url is None:
            pytest.skip("no Redis on 127.0.0.1:6379")
        own_app.config["RATELIMIT_STORAGE_URI"] = url
    with own_app.app_context(), commit_boundary():
        org = save_organisation(
            {"name": "HTX Phượng Sơn", "kind": "cooperative", "tax_code": "2400123456"}
        )
        lychee_batches(org.id, 20)
    sim = simulator(rate_limit=20, accept_after=0.6)
    with own_app.app_context():
        several = db.engine(own_app).dialect.name == "postgresql"
    settings = replace(FAST, retry_for=0.05, poll_first=0.15, poll_max=0.2)
    paces = [pace_for(own_app, "portal", 20) for _ in range(2 if several else 1)]
    workers = [
        SyncWorker(own_app, sim.client(pace), name=f"w{n}", settings=settings, batch_size=10)
        for n, pace in enumerate(paces)
    ]
    threads = [
        threading.Thread(target=w.run, kwargs={"once": True, "idle_sleep": 0.01}) for w in workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for pace in paces:
        pace.close()
    outbox = rows(own_app)
    assert {r.state for r in outbox} == {OutboxState.DONE}  # none parked
    assert len(sim.state.records) == 20
    assert sum(w.stats.polled for w in workers) > 20  # polled, some more than once
    assert sim.state.throttled <= 2, sim.state.throttled
    if several:
        assert all(w.stats.sent for w in workers)


def test_429_answers_never_park_a_row(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    """Every call answered 429 for longer than the retry period: rows wait, none parks."""
    in_tx(lambda: lychee_batches(producer, 5))
    sim = simulator(throttle_rate=1.0)
    threading.Timer(0.4, lambda: setattr(sim.faults, "throttle_rate", 0.0)).start()
    # The simulator's Retry-After is 1 s; the rows wait it out.
    worker = SyncWorker(app, sim.client(), settings=replace(FAST, retry_for=0.05))
    worker.run(once=True, idle_sleep=0.01)
    assert {r.state for r in rows(app)} == {OutboxState.DONE}
    assert worker.stats.throttled > 0 and worker.stats.parked == 0


def test_events_on_accepted_batches_update_their_records(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    """50 accepted records, then a shipment recorded on each batch: the portal holds 50
    records, each updated once to revision 2 with the new stage, none duplicated; and
    reconciliation, at the portal's own limit, finds no difference and no 429."""
    from nguon.cli import main

    batch_ids = in_tx(lambda: lychee_batches(producer, 50))
    sim = simulator(rate_limit=100)
    pace = pace_for(app, "portal", 100)  # the worker's and reconciliation's one pace
    SyncWorker(app, sim.client(pace), settings=FAST).run(once=True, idle_sleep=0.005)
    assert len(sim.state.records) == 50
    in_tx(lambda: record_event(batch_ids, producer))
    SyncWorker(app, sim.client(pace), settings=FAST).run(once=True, idle_sleep=0.005)
    pace.close()

    records = list(sim.state.records.values())
    assert len(records) == 50
    assert {r["revision"] for r in records} == {2}
    assert all([s["stage"] for s in r["body"]["stages"]] == ["shipping"] for r in records)
    assert max(len([c for c in records if c["body"]["trace_code"] == r["body"]["trace_code"]])
               for r in records) == 1  # fmt: skip
    updates = [r for r in rows(app) if r.kind == "trace_record" and r.method == "PUT"]
    assert len(updates) == 50 and {r.state for r in updates} == {OutboxState.DONE}
    assert {r.revision for r in updates} == {2}

    app.config.update(PORTAL_URL=sim.url, PORTAL_CLIENT_SECRET="secret", PORTAL_RATE_LIMIT=100)
    try:
        result = app.test_cli_runner().invoke(main, ["sync", "reconcile", "--restart"])
    finally:
        app.config.update(PORTAL_URL=None, PORTAL_RATE_LIMIT=20.0)
    assert result.exit_code == 0, result.output
    assert "0 difference(s)" in result.output
    assert sim.state.throttled == 0  # all of it within the portal's rate limit


def test_unsent_changes_coalesce_into_one_update(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    """Three changes to a delivered batch before the worker runs again: one update,
    carrying all of them."""
    from traceability.models import Batch

    (batch_id,) = in_tx(lambda: lychee_batches(producer, 1))
    sim = simulator()
    SyncWorker(app, sim.client(), settings=FAST).run(once=True)
    in_tx(lambda: record_event([batch_id], producer, "pack", 8))
    in_tx(lambda: record_event([batch_id], producer, "ship", 9))

    def correct() -> None:
        db.session.get(Batch, batch_id).quantity = 12

    in_tx(correct)
    waiting = [r for r in rows(app) if r.state == OutboxState.PENDING]
    assert [(r.kind, r.record_id) for r in waiting] == [("trace_record", str(batch_id))]
    SyncWorker(app, sim.client(), settings=FAST).run(once=True)
    (record,) = sim.state.records.values()
    assert record["revision"] == 2
    assert [s["stage"] for s in record["body"]["stages"]] == ["packing", "shipping"]
    assert record["body"]["quantity"]["value"] == 12


def test_a_correction_an_error_declaration_and_a_void_each_update_the_record(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    from traceability import labels
    from traceability.models import Batch, EpcisEvent, LabelKind, LabelRun

    batch_ids = in_tx(lambda: lychee_batches(producer, 1))
    (batch_id,) = batch_ids
    in_tx(lambda: record_event(batch_ids, producer, "pack", 8))

    def issue() -> int:
        return labels.issue_run(db.session.get(Batch, batch_id), LabelKind.ITEM, 4, 1).id

    run_id = in_tx(issue)
    sim = simulator()
    worker = SyncWorker(app, sim.client(), settings=FAST)
    worker.run(once=True)
    (record,) = sim.state.records.values()
    assert record["body"]["serials"] == {"count": 4} and len(record["body"]["stages"]) == 1

    def declare_error() -> None:  # EPCIS 2.0: the event is declared erroneous in place
        event = db.session.scalars(select(EpcisEvent)).one()
        declared = {"declarationTime": "2026-06-13T08:00:00+07:00", "reason": "incorrect_data"}
        event.document = {**event.document, "errorDeclaration": declared}

    def void_two() -> None:
        run = db.session.get(LabelRun, run_id)
        serials = [label.serial for label in labels.run_labels(run)][:2]
        labels.void_labels(run, "torn in the packing house", serials)

    for change, check in (
        (declare_error, lambda body: body["stages"] == []),
        (void_two, lambda body: body["serials"] == {"count": 2}),
    ):
        in_tx(change)
        worker.run(once=True)
        (record,) = sim.state.records.values()
        assert check(record["body"]), record["body"]
    assert record["revision"] == 3
    assert len(sim.state.records) == 1


def test_an_update_heals_a_wrong_revision_and_a_lost_record(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    """409 revision_conflict: sent again as the portal's next revision. 404 (the portal
    lost the record): sent anew as a new record. No officer is needed for either."""
    batch_ids = in_tx(lambda: lychee_batches(producer, 2))
    sim = simulator()
    worker = SyncWorker(app, sim.client(), settings=FAST)
    worker.run(once=True)

    def forget() -> None:
        held = db.session.get(PortalRecord, ("trace_record", str(batch_ids[0])))
        held.revision = 5  # our idea of the revision went wrong

    in_tx(forget)
    lost = db_remote_id(app, batch_ids[1])
    sim.state.records.pop(lost)  # the portal lost the other record
    in_tx(lambda: record_event(batch_ids, producer))
    worker.run(once=True)
    assert {r.state for r in rows(app)} == {OutboxState.DONE}
    first = sim.state.records[db_remote_id(app, batch_ids[0])]
    assert first["revision"] == 2 and first["body"]["stages"]
    again = sim.state.records[db_remote_id(app, batch_ids[1])]
    assert db_remote_id(app, batch_ids[1]) != lost and again["revision"] == 1


def db_remote_id(app: Flask, batch_id: int) -> str:
    with app.app_context():
        return db.session.get(PortalRecord, ("trace_record", str(batch_id))).remote_id


def test_refused_credentials_park_one_row_and_hold_the_rest(
    app: Flask,
    simulator: Callable[..., Any],
    in_tx: Callable[..., Any],
    producer: int,
    logged_in: Callable[..., Any],
) -> None:
    """A wrong client secret can never succeed: the row that met it is parked at once,
    the others wait (not parked one by one), and the page says what to check."""
    from integrations.portal import PortalClient

    in_tx(lambda: lychee_batches(producer, 3))
    sim = simulator()
    wrong = PortalClient(sim.url, "nguon", "not the secret")
    worker = SyncWorker(app, wrong, settings=replace(FAST, probe_every=60))
    worker.stop.set()
    for row_id in worker.lease(20, ["portal"]):
        worker.process(row_id)
    parked = [r for r in rows(app) if r.state == OutboxState.PARKED]
    assert len(parked) == 1 and "refused our credentials" in parked[0].last_error
    assert worker.breakers["portal"].state.circuit == "refused"
    # The product and the three records wait, unsent, for the credentials to be fixed.
    assert len([r for r in rows(app) if r.state == OutboxState.PENDING]) == 4
    page = logged_in("officer").get("/integrations/sync?lang=en").get_data(as_text=True)
    assert "refuses our credentials since" in page and "NGUON_PORTAL_CLIENT_SECRET" in page
