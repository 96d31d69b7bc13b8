"""Resolver and label benchmarks against a bare Flask "hello" route, in the same run.

- Serving: gunicorn with 2 sync workers for both apps, `wrk` on 127.0.0.1 with 32
  connections, each request a different issued item code (random among 20,000).
  The consumer page (scan logged) and the JSON passport, at 10,000 and at 1,000,000
  issued codes, on PostgreSQL, with scans queued and written every 0.25 s
  (NGUON_SCAN_FLUSH_SECONDS, the setting for a busy resolver). Scans of issued codes
  take the resolver's fast path (traceability/fastpath.py), as they do in production.
  The JSON passport is measured once more with the rate limiter on (memory storage, a
  limit wrk never reaches: its counting is what is measured), and the page once more
  with each scan written in its own request (the default) for comparison.
  Each route runs --rounds times, interleaved with the hello route, and the table shows
  each figure's median over the rounds; every round's figures follow it. "vs hello" is
  the median over the rounds of the route's requests/s divided by hello's in the same
  round: these machines are shared and their speed drifts by a third within minutes.
  Before each size is measured, the tables issuing wrote are vacuumed, analysed and
  checkpointed (see settle()).
- Issuing: 10,000 serialised labels (rows + PDF sheets) against the time zxing-cpp takes
  merely to encode the same URIs.

    .venv/bin/python bench/resolver_bench.py [--codes 1000000] [--seconds 10]

Needs wrk (Debian package `wrk`) and a PostgreSQL server (NGUON_BENCH_DATABASE_URL, else
the local server's Unix socket, else 127.0.0.1:5432). Targets (issue 5): page >= 50 % and
passport >= 60 % of hello's requests/s with p99 <= 50 ms; p50 at 1M codes <= 1.2 x p50 at
10k; issuing <= 4 x encoding.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zxingcpp  # noqa: E402
from sqlalchemy import func, make_url, select  # noqa: E402

from nguon import create_app  # noqa: E402
from nguon.db import commit_boundary, db  # noqa: E402
from tests.net import free_port, wait_for_port  # noqa: E402

BIN = Path(sys.executable).parent
LUA = """
local paths = {}
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)], {["Accept"] = args_accept})
end
"""


def serve(target: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-w",
            "2",
            "-k",
            "sync",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--no-control-socket",
            target,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if wait_for_port(port, 10):
        return process, port
    raise RuntimeError("gunicorn did not start")


def wrk(port: str, paths_file: Path | None, accept: str, seconds: int) -> dict[str, float]:
    cmd = ["wrk", "-t", "2", "-c", "32", "-d", f"{seconds}s", "--latency"]
    if paths_file:
        script = paths_file.with_suffix(".lua")
        script.write_text(LUA.replace("args_accept", f'"{accept}"'))
        cmd += ["-s", str(script), f"http://127.0.0.1:{port}", "--", str(paths_file)]
    else:
        cmd += [f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)) for p in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": rps,
        "p50": lat["50"],
        "p99": lat["99"],
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(match: Any) -> float:
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


SOCKET = Path("/var/run/postgresql/.s.PGSQL.5432")


def database_url() -> str:
    # The local server's Unix socket when there is one, as the README advises for a
    # database on the app's own host; else TCP on 127.0.0.1.
    default = (
        f"postgresql+psycopg://postgres@/nguon_bench_resolver?host={SOCKET.parent}"
        if SOCKET.exists()
        else "postgresql+psycopg://postgres@127.0.0.1:5432/nguon_bench_resolver"
    )
    url = os.environ.get("NGUON_BENCH_DATABASE_URL", default)
    from tests.conftest import ensure_postgres_database

    ensure_postgres_database(url, fresh=True)
    return url


def setup(url: str, instance: Path) -> tuple[Any, int]:
    os.environ["NGUON_INSTANCE_PATH"] = str(instance)
    app = create_app({"DATABASE_URL": url})
    from alembic import command

    from nguon.migrate import alembic_config

    command.upgrade(alembic_config(url), "head")
    with app.app_context(), commit_boundary():
        from nguon.demo import load

        load(None, echo=lambda *a, **k: None)
        from traceability import services
        from traceability.models import Product

        product = db.session.scalar(select(Product).order_by(Product.id))
        batch = services.save_batch(
            {
                "product_id": product.id,
                "lot": "BENCH-2026",
                "quantity": Decimal(5_000_000),
                "unit": "H87",
                "production_date": dt.date(2026, 6, 10),
            }
        )
        return app, batch.id


def issue(app: Any, batch_id: int, count: int) -> float:
    from traceability import labels
    from traceability.models import Batch

    started = time.perf_counter()
    while count > 0:
        step = min(count, labels.MAX_RUN)
        with app.app_context(), commit_boundary():
            labels.issue_run(db.session.get(Batch, batch_id), "item", step, Decimal(1))
        count -= step
    return time.perf_counter() - started


def sample_paths(app: Any, batch_id: int, n: int, out: Path) -> None:
    from traceability.models import Label

    with app.app_context():
        total = db.session.scalar(select(func.count(Label.id)).where(Label.batch_id == batch_id))
        step = max(1, total // n)
        serials = db.session.scalars(
            select(Label.serial).where(Label.batch_id == batch_id, Label.id % step == 0).limit(n)
        ).all()
    random.shuffle(serials)
    out.write_text("".join(f"/01/08930000000019/10/BENCH-2026/21/{s}\n" for s in serials))


def settle(app: Any) -> None:
    """Vacuum, analyse and checkpoint what issuing just wrote, as autovacuum would soon
    after a label run: otherwise that debt is paid inside the 5-second rounds, on the same
    two cores, and one round's p99 shows autovacuum rather than the resolver."""
    with db.engine(app).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE label, scan")
        connection.exec_driver_sql("CHECKPOINT")


def bench_issuing(app: Any, batch_id: int) -> list[tuple[str, float]]:
    from traceability import labels
    from traceability.models import Batch, LabelRun

    with app.app_context(), commit_boundary():
        started = time.perf_counter()
        run = labels.issue_run(db.session.get(Batch, batch_id), "item", 10_000, Decimal(1))
        db.session.flush()
        rows = time.perf_counter() - started
        texts = labels.label_texts(db.session.get(LabelRun, run.id))
        pdf = labels.sheet_pdf(texts, labels.SheetLayout())
        total = time.perf_counter() - started
        uris = [t.uri for t in texts]
    started = time.perf_counter()
    for uri in uris:
        zxingcpp.create_barcode(uri, zxingcpp.QRCode, ec_level="M").to_image(
            scale=1, add_quiet_zones=True
        )
    encode = time.perf_counter() - started
    return [
        ("zxing-cpp encode only (baseline)", encode),
        ("rows (10,000 serials)", rows),
        (f"rows + PDF sheets ({len(pdf) // 1024} KiB)", total),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="nguon-resolver-bench-"))
    url = database_url()
    app, batch_id = setup(url, work / "instance")
    env = {
        "NGUON_DATABASE_URL": url,
        "NGUON_INSTANCE_PATH": str(work / "instance"),
        # wrk comes from one address: a real limit would only measure 429s. The limiter
        # is measured on its own route below.
        "NGUON_RATELIMIT_ENABLED": "0",
        # wrk scans each of the 10,000 codes about 20 times: with the field's limit (20)
        # thousands would be flagged, and the run would measure case openings, not scans.
        # The count rules still run on every write; tests cover flagging.
        "NGUON_CLONE_MAX_SCANS": "100000",
        "NGUON_LOG_LEVEL": "WARNING",
    }
    # Issuing first, before any server runs beside it.
    print("\n## Issuing 10,000 serialised labels")
    print("| step | seconds | vs baseline |\n|---|---|---|")
    issuing = bench_issuing(app, batch_id)
    for label, seconds in issuing:
        print(f"| {label} | {seconds:.2f} | {seconds / issuing[0][1]:.2f}x |")
    hello, hello_port = serve("bench.hello_app:app", {})
    batched, port = serve("nguon:create_app()", {**env, "NGUON_SCAN_FLUSH_SECONDS": "0.25"})
    direct, direct_port = serve("nguon:create_app()", env)
    limited, limited_port = serve(
        "nguon:create_app()",
        {
            **env,
            "NGUON_SCAN_FLUSH_SECONDS": "0.25",
            "NGUON_RATELIMIT_ENABLED": "1",
            "NGUON_RATELIMIT_PUBLIC": "1000000000 per minute",
        },
    )
    rows = []
    every_round = []  # (codes, {route: [figures of each round]}), shown after the table
    served = [0]  # resolver answers wrk read, to compare with the scans written
    try:
        for size in (10_000, args.codes):
            with app.app_context():
                from traceability.models import Label

                have = db.session.scalar(select(func.count(Label.id)))
            if size > have:
                took = issue(app, batch_id, size - have)
                print(f"\n(issued {size - have:,} more codes in {took:.1f} s)")
            paths = work / f"paths-{size}.txt"
            sample_paths(app, batch_id, 20_000, paths)
            settle(app)
            routes = {
                "hello (baseline)": (str(hello_port), None, "text/html"),
                "consumer page + scan log": (str(port), paths, "text/html"),
                "JSON passport + scan log": (str(port), paths, "application/json"),
                "JSON passport + scan log, rate limiter on": (
                    str(limited_port),
                    paths,
                    "application/json",
                ),
                "consumer page, scan written in the request": (
                    str(direct_port),
                    paths,
                    "text/html",
                ),
            }
            # Warm every server (templates, caches, prepared statements) before measuring.
            for warm in routes.values():
                figures = wrk(*warm, 2)
                if warm[1] is not None:
                    served[0] += figures["requests"]
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in routes}
            for _ in range(args.rounds):
                for name, (route_port, route_paths, accept) in routes.items():
                    figures = wrk(route_port, route_paths, accept, args.seconds)
                    rounds[name].append(figures)
                    if route_paths is not None:
                        served[0] += figures["requests"]
            every_round.append((size, rounds))
            hello_rounds = rounds["hello (baseline)"]
            rows.append(
                (
                    size,
                    {
                        name: {**medians(r), **paired_shares(r, hello_rounds)}
                        for name, r in rounds.items()
                    },
                )
            )
        print(f"\n## Serving (gunicorn 2 sync workers, wrk -c 32, median of {args.rounds} rounds)")
        print(f"database: {make_url(url).render_as_string(hide_password=True)}\n")
        print("| codes issued | route | req/s | vs hello | range | p50 ms | p99 ms | non-2xx |")
        print("|---|---|---|---|---|---|---|---|")
        for size, figures_by_route in rows:
            for name, figures in figures_by_route.items():
                print(
                    f"| {size:,} | {name} | {figures['rps']:,.0f} | {figures['share']:.0%} | ",
                    end="",
                )
                print(f"{figures['low']:.0%}–{figures['high']:.0%} | ", end="")
                print(f"{figures['p50']:.2f} | {figures['p99']:.2f} | {figures['non2xx']} |")
        print("\n## Each round (req/s and p99 ms, in the order they ran)")
        print("| codes issued | route | req/s | p99 ms |\n|---|---|---|---|")
        for size, rounds in every_round:
            for name, figures_list in rounds.items():
                rps = ", ".join(f"{f['rps']:,.0f}" for f in figures_list)
                p99 = ", ".join(f"{f['p99']:.0f}" for f in figures_list)
                print(f"| {size:,} | {name} | {rps} | {p99} |")
        small = rows[0][1]["consumer page + scan log"]
        large = rows[-1][1]["consumer page + scan log"]
        growth = large["p50"] / small["p50"]
        print(f"\np50 of the consumer page at {args.codes:,} vs 10,000 codes: {growth:.2f}x")
    finally:
        for process in (hello, batched, direct, limited):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    with app.app_context():
        from traceability.models import Scan

        written = db.session.scalar(select(func.count(Scan.id)))
    # wrk counts the answers it read before its clock stopped; the servers also answer
    # the requests in flight then, so at least as many scans are written, never fewer.
    print(f"\nresolver answers read by wrk: {served[0]:,}; scans written: {written:,}")


def medians(results: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds (the table under it shows every round); the
    non-2xx answers of all rounds added up, so that none is hidden."""
    figures = {key: statistics.median(r[key] for r in results) for key in results[0]}
    return {**figures, "non2xx": sum(r["non2xx"] for r in results)}


def paired_shares(
    results: list[dict[str, float]], hello: list[dict[str, float]]
) -> dict[str, float]:
    """Requests/s divided by hello's in the same round: the median, lowest and highest."""
    shares = [r["rps"] / h["rps"] for r, h in zip(results, hello, strict=True)]
    return {"share": statistics.median(shares), "low": min(shares), "high": max(shares)}


if __name__ == "__main__":
    main()
