"""Cooperative pages: register a batch with claims, see the evidence, record a step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from tests.conftest import TEST_PASSWORD, csrf_from, login
from tests.registry_fixtures import OUTSIDE


def sign_in_member(client: FlaskClient, trace: dict, in_tx: Callable[..., Any]) -> None:
    from nguon import services

    in_tx(
        lambda: services.create_user(
            "xa-vien@htx.vn", "cooperative", password=TEST_PASSWORD, organisation_id=trace["coop"]
        )
    )
    assert login(client, "xa-vien@htx.vn").status_code == 302


def test_batch_form_shows_refused_claim_then_registers(
    client: FlaskClient, trace: dict, in_tx: Callable[..., Any], make_area: Callable[..., int]
) -> None:
    sign_in_member(client, trace, in_tx)
    outside = make_area(trace["coop"], OUTSIDE, code="VN-BG-HH-0002")
    token = csrf_from(client.get("/traceability/batches/new").get_data(as_text=True))
    form = {
        "csrf_token": token,
        "product_id": str(trace["product"]),
        "lot": "LN2026-050",
        "quantity": "2000",
        "unit": "KGM",
        "production_date": "2026-06-10",
        "claim_asset_ids": str(trace["gi"]),
        "area_ids": str(outside),
    }
    refused = client.post("/traceability/batches/new", data=form)
    assert refused.status_code == 422
    refusal = "các vùng VN-BG-HH-0002 nằm ngoài vùng bảo hộ của Vải thiều Lục Ngạn"
    assert refusal in refused.get_data(as_text=True)
    ok = client.post("/traceability/batches/new", data={**form, "area_ids": str(trace["area"])})
    assert ok.status_code == 302
    page = client.get(ok.headers["Location"]).get_data(as_text=True)
    assert "LN-001" in page  # the authorised user's code is part of the evidence
    assert "✓" in page and "✗" not in page
    recorded = client.post(
        ok.headers["Location"],
        data={"csrf_token": token, "step": "harvest", "event_time": "2026-06-10T06:30:00+07:00"},
    )
    assert recorded.status_code == 302
    assert "10/06/2026 06:30" in client.get(ok.headers["Location"]).get_data(as_text=True)


def test_other_cooperatives_cannot_open_the_batch(
    client: FlaskClient,
    trace: dict,
    in_tx: Callable[..., Any],
    logged_in: Callable[..., FlaskClient],
) -> None:
    from traceability import services

    batch_id = in_tx(
        lambda: (
            services.save_batch(
                {
                    "product_id": trace["product"],
                    "lot": "L9",
                    "quantity": 5,
                    "production_date": dt.date(2026, 6, 1),
                }
            ).id
        )
    )
    stranger = logged_in("cooperative")
    assert stranger.get(f"/traceability/batches/{batch_id}").status_code == 404
    assert "L9" not in stranger.get("/traceability/batches").get_data(as_text=True)


def test_a_seasons_capture_keeps_the_batch_page_short(
    client: FlaskClient, trace: dict, in_tx: Callable[..., Any]
) -> None:
    """Hundreds of events a cooperative captured for its lot: steps in a row that say the
    same are one line with their count and first and last time; past 200 lines the
    earliest are left out, with the way to the whole history."""
    from traceability import epcis, services

    sign_in_member(client, trace, in_tx)

    def capture() -> int:
        batch = services.save_batch(
            {
                "product_id": trace["product"],
                "lot": "LN2026-070",
                "quantity": 5000,
                "production_date": dt.date(2026, 6, 10),
            }
        )
        gtin = batch.product.gtin
        start = dt.datetime(2026, 6, 20, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        events = [
            {
                "type": "ObjectEvent",
                "eventTime": (start + dt.timedelta(seconds=n)).isoformat(),
                "eventTimeZoneOffset": "+07:00",
                "epcList": [f"https://id.gs1.org/01/{gtin}/10/LN2026-070/21/B{n:06d}"],
                "action": "ADD",
                # 300 packed in a row, then 300 alternating shipping and receiving
                "bizStep": "packing" if n < 300 else ("shipping", "receiving")[n % 2],
            }
            for n in range(600)
        ]
        epcis.store_events(events, [], organisation_id=batch.producer_id)
        return batch.id

    batch_id = in_tx(capture)
    html = client.get(f"/traceability/batches/{batch_id}").get_data(as_text=True)
    journey = html.split('id="journey"', 1)[1].split("</ol>", 1)[0]
    assert journey.count("<li>") == 200
    assert "101 dòng trước đó không hiển thị." in journey
    assert f"/api/v1/traceability/batches/{batch_id}/epcis" in journey
    in_db = in_tx(lambda: len(epcis_lines(batch_id)))
    assert in_db == 301  # 1 line of 300 packed, 300 of alternating steps
    packed = in_tx(lambda: epcis_lines(batch_id)[0])
    assert (packed["count"], packed["time"].minute, packed["last_time"].minute) == (300, 30, 34)


def epcis_lines(batch_id: int) -> list[dict[str, Any]]:
    from nguon.db import db
    from traceability import services
    from traceability.models import Batch
    from traceability.views import _journey

    return _journey(services.batch_events(db.session.get(Batch, batch_id)), {})
