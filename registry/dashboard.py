"""The officer dashboard's figures, computed from the registry as it is on a given day."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import extract, func, select

from nguon.db import db
from registry import rules
from registry.models import AssetKind, AssetStatus, IPAsset, OcopProduct, OcopStatus, Target

KIND_ORDER = [k.value for k in AssetKind]


@dataclass
class Chart:
    """One chart: a title, column names and rows; drawn as SVG, downloadable as CSV."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


def counts_by_kind_and_status() -> dict[str, dict[str, int]]:
    rows = db.session.execute(
        select(IPAsset.kind, IPAsset.status, func.count()).group_by(IPAsset.kind, IPAsset.status)
    )
    table: dict[str, dict[str, int]] = {kind: {} for kind in KIND_ORDER}
    for kind, status, count in rows:
        table.setdefault(kind, {})[status] = count
    return table


def targets_progress(today: dt.date, counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Each count target (the latest set for a year ≥ this year, else the latest) against
    the number of granted assets of that kind (``counts``: counts_by_kind_and_status())."""
    targets = db.session.scalars(select(Target).order_by(Target.metric, Target.by_year)).all()
    chosen: dict[str, Target] = {}
    for metric in KIND_ORDER:
        candidates = [t for t in targets if t.metric == metric]
        upcoming = [t for t in candidates if t.by_year >= today.year]
        # The nearest target still ahead, else the last one set.
        pick = upcoming[0] if upcoming else (candidates[-1] if candidates else None)
        if pick is not None:
            chosen[metric] = pick
    progress = []
    for metric in KIND_ORDER:
        target = chosen.get(metric)
        if target is None:
            continue
        granted = counts.get(metric, {}).get(AssetStatus.GRANTED, 0)
        goal = int(target.value)
        progress.append(
            {
                "metric": metric,
                "by_year": target.by_year,
                "target": goal,
                "granted": granted,
                "share": round(granted / goal, 3) if goal else None,
                "source": target.source,
            }
        )
    return progress


def applications_per_year() -> list[dict[str, Any]]:
    """Applications filed per year, the growth on the year before, and whether that met
    the yearly growth goal (the latest applications_growth target; 5 % in the seed)."""
    year = extract("year", IPAsset.filing_date)
    rows = db.session.execute(
        select(year, func.count())
        .where(IPAsset.filing_date.isnot(None))
        .group_by(year)
        .order_by(year)
    ).all()
    goal_row = db.session.scalar(
        select(Target.value)
        .where(Target.metric == "applications_growth")
        .order_by(Target.by_year.desc())
    )
    goal = Decimal(goal_row) if goal_row is not None else Decimal("0.05")
    result = []
    previous = None
    for raw_year, count in rows:
        growth = None if not previous else round((count - previous) / previous, 4)
        result.append(
            {
                "year": int(raw_year),
                "applications": count,
                "growth": growth,
                "goal": float(goal),
                "met": None if growth is None else growth >= float(goal),
            }
        )
        previous = count
    return result


def renewals_due(today: dt.date, within_days: int = 180) -> list[dict[str, Any]]:
    """Granted marks whose renewal window is open, or that expire within ``within_days``."""
    horizon = today + dt.timedelta(days=within_days)
    latest_grace = rules.add_months(today, -rules.RENEWAL_GRACE_MONTHS)
    assets = db.session.scalars(
        select(IPAsset)
        .where(
            IPAsset.kind != AssetKind.GEOGRAPHICAL_INDICATION,
            IPAsset.status.in_((AssetStatus.GRANTED, AssetStatus.EXPIRED)),
            IPAsset.expiry_date.isnot(None),
            IPAsset.expiry_date <= max(horizon, rules.add_months(today, 6)),
            IPAsset.expiry_date >= latest_grace,
        )
        .order_by(IPAsset.expiry_date)
    ).all()
    due = []
    for asset in assets:
        opens, closes = rules.renewal_window(asset.expiry_date)  # type: ignore[arg-type]
        window_open = opens <= today <= closes
        if window_open or asset.expiry_date <= horizon:  # type: ignore[operator]
            due.append(
                {
                    "asset": asset,
                    "expiry_date": asset.expiry_date,
                    "window_opens": opens,
                    "grace_ends": closes,
                    "window_open": window_open,
                    "days_left": (asset.expiry_date - today).days,  # type: ignore[operator]
                }
            )
    return due


def ocop_expiring(today: dt.date, within_days: int = 90) -> list[OcopProduct]:
    return list(
        db.session.scalars(
            select(OcopProduct)
            .where(
                OcopProduct.status == OcopStatus.ACTIVE,
                OcopProduct.expiry_date >= today,
                OcopProduct.expiry_date <= today + dt.timedelta(days=within_days),
            )
            .order_by(OcopProduct.expiry_date)
        )
    )


def ocop_by_stars_and_group(today: dt.date) -> dict[str, Counter[int]]:
    """Valid (active, unexpired) OCOP ratings: {group: {stars: count}}."""
    rows = db.session.execute(
        select(OcopProduct.product_group, OcopProduct.stars, func.count())
        .where(OcopProduct.status == OcopStatus.ACTIVE, OcopProduct.expiry_date > today)
        .group_by(OcopProduct.product_group, OcopProduct.stars)
    )
    table: dict[str, Counter[int]] = {}
    for group, stars, count in rows:
        table.setdefault(group, Counter())[stars] = count
    return table


@dataclass
class Figures:
    """The dashboard's figures, each computed once per request."""

    counts: dict[str, dict[str, int]]
    targets: list[dict[str, Any]]
    applications: list[dict[str, Any]]
    charts: dict[str, Chart]


def figures(today: dt.date) -> Figures:
    counts = counts_by_kind_and_status()
    progress = targets_progress(today, counts)
    applications = applications_per_year()
    return Figures(counts, progress, applications, _charts(today, counts, progress, applications))


def _charts(
    today: dt.date,
    counts: dict[str, dict[str, int]],
    progress: list[dict[str, Any]],
    applications: list[dict[str, Any]],
) -> dict[str, Chart]:
    """Every chart of the dashboard, as rows (the CSV and the SVG draw from these)."""
    statuses = [s.value for s in AssetStatus]
    by_kind = Chart("assets", "Assets by kind and status", ["kind", *statuses])
    for kind in KIND_ORDER:
        by_kind.rows.append([kind, *[counts.get(kind, {}).get(s, 0) for s in statuses]])
    targets = Chart(
        "targets", "Granted assets against targets", ["kind", "granted", "target", "by_year"]
    )
    for item in progress:
        targets.rows.append([item["metric"], item["granted"], item["target"], item["by_year"]])
    apps = Chart(
        "applications", "Applications per year", ["year", "applications", "growth", "goal"]
    )
    for item in applications:
        apps.rows.append([item["year"], item["applications"], item["growth"], item["goal"]])
    ocop = Chart(
        "ocop", "OCOP products by group and stars", ["group", "3 stars", "4 stars", "5 stars"]
    )
    for group, stars in sorted(ocop_by_stars_and_group(today).items()):
        ocop.rows.append([group, stars.get(3, 0), stars.get(4, 0), stars.get(5, 0)])
    return {c.key: c for c in (by_kind, targets, apps, ocop)}
