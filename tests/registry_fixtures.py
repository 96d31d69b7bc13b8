"""Registry fixtures: a GI with a zone around Lục Ngạn, a certification mark, areas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from nguon.db import db
from registry.geo import square

LUC_NGAN = (106.68, 21.43)
GI_ZONE = square(*LUC_NGAN, 0.2)
INSIDE = square(106.70, 21.45, 0.01)
OUTSIDE = square(105.90, 21.35, 0.01)  # Hiệp Hòa, well west of the zone


def gi_data(**over: Any) -> dict[str, Any]:
    return {
        "kind": "geographical_indication",
        "name": "Vải thiều Lục Ngạn",
        "products": ["quả vải thiều tươi", "vải thiều sấy khô"],
        "nice_classes": [],
        "district_name": "Lục Ngạn",
        "application_number": "6-2007-00001",
        "filing_date": dt.date(2007, 3, 1),
        "certificate_number": "00017",
        "grant_date": dt.date(2008, 1, 15),
        "status": "granted",
        "area": GI_ZONE,
        **over,
    }


@pytest.fixture
def registry(in_tx: Callable[..., Any], make_org: Callable[..., int]) -> dict[str, Any]:
    """A managing agency, two cooperatives, a granted GI and a granted certification mark."""
    from registry import services

    agency = make_org(name="UBND huyện Lục Ngạn", kind="agency")
    coop = make_org(name="HTX Vải thiều Phượng Sơn", kind="cooperative")
    other = make_org(name="HTX Chè Bố Hạ", kind="cooperative")

    def build() -> dict[str, Any]:
        gi = services.save_asset(gi_data(managing_organisation_id=agency))
        mark = services.save_asset(
            {
                "kind": "certification_mark",
                "name": "Chè Yên Thế",
                "products": ["chè khô"],
                "nice_classes": [30],
                "holder_id": agency,
                "district_name": "Yên Thế",
                "application_number": "4-2015-12345",
                "filing_date": dt.date(2015, 6, 1),
                "certificate_number": "265432",
                "grant_date": dt.date(2016, 9, 1),
                "status": "granted",
            }
        )
        return {"gi": gi.id, "mark": mark.id}

    ids = in_tx(build)
    return {"agency": agency, "coop": coop, "other": other, **ids}


@pytest.fixture
def make_area(in_tx: Callable[..., Any]) -> Callable[..., int]:
    counter = iter(range(1, 10_000))

    def make(owner_id: int, geometry: dict[str, Any] = INSIDE, **over: Any) -> int:
        from registry import services

        data = {
            "code": f"VN-BG-LN-{next(counter):04d}",
            "crop": "vải thiều",
            "owner_id": owner_id,
            "hectares": "12.5",
            "geometry": geometry,
            "expected_yield_kg_per_ha": "8000",
            **over,
        }
        return in_tx(lambda: services.save_area(data).id)

    return make


def get(model: Any, ident: Any) -> Any:
    return db.session.get(model, ident)
