"""Portal sync throughput against the simulator's own capacity, in the same run.

1. Capacity: one client posting trace records to the simulator as fast as it answers
   (one connection, like the worker) — records/s.
2. The sync worker delivering N batches' records (organisation and product first, then
   every trace record, polled until accepted), with no faults and with the fault mix of
   issue 6 (30 % 5xx, 10 % 429, 10 % answers lost after commit, tokens expiring every 2 s).

    .venv/bin/python bench/sync_bench.py [--records 1000] [--database postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from integrations.portal import PortalClient  # noqa: E402
from integrations.worker import SyncWorker  # noqa: E402
from nguon import create_app  # noqa: E402
from nguon.db import commit_boundary, db  # noqa: E402
from tests.net import free_port  # noqa: E402


def start_simulator(*flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "nguon"),
            "portal-sim",
            "--port",
            str(port),
            "--rate-limit",
            "1000000",
            *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NGUON_INSTANCE_PATH": tempfile.mkdtemp()},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
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
    worker = SyncWorker(
        app, PortalClient(url, "nguon", "secret"), base_delay=0.01, max_attempts=100, batch_size=50
    )
    started = time.perf_counter()
    stats = worker.run(once=True, idle_sleep=0.005)
    elapsed = time.perf_counter() - started
    delivered = requests.get(url + "/__sim/stats", timeout=5).json()
    assert delivered["records"] == records and delivered["duplicate_creations"] == 0, delivered
    db.dispose(app)
    return records / elapsed, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    runs = []
    for label, flags in (
        ("no faults", ()),
        (
            "fault mix",
            (
                "--error-rate",
                "0.3",
                "--throttle-rate",
                "0.1",
                "--drop-after-commit",
                "0.1",
                "--token-ttl",
                "2",
            ),
        ),
    ):
        sim, url = start_simulator(*flags)
        try:
            cap = capacity(url, args.records) if not flags else None
            sim.terminate()
            sim.wait()
            sim, url = start_simulator(*flags)
            rate, stats = deliver(args.database, url, args.records)
            runs.append((label, cap, rate, stats))
        finally:
            sim.terminate()
            sim.wait()
    base = runs[0][1]
    print(f"\n## Sync of {args.records:,} trace records ({args.database})")
    print("| run | records/s | vs simulator capacity | retries | polls |\n|---|---|---|---|---|")
    print(f"| simulator capacity (one client, POST only) | {base:,.0f} | 100% | – | – |")
    for label, _cap, rate, stats in runs:
        share = rate / base
        print(f"| worker, {label} | {rate:,.0f} | {share:.0%} | {stats.retried} | {stats.polled} |")


if __name__ == "__main__":
    main()
