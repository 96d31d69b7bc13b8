"""Fine bands of the sanctions decree as data, and the band a case falls in.

The bands of Decree 99/2013/NĐ-CP (as amended by 126/2021/NĐ-CP and 46/2024/NĐ-CP) that
could be confirmed come from a reviewed extract (``shared/data/fine-bands-decree-99-2013.json``;
the project keeps its own copy in ``nguon/data/`` so a clone without ``shared/`` loads the
same), each row with its provenance. Officers enter the rest from the official consolidated
text 01/VBHN-BKHCN (10/06/2024); every band, loaded or entered, lands in the audit log.

Amounts are an individual's. Art. 2(1): an organisation committing the same act is fined
twice as much, and the fine never exceeds 250,000,000 VND for an individual or 500,000,000
VND for an organisation. A band's goods-value range excludes its lower bound ("từ trên")
and includes its upper bound.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from nguon.app import PROJECT_ROOT
from nguon.db import db
from nguon.i18n import N_, _
from nguon.text import nfc
from registry.enforcement.models import FineBand

FILENAME = "fine-bands-decree-99-2013.json"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / FILENAME
BUNDLED_DATA = PROJECT_ROOT / "nguon" / "data" / FILENAME
ORGANISATION_MULTIPLIER = 2
CEILING_VND = {"individual": 250_000_000, "organisation": 500_000_000}
INFRINGER_KINDS = ("individual", "organisation")


def extract_path() -> Path:
    """shared/ beside the checkout when present, else the project's own copy."""
    return SHARED_DATA if SHARED_DATA.is_file() else BUNDLED_DATA


def read_extract(path: Path | None = None) -> dict[str, Any]:
    with (path or extract_path()).open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data.get("bands"), list):
        raise ValueError(f"{path}: no 'bands' list")
    return data


def _source(data: dict[str, Any]) -> str:
    consolidated = next(
        (i for i in data.get("instruments", []) if "VBHN" in i.get("number", "")), {}
    )
    return nfc(
        f"{data.get('provenance', '')} "
        f"[{consolidated.get('number', '')} {consolidated.get('dated', '')}]".strip()
    )


def load_extract(path: Path | None = None) -> tuple[int, int]:
    """Insert the extract's bands not yet present (matched by decree, article, clause and
    the date they apply from); returns (added, already there). Flushes, never commits."""
    data = read_extract(path)
    source = _source(data)
    added = present = 0
    for row in data["bands"]:
        effective_from = dt.date.fromisoformat(row["effective_from"])
        article, clause = str(row["article"]), str(row["clause"])
        found = db.session.scalar(
            select(FineBand.id).where(
                FineBand.decree == nfc(row["decree"]),
                FineBand.article == article,
                FineBand.clause == clause,
                FineBand.effective_from == effective_from,
            )
        )
        if found is not None:
            present += 1
            continue
        db.session.add(
            FineBand(
                decree=nfc(row["decree"]),
                amended_by=nfc(row.get("amended_by") or ""),
                article=article,
                clause=clause,
                description=nfc(row["violation"]),
                min_vnd=int(row["fine_min_vnd"]),
                max_vnd=int(row["fine_max_vnd"]),
                goods_value_above_vnd=row.get("goods_value_above_vnd"),
                goods_value_up_to_vnd=row.get("goods_value_up_to_vnd"),
                value_undeterminable=bool(row.get("value_undeterminable")),
                warning_possible=bool(row.get("warning_possible")),
                effective_from=effective_from,
                effective_to=(
                    dt.date.fromisoformat(row["effective_to"]) if row.get("effective_to") else None
                ),
                source=source,
                origin="extract",
            )
        )
        added += 1
    db.session.flush()
    return added, present


# The extract's English notes of what is still to be entered, as catalogue msgids, so the
# officers' page shows them in their language (a note the extract adds later shows as
# written until it is catalogued).
MISSING_WORDS = (
    N_("Art. 12 clauses 5-10 (goods above 40,000,000 VND) as amended by 126/2021"),
    N_("Art. 12 before 2022-01-01 (original 99/2013 text)"),
    N_(
        "Art. 11 clauses 8-11 (goods above 100,000,000 up to 500,000,000 VND), and whether "
        "126/2021 changed Art. 11"
    ),
    N_(
        "Art. 14 (unfair competition, false indications of origin) and Art. 5 (false "
        "indications of protection)"
    ),
)


def missing() -> list[str]:
    """What the extract says is still to be entered from the official text, in the
    visitor's language where the catalogue has the note."""
    try:
        notes = list(read_extract().get("missing", []))
    except (OSError, ValueError):
        return []
    return [_(note) if isinstance(note, str) and note else str(note) for note in notes]


def amounts(band: FineBand, infringer_kind: str | None) -> tuple[int, int]:
    """The band's fine range for this infringer (Art. 2(1): organisations ×2, ceilings)."""
    if infringer_kind == "organisation":
        ceiling = CEILING_VND["organisation"]
        return (
            min(band.min_vnd * ORGANISATION_MULTIPLIER, ceiling),
            min(band.max_vnd * ORGANISATION_MULTIPLIER, ceiling),
        )
    ceiling = CEILING_VND["individual"]
    return min(band.min_vnd, ceiling), min(band.max_vnd, ceiling)


def covers(band: FineBand, goods_value: int | None) -> bool:
    """Whether ``goods_value`` (None: it cannot be determined) falls in the band's range."""
    if goods_value is None:
        return band.value_undeterminable
    if band.value_undeterminable:
        return False
    above = band.goods_value_above_vnd
    up_to = band.goods_value_up_to_vnd
    if above is None and up_to is None:
        return True  # a band entered without a value range applies whatever the value
    return (above is None or goods_value > above) and (up_to is None or goods_value <= up_to)


def in_force(band: FineBand, on: dt.date) -> bool:
    return band.effective_from <= on and (band.effective_to is None or on <= band.effective_to)


@dataclass(frozen=True)
class Proposal:
    """The band a case falls in, or None with the reason none could be proposed."""

    band: FineBand | None
    min_vnd: int | None
    max_vnd: int | None
    reason: str  # what was looked for (shown when no band was found)


def propose(
    article: str, goods_value: int | None, on: dt.date, infringer_kind: str | None
) -> Proposal:
    """The band of ``article`` in force on ``on`` whose goods-value range holds
    ``goods_value``; the newest in force when versions overlap. ``reason`` says plainly
    what is missing when no band has been entered for that value."""
    candidates = [
        band
        for band in db.session.scalars(
            select(FineBand)
            .where(FineBand.article == article)
            .order_by(FineBand.effective_from.desc(), FineBand.id.desc())
        )
        if in_force(band, on) and covers(band, goods_value)
    ]
    value = "undeterminable" if goods_value is None else f"{goods_value:,}"
    reason = f"article={article}; goods_value_vnd={value}; on={on.isoformat()}"
    if not candidates:
        return Proposal(None, None, None, reason)
    band = candidates[0]
    low, high = amounts(band, infringer_kind)
    return Proposal(band, low, high, reason)


def articles() -> list[tuple[str, str]]:
    """(article, the violation it describes) of every band entered, for choosing."""
    rows = db.session.execute(
        select(FineBand.article, FineBand.description).order_by(FineBand.article, FineBand.id)
    ).all()
    seen: dict[str, str] = {}
    for article, description in rows:
        seen.setdefault(article, description)
    return sorted(seen.items(), key=lambda pair: (len(pair[0]), pair[0]))


def legal_basis(band: FineBand) -> str:
    """The citation written on the decision, e.g. "Khoản 4 Điều 12 Nghị định 99/2013/NĐ-CP
    (được sửa đổi, bổ sung bởi Nghị định 126/2021/NĐ-CP)"."""
    clause = f"Khoản {band.clause} " if band.clause else ""
    amended = f" (được sửa đổi, bổ sung bởi Nghị định {band.amended_by})" if band.amended_by else ""
    return f"{clause}Điều {band.article} Nghị định {band.decree}{amended}"
