"""Workers on their own database: two at once (PostgreSQL), a second refused (SQLite),
and a SIGTERM in the middle of a run."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from integrations.models import OutboxState
from integrations.worker import SyncWorker, WorkerRefused
from nguon.db import commit_boundary, db
from tests.factories import lychee_batches
from tests.integrations.conftest import FAST
from tests.integrations.conftest import outbox_rows as outbox


def seed(app: Any, batches: int) -> None:
    from registry.services import save_organisation

    with app.app_context(), commit_boundary():
        org = save_organisation(
            {"name": "HTX Phượng Sơn", "kind": "cooperative", "tax_code": "2400123456"}
        )
        lychee_batches(org.id, batches)


def test_two_workers_never_send_the_same_row(own_app: Any, simulator: Callable[..., Any]) -> None:
    seed(own_app, 200)
    sim = simulator(latency_ms=2)
    first = SyncWorker(own_app, sim.client(), name="w1", settings=FAST, batch_size=10)
    second = SyncWorker(own_app, sim.client(), name="w2", settings=FAST, batch_size=10)
    with own_app.app_context():
        dialect = db.engine(own_app).dialect.name
    if dialect == "sqlite":
        first.acquire_single_worker_lock()
        with pytest.raises(WorkerRefused, match="another sync worker is running"):
            second.acquire_single_worker_lock()
        first._lock_file.close()
        return
    threads = [
        threading.Thread(target=w.run, kwargs={"once": True, "idle_sleep": 0.01})
        for w in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {r.state for r in outbox(own_app)} == {OutboxState.DONE}
    assert len(sim.state.records) == 200
    assert set(sim.state.key_hits.values()) == {1}  # no row was sent twice
    assert first.stats.sent > 0 and second.stats.sent > 0  # both really worked


def test_sigterm_mid_run_loses_nothing(
    own_app: Any, simulator: Callable[..., Any], tmp_path: Path
) -> None:
    # Rows go 20 to a bulk request: 100 rows at 150 ms a request take ~0.75 s; the signal,
    # sent as soon as the first request lands, always arrives with most rows still to go.
    seed(own_app, 100)
    sim = simulator(latency_ms=150)
    env = {
        **os.environ,
        "NGUON_DATABASE_URL": own_app.config["DATABASE_URL"],
        "NGUON_INSTANCE_PATH": own_app.instance_path,
        "NGUON_PORTAL_URL": sim.url,
        "NGUON_PORTAL_CLIENT_SECRET": "secret",
        "NGUON_PORTAL_RATE_LIMIT": "100000",  # the simulator's limit in these tests
        "NGUON_SYNC_BACKOFF_BASE": "0.005",
        "NGUON_SYNC_BACKOFF_MAX": "0.05",
    }
    env.pop("NGUON_TEST_DATABASE_URL", None)
    process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(Path(sys.executable).parent / "nguon"), "sync", "run"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not sim.state.records:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    rows = outbox(own_app)
    assert all(r.lease_owner is None for r in rows)  # leases released
    assert 0 < len(sim.state.records) < 100  # stopped in the middle
    assert {r.state for r in rows} <= {OutboxState.DONE, OutboxState.SENT, OutboxState.PENDING}

    SyncWorker(own_app, sim.client(), settings=FAST).run(once=True, idle_sleep=0.01)
    assert {r.state for r in outbox(own_app)} == {OutboxState.DONE}
    codes = [r["body"]["trace_code"] for r in sim.state.records.values()]
    assert len(codes) == len(set(codes)) == 100


def test_events_are_pushed_to_another_epcis_repository(
    app: Any,
    own_app: Any,
    simulator: Callable[..., Any],
    in_tx: Callable[..., Any],
    make_org: Callable[..., int],
) -> None:
    """Captured events go through the same outbox to another repository's /capture."""
    from integrations.portal import EpcisPushClient
    from nguon import services as accounts
    from nguon.models import User
    from tests.browser import live_server
    from traceability import epcis, services

    with own_app.app_context(), commit_boundary():
        receiver = accounts.create_user("repo@buyer.example", "officer", password="long enough pw")
        token = accounts.create_token(db.session.get(User, receiver.id), "push").secret
    org = make_org(tax_code="2400123456")
    app.config["EPCIS_PUSH_URL"] = "http://unused"  # switches the push on while capturing
    try:

        def capture() -> None:
            product = services.save_product(
                {"gtin": "8930000000019", "name": "Vải", "producer_id": org}
            )
            batch = services.save_batch({"product_id": product.id, "lot": "L1", "quantity": 5,
                                         "production_date": dt.date(2026, 6, 10)})  # fmt: skip
            for step in ("harvest", "pack"):
                event = services.guided_event(
                    step, batch, {"event_time": dt.datetime(2026, 6, 10, 6, tzinfo=dt.UTC)}
                )
                epcis.store_events([event], [], organisation_id=org)

        in_tx(capture)
    finally:
        app.config["EPCIS_PUSH_URL"] = None
    pushed = [r for r in outbox(app) if r.kind == "epcis_event"]
    assert len(pushed) == 2 and {r.target for r in pushed} == {"epcis"}
    sim = simulator()
    with live_server(own_app) as base:
        push = EpcisPushClient(base + "/epcis", token)
        SyncWorker(app, sim.client(), push, settings=FAST).run(once=True)
    assert {r.state for r in outbox(app)} == {OutboxState.DONE}
    with own_app.app_context():
        from traceability.models import EpcisEvent

        received = db.session.scalars(select(EpcisEvent.biz_step).order_by(EpcisEvent.id)).all()
    assert received == ["commissioning", "packing"]
