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
