"""What EPCIS query subscriptions cost capture, and how fast the outbox delivers them.

1. Capture: POST /epcis/capture of one document with no subscription (the baseline),
   then of a same-sized document of new events with 10 stream subscriptions (each
   matching a fifth of the events), in the same run.
2. Delivery: the sync worker sending those notifications (signed, destination checked
   before each send) to a webhook on 127.0.0.1, against plain POSTs of the same bodies
   to the same webhook (the baseline), in the same run.

Run (PostgreSQL too when one answers on 127.0.0.1:5432; its own database):

    .venv/bin/python bench/subscription_bench.py [--events 5000] [--subscriptions 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import urllib3
from epcis_bench import STEPS, document, event, make_app, officer_token

from nguon.db import db

TOKEN = "bench-signature-token-0123456789"  # noqa: S105 - the bench webhook's own


def webhook() -> tuple[ThreadingHTTPServer, list[int]]:
    received: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            received.append(len(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def capture(client: Any, headers: dict[str, str], first: int, n: int) -> float:
    payload = json.dumps(document([event(first + i) for i in range(n)]))
    started = time.perf_counter()
    response = client.post(
        "/epcis/capture", data=payload, content_type="application/ld+json", headers=headers
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.get_data(as_text=True)[:300]
    return elapsed


def subscribe(client: Any, headers: dict[str, str], dest: str, count: int) -> list[str]:
    locations = []
    for k in range(count):
        response = client.post(
            "/epcis/queries/SimpleEventQuery/subscriptions",
            data=json.dumps({"dest": dest, "signatureToken": TOKEN, "stream": True,
                             "query": {"EQ_bizStep": [STEPS[k % len(STEPS)]]}}),
            content_type="application/json",
            headers=headers,
        )  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)
        locations.append(response.headers["Location"])
    return locations


def run(name: str, url: str, workdir: Path, n: int, count: int) -> None:
    from integrations import webhooks
    from integrations.worker import SyncWorker

    app = make_app(url, workdir / name)
    app.config.update(SUBSCRIPTION_ALLOW_HTTP=True, SUBSCRIPTION_ALLOW_PRIVATE=True)
    server, received = webhook()
    dest = f"http://127.0.0.1:{server.server_port}/hook"
    client, headers = app.test_client(), officer_token(app)
    capture(client, headers, 10_000_000, 50)  # warm-up: compiled schema, first queries
    before = capture(client, headers, 20_000_000, n)
    locations = subscribe(client, headers, dest, count)
    with_subs = capture(client, headers, 30_000_000, n)

    # Delivery by the worker (build, freeze, sign, check the address, POST, record).
    worker = SyncWorker(app, clients={"webhook": webhooks.webhook_client(app)}, batch_size=50)
    started = time.perf_counter()
    worker.run(once=True, idle_sleep=0.01)
    delivered = time.perf_counter() - started
    bodies = len(received)
    # Baseline: the same number of POSTs of the same size, no database, one pool.
    size = sum(received) // max(bodies, 1)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.server_port, maxsize=1)
    body = b"x" * size
    started = time.perf_counter()
    for _ in range(bodies):
        pool.urlopen("POST", "/hook", body=body, headers={"Content-Type": "application/json"})
    plain = time.perf_counter() - started

    for location in locations:  # the capture baseline again, after (the machine is shared)
        assert client.delete(location, headers=headers).status_code == 204
    after = capture(client, headers, 40_000_000, n)
    base = (before + after) / 2
    print(f"\n## {name}: capture of {n:,} events, {count} stream subscriptions")
    print("| capture | seconds | events/s | vs baseline |\n|---|---|---|---|")
    for label, seconds in (
        ("no subscription, before (baseline)", before),
        ("no subscription, after (baseline)", after),
        (f"{count} subscriptions", with_subs),
    ):
        print(f"| {label} | {seconds:.2f} | {n / seconds:,.0f} | {base / seconds:.2f}x |")
    matched = n * count // len(STEPS)  # each subscription matches a fifth of the events
    print(f"\n## {name}: delivery of {bodies} notifications, {matched:,} events"
          f" (~{size // 1024} KiB each)")  # fmt: skip
    print("| delivery | seconds | notifications/s | events/s | vs baseline |")
    print("|---|---|---|---|---|")
    for label, seconds in (("plain POSTs (baseline)", plain), ("sync worker", delivered)):
        print(f"| {label} | {seconds:.2f} | {bodies / seconds:,.1f} | "
              f"{matched / seconds:,.0f} | {plain / seconds:.3f}x |")  # fmt: skip
    server.shutdown()
    db.dispose(app)


def fresh_postgres_database(url: str) -> None:
    """Create the bench's database when missing, and empty it."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from nguon.db import make_engine

    parsed = make_url(url)
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                           {"n": parsed.database}):  # fmt: skip
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--subscriptions", type=int, default=10)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nguon-subbench-"))
    targets = [("SQLite", f"sqlite:///{workdir / 'bench.db'}")]
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
        pg = os.environ.get("NGUON_BENCH_DATABASE_URL") or (
            "postgresql+psycopg://postgres@127.0.0.1:5432/nguon_bench_subscriptions"
        )
        fresh_postgres_database(pg)
        targets.append(("PostgreSQL", pg))
    except OSError:
        pass
    for name, url in targets:
        run(name, url, workdir, args.events, args.subscriptions)


if __name__ == "__main__":
    main()
