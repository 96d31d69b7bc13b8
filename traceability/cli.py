"""``nguon labels``: issue and print label runs from the command line."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from nguon.cli import main, transactional
from traceability.labels import PRESETS


@main.group()
def labels() -> None:
    """QR label runs."""


@labels.command("print")
@click.argument("batch_id", type=int)
@click.option(
    "--run", "run_id", type=int, help="Print this existing run (default: issue a new one)."
)
@click.option("--count", type=int, default=0, help="Issue COUNT item codes first.")
@click.option("--item-quantity", type=Decimal, default=None, help="Quantity per code (batch unit).")
@click.option("--lot-code", is_flag=True, help="Issue the lot's single code first.")
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default=None,
    help="A label stock (A4 decal sheet or thermal roll); overrides rows, columns and margin.",
)
@click.option("--rows", type=int, default=8, show_default=True)
@click.option("--columns", type=int, default=4, show_default=True)
@click.option("--margin", type=float, default=8, show_default=True, help="Margins in mm.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@transactional
def print_labels(
    batch_id: int,
    run_id: int | None,
    count: int,
    item_quantity: Decimal | None,
    lot_code: bool,
    preset: str | None,
    rows: int,
    columns: int,
    margin: float,
    out: Path,
) -> None:
    """Write printable A4 sheets (PDF) for BATCH_ID: a new run (--count N or --lot-code)
    or an existing one (--run). Shows a progress bar."""
    from nguon.db import db
    from traceability import labels as service
    from traceability.models import Batch, LabelRun

    batch = db.session.get(Batch, batch_id)
    if batch is None:
        raise click.ClickException(f"no batch {batch_id}")
    if run_id is not None:
        run = db.session.scalar(
            select(LabelRun).where(LabelRun.id == run_id, LabelRun.batch_id == batch.id)
        )
        if run is None:
            raise click.ClickException(f"batch {batch_id} has no run {run_id}")
    elif lot_code or count:
        run = service.issue_run(batch, "lot" if lot_code else "item", count or 1, item_quantity)
        click.echo(f"issued run {run.id}: {run.count} code(s)", err=True)
    else:
        raise click.ClickException("say --run RUN, --count N or --lot-code")
    texts = service.label_texts(run)
    layout = (
        service.PRESETS[preset].layout
        if preset
        else service.SheetLayout(
            rows=rows,
            columns=columns,
            margin_top=margin,
            margin_bottom=margin,
            margin_left=margin,
            margin_right=margin,
        )
    )
    with click.progressbar(length=len(texts), label="rendering labels", file=sys.stderr) as bar:
        pdf = service.sheet_pdf(texts, layout, progress=bar.update)
    out.write_bytes(pdf)
    click.echo(
        f"{len(texts)} labels on {-(-len(texts) // layout.per_page)} page(s): {out}", err=True
    )


@main.group()
def epcis() -> None:
    """EPCIS 2.0 repository tasks."""


@epcis.command("jobs")
@click.option("--once", is_flag=True, help="Process the waiting jobs, then exit.")
@click.option(
    "--poll", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True,
    help="Seconds between looks for new jobs.",
)  # fmt: skip
@with_appcontext
def epcis_jobs(once: bool, poll: float) -> None:
    """Store large EPCIS captures (the 202 jobs) outside the web processes.

    Run it beside the web server with NGUON_EPCIS_CAPTURE_RUNNER=worker; any number may
    run (a job is claimed by one). A job whose runner died is taken again after the
    lease (10 minutes), from the start: a job is one transaction."""
    import time

    from traceability import capture_jobs

    while True:
        done = capture_jobs.run_waiting()
        if done:
            click.echo(f"{done} capture job(s) processed")
        if once:
            return
        time.sleep(poll)
