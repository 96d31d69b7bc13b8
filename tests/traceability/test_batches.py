"""Products and batches: each claim condition fails on its own, with its own message."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from tests.registry.test_assets import errors_of
from tests.registry_fixtures import OUTSIDE
from tests.traceability.conftest import GTIN14, batch_body


def post_batch(client: FlaskClient, headers: dict, trace: dict, **over: Any) -> Any:
    return client.post(
        "/api/v1/traceability/batches", json=batch_body(trace, **over), headers=headers
    )


def test_product_gtin_is_checked(client: FlaskClient, coop_headers: dict, trace: dict) -> None:
    product = client.get(f"/api/v1/traceability/products/{trace['product']}", headers=coop_headers)
    assert product.json["gtin"] == GTIN14
    bad = client.post(
        "/api/v1/traceability/products",
        headers=coop_headers,
        json={"gtin": "8930000000027", "name": "Vải sấy", "producer_id": trace["coop"]},
    )
    assert errors_of(bad) == {"gtin": "GTIN 8930000000027: check digit should be 6 (got 7)"}
    dup = client.post(
        "/api/v1/traceability/products",
        headers=coop_headers,
        json={"gtin": GTIN14, "name": "Vải", "producer_id": trace["coop"]},
    )
    assert "already registered" in errors_of(dup)["gtin"]
    foreign = client.post(
        "/api/v1/traceability/products",
        headers=coop_headers,
        json={"gtin": "8930000000033", "name": "Chè", "producer_id": trace["other"]},
    )
    assert foreign.status_code == 403


def test_backed_claim_is_accepted_with_its_evidence(
    client: FlaskClient, coop_headers: dict, trace: dict
) -> None:
    response = post_batch(client, coop_headers, trace)
    assert response.status_code == 201, response.json
    (claim,) = response.json["claims"]
    assert claim["status"] == "accepted"
    conditions = [e["condition"] for e in claim["evidence"]]
    assert conditions == [
        "asset_exists",
        "asset_kind",
        "asset_in_force",
        "authorised_user",
        "areas_declared",
        "areas_inside_zone",
        "quantity_unit",
        "yield_known",
        "quantity_within_yield",
        "within_yearly_ceiling",
    ]
    assert all(e["ok"] for e in claim["evidence"])
    assert "LN-001" in claim["evidence"][3]["detail"]
    assert response.json["trace_code"].endswith("/01/08930000000019/10/LN2026-001")


def refused(response: Any) -> str:
    errors = errors_of(response)
    assert list(errors) == ["claims.0"], errors
    return errors["claims.0"]


def test_a_cooperative_cannot_change_its_own_authorisation(
    client: FlaskClient, coop_headers: dict, trace: dict
) -> None:
    url = f"/api/v1/registry/authorised-users/{trace['user']}/status"
    response = client.post(url, json={"status": "active"}, headers=coop_headers)
    assert response.status_code == 403


def test_suspended_user_claim_refused(
    client: FlaskClient, coop_headers: dict, trace: dict, bearer: Callable[..., dict]
) -> None:
    officer = bearer("officer")
    client.post(
        f"/api/v1/registry/authorised-users/{trace['user']}/status",
        json={"status": "suspended", "reason": "kiểm tra"},
        headers=officer,
    )
    message = refused(post_batch(client, coop_headers, trace))
    assert message == (
        "Vải thiều Lục Ngạn: HTX Vải thiều Phượng Sơn is not an active authorised "
        "user of Vải thiều Lục Ngạn on 10/06/2026"
    )


def test_date_outside_the_authorisation_is_refused(
    client: FlaskClient, coop_headers: dict, trace: dict
) -> None:
    message = refused(
        post_batch(client, coop_headers, trace, production_date="2023-06-10", expiry_date=None)
    )
    assert "is not an active authorised user of Vải thiều Lục Ngạn on 10/06/2023" in message


def test_area_outside_the_zone_is_refused(
    client: FlaskClient, coop_headers: dict, trace: dict, make_area: Callable[..., int]
) -> None:
    outside = make_area(trace["coop"], OUTSIDE, code="VN-BG-HH-0009")
    message = refused(post_batch(client, coop_headers, trace, area_ids=[outside]))
    assert (
        message
        == "Vải thiều Lục Ngạn: areas VN-BG-HH-0009 lie outside the zone of Vải thiều Lục Ngạn"
    )


def test_quantity_over_what_the_areas_yield(
    client: FlaskClient, coop_headers: dict, trace: dict
) -> None:
    message = refused(post_batch(client, coop_headers, trace, quantity="110001"))
    assert message == (
        "Vải thiều Lục Ngạn: 110,001 kg is more than the areas can yield: 100,000 kg "
        "(hectares × expected yield) + 10% tolerance = 110,000 kg"
    )
    assert post_batch(client, coop_headers, trace, quantity="110").status_code == 201
    tonnes = post_batch(client, coop_headers, trace, lot="LN2026-002", quantity="111", unit="TNE")
    assert "111,000 kg is more than the areas can yield" in refused(tonnes)


def test_season_total_within_the_yearly_ceiling(
    client: FlaskClient, coop_headers: dict, trace: dict
) -> None:
    assert post_batch(client, coop_headers, trace, quantity="90000").status_code == 201
    second = post_batch(
        client,
        coop_headers,
        trace,
        lot="LN2026-002",
        quantity="70000",
        production_date="2026-06-20",
        expiry_date=None,
    )
    assert refused(second) == (
        "Vải thiều Lục Ngạn: the batches of 2026 would total 160,000 kg, over the "
        "yearly ceiling of 150,000 kg (90,000 kg already claimed)"
    )
    next_year = post_batch(
        client,
        coop_headers,
        trace,
        lot="LN2027-001",
        quantity="70000",
        production_date="2027-06-20",
        expiry_date=None,
    )
    assert next_year.status_code == 201


def test_wrong_kind_and_unknown_asset(client: FlaskClient, coop_headers: dict, trace: dict) -> None:
    wrong = post_batch(
        client, coop_headers, trace, claims=[{"kind": "collective_mark", "asset_id": trace["gi"]}]
    )
    assert "is a geographical indication, not a collective mark" in refused(wrong)
    unknown = post_batch(
        client,
        coop_headers,
        trace,
        claims=[{"kind": "geographical_indication", "asset_id": 999999}],
    )
    assert "no such mark or GI in the registry" in refused(unknown)


def test_gap_claim_needs_a_valid_certificate(
    client: FlaskClient, coop_headers: dict, trace: dict
) -> None:
    ok = post_batch(client, coop_headers, trace, claims=[{"kind": "gap", "scheme": "vietgap"}])
    assert ok.status_code == 201
    assert "VG-24-001" in ok.json["claims"][0]["evidence"][1]["detail"]
    late = post_batch(
        client,
        coop_headers,
        trace,
        lot="LN2027-009",
        production_date="2027-06-10",
        expiry_date=None,
        claims=[{"kind": "gap", "scheme": "vietgap"}],
    )
    assert (
        refused(late)
        == "VietGAP: area VN-BG-LN-0001 has no VietGAP certificate valid on 10/06/2027"
    )
    organic = post_batch(
        client, coop_headers, trace, lot="LN2026-010", claims=[{"kind": "gap", "scheme": "organic"}]
    )
    assert "has no organic certificate" in refused(organic)


def test_ocop_claim_must_be_valid_on_the_day(
    client: FlaskClient, coop_headers: dict, trace: dict, bearer: Callable[..., dict]
) -> None:
    officer = bearer("officer")
    ocop = client.post(
        "/api/v1/registry/ocop",
        headers=officer,
        json={
            "name": "Vải thiều tươi Phượng Sơn",
            "producer_id": trace["coop"],
            "product_group": "food",
            "criteria_version": "148/2023",
            "score": 75,
            "stars": 4,
            "rating_level": "provincial",
            "decision_number": "77/QĐ-UBND",
            "decision_date": "2024-05-01",
            "gtins": [GTIN14],
        },
    ).json
    claim = [{"kind": "ocop", "ocop_product_id": ocop["id"]}]
    ok = post_batch(client, coop_headers, trace, claims=claim)
    assert ok.status_code == 201, ok.json
    early = post_batch(
        client,
        coop_headers,
        trace,
        lot="LN2024-777",
        production_date="2024-04-01",
        expiry_date=None,
        claims=claim,
    )
    assert refused(early).endswith("is not valid on 01/04/2024 (valid, 01/05/2024 – 01/05/2027)")


def test_batch_rules(client: FlaskClient, coop_headers: dict, trace: dict) -> None:
    bad = post_batch(
        client, coop_headers, trace, lot="Lô 1", quantity="0", expiry_date="2026-06-01", claims=[]
    )
    errors = errors_of(bad)
    assert "not in the GS1 set" in errors["lot"]
    assert errors["quantity"] == "must be more than 0"
    assert errors["expiry_date"] == "cannot be before the production date"
    assert post_batch(client, coop_headers, trace, claims=[]).status_code == 201
    dup = post_batch(client, coop_headers, trace, claims=[])
    assert errors_of(dup) == {"lot": "lot LN2026-001 of this product is already registered"}
    listed = client.get("/api/v1/traceability/batches", headers=coop_headers).json
    assert [b["lot"] for b in listed] == ["LN2026-001"]


def test_cooperatives_only_see_their_own(
    client: FlaskClient, coop_headers: dict, trace: dict, bearer: Callable[..., dict]
) -> None:
    batch = post_batch(client, coop_headers, trace).json
    stranger = bearer("cooperative")
    assert (
        client.get(f"/api/v1/traceability/batches/{batch['id']}", headers=stranger).status_code
        == 404
    )
    assert client.get("/api/v1/traceability/batches", headers=stranger).json == []
    assert client.get("/api/v1/traceability/products", headers=stranger).json == []
    stolen = client.post(
        "/api/v1/traceability/batches",
        headers=stranger,
        json=batch_body(trace, lot="X1", claims=[]),
    )
    assert errors_of(stolen) == {"product_id": "this product belongs to another organisation"}
    officer = bearer("officer")
    assert (
        client.get(f"/api/v1/traceability/batches/{batch['id']}", headers=officer).status_code
        == 200
    )


def test_claims_are_checked_on_the_batch_date_not_today(trace: dict, app: Any) -> None:
    """The evidence names the batch's own day."""
    from nguon.db import db
    from traceability import services
    from traceability.models import Batch

    with app.app_context():
        batch = Batch(
            product_id=trace["product"],
            producer_id=trace["coop"],
            lot="X",
            quantity=1,
            unit="KGM",
            production_date=dt.date(2026, 6, 10),
        )
        batch.areas = []
        check = services.evaluate_claim(batch, {"kind": "gap", "scheme": "vietgap"})
        # Outside a request (CLI, workers) messages are in the default language, Vietnamese.
        assert check.failure == "VietGAP: lô hàng không ghi vùng sản xuất nào"
        db.session.rollback()


def test_an_expired_mark_backs_nothing(
    client: FlaskClient, coop_headers: dict, trace: dict
) -> None:
    """The certification mark of the fixture expired on 2025-06-01 (filed 2015, no renewal)."""
    message = refused(
        post_batch(
            client,
            coop_headers,
            trace,
            claims=[{"kind": "certification_mark", "asset_id": trace["mark"]}],
        )
    )
    expected = "Chè Yên Thế: Chè Yên Thế is not in force on 10/06/2026"
    assert message == f"{expected} (status: granted, expiry 01/06/2025)"
