"""Reconciliation: paced, resumable, and able to repair what it finds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from integrations import reconcile
from integrations.models import OutboxState, PortalRecord
from integrations.worker import SyncWorker
from nguon.cli import main
from nguon.db import db
from tests.factories import lychee_batches
from tests.integrations.conftest import FAST
from tests.integrations.conftest import outbox_rows as rows
from tests.integrations.test_healing import record_event


@pytest.fixture
def delivered(
    app: Flask,
    simulator: Callable[..., Any],
    in_tx: Callable[..., Any],
    make_org: Callable[..., int],
) -> Iterator[tuple[Any, list[int], int]]:
    """Batches whose records the portal accepted, and the app pointed at that portal."""
    producer = make_org(name="HTX Vải thiều Phượng Sơn", tax_code="2400123456")
    batch_ids = in_tx(lambda: lychee_batches(producer, 30))
    sim = simulator()
    SyncWorker(app, sim.client(), settings=FAST).run(once=True)
    app.config.update(PORTAL_URL=sim.url, PORTAL_CLIENT_SECRET="secret", PORTAL_RATE_LIMIT=1000)
    try:
        yield sim, batch_ids, producer
    finally:
        app.config.update(PORTAL_URL=None, PORTAL_RATE_LIMIT=20.0)


def reconcile_cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(main, ["sync", "reconcile", *args])


def test_an_interrupted_run_resumes_where_it_stopped(
    app: Flask, delivered: tuple[Any, list[int], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portal goes down after 10 look-ups: the run stops, saying how to resume; the
    next run asks only the 20 batches left (each batch compared exactly once)."""
    sim, _batch_ids, _ = delivered
    monkeypatch.setattr(reconcile, "BACKOFF", 0.001)
    view = sim.app.view_functions["find_records"]
    answered: list[str] = []

    def failing_after_ten(*args: Any, **kwargs: Any) -> Any:
        response = view(*args, **kwargs)
        answered.append("ok")
        if len(answered) == 10:
            sim.faults.down = True  # the answers after this one are 503s
        return response

    sim.app.view_functions["find_records"] = failing_after_ten
    first = reconcile_cli(app, "--restart")
    assert first.exit_code == 1
    assert "run `nguon sync reconcile` again to resume" in first.output
    sim.faults.down = False
    second = reconcile_cli(app)
    assert second.exit_code == 0, second.output
    assert "resuming run" in second.output and "20 batch(es) left" in second.output
    assert "0 difference(s)" in second.output
    assert len(answered) == 30  # no batch asked twice


def test_repair_resends_what_the_portal_lost_and_lists_duplicates(
    app: Flask,
    delivered: tuple[Any, list[int], int],
    in_tx: Callable[..., Any],
    tmp_path: Path,
) -> None:
    sim, batch_ids, producer = delivered
    lost = remote_id(app, batch_ids[0])
    sim.state.records.pop(lost)  # the portal lost a record
    second = sim.state.records[remote_id(app, batch_ids[1])]["body"]
    extra = sim.client().call("POST", "/api/v1/trace-records", second, "dup-key").body["record_id"]

    def unknown() -> None:  # an answer lost for good: we never learnt the third's id
        db.session.delete(db.session.get(PortalRecord, ("trace_record", str(batch_ids[2]))))

    third = remote_id(app, batch_ids[2])
    in_tx(unknown)
    csv_path = tmp_path / "duplicates.csv"
    result = reconcile_cli(app, "--restart", "--repair", "--duplicates-csv", str(csv_path))
    assert result.exit_code == 0, result.output
    assert f"missing on portal\tbatch {batch_ids[0]}" in result.output
    keep = remote_id(app, batch_ids[1])
    assert f"duplicated on portal\tbatch {batch_ids[1]}" in result.output
    assert f"keep {keep}\tremove {extra}" in result.output
    assert f"on portal, not known here\tbatch {batch_ids[2]}" in result.output
    assert "3 difference(s)" in result.output
    assert csv_path.read_text().splitlines()[1].split(",")[1:3] == [keep, extra]
    assert remote_id(app, batch_ids[2]) == third  # adopted

    # The missing record was queued again; sent, it is a new record. An update of the
    # adopted one is an update, not another record.
    in_tx(lambda: record_event([batch_ids[2]], producer))
    SyncWorker(app, sim.client(), settings=FAST).run(once=True)
    assert {r.state for r in rows(app)} <= {OutboxState.DONE}
    assert remote_id(app, batch_ids[0]) not in (None, lost)
    assert sim.state.records[third]["revision"] == 2
    again = reconcile_cli(app, "--restart")
    assert "1 difference(s)" in again.output  # the duplicate, until the operator removes it
    sim.state.records.pop(extra)
    assert "0 difference(s)" in reconcile_cli(app, "--restart").output


def remote_id(app: Flask, batch_id: int) -> str | None:
    with app.app_context():
        held = db.session.get(PortalRecord, ("trace_record", str(batch_id)))
        return held.remote_id if held else None
