"""The outbox and the sync worker against the portal simulator."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from integrations.models import OutboxRow, OutboxState
from integrations.worker import SyncSettings, SyncWorker
from nguon.db import db
from tests.factories import lychee_batches
from tests.integrations.conftest import FAST
from tests.integrations.conftest import outbox_rows as rows


def worker(app: Flask, sim: Any, settings: SyncSettings = FAST, **options: Any) -> SyncWorker:
    return SyncWorker(app, sim.client(), settings=settings, **options)


@pytest.fixture
def producer(make_org: Callable[..., int]) -> int:
    return make_org(name="HTX Vải thiều Phượng Sơn", tax_code="2400123456")


def make_batches(in_tx: Callable[..., Any], producer: int, count: int) -> list[int]:
    return in_tx(lambda: lychee_batches(producer, count))


def test_a_rolled_back_change_enqueues_nothing(app: Flask, in_tx: Callable[..., Any]) -> None:
    from registry.models import Organisation

    def failing() -> None:
        db.session.add(Organisation(name="HTX tạm", kind="cooperative", tax_code="2400000009"))
        db.session.flush()
        assert db.session.scalar(select(func.count(OutboxRow.id))) == 1  # written with the change
        raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        in_tx(failing)
    assert rows(app) == []
    in_tx(
        lambda: db.session.add(
            Organisation(name="HTX thật", kind="cooperative", tax_code="2400000010")
        )
    )
    assert [(r.kind, r.state) for r in rows(app)] == [("organisation", "pending")]


def test_records_arrive_once_despite_faults(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    """30 % 5xx, 10 % 429, 10 % answers lost after commit, tokens expiring every 2 s:
    1,000 trace records all end accepted, each stored exactly once by the portal."""
    make_batches(in_tx, producer, 1000)
    sim = simulator(error_rate=0.3, throttle_rate=0.1, drop_after_commit=0.1, token_ttl=2)
    stats = worker(app, sim, batch_size=50).run(once=True, idle_sleep=0.005)
    states = {r.state for r in rows(app)}
    assert states == {OutboxState.DONE}, [r.last_error for r in rows(app) if r.state != "done"][:3]
    assert len(sim.state.records) == 1000
    codes = [r["body"]["trace_code"] for r in sim.state.records.values()]
    assert len(set(codes)) == 1000  # exactly once each
    assert not [k for k, n in sim.state.creations.items() if n > 1]
    assert stats.retried > 100  # the faults really happened
    assert len(sim.state.organizations) == 1 and len(sim.state.products) == 1


def test_a_portal_that_is_down_then_back_drains_the_backlog(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    make_batches(in_tx, producer, 20)
    sim = simulator(down=True)
    threading.Timer(0.5, lambda: setattr(sim.faults, "down", False)).start()
    started = time.monotonic()
    worker(app, sim).run(once=True, idle_sleep=0.01)
    assert time.monotonic() - started >= 0.5
    assert {r.state for r in rows(app)} == {OutboxState.DONE}
    assert len(sim.state.records) == 20
    assert max(r.attempts for r in rows(app)) > 1


def test_a_validation_error_parks_the_row_without_retrying(
    app: Flask,
    simulator: Callable[..., Any],
    in_tx: Callable[..., Any],
    make_org: Callable[..., int],
) -> None:
    """A producer without a tax code: its organisation cannot be sent (parked), and the
    portal refuses the product naming the field; neither is retried."""
    nameless = make_org(name="Hộ ông Ba", kind="household")
    from traceability import services

    in_tx(
        lambda: services.save_product(
            {"gtin": "8930000000019", "name": "Vải", "producer_id": nameless}
        )
    )
    sim = simulator()
    worker(app, sim).run(once=True)
    by_kind = {r.kind: r for r in rows(app)}
    org, product = by_kind["organisation"], by_kind["product"]
    assert org.state == product.state == OutboxState.PARKED
    assert org.attempts == 0 and "has no tax code" in org.last_error
    assert product.attempts == 1
    assert {
        "field": "producer_tax_code",
        "code": "invalid",
        "message": "is required",
    } in product.reasons


def test_rejected_records_keep_the_reasons_and_can_be_resent(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    from integrations.worker import resend

    make_batches(in_tx, producer, 1)
    sim = simulator(reject_rate=1.0)
    worker(app, sim).run(once=True)
    record = next(r for r in rows(app) if r.kind == "trace_record")
    assert record.state == OutboxState.REJECTED
    assert record.reasons == ["stage list incomplete (simulated rejection)"]
    sim.faults.reject_rate = 0.0

    def again() -> None:
        resend(db.session.get(OutboxRow, record.id))

    in_tx(again)
    worker(app, sim).run(once=True)
    records = [r for r in rows(app) if r.kind == "trace_record"]
    assert [r.state for r in records] == [OutboxState.REJECTED, OutboxState.DONE]
    assert records[0].idempotency_key != records[1].idempotency_key


def test_dependencies_go_first(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    make_batches(in_tx, producer, 3)
    sim = simulator()
    order: list[str] = []
    original = sim.app.view_functions["put_organization"]

    def spy(*args: Any, **kwargs: Any) -> Any:
        order.append("organisation")
        return original(*args, **kwargs)

    sim.app.view_functions["put_organization"] = spy
    worker(app, sim).run(once=True)
    assert order == ["organisation"]
    assert len(sim.state.records) == 3


def test_officer_page_retries_a_parked_row(
    app: Flask,
    simulator: Callable[..., Any],
    in_tx: Callable[..., Any],
    producer: int,
    logged_in: Callable[..., Any],
    make_user: Callable[..., Any],
) -> None:
    from tests.conftest import csrf_from

    batches = make_batches(in_tx, producer, 1)
    sim = simulator(error_rate=1.0)
    # A portal that answers 5xx to these rows for longer than the retry period, without
    # ever looking down as a whole (the circuit would otherwise hold the rows back).
    hopeless = replace(FAST, retry_for=0.1, circuit_failures=1000)
    worker(app, sim, hopeless).run(once=True, idle_sleep=0.005)
    parked = [r for r in rows(app) if r.state == OutboxState.PARKED]
    assert parked and "kept failing for" in parked[0].last_error
    client = logged_in("officer")
    page = client.get("/integrations/sync").get_data(as_text=True)
    assert "kept failing for" in page
    batch_page = client.get(f"/traceability/batches/{batches[0]}").get_data(as_text=True)
    assert "parked for an officer" in batch_page or "chờ cán bộ" in batch_page
    token = csrf_from(page)
    for row in parked:
        assert (
            client.post(
                f"/integrations/sync/{row.id}/retry", data={"csrf_token": token}
            ).status_code
            == 302
        )
    sim.faults.error_rate = 0.0
    worker(app, sim).run(once=True)
    assert {r.state for r in rows(app)} == {OutboxState.DONE}
    from tests.conftest import login

    stranger = app.test_client()
    login(stranger, make_user("cooperative")[1])
    assert stranger.get("/integrations/sync").status_code == 403


def test_status_and_reconcile_commands(
    app: Flask, simulator: Callable[..., Any], in_tx: Callable[..., Any], producer: int
) -> None:
    from nguon.cli import main

    make_batches(in_tx, producer, 3)
    sim = simulator()
    worker(app, sim).run(once=True)
    app.config["PORTAL_URL"], app.config["PORTAL_CLIENT_SECRET"] = sim.url, "secret"
    try:
        status = app.test_cli_runner().invoke(main, ["sync", "status"])
        assert "done\t5" in status.output  # organisation, product, 3 records
        clean = app.test_cli_runner().invoke(main, ["sync", "reconcile"])
        assert clean.exit_code == 0 and "0 difference(s)" in clean.output
        sim.state.records.pop(next(iter(sim.state.records)))  # the portal lost one
        found = app.test_cli_runner().invoke(main, ["sync", "reconcile"])
        assert "missing on portal" in found.output and "1 difference(s)" in found.output
    finally:
        app.config["PORTAL_URL"] = None


def test_preloaded_and_single_payloads_are_the_same(
    app: Flask, in_tx: Callable[..., Any], producer: int
) -> None:
    """Batched sending loads many batches at once; the payload must not change."""
    from integrations import mapping
    from traceability import epcis, services
    from traceability.models import Batch

    batch_ids = make_batches(in_tx, producer, 3)

    def add_events() -> None:
        batch = db.session.get(Batch, batch_ids[1])
        for step in ("harvest", "pack"):
            event = services.guided_event(
                step, batch, {"event_time": dt.datetime(2026, 6, 10, 8, tzinfo=dt.UTC)}
            )
            epcis.store_events([event], [], organisation_id=producer)

    in_tx(add_events)
    with app.app_context():
        single = [mapping.trace_record(str(i)).body for i in batch_ids]
    with app.app_context():
        mapping.preload("trace_record", [str(i) for i in batch_ids])
        batched = [mapping.trace_record(str(i)).body for i in batch_ids]
    assert single == batched
    assert [len(b["stages"]) for b in single] == [0, 2, 0]
