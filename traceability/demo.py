"""Demo products, batches and events (flagged as demo) for the first GI's cooperative."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from nguon.db import db
from registry.models import AuthorisedUser, IPAsset
from traceability import epcis, services
from traceability.models import Product
from traceability.services import local_today

DEMO_PRODUCTS = [
    # (GTIN-13, name, standards, warnings)
    (
        "8930000000019",
        "Vải thiều Lục Ngạn tươi, thùng 10 kg",
        ["TCVN 12850:2019", "VietGAP"],
        "Bảo quản 2–8 °C; dùng trong 10 ngày.",
    ),
    (
        "8930000000026",
        "Vải thiều sấy khô, túi 500 g",
        ["TCVN 12850:2019"],
        "Bảo quản nơi khô ráo, tránh ánh nắng.",
    ),
]


def load(echo: Callable[..., Any]) -> None:
    if db.session.scalar(select(Product.id).where(Product.gtin == "0" + DEMO_PRODUCTS[0][0])):
        return
    gi = db.session.scalar(
        select(IPAsset).where(
            IPAsset.name == "Vải thiều Lục Ngạn", IPAsset.kind == "geographical_indication"
        )
    )
    user = gi and db.session.scalar(select(AuthorisedUser).where(AuthorisedUser.asset_id == gi.id))
    if user is None:
        echo("traceability demo: no authorised user of Vải thiều Lục Ngạn; skipped", err=True)
        return
    # The season is the days before the demo is loaded, so the lot is fresh (not expired)
    # whenever a demo is loaded; the lot codes stay as printed in the README.
    harvest = local_today() - dt.timedelta(days=4)
    products = []
    for gtin, name, standards, warnings in DEMO_PRODUCTS:
        product = services.save_product(
            {
                "gtin": gtin,
                "name": name,
                "brand": "Lục Ngạn",
                "producer_id": user.organisation_id,
                "standards": standards,
                "safety_warnings": warnings,
                "asset_ids": [gi.id],
            }
        )
        product.is_demo = True
        products.append(product)
    fresh = services.save_batch(
        {
            "product_id": products[0].id,
            "lot": "LN2026-001",
            "quantity": Decimal(20000),
            "unit": "KGM",
            "production_date": harvest,
            "expiry_date": harvest + dt.timedelta(days=14),
            "area_ids": [user.areas[0].id],  # the area with the VietGAP certificate
            "claims": [
                {"kind": "geographical_indication", "asset_id": gi.id},
                {"kind": "gap", "scheme": "vietgap"},
            ],
        }
    )
    dried = services.save_batch(
        {
            "product_id": products[1].id,
            "lot": "SK2026-001",
            "quantity": Decimal(400),
            "unit": "KGM",
            "production_date": harvest + dt.timedelta(days=2),
            "expiry_date": harvest + dt.timedelta(days=367),
        }
    )
    fresh.is_demo = dried.is_demo = True

    def at(days: int, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(harvest + dt.timedelta(days=days), dt.time(hour, minute))

    steps = [
        (fresh, "harvest", at(0, 6, 30), {}),
        (fresh, "pack", at(0, 14), {}),
        (fresh, "ship", at(1, 5), {"destination": "https://id.gs1.org/417/8930000000026"}),
        (fresh, "process", at(2, 8), {"output_batch": dried, "quantity": Decimal(2000)}),
        (dried, "pack", at(3, 9), {}),
    ]
    tz = dt.timezone(dt.timedelta(hours=7))
    for batch, step, when, extra in steps:
        event = services.guided_event(step, batch, {"event_time": when.replace(tzinfo=tz), **extra})
        epcis.store_events([event], [], organisation_id=batch.producer_id)
    from traceability import labels

    labels.issue_run(fresh, "lot")
    run = labels.issue_run(fresh, "item", 20, Decimal(10))
    base = current_app.config["PUBLIC_URL"]
    first = labels.run_labels(run)[0]
    echo(
        "traceability demo: 2 products, 2 batches, 5 events, 1 lot code and 20 item codes", err=True
    )
    echo(f"demo consumer page (lot code): {labels.label_uri(first.gtin, fresh.lot, None, base)}")
    item_uri = labels.label_uri(first.gtin, fresh.lot, first.serial, base)
    echo(f"demo consumer page (item code): {item_uri}")
