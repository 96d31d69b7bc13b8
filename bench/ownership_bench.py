"""What the ownership rule costs: at capture, and when a batch's public events are read.

1. Capture: a cooperative POSTs one document of N events (default 10,000) about its own
   lots and item codes, at read points no one registered (so every place is looked up
   for its first use): with the rule, against the same capture with the rule switched
   off, alternated in the same run (a fresh database each round).
2. Public read: ``services.batch_events`` of a lot with 20 and with 2,000 events, half
   its producer's and half a stranger's (stored before the rule), each at a read point
   no one registered: ``public=True`` (filtered) against ``public=False`` (the plain
   read), alternated.

In-process through the WSGI app (Flask's test client), SQLite in a temporary folder, or
PostgreSQL with ``NGUON_BENCH_DATABASE_URL``. Run:

    .venv/bin/python bench/ownership_bench.py [--events 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert
from sqlalchemy.engine import make_url

from nguon import create_app
from nguon.db import commit_boundary, db
from traceability import epcis, ownership

GTIN = "08930000000019"
START = dt.datetime(2026, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def event(n: int) -> dict[str, Any]:
    lot = f"L{n // 1000:04d}"
    return {
        "type": "ObjectEvent",
        "eventTime": (START + dt.timedelta(minutes=n)).isoformat(),
        "eventTimeZoneOffset": "+07:00",
        "epcList": [f"https://id.gs1.org/01/{GTIN}/10/{lot}/21/S{n:08d}"],
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "readPoint": {"id": f"https://id.gs1.org/414/893000000{n % 1000:03d}9"},
        "quantityList": [{"epcClass": f"https://id.gs1.org/01/{GTIN}/10/{lot}", "quantity": 1.0}],
    }


@contextmanager
def fresh_app() -> Any:
    """An app on an empty, migrated database of its own."""
    from alembic import command

    from nguon.migrate import alembic_config
    from tests.conftest import drop_postgres_database, ensure_postgres_database

    with tempfile.TemporaryDirectory() as tmp:
        base = os.environ.get("NGUON_BENCH_DATABASE_URL")
        if base:
            url = (
                make_url(base)
                .set(database=f"nguon_bench_{uuid.uuid4().hex[:8]}")
                .render_as_string(hide_password=False)
            )
            ensure_postgres_database(url, fresh=False)
        else:
            url = f"sqlite:///{tmp}/bench.db"
        os.environ["NGUON_INSTANCE_PATH"] = tmp
        command.upgrade(alembic_config(url), "head")
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench" * 10,
                "TESTING": True,
                "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
            }
        )
        try:
            yield app
        finally:
            db.dispose(app)
            if base:
                drop_postgres_database(url)


def cooperative(app: Any, name: str, gtin: str | None) -> tuple[int, dict[str, str]]:
    """An organisation (with a product of ``gtin``) and a token of one of its users."""
    from nguon import services
    from nguon.models import User
    from registry.services import save_organisation
    from traceability import services as trace

    with app.app_context(), commit_boundary():
        org = save_organisation({"name": name, "kind": "cooperative"})
        if gtin:
            trace.save_product({"gtin": gtin, "name": "Vải thiều", "producer_id": org.id})
        user = services.create_user(
            f"{uuid.uuid4().hex[:8]}@bench.vn", "cooperative", password="bench-pw-1234",
            organisation_id=org.id,
        )  # fmt: skip
        secret = services.create_token(db.session.get(User, user.id), "b").secret
    return org.id, {"Authorization": f"Bearer {secret}"}


def capture_once(n: int, rule: bool) -> float:
    with fresh_app() as app:
        _org, headers = cooperative(app, "HTX bench", GTIN)
        payload = json.dumps(
            {
                "@context": [epcis.EPCIS_CONTEXT],
                "type": "EPCISDocument",
                "schemaVersion": "2.0",
                "creationDate": START.isoformat(),
                "epcisBody": {"eventList": [event(i) for i in range(n)]},
            }
        )
        original = ownership.check_events
        if not rule:
            ownership.check_events = lambda *a, **k: None  # type: ignore[assignment]
        try:
            started = time.perf_counter()
            response = app.test_client().post(
                "/epcis/capture", data=payload, content_type="application/ld+json",
                headers=headers,
            )  # fmt: skip
            elapsed = time.perf_counter() - started
        finally:
            ownership.check_events = original  # type: ignore[assignment]
        assert response.status_code == 202, response.get_data(as_text=True)[:300]
        return elapsed


def public_read(rounds: int, count: int) -> list[tuple[str, float]]:
    from traceability import services
    from traceability.models import Batch, EpcisEvent, EventEpc

    with fresh_app() as app:
        producer, _ = cooperative(app, "HTX A", GTIN)
        stranger, _ = cooperative(app, "HTX B", None)
        with app.app_context(), commit_boundary():
            batch = services.save_batch(
                {
                    "product_id": 1,
                    "lot": "L0000",
                    "quantity": Decimal(10),
                    "production_date": dt.date(2026, 5, 1),
                }
            )
            batch_id = batch.id
            rows = [
                {
                    "event_id": f"urn:uuid:{uuid.UUID(int=i)}",
                    "event_type": "ObjectEvent",
                    "event_time": START + dt.timedelta(minutes=i),
                    "biz_step": "inspecting",
                    "organisation_id": producer if i % 2 else stranger,
                    "document": event(i % 1000),
                    "context": [],
                }
                for i in range(count)
            ]
            pks = list(
                db.session.scalars(
                    insert(EpcisEvent).returning(EpcisEvent.id, sort_by_parameter_order=True), rows
                )
            )
            db.session.execute(
                insert(EventEpc),
                [
                    {"event_pk": pk, "role": "quantity", "epc": "x", "gtin": GTIN, "lot": "L0000"}
                    for pk in pks
                ],
            )
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds * 3):
            for public in (False, True):
                with app.app_context():
                    found = db.session.get(Batch, batch_id)
                    started = time.perf_counter()
                    events = services.batch_events(found, public=public)
                    times[public].append(time.perf_counter() - started)
                    assert len(events) == (count // 2 if public else count)
        plain, filtered = statistics.median(times[False]), statistics.median(times[True])
        return [
            (f"{count:,} events: public=False (baseline: the read)", plain),
            (f"{count:,} events: public=True (read + ownership filter)", filtered),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database = "PostgreSQL" if os.environ.get("NGUON_BENCH_DATABASE_URL") else "SQLite"
    print(f"## Ownership rule ({database})\n")
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for rule in (False, True):
            times[rule].append(capture_once(args.events, rule))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"Capture of {args.events:,} own events (median of {args.rounds} rounds)\n")
    print("| capture | seconds | events/s | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| rule off (baseline) | {off:.2f} | {args.events / off:,.0f} | 1.00 |")
    print(f"| rule on | {on:.2f} | {args.events / on:,.0f} | {on / off:.2f} |\n")
    print("A lot's events, half its producer's, half a stranger's (median)\n")
    print("| services.batch_events | ms | ratio |")
    print("|---|---:|---:|")
    for count in (20, 2000):
        rows = public_read(args.rounds, count)
        base = rows[0][1]
        for label, seconds in rows:
            print(f"| {label} | {seconds * 1000:.1f} | {seconds / base:.2f} |")


if __name__ == "__main__":
    main()
