"""EPCIS capture throughput and query latency.

1. Capture: POST /epcis/capture of one 10,000-event document (no eventIDs, so every
   event hash is computed), against the time merely to parse and schema-validate the
   same document, measured in the same run.
2. Query: GET /epcis/events with MATCH_epc and with a one-hour eventTime window over
   100,000 stored events, on SQLite and on PostgreSQL (when one answers).

Requests go through the WSGI app in-process (Flask's test client), so the figures are
the application's own cost without a network stack. Run:

    .venv/bin/python bench/epcis_bench.py [--events 10000] [--stored 100000]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def bench_capture(app: Any, n: int) -> list[tuple[str, float, float]]:
    payload = json.dumps(document([event(i + 10_000_000) for i in range(n)]))
    started = time.perf_counter()
    parsed = json.loads(payload)
    epcis.validate(parsed)
    baseline = time.perf_counter() - started

    client = app.test_client()
    headers = officer_token(app)
    started = time.perf_counter()
    response = client.post(
        "/epcis/capture", data=payload, content_type="application/ld+json", headers=headers
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.get_data(as_text=True)[:500]
    assert response.json["captured"] == n, response.json
    started = time.perf_counter()
    again = client.post(
        "/epcis/capture", data=payload, content_type="application/ld+json", headers=headers
    )
    elapsed_again = time.perf_counter() - started
    assert again.json["duplicates"] == n
    return [
        ("parse + schema-validate only (baseline)", baseline, n / baseline),
        ("capture (validate, hash, store)", elapsed, n / elapsed),
        ("re-capture (all duplicates)", elapsed_again, n / elapsed_again),
    ]


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


def postgres_url() -> str | None:
    url = os.environ.get("NGUON_BENCH_DATABASE_URL")
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
    except OSError:
        return None
    return "postgresql+psycopg://postgres@127.0.0.1:5432/nguon_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nguon-bench-"))
    targets = [("SQLite", f"sqlite:///{workdir / 'bench.db'}")]
    pg = postgres_url()
    if pg:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.conftest import ensure_postgres_database

        ensure_postgres_database(pg, fresh=True)
        targets.append(("PostgreSQL", pg))
    for name, url in targets:
        app = make_app(url, workdir / name)
        print(f"\n## {name}: capture of one {args.events:,}-event document")
        print(f"| {'step':<40} | {'seconds':>8} | {'events/s':>9} | {'vs baseline':>11} |")
        print(f"|{'-' * 42}|{'-' * 10}|{'-' * 11}|{'-' * 13}|")
        capture_rows = bench_capture(app, args.events)
        base_rate = capture_rows[0][2]
        for label, seconds, rate in capture_rows:
            print(f"| {label:<40} | {seconds:>8.2f} | {rate:>9,.0f} | {rate / base_rate:>10.2f}x |")
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
