"""EPCIS capture throughput and query latency.

1. Capture: POST /epcis/capture of one document of 5,000 and of 10,000 events (no
   eventIDs, so every event hash is computed), until its job has finished (a large
   capture is stored outside the request; the bench polls ``/capture/{id}``), then the
   same document again (every event a duplicate). The baseline, measured in the same
   run: merely parsing and schema-validating the same document (the median of five
   runs, around the captures). "202 after": how long the capture request itself took
   (the part a serving timeout bounds; the job stores the events after it).
   ``--against ../old-checkout`` runs the same measurements with another checkout's code
   (its own ``.venv``) in a subprocess, on fresh databases, and prints both.
   ``--largest`` also captures a document at the advertised limit (25,000 events).
2. Query: GET /epcis/events with MATCH_epc and with a one-hour eventTime window over
   100,000 stored events (``--stored 0`` skips this part).

On SQLite and on PostgreSQL (when one answers). Requests go through the WSGI app
in-process (Flask's test client), so the figures are the application's own cost
without a network stack. Run:

    .venv/bin/python bench/epcis_bench.py [--sizes 5000,10000] [--stored 100000]
        [--against ../old-checkout] [--largest]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("EPCIS_BENCH_CODE") or str(Path(__file__).parent.parent))

from sqlalchemy import text

from nguon import create_app
from nguon.db import commit_boundary, db
from traceability import epcis

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
STEPS = ["commissioning", "packing", "shipping", "receiving", "inspecting"]
START = dt.datetime(2026, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def event(n: int, with_id: bool = False) -> dict[str, Any]:
    lot = f"LN2026-{n // 100:04d}"
    body: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": (START + dt.timedelta(minutes=n)).isoformat(),
        "eventTimeZoneOffset": "+07:00",
        "epcList": [f"https://id.gs1.org/01/08930000000019/10/{lot}/21/S{n:08d}"],
        "action": "OBSERVE",
        "bizStep": STEPS[n % len(STEPS)],
        "disposition": "in_progress",
        "readPoint": {"id": f"https://id.gs1.org/414/893000000{n % 1000:03d}9"},
        "quantityList": [
            {
                "epcClass": f"https://id.gs1.org/01/08930000000019/10/{lot}",
                "quantity": 10.0,
                "uom": "KGM",
            }
        ],
    }
    if with_id:
        body["eventID"] = f"urn:uuid:{uuid.UUID(int=n)}"
    return body


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": START.isoformat(),
        "epcisBody": {"eventList": events},
    }


def make_app(url: str, instance: Path) -> Any:
    os.environ["NGUON_INSTANCE_PATH"] = str(instance)
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench" * 10,
            "TESTING": True,
            "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
        }
    )
    from alembic import command

    from nguon.migrate import alembic_config

    command.upgrade(alembic_config(url), "head")
    return app


def officer_token(app: Any) -> dict[str, str]:
    from nguon import services
    from nguon.models import User

    with app.app_context(), commit_boundary():
        user = services.find_user("bench@nguon.vn") or services.create_user(
            "bench@nguon.vn", "officer", password="bench-password"
        )
        secret = services.create_token(db.session.get(User, user.id), f"b{time.time_ns()}").secret
    return {"Authorization": f"Bearer {secret}"}


def _capture(app: Any, client: Any, payload: str, headers: dict[str, str]) -> dict[str, Any]:
    """POST the document and wait for its job to finish; the job's final answer.

    The job's row is polled in the database (one primary-key read every 20 ms): polling
    ``/capture/{id}`` would spend the runner's CPU on token checks."""
    started = time.perf_counter()
    response = client.post(
        "/epcis/capture", data=payload, content_type="application/ld+json", headers=headers
    )
    answered = time.perf_counter() - started
    assert response.status_code == 202, response.get_data(as_text=True)[:500]
    job = response.json
    job_id = int(job["captureID"])
    while job.get("running"):
        time.sleep(0.02)
        with app.app_context():
            row = db.session.execute(
                text("SELECT running, captured, duplicates FROM capture_job WHERE id = :id"),
                {"id": job_id},
            ).one()
        job = {"running": bool(row[0]), "captured": row[1], "duplicates": row[2]}
    return {**job, "answered": answered}


def warm_up(app: Any) -> None:
    """As in a server that has been running: the event hash helpers started (the first
    capture of a process starts them; a checkout without them has nothing to start)."""
    try:
        from traceability import hash_workers
    except ImportError:
        return
    with app.app_context():
        hash_workers.prepare(wait=60)


def bench_capture(app: Any, n: int, offset: int) -> dict[str, float]:
    """Seconds to parse + validate, capture, and re-capture one ``n``-event document."""
    payload = json.dumps(document([event(i + offset) for i in range(n)]))
    epcis.validate(document([event(0)]))  # the schema compiled once, before timing
    runs: list[float] = []

    def parse_and_validate() -> None:
        started = time.perf_counter()
        epcis.validate(json.loads(payload))
        runs.append(time.perf_counter() - started)

    # The baseline is the median of five runs, two before the captures and three after:
    # one run of the same work varies by a quarter on a shared machine.
    parse_and_validate()
    parse_and_validate()

    client = app.test_client()
    headers = officer_token(app)
    warm_up(app)
    started = time.perf_counter()
    job = _capture(app, client, payload, headers)
    elapsed = time.perf_counter() - started
    assert job["captured"] == n, job
    started = time.perf_counter()
    again = _capture(app, client, payload, headers)
    elapsed_again = time.perf_counter() - started
    assert again["duplicates"] == n, again
    for _ in range(3):
        parse_and_validate()
    return {
        "validate": statistics.median(runs),
        "capture": elapsed,
        "recapture": elapsed_again,
        "answered": job["answered"],  # the 202: what the serving timeout bounds
    }


def fill(app: Any, stored: int) -> None:
    with app.app_context():
        have = db.session.execute(text("SELECT count(*) FROM epcis_event")).scalar()
    chunk = 5000
    for start in range(have, stored, chunk):
        with app.app_context(), commit_boundary():
            epcis.store_events(
                [event(i, with_id=True) for i in range(start, min(start + chunk, stored))],
                [],
                organisation_id=None,
            )


def latencies(client: Any, headers: dict[str, str], urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return times


def bench_query(app: Any, stored: int, repeats: int) -> list[tuple[str, float, float, float, int]]:
    fill(app, stored)
    client = app.test_client()
    headers = officer_token(app)
    rows = []
    epc_urls = [
        f"/epcis/events?MATCH_epc=https://id.gs1.org/01/08930000000019/10/LN2026-"
        f"{(k * 997 % stored) // 100:04d}/21/S{k * 997 % stored:08d}"
        for k in range(repeats)
    ]
    window_urls = []
    for k in range(repeats):
        begin = START + dt.timedelta(minutes=(k * 991) % (stored - 60))
        window_urls.append(
            "/epcis/events?perPage=100&GE_eventTime="
            + begin.isoformat().replace("+", "%2B")
            + "&LT_eventTime="
            + (begin + dt.timedelta(hours=1)).isoformat().replace("+", "%2B")
        )
    baseline = latencies(client, headers, ["/healthz"] * repeats)
    for label, urls in (
        ("baseline: /healthz (one SELECT 1)", ["/healthz"] * repeats),
        ("MATCH_epc (1 event)", epc_urls),
        ("1-hour eventTime window (60 events)", window_urls),
    ):
        times = baseline if urls[0] == "/healthz" else latencies(client, headers, urls)
        times.sort()
        rows.append(
            (
                label,
                statistics.median(times),
                times[int(len(times) * 0.95) - 1],
                times[int(len(times) * 0.99) - 1],
                len(times),
            )
        )
    return rows


def postgres_url(suffix: str) -> str | None:
    url = os.environ.get("NGUON_BENCH_DATABASE_URL")
    if url:
        return url + suffix
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
    except OSError:
        return None
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/nguon_bench{suffix}"


def fresh_postgres_database(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def targets(workdir: Path, suffix: str) -> list[tuple[str, str]]:
    found = [("SQLite", f"sqlite:///{workdir / f'bench{suffix}.db'}")]
    pg = postgres_url(suffix)
    if pg:
        fresh_postgres_database(pg)
        found.append(("PostgreSQL", pg))
    return found


def capture_figures(sizes: list[int], suffix: str, largest: bool) -> dict[str, Any]:
    """{database: {size: {step: seconds}}} for this checkout's code."""
    workdir = Path(tempfile.mkdtemp(prefix="nguon-bench-"))
    figures: dict[str, Any] = {}
    for name, url in targets(workdir, suffix):
        app = make_app(url, workdir / name)
        rows = figures[name] = {}
        offset = 10_000_000
        for n in [*sizes, *([epcis.CAPTURE_LIMIT] if largest else [])]:
            rows[str(n)] = bench_capture(app, n, offset)
            offset += n
        db.dispose(app)
    return figures


def print_capture(figures: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    for name, rows in figures.items():
        print(f"\n## {name}: capture (seconds; x = multiple of parse + validate, same run)")
        heads = ["events", "parse+validate", "capture", "re-capture", "202 after"]
        if baseline:
            heads += ["old capture", "old re-capture", "speed-up"]
        print("| " + " | ".join(heads) + " |")
        print("|" + "|".join("---:" for _ in heads) + "|")
        for n, f in rows.items():
            v = f["validate"]
            cells = [
                f"{int(n):,}",
                f"{v:.2f}",
                f"{f['capture']:.2f} ({f['capture'] / v:.1f}x)",
                f"{f['recapture']:.2f} ({f['recapture'] / v:.1f}x)",
                f"{f['answered']:.2f}" if "answered" in f else "-",
            ]
            old = (baseline or {}).get(name, {}).get(n)
            if baseline:
                if old:
                    ov = old["validate"]
                    cells += [
                        f"{old['capture']:.2f} ({old['capture'] / ov:.1f}x)",
                        f"{old['recapture']:.2f} ({old['recapture'] / ov:.1f}x)",
                        f"{old['capture'] / f['capture']:.1f}x",
                    ]
                else:
                    cells += ["-", "-", "-"]
            print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,10000")
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--largest", action="store_true")
    parser.add_argument("--against", type=Path, help="another checkout, measured as baseline")
    parser.add_argument("--json", action="store_true", help="capture figures as JSON only")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.json:
        suffix = os.environ.get("EPCIS_BENCH_SUFFIX", "")
        print(json.dumps(capture_figures(sizes, suffix, args.largest)))
        return
    baseline = None
    if args.against:
        import subprocess

        env = {**os.environ, "EPCIS_BENCH_CODE": str(args.against), "EPCIS_BENCH_SUFFIX": "_old"}
        out = subprocess.run(
            [str(args.against / ".venv/bin/python"), __file__, "--json", f"--sizes={args.sizes}"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        baseline = json.loads(out.strip().splitlines()[-1])
    print_capture(capture_figures(sizes, "", args.largest), baseline)
    if args.stored <= 0:
        return
    workdir = Path(tempfile.mkdtemp(prefix="nguon-bench-"))
    for name, url in targets(workdir, "_query"):
        app = make_app(url, workdir / name)
        print(f"\n## {name}: GET /epcis/events over {args.stored:,} stored events", end="")
        print(f" ({args.repeats} requests each)")
        heads = ("p50 ms", "p95 ms", "p99 ms")
        print(f"| {'query':<40} | " + " | ".join(f"{h:>7}" for h in heads) + " | p50 vs baseline |")
        print(f"|{'-' * 42}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 17}|")
        query_rows = bench_query(app, args.stored, args.repeats)
        base_p50 = query_rows[0][1]
        for label, p50, p95, p99, _ in query_rows:
            ratio = p50 / base_p50
            print(f"| {label:<40} | {p50:>7.2f} | {p95:>7.2f} | {p99:>7.2f} | {ratio:>14.1f}x |")
        db.dispose(app)


if __name__ == "__main__":
    main()
