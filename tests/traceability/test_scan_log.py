"""Scans queued and written in batches (NGUON_SCAN_FLUSH_SECONDS > 0), on an app with a
database of its own: what the page shows before the write, the write itself and its
rules, a failed write retried, and the queue written when gunicorn stops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from nguon.db import commit_boundary, db
from tests.factories import issued_batch
from tests.net import free_port, wait_for_port
from traceability import scans
from traceability.models import CloneAlarm, Label, Scan


@pytest.fixture
def batched(own_app: Any) -> Any:
    """``own_app`` with scans queued for a minute (only explicit flushes write them)."""
    own_app.config["SCAN_FLUSH_SECONDS"] = 60.0
    issued_batch(own_app, items=3, lot=True)
    yield own_app
    log = own_app.extensions["nguon.scans"]
    log.close()  # the writer thread stops with the test


def paths(app: Any) -> dict[str, list[str]]:
    """The issued codes' paths, by kind (item, lot)."""
    from traceability.gs1 import DigitalLink

    links: dict[str, list[str]] = {}
    with app.app_context():
        for r in db.session.scalars(select(Label).order_by(Label.id)):
            links.setdefault(r.kind, []).append(
                DigitalLink(r.gtin, lot=r.batch.lot, serial=r.serial).path
            )
    return links


def written(app: Any) -> list[Scan]:
    with app.app_context():
        return list(db.session.scalars(select(Scan).order_by(Scan.id)))


def passport(client: Any, path: str) -> dict[str, Any]:
    response = client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 200
    return response.json


def test_queued_scans_count_on_the_page_and_are_written_in_one_go(batched: Any) -> None:
    client = batched.test_client()
    item = paths(batched)["item"][0]
    other = {"REMOTE_ADDR": "198.51.100.5"}  # another buyer
    first = passport(client, item)
    second = client.get(item, headers={"Accept": "application/json"}, environ_base=other).json
    assert (first["verdict"], second["verdict"]) == ("genuine", "scanned_before")
    assert second["scan_count"] == 2  # the queued first scan is counted already
    # Who scanned last counts while queued too: the other buyer again is not warned.
    again = client.get(item, headers={"Accept": "application/json"}, environ_base=other).json
    assert again["verdict"] == "scanned_by_you"
    client.get("/01/08930000000019/10/L00000/21/NEVERISSUED")  # an unknown code is logged too
    assert written(batched) == []  # nothing written yet: the scans wait in the queue

    assert batched.extensions["nguon.scans"].flush() == 4
    rows = written(batched)
    assert [s.verdict for s in rows] == ["genuine", "scanned_before", "scanned_by_you", "unknown"]
    assert all(len(s.ref) == 32 and len(s.fingerprint) == 32 for s in rows)
    with batched.app_context():
        label = db.session.get(Label, rows[0].label_id)
        assert label.scan_count == 3 and label.first_scan_at == rows[0].at
        assert label.last_scan_at == rows[2].at and label.scanned_by == rows[2].fingerprint
    fourth = passport(client, item)
    assert fourth["scan_count"] == 4  # now read from the database
    assert fourth["verdict"] == "scanned_before"  # the other buyer scanned it since


def test_odd_paths_are_written_as_they_came(batched: Any) -> None:
    """Whatever a scanned path holds (quotes, backslashes, commas, braces, NULL, Vietnamese),
    the batched write stores it exactly, unknown codes without a label."""

    from nguon.db import utcnow

    odd = [
        '/01/08930000000019/10/L"1/21/A\\B',
        "/01/08930000000019/10/{a,b}/21/NULL",
        "/01/08930000000019/10/Vải thiều/21/x y",
        "",
    ]
    log = batched.extensions["nguon.scans"]
    with batched.app_context():
        for path in odd:
            log.record(scans.PendingScan(scans.new_ref(), None, utcnow(), path, "unknown", "f"))
    assert log.flush() == len(odd)
    assert [(s.path, s.label_id, s.fingerprint) for s in written(batched)] == [
        (path, None, "f") for path in odd
    ]


def test_count_rules_run_when_the_batch_is_written(batched: Any) -> None:
    batched.config["CLONE_MAX_SCANS"] = 2
    client = batched.test_client()
    item, lot = paths(batched)["item"][1], paths(batched)["lot"][0]
    verdicts = [passport(client, item)["verdict"] for _ in range(3)]
    verdicts += [passport(client, lot)["verdict"] for _ in range(4)]
    assert "suspicious" not in verdicts  # the rules run with the write
    batched.extensions["nguon.scans"].flush()
    with batched.app_context():
        alarms = db.session.scalars(select(CloneAlarm).order_by(CloneAlarm.id)).all()
        assert [a.rule for a in alarms] == ["too_many_scans", "lot_over_units"]
        # Written in the officers' language, whatever the scanner's.
        assert alarms[0].detail == "mã đơn vị được quét 3 lần (quá 2 lần)"
        assert alarms[1].detail == "mã lô được quét 4 lần; chỉ có 3 đơn vị được sản xuất"
        assert len(alarms[0].scan_ids) == 3  # the written scans are the evidence
    assert passport(client, item)["verdict"] == "suspicious"


def test_a_failed_write_keeps_the_scans_and_is_tried_again(
    batched: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = batched.test_client()
    passport(client, paths(batched)["item"][2])
    real = scans.write_scans

    def broken(_batch: Any) -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(scans, "write_scans", broken)
    log = batched.extensions["nguon.scans"]
    assert log.flush() == 0
    assert written(batched) == [] and len(log._queue) == 1
    monkeypatch.setattr(scans, "write_scans", real)
    assert log.flush() == 1
    assert len(written(batched)) == 1


def test_a_place_can_be_shared_for_a_scan_still_queued(batched: Any) -> None:
    import re

    from registry.admin_units import current_units, load_units

    with batched.app_context(), commit_boundary():
        load_units(current_units())
    client = batched.test_client()
    html = client.get(paths(batched)["item"][0]).get_data(as_text=True)
    action = re.search(r'action="(/scans/[0-9a-f]{32}/place)"', html).group(1)
    province = re.search(r'<option value="(P\d+)">Thành phố Hà Nội</option>', html).group(1)
    assert written(batched) == []
    shared = client.post(action, data={"province": province})
    assert shared.status_code == 200
    assert "Thành phố Hà Nội" in shared.get_data(as_text=True)
    (scan,) = written(batched)
    assert scan.place == "Thành phố Hà Nội"
    assert (
        client.post("/scans/" + "f" * 32 + "/place", data={"province": province}).status_code == 404
    )


def test_gunicorn_stop_writes_the_queue(own_app: Any, tmp_path: Path) -> None:
    """SIGTERM to gunicorn: its workers write their queued scans before they exit."""
    issued_batch(own_app, items=5)
    port = free_port()
    env = {
        **os.environ,
        "NGUON_DATABASE_URL": own_app.config["DATABASE_URL"],
        "NGUON_INSTANCE_PATH": own_app.instance_path,
        "NGUON_SCAN_FLUSH_SECONDS": "60",  # nothing is written before the stop
        "XDG_RUNTIME_DIR": str(tmp_path),  # gunicorn 27's control socket: not a shared one
    }
    env.pop("NGUON_TEST_DATABASE_URL", None)
    process = subprocess.Popen(  # noqa: S603 - gunicorn from this venv, fixed arguments
        [str(Path(sys.executable).parent / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "20", "nguon:create_app()"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert wait_for_port(port), "gunicorn did not start"
        served = 0
        for path in paths(own_app)["item"] * 4:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as response:
                served += response.status == 200
        assert served == 20
        assert written(own_app) == []  # all 20 still queued in the workers
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        print(err)  # pytest shows it when the test fails
    assert process.returncode == 0, err
    rows = written(own_app)
    assert len(rows) == 20, err  # gunicorn's log says why, if not
    with own_app.app_context():
        counts = db.session.scalars(select(Label.scan_count)).all()
        assert sorted(counts) == [4] * 5, err
        assert db.session.scalar(select(func.count(Scan.id)).where(Scan.ref.is_(None))) == 0


def test_scan_refs_are_unguessable_and_sort_in_the_order_they_were_made() -> None:
    """Time first (so the unique index grows at its end), 80 random bits after it."""
    before = time.time_ns() // 1_000_000
    refs = [scans.new_ref() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", ref) for ref in refs)
    assert len(set(refs)) == len(refs)
    assert all(before <= int(ref[:12], 16) <= after for ref in refs)
    assert [ref[:12] for ref in refs] == sorted(ref[:12] for ref in refs)
    # The random part differs in each: no two share even their first 40 random bits.
    assert len({ref[12:22] for ref in refs}) == len(refs)
