"""``nguon sync`` (the outbox worker and its state) and ``nguon portal-sim``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from nguon.cli import main


@main.group()
def sync() -> None:
    """Delivery of records to the National Traceability Portal."""


def make_client() -> object:
    from integrations.portal import PortalClient

    config = current_app.config
    if not config.get("PORTAL_URL"):
        raise click.ClickException("NGUON_PORTAL_URL is not set")
    return PortalClient(
        config["PORTAL_URL"], config["PORTAL_CLIENT_ID"], config.get("PORTAL_CLIENT_SECRET") or ""
    )


@sync.command("run")
@click.option("--once", is_flag=True, help="Stop when nothing is left to send or poll.")
@click.option("--max-rows", type=int, default=None, help="Stop after sending this many rows.")
@with_appcontext
def run(once: bool, max_rows: int | None) -> None:
    """Send outbox rows (dependencies first), retrying with backoff; SIGTERM stops cleanly."""
    from integrations.portal import EpcisPushClient
    from integrations.worker import SyncWorker, WorkerRefused

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    push = app.config.get("EPCIS_PUSH_URL")
    epcis_client = EpcisPushClient(push, app.config.get("EPCIS_PUSH_TOKEN")) if push else None
    worker = SyncWorker(app, make_client(), epcis_client,  # type: ignore[arg-type]
                        max_attempts=app.config["SYNC_MAX_ATTEMPTS"])  # fmt: skip
    worker.install_signal_handlers()
    try:
        stats = worker.run(once=once, max_rows=max_rows)
    except WorkerRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"sent {stats.sent}, done {stats.done}, retried {stats.retried}, parked {stats.parked}, "
        f"rejected {stats.rejected}",
        err=True,
    )


@sync.command("status")
@with_appcontext
def status() -> None:
    """Counts by state, the oldest pending row's age, parked and rejected rows."""
    from integrations.models import OutboxState
    from integrations.outbox import summary

    counts, age, problems = summary(50)
    for state in OutboxState:
        click.echo(f"{state.value}\t{counts.get(state.value, 0)}")
    if age is not None:
        click.echo(f"oldest pending\t{age} s")
    for row in problems:
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
@with_appcontext
def reconcile() -> None:
    """Compare the batches the outbox says the portal accepted with what the portal holds:
    missing records, duplicates, and lots that differ."""
    from sqlalchemy import select

    from integrations.models import OutboxRow, OutboxState
    from nguon.db import db
    from traceability.gs1 import DigitalLink
    from traceability.models import Batch

    client = make_client()
    base = current_app.config["PUBLIC_URL"]
    done = set(
        db.session.scalars(
            select(OutboxRow.record_id).where(
                OutboxRow.kind == "trace_record", OutboxRow.state == OutboxState.DONE
            )
        )
    )
    differences = 0
    for batch in db.session.scalars(select(Batch).order_by(Batch.id)):
        code = DigitalLink(batch.product.gtin, lot=batch.lot).uri(base)
        outcome = client.call("GET", f"/api/v1/trace-records?trace_code={code}")  # type: ignore[attr-defined]
        found = outcome.body if outcome.kind == "ok" and isinstance(outcome.body, list) else None
        if found is None:
            click.echo(f"unknown\tbatch {batch.id}\t{code}\t{outcome.error}")
            differences += 1
        elif str(batch.id) in done and not found:
            click.echo(f"missing on portal\tbatch {batch.id}\t{code}")
            differences += 1
        elif len(found) > 1:
            click.echo(f"duplicated on portal ({len(found)})\tbatch {batch.id}\t{code}")
            differences += 1
        elif found and str(batch.id) not in done:
            click.echo(f"on portal, not marked accepted here\tbatch {batch.id}\t{code}")
            differences += 1
    click.echo(f"{differences} difference(s)", err=True)
