"""Resolver and label benchmarks against a bare Flask "hello" route, in the same run.

- Serving: gunicorn with 2 sync workers for both apps, `wrk` on 127.0.0.1 with 32
  connections, each request a different issued item code (random among 20,000).
  The consumer page (scan logged) and the JSON passport, at 10,000 and at 1,000,000
  issued codes, on PostgreSQL.
- Issuing: 10,000 serialised labels (rows + PDF sheets) against the time zxing-cpp takes
  merely to encode the same URIs.

    .venv/bin/python bench/resolver_bench.py [--codes 1000000] [--seconds 10]

Needs wrk (Debian package `wrk`) and a PostgreSQL server (NGUON_BENCH_DATABASE_URL or
127.0.0.1:5432). Targets (issue 5): page >= 50 % and passport >= 60 % of hello's
requests/s with p99 <= 50 ms; p50 at 1M codes <= 1.2 x p50 at 10k; issuing <= 4 x encoding.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import signal
import socket
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
from sqlalchemy import func, select  # noqa: E402

from nguon import create_app  # noqa: E402
from nguon.db import commit_boundary, db  # noqa: E402

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
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
        "rps": rps,
        "p50": lat["50"],
        "p99": lat["99"],
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(match: Any) -> float:
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def database_url() -> str:
    url = os.environ.get(
        "NGUON_BENCH_DATABASE_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/nguon_bench_resolver",
    )
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
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="nguon-resolver-bench-"))
    url = database_url()
    app, batch_id = setup(url, work / "instance")
    env = {
        "NGUON_DATABASE_URL": url,
        "NGUON_INSTANCE_PATH": str(work / "instance"),
        "NGUON_RATELIMIT_ENABLED": "0",
        "NGUON_LOG_LEVEL": "WARNING",
    }
    hello, hello_port = serve("bench.hello_app:app", {})
    nguon, port = serve("nguon:create_app()", env)
    rows = []
    try:
        print("\n## Issuing 10,000 serialised labels")
        print("| step | seconds | vs baseline |\n|---|---|---|")
        issuing = bench_issuing(app, batch_id)
        for label, seconds in issuing:
            print(f"| {label} | {seconds:.2f} | {seconds / issuing[0][1]:.2f}x |")
        for size in (10_000, args.codes):
            with app.app_context():
                from traceability.models import Label

                have = db.session.scalar(select(func.count(Label.id)))
            if size > have:
                took = issue(app, batch_id, size - have)
                print(f"\n(issued {size - have:,} more codes in {took:.1f} s)")
            paths = work / f"paths-{size}.txt"
            sample_paths(app, batch_id, 20_000, paths)
            base = wrk(str(hello_port), None, "text/html", args.seconds)
            page = wrk(str(port), paths, "text/html", args.seconds)
            passport = wrk(str(port), paths, "application/json", args.seconds)
            rows.append((size, base, page, passport))
        print("\n## Serving (gunicorn 2 sync workers, wrk -c 32, PostgreSQL)")
        print("| codes issued | route | req/s | vs hello | p50 ms | p99 ms | non-2xx |")
        print("|---|---|---|---|---|---|---|")
        for size, base, page, passport in rows:
            for name, figures in (
                ("hello (baseline)", base),
                ("consumer page + scan log", page),
                ("JSON passport + scan log", passport),
            ):
                share = figures["rps"] / base["rps"]
                print(f"| {size:,} | {name} | {figures['rps']:,.0f} | {share:.0%} | ", end="")
                print(f"{figures['p50']:.2f} | {figures['p99']:.2f} | {figures['non2xx']} |")
        small, large = rows[0][2], rows[-1][2]
        growth = large["p50"] / small["p50"]
        print(f"\np50 of the consumer page at {args.codes:,} vs 10,000 codes: {growth:.2f}x")
    finally:
        for process in (hello, nguon):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
