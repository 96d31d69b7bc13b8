"""Portal sync throughput against the simulator's own capacity, in the same run.

1. Capacity: one client posting trace records to the simulator as fast as it answers
   (one connection, like the worker) — records/s.
2. The sync worker delivering N batches' records (organisation and product first, then
   every trace record, polled until accepted), with no faults and with the fault mix of
   issue 6 (30 % 5xx, 10 % 429, 10 % answers lost after commit, tokens expiring every 2 s).
   Every call waits for its slot in the shared pace (the database's on PostgreSQL), set
   to the simulator's limit, and a 429's Retry-After (1 s) holds every call back: with
   429s at random, one call in ten, that pause is most of the fault mix's time, so the
   same mix is also run without them.
3. An outage: the simulator (in this process, so that it keeps what it stored) is
   stopped — connections refused — once a fifth of the records have arrived, for
   ``--outage`` seconds, then started again. Reported: the calls that failed while it was
   down, the probes, how long the backlog took to drain once it was back, parked rows and
   duplicates (both must be 0).

The worker's time constants are shortened (backoff from 10 ms to 1 s, probes every 0.5 s)
so that a run takes seconds; the defaults (1 s to 10 min, 30 s) scale the same way.

    .venv/bin/python bench/sync_bench.py [--records 1000] [--database postgresql|sqlite]
                                         [--rounds 3] [--outage 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Before the imports below: one of them puts site-packages first on sys.path, where
# gs1-compression installed a top-level `tests` package of its own.
from tests.net import free_port  # noqa: E402

# isort: split

import threading  # noqa: E402

import requests  # noqa: E402

from integrations.pace import pace_for  # noqa: E402
from integrations.portal import Outcome, PortalClient  # noqa: E402
from integrations.worker import SyncSettings, SyncWorker  # noqa: E402
from nguon import create_app  # noqa: E402
from nguon.db import commit_boundary, db  # noqa: E402

SETTINGS = SyncSettings(
    retry_for=3600, backoff_base=0.01, backoff_max=1.0, circuit_failures=5, probe_every=0.5,
    poll_first=0.05, poll_max=1.0,
)  # fmt: skip
UNLIMITED = 1_000_000  # requests/s: the simulator's limit here, and so the worker's pace


def start_simulator(*flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "nguon"),
            "portal-sim",
            "--port",
            str(port),
            "--rate-limit",
            str(UNLIMITED),
            *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NGUON_INSTANCE_PATH": tempfile.mkdtemp()},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):  # a loaded machine may take a while to start it
        try:
            requests.get(url + "/__sim/stats", timeout=0.2)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("simulator did not start")


def capacity(url: str, count: int) -> float:
    client = PortalClient(url, "nguon", "secret")
    client.call("PUT", "/api/v1/organizations/2400999999", {"name": "Bench"}, str(uuid.uuid4()))
    client.call(
        "PUT",
        "/api/v1/products/08930000000019",
        {"name": "Vải", "producer_tax_code": "2400999999"},
        str(uuid.uuid4()),
    )
    started = time.perf_counter()
    for n in range(count):
        body = {
            "trace_code": f"https://bench/01/08930000000019/10/C{n}",
            "gtin": "08930000000019",
            "lot": f"C{n}",
            "producer_tax_code": "2400999999",
            "production_date": "2026-06-10",
        }
        outcome = client.call("POST", "/api/v1/trace-records", body, str(uuid.uuid4()))
        assert outcome.kind == "ok", outcome
    return count / (time.perf_counter() - started)


def database(kind: str, work: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{work / 'sync.db'}"
    from tests.conftest import ensure_postgres_database

    url = "postgresql+psycopg://postgres@127.0.0.1:5432/nguon_bench_sync"
    ensure_postgres_database(url, fresh=True)
    return url


def prepared_app(kind: str, records: int) -> Any:
    from alembic import command

    from nguon.migrate import alembic_config
    from registry.services import save_organisation
    from tests.factories import lychee_batches

    work = Path(tempfile.mkdtemp(prefix="nguon-sync-bench-"))
    url = database(kind, work)
    os.environ["NGUON_INSTANCE_PATH"] = str(work / "instance")
    app = create_app({"DATABASE_URL": url})
    command.upgrade(alembic_config(url), "head")
    with app.app_context(), commit_boundary():
        org = save_organisation(
            {"name": "HTX Bench", "kind": "cooperative", "tax_code": "2400123456"}
        )
        lychee_batches(org.id, records, lot_prefix="B")
    return app


def deliver(kind: str, url: str, records: int) -> tuple[float, Any]:
    app = prepared_app(kind, records)
    pace = pace_for(app, "portal", UNLIMITED)
    client = PortalClient(url, "nguon", "secret", pace=pace)
    worker = SyncWorker(app, client, settings=SETTINGS, batch_size=50)
    started = time.perf_counter()
    stats = worker.run(once=True, idle_sleep=0.005)
    elapsed = time.perf_counter() - started
    delivered = requests.get(url + "/__sim/stats", timeout=5).json()
    assert delivered["records"] == records and delivered["duplicate_creations"] == 0, delivered
    assert stats.parked == 0, stats
    pace.close()
    db.dispose(app)
    return records / elapsed, stats


class Counting(PortalClient):
    """The portal client, counting the calls that failed (connection refused)."""

    failed = 0

    def call(self, *args: Any, **kwargs: Any) -> Outcome:
        outcome = super().call(*args, **kwargs)
        if outcome.kind == "retry":
            self.failed += 1
        return outcome


def outage(kind: str, records: int, seconds: float) -> dict[str, Any]:
    from integrations.simulator import Faults
    from tests.integrations.conftest import Simulator
    from tests.integrations.conftest import outbox_rows as rows

    app = prepared_app(kind, records)
    sim = Simulator(Faults(rate_limit=UNLIMITED, accept_after=0.0))
    pace = pace_for(app, "portal", UNLIMITED)
    client = Counting(sim.url, "nguon", "secret", pace=pace)
    worker = SyncWorker(app, client, settings=SETTINGS, batch_size=50)
    thread = threading.Thread(target=worker.run, kwargs={"once": True, "idle_sleep": 0.005})
    thread.start()
    while len(sim.state.records) < records // 5:
        time.sleep(0.001)
    sim.stop()
    stopped_with = len(sim.state.records)
    time.sleep(seconds)
    failed_while_down, probes_while_down = client.failed, worker.stats.probes
    sim.start()
    back = time.perf_counter()
    thread.join()
    drained = time.perf_counter() - back
    codes = [r["body"]["trace_code"] for r in sim.state.records.values()]
    parked = sum(r.state == "parked" for r in rows(app))
    sim.close()
    pace.close()
    db.dispose(app)
    assert len(codes) == len(set(codes)) == records and parked == 0
    return {
        "stopped_with": stopped_with,
        "failed": failed_while_down,
        "probes": probes_while_down,
        "drained": drained,
        "after": (records - stopped_with) / drained,
        "parked": parked,
        "duplicates": len(codes) - len(set(codes)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds the portal is down")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="capacity and no-fault runs, alternated; the medians are shown",
    )
    args = parser.parse_args()
    # The machine is shared and its load moves: capacity and the no-fault worker are
    # measured by turns, and each is the median of its rounds.
    capacities, clean = [], []
    for _ in range(args.rounds):
        sim, url = start_simulator()
        try:
            capacities.append(capacity(url, args.records))
        finally:
            sim.terminate()
            sim.wait()
        sim, url = start_simulator()
        try:
            clean.append(deliver(args.database, url, args.records))
        finally:
            sim.terminate()
            sim.wait()
    base = statistics.median(capacities)
    rate = statistics.median_low(r for r, _ in clean)  # one of the runs, for its figures
    runs = [("no faults", rate, next(st for r, st in clean if r == rate))]
    for label, flags in (
        (
            "fault mix",
            ("--error-rate", "0.3", "--throttle-rate", "0.1", "--drop-after-commit", "0.1",
             "--token-ttl", "2"),
        ),
        (
            "fault mix without the random 429s",
            ("--error-rate", "0.3", "--drop-after-commit", "0.1", "--token-ttl", "2"),
        ),
    ):  # fmt: skip
        sim, url = start_simulator(*flags)
        try:
            runs.append((label, *deliver(args.database, url, args.records)))
        finally:
            sim.terminate()
            sim.wait()
    down = outage(args.database, args.records, args.outage)
    print(f"\n## Sync of {args.records:,} trace records ({args.database}; no-fault figures: "
          f"median of {args.rounds} alternated rounds)")  # fmt: skip
    print("| run | records/s | vs simulator capacity | retries | 429s | polls | parked |")
    print("|---|---|---|---|---|---|---|")
    print(f"| simulator capacity (one client, POST only) | {base:,.0f} | 100% | – | – | – | – |")
    for label, rate, stats in runs:
        share = rate / base
        print(f"| worker, {label} | {rate:,.0f} | {share:.0%} | {stats.retried} | "
              f"{stats.throttled} | {stats.polled} | {stats.parked} |")  # fmt: skip
    print(f"\n## Outage: the portal stopped for {args.outage:g} s after "
          f"{down['stopped_with']:,} of {args.records:,} records")  # fmt: skip
    print("| calls failed while down | probes while down | drained after return | "
          "records/s after return | parked | duplicates |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print(f"| {down['failed']} | {down['probes']} | {down['drained']:.2f} s | "
          f"{down['after']:,.0f} | {down['parked']} | {down['duplicates']} |")  # fmt: skip


if __name__ == "__main__":
    main()
