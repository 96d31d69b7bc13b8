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


PLAN_FIRST_YEAR = 2021  # the province's five-year plans: 2021–2025, 2026–2030, ...


def plan_period(year: int) -> tuple[int, int]:
    """The five-year plan period holding ``year`` (socio-economic plans run 2021–2025,
    2026–2030, ...)."""
    start = PLAN_FIRST_YEAR + 5 * ((year - PLAN_FIRST_YEAR) // 5)
    return start, start + 4


def granted_by(kind: str, day: dt.date) -> int:
    """Assets of ``kind`` granted on or before ``day`` (and not since refused)."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(IPAsset)
            .where(
                IPAsset.kind == kind,
                IPAsset.grant_date.isnot(None),
                IPAsset.grant_date <= day,
                IPAsset.status.in_((AssetStatus.GRANTED, AssetStatus.EXPIRED)),
            )
        )
        or 0
    )


def targets_progress(today: dt.date, counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Each count target of the plan period holding ``today`` (the latest year set within
    it) against the number of granted assets of that kind (``counts``:
    counts_by_kind_and_status()). A period without targets has none: an old period's
    targets are not shown as if they were current (see :func:`period_outcome`)."""
    start, end = plan_period(today.year)
    return [
        {**item, "granted": counts.get(item["metric"], {}).get(AssetStatus.GRANTED, 0)}
        | _share(counts.get(item["metric"], {}).get(AssetStatus.GRANTED, 0), item["target"])
        for item in _period_targets(start, end)
    ]


def period_outcome(start: int, end: int) -> list[dict[str, Any]]:
    """A plan period's targets against what was granted by its last day."""
    last_day = dt.date(end, 12, 31)
    return [
        {**item, "granted": granted_by(item["metric"], last_day)}
        | _share(granted_by(item["metric"], last_day), item["target"])
        for item in _period_targets(start, end)
    ]


def _share(granted: int, goal: int) -> dict[str, Any]:
    return {"share": round(granted / goal, 3) if goal else None}


def _period_targets(start: int, end: int) -> list[dict[str, Any]]:
    targets = db.session.scalars(
        select(Target)
        .where(Target.by_year >= start, Target.by_year <= end, Target.metric.in_(KIND_ORDER))
        .order_by(Target.metric, Target.by_year)
    ).all()
    chosen = {t.metric: t for t in targets}  # the latest year within the period wins
    return [
        {
            "metric": metric,
            "by_year": chosen[metric].by_year,
            "period": f"{start}–{end}",
            "target": int(chosen[metric].value),
            "source": chosen[metric].source,
        }
        for metric in KIND_ORDER
        if metric in chosen
    ]


def applications_per_year(until_year: int | None = None) -> list[dict[str, Any]]:
    """Applications filed per year, every year from the first filing to ``until_year``
    (years without a filing count as 0, so growth is never computed across a gap), the
    growth on the year before (none after a year of 0), and whether that met the yearly
    growth goal (the latest applications_growth target; 5 % in the seed)."""
    year = extract("year", IPAsset.filing_date)
    rows = dict(
        db.session.execute(
            select(year, func.count())
            .where(IPAsset.filing_date.isnot(None))
            .group_by(year)
            .order_by(year)
        ).all()
    )
    counts = {int(y): n for y, n in rows.items()}
    goal_row = db.session.scalar(
        select(Target.value)
        .where(Target.metric == "applications_growth")
        .order_by(Target.by_year.desc())
    )
    goal = Decimal(goal_row) if goal_row is not None else Decimal("0.05")
    result: list[dict[str, Any]] = []
    if not counts:
        return result
    last = max(max(counts), until_year or 0)
    previous = None
    for each in range(min(counts), last + 1):
        count = counts.get(each, 0)
        growth = None if not previous else round((count - previous) / previous, 4)
        result.append(
            {
                "year": each,
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
    applications = applications_per_year(today.year)
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
