"""EPCIS query latency at 100,000 stored events: this branch against main's code.

The same script runs twice in one go, each in its own process and database: once on this
tree, once on a copy of ``main`` (``git archive main``; the baseline). Each run fills
100,000 events (``bench/epcis_bench.py``'s generator: 1,000 lots of 100 serialised items,
a reading point per event), declares 100 of them erroneous (this tree only), then times
GET /epcis/events (Flask's test client, in-process) for each query family and prints
p50/p95 with the ``/healthz`` p50 of the same process as a yardstick. A query main cannot
answer (its parameter is new) shows ``400`` there.

    .venv/bin/python bench/epcis_query_bench.py [--stored 100000] [--repeats 100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def queries(stored: int, repeats: int) -> dict[str, list[str]]:
    from bench.epcis_bench import START

    def item(k: int) -> tuple[str, str]:
        n = k * 997 % stored
        return f"LN2026-{n // 100:04d}", f"S{n:08d}"

    def window(k: int) -> str:
        begin = START + dt.timedelta(minutes=(k * 991) % (stored - 60))
        end = begin + dt.timedelta(hours=1)
        return (
            f"GE_eventTime={begin.isoformat().replace('+', '%2B')}"
            f"&LT_eventTime={end.isoformat().replace('+', '%2B')}"
        )

    ks = range(repeats)
    return {
        "baseline: /healthz": ["/healthz"] * repeats,
        "MATCH_epc, Digital Link as stored": [
            f"/epcis/events?MATCH_epc=https://id.gs1.org/01/08930000000019/10/{lot}/21/{s}"
            for lot, s in map(item, ks)
        ],
        "MATCH_epc, the same item as SGTIN URN": [
            f"/epcis/events?MATCH_epc=urn:epc:id:sgtin:8930000.000001.{s}"
            for _l, s in map(item, ks)
        ],
        "MATCH_epc, EPC pattern (perPage 30)": [
            "/epcis/events?MATCH_epc=urn:epc:idpat:sgtin:8930000.000001.*"
        ]
        * repeats,
        "MATCH_epcClass, one lot (100 events)": [
            f"/epcis/events?perPage=100&MATCH_epcClass=https://id.gs1.org/01/08930000000019/10/{lot}"
            for lot, _s in map(item, ks)
        ],
        "1-hour eventTime window (60 events)": [
            f"/epcis/events?perPage=100&{window(k)}" for k in ks
        ],
        "window + orderDirection=DESC": [
            f"/epcis/events?perPage=100&orderBy=eventTime&orderDirection=DESC&{window(k)}"
            for k in ks
        ],
        "WD_readPoint, one GLN and its extensions": [
            f"/epcis/events?WD_readPoint=https://id.gs1.org/414/893000000{k % 1000:03d}9"
            for k in ks
        ],
        "EXISTS_errorDeclaration (100 of 100,000)": [
            "/epcis/events?EXISTS_errorDeclaration&perPage=100"
        ]
        * repeats,
        "window + GE_quantity (checked on documents)": [
            f"/epcis/events?perPage=100&GE_quantity=5&{window(k)}" for k in ks
        ],
        "EQ_bizStep=shipping + maxEventCount=100000": [
            "/epcis/events?EQ_bizStep=shipping&maxEventCount=100000"
        ]
        * max(repeats // 10, 3),
    }


def run_one(tree: str, url: str, stored: int, repeats: int, declare: bool) -> dict[str, Any]:
    """In this process: the code of ``tree`` against ``url``; returns p50/p95 per query."""
    sys.path.insert(0, tree)
    import traceability
    from bench.epcis_bench import event, fill, make_app, officer_token
    from nguon.db import commit_boundary, db
    from traceability import epcis

    assert traceability.__file__.startswith(tree), (traceability.__file__, tree)
    app = make_app(url, Path(tempfile.mkdtemp(prefix="nguon-qbench-")))
    fill(app, stored)
    if declare:
        with app.app_context(), commit_boundary():
            declared = []
            for k in range(100):
                one = event(k * 1000, with_id=True)
                one["errorDeclaration"] = {
                    "declarationTime": "2026-06-13T08:00:00+07:00",
                    "reason": "incorrect_data",
                }
                declared.append(one)
            epcis.store_events(declared, [], organisation_id=None)
    client = app.test_client()
    headers = officer_token(app)
    results: dict[str, Any] = {}
    for label, urls in queries(stored, repeats).items():
        client.get(urls[0], headers=headers)  # warm the caches
        times = []
        status = 200
        for target in urls:
            started = time.perf_counter()
            response = client.get(target, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            status = response.status_code
            if status != 200:
                break
        if status != 200:
            results[label] = {"status": status}
            continue
        times.sort()
        results[label] = {
            "p50": statistics.median(times),
            "p95": times[max(int(len(times) * 0.95) - 1, 0)],
        }
    db.dispose(app)
    return results


def database_urls(work: Path, name: str) -> list[tuple[str, str]]:
    sys.path.insert(0, str(HERE))
    from bench.epcis_bench import postgres_url

    urls = [("SQLite", f"sqlite:///{work / (name + '.db')}")]
    pg = postgres_url()
    if pg:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        database = f"nguon_qbench_{name}"
        admin = create_engine(make_url(pg).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
        urls.append(("PostgreSQL", make_url(pg).set(database=database).render_as_string(False)))
    return urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--child", nargs=4, metavar=("TREE", "URL", "DECLARE", "OUT"))
    args = parser.parse_args()
    if args.child:
        tree, url, declare, out = args.child
        results = run_one(tree, url, args.stored, args.repeats, declare == "1")
        Path(out).write_text(json.dumps(results))
        return
    work = Path(tempfile.mkdtemp(prefix="nguon-qbench-"))
    main_tree = work / "main"
    main_tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(HERE), "archive", "main"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(main_tree)], input=archive, check=True)
    # The baseline measures main's query code; the event generator is this tree's.
    (main_tree / "bench" / "epcis_bench.py").write_text(
        (HERE / "bench" / "epcis_bench.py").read_text()
    )
    for (db_name, this_url), (_n, main_url) in zip(
        database_urls(work, "branch"), database_urls(work, "main"), strict=True
    ):
        found = {}
        for name, tree, url in (("main", main_tree, main_url), ("branch", HERE, this_url)):
            out = work / f"{name}-{db_name}.json"
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--stored",
                    str(args.stored),
                    "--repeats",
                    str(args.repeats),
                    "--child",
                    str(tree),
                    url,
                    "1" if name == "branch" else "0",
                    str(out),
                ],
                check=True,
                env={**os.environ, "PYTHONPATH": str(tree)},
            )
            found[name] = json.loads(out.read_text())
        print(f"\n## {db_name}: GET /epcis/events over {args.stored:,} events (ms)")
        print("| query | main p50 | main p95 | branch p50 | branch p95 | branch p50 / main p50 |")
        print("|---|---:|---:|---:|---:|---:|")
        for label in found["branch"]:
            cells = []
            for name in ("main", "branch"):
                row = found[name].get(label, {})
                if "p50" in row:
                    cells += [f"{row['p50']:.2f}", f"{row['p95']:.2f}"]
                else:
                    cells += [str(row.get("status", "-")), ""]
            main_row, branch_row = found["main"].get(label, {}), found["branch"][label]
            ratio = (
                f"{branch_row['p50'] / main_row['p50']:.2f}"
                if "p50" in main_row and "p50" in branch_row
                else "new"
            )
            print(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
