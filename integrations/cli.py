"""``nguon sync`` (the outbox worker and its state) and ``nguon portal-sim``."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from integrations.models import ReconcileRun
from nguon.cli import main
from nguon.db import db
from traceability.cli import epcis as epcis_group


@main.group()
def sync() -> None:
    """Delivery of records to the National Traceability Portal."""


def make_client() -> Any:
    from integrations.delivery import portal_client

    client = portal_client(current_app._get_current_object())  # type: ignore[attr-defined]
    if client is None:
        raise click.ClickException("NGUON_PORTAL_URL is not set")
    return client


@sync.command("run")
@click.option("--once", is_flag=True, help="Stop when nothing is left to send or poll.")
@click.option("--max-rows", type=int, default=None, help="Stop after sending this many rows.")
@with_appcontext
def run(once: bool, max_rows: int | None) -> None:
    """Send outbox rows (dependencies first) at the portal's pace, retrying transient
    failures for NGUON_SYNC_RETRY_FOR; SIGTERM stops cleanly."""
    from integrations.delivery import clients_for
    from integrations.worker import SyncWorker, WorkerRefused

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config.get("SYNC_MAX_ATTEMPTS") is not None:
        logging.getLogger(__name__).warning(
            "NGUON_SYNC_MAX_ATTEMPTS is retired and ignored: a row now retries transient "
            "failures for NGUON_SYNC_RETRY_FOR (%s s) and waits out outages",
            app.config["SYNC_RETRY_FOR"],
        )
    clients = clients_for(app)
    if "portal" not in clients and not _has_subscriptions():
        raise click.ClickException(
            "NGUON_PORTAL_URL is not set (and no EPCIS subscription waits for deliveries)"
        )
    worker = SyncWorker(app, clients=clients)
    worker.install_signal_handlers()
    try:
        stats = worker.run(once=once, max_rows=max_rows)
    except WorkerRefused as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        for client in clients.values():
            client.pace.close()
    click.echo(
        f"sent {stats.sent}, done {stats.done}, retried {stats.retried}, "
        f"throttled {stats.throttled}, parked {stats.parked}, rejected {stats.rejected}",
        err=True,
    )


@sync.command("status")
@with_appcontext
def status() -> None:
    """Whether sync runs, each destination's circuit, counts by state, the oldest
    waiting row, the delivery rate, and the parked and rejected rows."""
    from integrations.models import OutboxState
    from integrations.outbox import overview

    view = overview(50)
    click.echo(f"sync\t{'on' if view.sync_on else 'off (NGUON_PORTAL_URL is not set)'}")
    seen = view.worker_seen_at
    if seen is None:
        click.echo("worker\tnone has run")
    else:
        ago = int((view.now - seen).total_seconds())
        state = "running" if view.worker_running else "not running"
        click.echo(f"worker\t{state} (last seen {ago} s ago)")
    for channel in view.channels:
        line = f"circuit {channel.target}\t{channel.circuit}"
        if channel.unreachable_since is not None:
            since = int((view.now - channel.unreachable_since).total_seconds())
            line += f" for {since} s: {channel.last_error or ''}"
        click.echo(line)
    for state in OutboxState:
        click.echo(f"{state.value}\t{view.counts.get(state.value, 0)}")
    if view.oldest is not None:
        row = view.oldest
        click.echo(f"oldest waiting\t{view.oldest_age} s (#{row.id} {row.kind} {row.record_id})")
    click.echo(f"delivery rate\t{view.per_minute:.1f} rows/min over the last 15 min")
    for row in view.problems:
        click.echo(
            f"{row.state}\t#{row.id}\t{row.kind} {row.record_id}\t{row.last_error or row.reasons}"
        )


@main.command("portal-sim")
@click.option("--port", type=int, default=5900, show_default=True)
@click.option("--error-rate", type=float, default=0.0, help="Share of 5xx answers before commit.")
@click.option("--throttle-rate", type=float, default=0.0, help="Share of random 429 answers.")
@click.option("--latency-ms", type=int, default=0)
@click.option(
    "--rate-limit", type=int, default=20, show_default=True, help="Requests/s per client."
)
@click.option(
    "--drop-after-commit", type=float, default=0.0, help="Share of answers lost after commit."
)
@click.option(
    "--token-ttl", type=float, default=300.0, show_default=True, help="Token lifetime, s."
)
@click.option(
    "--reject-rate", type=float, default=0.0, help="Share of trace records later rejected."
)
def portal_sim(
    port: int,
    error_rate: float,
    throttle_rate: float,
    latency_ms: int,
    rate_limit: int,
    drop_after_commit: float,
    token_ttl: float,
    reject_rate: float,
) -> None:
    """Run the National Traceability Portal simulator (client nguon / secret "secret")."""
    from integrations.simulator import Faults, create_simulator

    faults = Faults(
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        latency_ms=latency_ms,
        rate_limit=rate_limit,
        drop_after_commit=drop_after_commit,
        token_ttl=token_ttl,
        reject_rate=reject_rate,
    )
    from werkzeug.serving import make_server

    click.echo(f"portal simulator on http://127.0.0.1:{port}", err=True)
    make_server("127.0.0.1", port, create_simulator(faults), threaded=True).serve_forever()


@sync.command("reconcile")
@click.option(
    "--repair",
    is_flag=True,
    help="Resend what the portal lost; adopt records "
    "it holds under ids we do not know (duplicates are listed, never deleted).",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming an unfinished run.")
@click.option(
    "--duplicates-csv",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the duplicated records (for the portal's operator) to this file.",
)
@with_appcontext
def reconcile(repair: bool, restart: bool, duplicates_csv: str | None) -> None:
    """Compare every batch with the records the portal holds, at the portal's pace:
    missing, duplicated and unknown records. An interrupted run resumes."""  # fmt: skip
    client = make_client()
    try:
        _reconcile(client, restart, repair, duplicates_csv)
    finally:
        client.pace.close()


def _reconcile(client: Any, restart: bool, repair: bool, duplicates_csv: str | None) -> None:
    import csv
    import time

    from integrations import reconcile as rec
    from nguon.db import commit_boundary

    with commit_boundary():
        run = rec.current_run(restart, repair)
        run_id, resumed, left = run.id, run.checked > 0, rec.remaining(run)
    if resumed:
        click.echo(f"resuming run {run_id}: {left} batch(es) left", err=True)
    stopped: rec.PortalUnreachable | None = None
    with click.progressbar(length=left, label="reconciling", file=sys.stderr) as bar:
        while stopped is None:
            # Each chunk's progress is committed, also when the portal stops answering
            # in its middle: the next run resumes after the last batch compared.
            with commit_boundary():
                run = db.session.get_one(ReconcileRun, run_id)
                chunk = next(rec.chunks(run), None)
                if chunk is None:
                    rec.finish(run)
                    break
                for batch in chunk:
                    try:
                        found = rec.compare(batch, client, run.repair, time.sleep)
                    except rec.PortalUnreachable as exc:
                        stopped = exc
                        break
                    rec.advance(run, batch, found)
                    bar.update(1)
    if stopped is not None:
        raise click.ClickException(
            f"the portal stopped answering ({stopped}); run `nguon sync reconcile` again to resume"
        )
    with commit_boundary():
        differences = list(db.session.get_one(ReconcileRun, run_id).differences)
    labels = {
        "missing": "missing on portal",
        "duplicated": "duplicated on portal",
        "unknown_here": "on portal, not known here",
        "other_id": "on portal under another id",
        "unreadable": "unknown (unreadable answer)",
    }
    for item in differences:
        extra = [i for i in item["found"] if i != item["held"]]
        line = f"{labels[item['kind']]}\tbatch {item['batch_id']}\t{item['trace_code']}"
        if item["kind"] == "duplicated":
            line += f"\tkeep {item['held'] or item['found'][0]}\tremove {', '.join(extra)}"
        if item["repaired"]:
            line += "\trepaired"
        click.echo(line)
    if duplicates_csv:
        with open(duplicates_csv, "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["trace_code", "keep_record_id", "remove_record_id", "batch_id"])
            for item in differences:
                if item["kind"] == "duplicated":
                    keep = item["held"] or item["found"][0]
                    for extra in (i for i in item["found"] if i != keep):
                        out.writerow([item["trace_code"], keep, extra, item["batch_id"]])
    click.echo(f"{len(differences)} difference(s)", err=True)


def _has_subscriptions() -> bool:
    from sqlalchemy import select

    from traceability.subscriptions import EpcisSubscription

    return db.session.scalar(select(EpcisSubscription.id).limit(1)) is not None


@epcis_group.command("schedule")
@click.option(
    "--every",
    type=click.FloatRange(min=0.5),
    default=None,
    help="Keep ticking this often (seconds) until SIGTERM; default: one tick.",
)
@with_appcontext
def schedule(every: float | None) -> None:
    """Fire the scheduled subscriptions that are due: their collected events go to the
    outbox as one report each (sent by ``nguon sync run``)."""
    import signal
    import threading

    from integrations.webhooks import run_schedule
    from nguon.db import commit_boundary

    stop = threading.Event()
    if every is not None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    while True:
        with commit_boundary():
            fired = run_schedule()
        click.echo(f"notifications enqueued: {fired}", err=True)
        if every is None or stop.wait(every):
            break
