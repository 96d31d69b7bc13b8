"""``nguon registry``: the registry's scheduled and bulk operations."""

from __future__ import annotations

import datetime as dt

import click

from nguon.cli import main, transactional


@main.group()
def registry() -> None:
    """IP registry operations."""


@registry.command("expire")
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), help="Day to judge (default today).")
@transactional
def expire(on: dt.datetime | None) -> None:
    """Mark as expired every granted mark whose renewal grace period has ended."""
    from registry.services import expire_lapsed_marks

    lapsed = expire_lapsed_marks(on.date() if on else dt.date.today())
    for asset in lapsed:
        click.echo(f"expired: {asset.id}\t{asset.name}\t{asset.expiry_date}")
    click.echo(f"{len(lapsed)} mark(s) expired", err=True)


@registry.command("load-units")
@transactional
def load_units() -> None:
    """Load the current administrative units (34 provinces and their communes)."""
    from registry.admin_units import current_units
    from registry.admin_units import load_units as insert

    click.echo(f"{insert(current_units())} units added", err=True)


@registry.command("load-fine-bands")
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False, exists=True),
    help="Fine bands JSON (default: shared/data beside the checkout, else the project's copy).",
)
@transactional
def load_fine_bands(data_path: str | None) -> None:
    """Load the reviewed fine bands of Decree 99/2013/NĐ-CP (idempotent, audited)."""
    from pathlib import Path

    from registry.enforcement import fines

    added, present = fines.load_extract(Path(data_path) if data_path else None)
    click.echo(f"fine bands: {added} added, {present} already there", err=True)
