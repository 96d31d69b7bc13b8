"""Administrative units as data, from the libraries that keep them (never typed by hand).

- current units (since the 2025 reorganisation: 34 provinces and their communes/wards)
  from ``vietnam-provinces``, with each commune's coordinates from ``vietnamadminunits``;
- the legacy districts a record may have been made under (Bắc Giang's), from
  ``vietnamadminunits``' legacy data, valid until the reorganisation.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

import vietnam_provinces
from sqlalchemy import select
from vietnamadminunits import convert_address, parse_address

from nguon.db import db
from nguon.text import search_key
from registry.models import AdminUnit

REORGANISED_ON = dt.date(2025, 7, 1)  # the two-tier units took effect
LEGACY_UNTIL = REORGANISED_ON - dt.timedelta(days=1)


def _row(code: str, name: str, level: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "level": level,
        "name_key": search_key(name),
        "parent_code": None,
        "valid_from": None,
        "valid_to": None,
        "latitude": None,
        "longitude": None,
        **extra,
    }


def current_units() -> list[dict[str, Any]]:
    """Today's provinces and communes as unit rows (fresh dicts each call)."""
    return [dict(row) for row in _current_units()]


@functools.lru_cache(maxsize=1)
def _current_units() -> tuple[dict[str, Any], ...]:
    # Read and geocoded once per process (about a second: a parse per commune).
    with open(vietnam_provinces.NESTED_DIVISIONS_JSON_PATH, encoding="utf-8") as handle:
        provinces = json.load(handle)
    rows = []
    for province in provinces:
        pcode = f"P{province['code']:02d}"
        rows.append(_row(pcode, province["name"], "province", valid_from=REORGANISED_ON))
        for ward in province["wards"]:
            place = parse_address(f"{ward['name']}, {province['name']}", level=2)
            rows.append(
                _row(
                    f"W{ward['code']:05d}",
                    ward["name"],
                    "commune",
                    parent_code=pcode,
                    valid_from=REORGANISED_ON,
                    latitude=place.latitude,
                    longitude=place.longitude,
                )
            )
    return tuple(rows)


def legacy_district(district: str, province: str) -> dict[str, Any] | None:
    """A pre-2025 district (e.g. "Lục Ngạn", "Bắc Giang") as a unit row with coordinates."""
    place = parse_address(f"{district}, {province}", mode="LEGACY", level=2)
    if not place.district_code:
        return None
    return _row(
        f"LD{place.district_code}",
        place.district,
        "district",
        parent_code=f"LP{place.province_code}",
        valid_to=LEGACY_UNTIL,
        latitude=place.latitude,
        longitude=place.longitude,
    )


def legacy_province(province: str) -> dict[str, Any] | None:
    place = parse_address(province, mode="LEGACY", level=1)
    if not place.province_code:
        return None
    return _row(f"LP{place.province_code}", place.province, "province", valid_to=LEGACY_UNTIL)


def load_units(rows: list[dict[str, Any]]) -> int:
    """Insert the units not yet present (parents first); returns how many were added."""
    present = set(db.session.scalars(select(AdminUnit.code)))
    fresh = []
    for row in rows:
        if row["code"] not in present:
            present.add(row["code"])
            fresh.append(row)
    order = {"province": 0, "district": 1, "commune": 2}
    fresh.sort(key=lambda r: order[r["level"]])
    if fresh:
        db.session.execute(AdminUnit.__table__.insert(), fresh)
    return len(fresh)


@functools.lru_cache(maxsize=1024)
def now_part_of(address: str) -> str | None:
    """For an address written under the units before the 2025 reorganisation, the current
    unit it now belongs to ("phường Phượng Sơn, tỉnh Bắc Ninh", or "tỉnh Bắc Ninh" when the
    commune is not recognised); None for an address already in today's units, or one the
    data does not recognise. Districts were abolished and provinces merged on 01/07/2025,
    so an address naming a district, or a province that is gone, is a legacy one (labels
    printed with it stay lawful for two years: Decree 37/2026, Art. 98(5))."""
    if not address or not address.strip():
        return None
    try:
        legacy = parse_address(address, mode="LEGACY", level=3)
        current = convert_address(address)
    except Exception:  # the library raises for text it cannot read as an address
        return None
    if not legacy.province or not current.province:
        return None
    if not legacy.district and legacy.province == current.province:
        return None  # already written in today's units
    units = [name for name in (current.ward, current.province) if name]
    return ", ".join(name[:1].lower() + name[1:] for name in units)
