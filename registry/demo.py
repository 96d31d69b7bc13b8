"""The registry's demo: the province's 28 assets as facts, and clearly-flagged demo values
for what the sources do not give (numbers, dates, holders, zones, users, areas, OCOP)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from nguon.db import db
from registry import rules, services
from registry.admin_units import current_units, legacy_district, legacy_province, load_units
from registry.geo import square
from registry.models import (
    AssetKind,
    AuthorisedUser,
    IPAsset,
    OcopProduct,
    Organisation,
    Target,
)

DEMO = " (demo)"
# Nice classes by product, for the demo only (flagged as demo values).
NICE_BY_WORD = {
    "chè": [30],
    "mỳ": [30],
    "rượu": [33],
    "tương": [30],
    "gà": [29, 31],
    "dê": [29, 31],
    "hoa": [31],
    "ba kích": [5],
    "nấm": [5, 31],
    "sâm": [5],
}


def _stable_number(text: str, digits: int) -> int:
    """A number derived from ``text`` so the demo is the same on every machine."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % (10**digits)


def _org(name: str, kind: str, **fields: Any) -> Organisation:
    found = db.session.scalar(select(Organisation).where(Organisation.name == name))
    if found:
        return found
    return services.save_organisation({"name": name, "kind": kind, **fields})


def _product_name(text: str) -> str:
    return text.split("(")[0].strip()


def load(data: dict[str, Any], echo: Callable[..., Any]) -> None:
    province = data.get("province", "Bắc Giang")
    units = [current_units()]
    legacy = [legacy_province(province)] + [
        legacy_district(a["district"].replace("TP ", ""), province) for a in data["assets"]
    ]
    added = load_units([row for group in units for row in group] + [r for r in legacy if r])
    echo(f"administrative units: {added} added", err=True)
    from registry.enforcement import fines

    bands, _present = fines.load_extract()
    echo(f"fine bands (Decree 99/2013/NĐ-CP, reviewed extract): {bands} added", err=True)
    department = _org(
        f"Sở Khoa học và Công nghệ tỉnh {province}{DEMO}", "agency", address=f"tỉnh {province}"
    )
    created = 0
    for number, fact in enumerate(data["assets"], start=1):
        if db.session.scalar(
            select(IPAsset.id).where(IPAsset.kind == fact["kind"], IPAsset.name == fact["name"])
        ):
            continue
        _demo_asset(number, fact, province, department)
        created += 1
    echo(f"assets: {created} created from the source's {len(data['assets'])}", err=True)
    _demo_users_and_areas(province)
    _demo_ocop()
    _targets(data)


def _district_point(district: str, province: str) -> tuple[float, float] | None:
    row = legacy_district(district.replace("TP ", ""), province)
    if row is None or row["longitude"] is None:
        return None
    return row["longitude"], row["latitude"]


def _demo_asset(number: int, fact: dict[str, Any], province: str, department: Organisation) -> None:
    kind = fact["kind"]
    preparing = "preparing" in fact.get("status", "")
    product = _product_name(fact["product"])
    year = int(fact.get("granted_year") or 2010 + _stable_number(fact["name"], 1))
    filing = dt.date(year - 1, 1 + _stable_number(fact["name"] + "m", 2) % 12, 10)
    grant = filing + dt.timedelta(days=300 + _stable_number(fact["name"] + "d", 2))
    district_label = fact["district"]
    demo_fields = []
    data: dict[str, Any] = {
        "kind": kind,
        "name": fact["name"],
        "products": [product],
        "district_name": district_label,
        "status": "preparing" if preparing else "granted",
        "notes": "; ".join(
            filter(None, [fact.get("note"), fact.get("type_note"), fact.get("status")])
        ),
    }
    if kind != AssetKind.GEOGRAPHICAL_INDICATION:
        data["nice_classes"] = next(
            (v for k, v in NICE_BY_WORD.items() if k in product.lower()), [31]
        )
        demo_fields.append("nice_classes")
    if kind in (AssetKind.GEOGRAPHICAL_INDICATION, AssetKind.CERTIFICATION_MARK):
        manager = _org(
            f"UBND huyện {district_label.replace('TP ', '')}{DEMO}",
            "agency",
            address=f"{district_label}, tỉnh {province}",
        )
        key = (
            "managing_organisation_id" if kind == AssetKind.GEOGRAPHICAL_INDICATION else "holder_id"
        )
        data[key] = manager.id
        demo_fields.append(key)
    else:
        holder = _org(
            f"Hội sản xuất và kinh doanh {fact['name']}{DEMO}",
            "association",
            address=f"{district_label}, tỉnh {province}",
        )
        data["holder_id"] = holder.id
        demo_fields.append("holder_id")
    if not preparing:
        prefix = "6" if kind == AssetKind.GEOGRAPHICAL_INDICATION else "4"
        digits = 5 if kind == AssetKind.GEOGRAPHICAL_INDICATION else 6
        data.update(
            application_number=f"{prefix}-{filing.year}-{_stable_number(fact['name'], 5):05d}",
            filing_date=filing,
            certificate_number=f"{_stable_number(fact['name'] + 'c', digits):0{digits}d}",
            grant_decision=f"{_stable_number(fact['name'] + 'q', 4)}/QĐ-SHTT",
            grant_date=grant,
        )
        demo_fields += [
            "application_number",
            "filing_date",
            "certificate_number",
            "grant_decision",
            "grant_date",
        ]
    point = _district_point(district_label, province)
    if point and kind in (AssetKind.GEOGRAPHICAL_INDICATION, AssetKind.CERTIFICATION_MARK):
        data["area"] = square(*point, 0.12)
        demo_fields.append("area")
    data["demo_fields"] = demo_fields
    asset = services.save_asset(data)
    # The province's marks are in force: renew them inside each window, as a holder would.
    while asset.expiry_date and rules.renewal_window(asset.expiry_date)[0] <= dt.date.today():
        services.renew_asset(asset, rules.add_months(asset.expiry_date, -2), "demo")
    for protection in fact.get("foreign_protection", []):
        route = (
            "gi_japan"
            if kind == AssetKind.GEOGRAPHICAL_INDICATION and protection["territory"] == "JP"
            else "national"
        )
        services.add_foreign_protection(
            asset,
            {
                "territory": protection["territory"],
                "route": route,
                "note": protection.get("note", ""),
            },
        )


def _demo_users_and_areas(province: str) -> None:
    """For each GI and certification mark: its demo cooperative as authorised user, with
    two production areas inside the zone, VietGAP on one of them."""
    zoned = db.session.scalars(
        select(IPAsset)
        .where(IPAsset.area.isnot(None), IPAsset.status == "granted")
        .order_by(IPAsset.id)
    ).all()
    # Validity around the day the demo is loaded, so a demo loaded in any year is in force.
    today = dt.date.today()
    for asset in zoned:
        coop_name = f"Hợp tác xã {asset.name}{DEMO}"
        coop = db.session.scalar(select(Organisation).where(Organisation.name == coop_name))
        if coop is None:
            coop = _org(coop_name, "cooperative", address=f"{asset.district_name}, tỉnh {province}")
        if db.session.scalar(select(AuthorisedUser.id).where(AuthorisedUser.asset_id == asset.id)):
            continue
        ((lon0, lat0),) = [asset.area["coordinates"][0][0]]
        areas = []
        for n, (dx, dy) in enumerate([(0.05, 0.06), (0.14, 0.1)], start=1):
            code = f"VN-{asset.id:02d}-{n:03d}"
            area = services.save_area(
                {
                    "code": code,
                    "name": f"Vùng {n} — {asset.name}",
                    "crop": asset.products[0],
                    "owner_id": coop.id,
                    "hectares": Decimal("8.5") * n,
                    "expected_yield_kg_per_ha": Decimal("7500"),
                    "geometry": square(lon0 + dx, lat0 + dy, 0.01),
                }
            )
            area.is_demo = True
            areas.append(area)
        services.add_area_certificate(
            areas[0],
            {
                "scheme": "vietgap",
                "number": f"VietGAP-TT-{asset.id:02d}-0{asset.id}",
                "issuer": "Trung tâm Chứng nhận (demo)",
                "valid_from": dt.date(today.year - 1, 1, 1),
                "valid_to": dt.date(today.year + 1, 12, 31),
            },
        )
        user = services.save_authorised_user(
            {
                "asset_id": asset.id,
                "organisation_id": coop.id,
                "decision_number": f"{100 + asset.id}/QĐ-SKHCN",
                "decision_date": dt.date(today.year - 2, 3, 1),
                "valid_from": dt.date(today.year - 2, 3, 1),
                "valid_to": dt.date(today.year + 3, 2, 28),
                "user_code": f"{asset.id:02d}-001",
                "products": asset.products,
                "yearly_ceiling": Decimal("150000"),
                "ceiling_unit": "KGM",
                "area_ids": [a.id for a in areas],
            }
        )
        user.is_demo = True
    db.session.flush()


def _demo_ocop() -> None:
    if db.session.scalar(select(OcopProduct.id).limit(1)):
        return
    wanted = [
        ("Vải thiều sấy khô", "Vải thiều Lục Ngạn", "food", 78, 4),
        ("Chè xanh Yên Thế", "Chè Yên Thế", "beverages", 72, 4),
        ("Mỳ Chũ", "Mỳ Chũ", "food", 91, 5),
        ("Na dai Lục Nam", "Na dai Lục Nam", "food", 64, 3),
    ]
    for name, asset_name, group, score, stars in wanted:
        asset = db.session.scalar(
            select(IPAsset).where(IPAsset.name == asset_name).order_by(IPAsset.id)
        )
        producer = (
            db.session.scalar(
                select(Organisation).where(Organisation.name == f"Hợp tác xã {asset_name}{DEMO}")
            )
            if asset
            else None
        )
        producer = producer or db.session.scalar(
            select(Organisation)
            .where(Organisation.kind == "cooperative", Organisation.is_demo)
            .order_by(Organisation.id)
        )
        if asset is None or producer is None:
            continue
        ocop = services.save_ocop_product(
            {
                "name": name,
                "producer_id": producer.id,
                "product_group": group,
                "criteria_version": "148/2023",
                "score": score,
                "stars": stars,
                "rating_level": "national" if stars == 5 else "provincial",
                "decision_number": f"{1200 + score}/QĐ-UBND",
                # A year before the load: the rating (three years) is in force.
                "decision_date": dt.date(dt.date.today().year - 1, 1, 10),
                "asset_ids": [asset.id],
            }
        )
        ocop.is_demo = True


def _targets(data: dict[str, Any]) -> None:
    if db.session.scalar(select(Target.id).limit(1)):
        return
    for target in data.get("targets", []):
        if "by" not in target:
            continue
        year = int(target["by"])
        for metric in ("geographical_indication", "certification_mark", "collective_mark"):
            if metric in target:
                services.save_target(
                    {
                        "metric": metric,
                        "value": Decimal(target[metric]),
                        "by_year": year,
                        "source": target["source"],
                    }
                )
        growth = target.get("industrial_property_applications_growth_per_year")
        if growth is not None:
            services.save_target(
                {
                    "metric": "applications_growth",
                    "value": Decimal(str(growth)),
                    "by_year": year,
                    "source": target["source"],
                }
            )
