"""Traceability fixtures: a cooperative authorised for the Lục Ngạn GI, its area and product."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from tests.registry_fixtures import INSIDE

GTIN = "8930000000019"  # GTIN-13, check digit 9
GTIN14 = "08930000000019"


def years_from_today(years: int) -> dt.date:
    """A date ``years`` from today (28 Feb for 29 Feb): validity that must still hold
    whenever the suite runs, e.g. an authorisation the product form checks on the day."""
    today = dt.date.today()
    return today.replace(year=today.year + years, day=min(today.day, 28))


@pytest.fixture
def trace(
    registry: dict, in_tx: Callable[..., Any], make_area: Callable[..., int]
) -> dict[str, Any]:
    """registry + an authorised user (ceiling 150 t) with a 12.5 ha area (8 t/ha) inside the
    GI zone, VietGAP on that area until 2027, and a product of the cooperative."""
    from registry import services as registry_services
    from traceability import services

    area = make_area(registry["coop"], INSIDE, code="VN-BG-LN-0001")

    def build() -> dict[str, Any]:
        from nguon.db import db
        from registry.models import ProductionArea

        registry_services.add_area_certificate(
            db.session.get(ProductionArea, area),
            {
                "scheme": "vietgap",
                "number": "VG-24-001",
                "issuer": "Trung tâm QUACERT",
                "valid_from": dt.date(2024, 6, 1),
                "valid_to": dt.date(2027, 5, 31),
            },
        )
        user = registry_services.save_authorised_user(
            {
                "asset_id": registry["gi"],
                "organisation_id": registry["coop"],
                "decision_number": "125/QĐ-SKHCN",
                "decision_date": dt.date(2024, 3, 1),
                "valid_from": dt.date(2024, 3, 1),
                "valid_to": years_from_today(3),  # in force today, whenever that is
                "user_code": "LN-001",
                "products": ["quả vải thiều tươi"],
                "yearly_ceiling": 150000,
                "area_ids": [area],
            }
        )
        product = services.save_product(
            {
                "gtin": GTIN,
                "name": "Vải thiều Lục Ngạn tươi, thùng 10 kg",
                "brand": "Phượng Sơn",
                "producer_id": registry["coop"],
                "standards": ["TCVN 12850:2019", "VietGAP"],
                "safety_warnings": "Bảo quản 2–8 °C",
                "asset_ids": [registry["gi"]],
            }
        )
        return {"area": area, "user": user.id, "product": product.id}

    return {**registry, **in_tx(build)}


def batch_body(trace: dict, **over: Any) -> dict[str, Any]:
    return {
        "product_id": trace["product"],
        "lot": "LN2026-001",
        "quantity": "50000",
        "unit": "KGM",
        "production_date": "2026-06-10",
        "expiry_date": "2026-06-24",
        "area_ids": [trace["area"]],
        "claims": [{"kind": "geographical_indication", "asset_id": trace["gi"]}],
        **over,
    }


@pytest.fixture
def coop_headers(trace: dict, in_tx: Callable[..., Any]) -> dict:
    """A cooperative user of the fixture's cooperative, with a token."""
    from nguon import services
    from nguon.db import db
    from nguon.models import User

    def make() -> str:
        user = services.create_user(
            "thanhvien@htx-phuongson.vn",
            "cooperative",
            password="long enough pw",
            organisation_id=trace["coop"],
        )
        return services.create_token(db.session.get(User, user.id), "erp").secret

    return {"Authorization": f"Bearer {in_tx(make)}"}
