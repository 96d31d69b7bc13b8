"""Authorised users, production areas and OCOP ratings: each rule fails on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.registry.test_assets import errors_of
from tests.registry_fixtures import INSIDE, OUTSIDE


@pytest.fixture
def staff(bearer: Callable[..., dict]) -> dict:
    return bearer("officer")


def user_body(registry: dict, **over: Any) -> dict[str, Any]:
    return {
        "asset_id": registry["gi"],
        "organisation_id": registry["coop"],
        "decision_number": "125/QĐ-SKHCN",
        "decision_date": "2024-03-01",
        "valid_from": "2024-03-01",
        "valid_to": "2029-02-28",
        "user_code": "LN-001",
        "products": ["quả vải thiều tươi"],
        "yearly_ceiling": "150000",
        **over,
    }


def test_gi_user_with_area_inside_the_zone(
    client: FlaskClient, staff: dict, registry: dict, make_area: Callable[..., int]
) -> None:
    area = make_area(registry["coop"], INSIDE)
    response = client.post(
        "/api/v1/registry/authorised-users",
        json=user_body(registry, area_ids=[area]),
        headers=staff,
    )
    assert response.status_code == 201, response.json
    assert [a["id"] for a in response.json["areas"]] == [area]
    page = client.get(f"/registry/assets/{registry['gi']}").get_data(as_text=True)
    assert "LN-001" in page and "HTX Vải thiều Phượng Sơn" in page
    assert '<svg class="map"' in page and 'class="plot"' in page


def test_gi_user_area_outside_the_zone_is_refused(
    client: FlaskClient, staff: dict, registry: dict, make_area: Callable[..., int]
) -> None:
    area = make_area(registry["coop"], OUTSIDE, code="VN-BG-HH-0001")
    response = client.post(
        "/api/v1/registry/authorised-users",
        json=user_body(registry, area_ids=[area]),
        headers=staff,
    )
    assert errors_of(response) == {
        "area_ids": "area VN-BG-HH-0001 lies outside the zone of Vải thiều Lục Ngạn"
    }


def test_products_must_belong_to_the_asset(
    client: FlaskClient, staff: dict, registry: dict
) -> None:
    response = client.post(
        "/api/v1/registry/authorised-users",
        json=user_body(registry, products=["quả vải thiều tươi", "nhãn lồng"]),
        headers=staff,
    )
    message = errors_of(response)["products"]
    assert message.startswith("not products of Vải thiều Lục Ngạn: nhãn lồng")
    ok = client.post(
        "/api/v1/registry/authorised-users",
        json=user_body(registry, products=["Quả vải thiều TƯƠI"]),
        headers=staff,
    )
    assert ok.status_code == 201


def test_certification_mark_holder_cannot_be_its_own_user(
    client: FlaskClient, staff: dict, registry: dict
) -> None:
    body = user_body(registry, asset_id=registry["mark"], products=["chè khô"], user_code="YT-1")
    own = client.post(
        "/api/v1/registry/authorised-users",
        json={**body, "organisation_id": registry["agency"]},
        headers=staff,
    )
    assert errors_of(own) == {
        "organisation_id": "the holder of a certification mark cannot be its own authorised user"
    }
    other = client.post("/api/v1/registry/authorised-users", json=body, headers=staff)
    assert other.status_code == 201


def test_user_code_unique_per_asset_and_dates(
    client: FlaskClient, staff: dict, registry: dict
) -> None:
    assert (
        client.post(
            "/api/v1/registry/authorised-users", json=user_body(registry), headers=staff
        ).status_code
        == 201
    )
    again = client.post(
        "/api/v1/registry/authorised-users",
        json=user_body(registry, organisation_id=registry["other"]),
        headers=staff,
    )
    assert "LN-001 is already used" in errors_of(again)["user_code"]
    backwards = client.post(
        "/api/v1/registry/authorised-users",
        json=user_body(registry, user_code="LN-002", valid_to="2020-01-01"),
        headers=staff,
    )
    assert errors_of(backwards) == {"valid_to": "cannot be before valid_from"}


def test_suspend_needs_a_reason_and_revoked_is_final(
    client: FlaskClient, staff: dict, registry: dict, app: Any
) -> None:
    import datetime as dt

    from registry.services import active_authorisation

    created = client.post(
        "/api/v1/registry/authorised-users", json=user_body(registry), headers=staff
    ).json
    url = f"/api/v1/registry/authorised-users/{created['id']}/status"
    no_reason = client.post(url, json={"status": "suspended"}, headers=staff)
    assert errors_of(no_reason) == {"reason": "a reason is required to make it suspended"}
    suspended = client.post(
        url, json={"status": "suspended", "reason": "vi phạm quy chế"}, headers=staff
    )
    assert suspended.json["status"] == "suspended"
    with app.app_context():
        assert active_authorisation(registry["coop"], registry["gi"], dt.date(2025, 1, 1)) is None
    assert client.post(url, json={"status": "active"}, headers=staff).json["status"] == "active"
    with app.app_context():
        assert active_authorisation(registry["coop"], registry["gi"], dt.date(2025, 1, 1))
        assert active_authorisation(registry["coop"], registry["gi"], dt.date(2030, 1, 1)) is None
    client.post(url, json={"status": "revoked", "reason": "giải thể"}, headers=staff)
    final = client.post(url, json={"status": "active"}, headers=staff)
    assert errors_of(final) == {"status": "cannot go from revoked to active"}
    public = client.get(f"/registry/assets/{registry['gi']}").get_data(as_text=True)
    assert "LN-001" not in public  # only active users are listed


def test_moving_an_area_out_of_a_zone_it_serves_is_refused(
    client: FlaskClient, staff: dict, registry: dict, make_area: Callable[..., int]
) -> None:
    area = make_area(registry["coop"], INSIDE)
    client.post(
        "/api/v1/registry/authorised-users",
        json=user_body(registry, area_ids=[area]),
        headers=staff,
    )
    moved = client.patch(
        f"/api/v1/registry/areas/{area}", json={"geometry": OUTSIDE}, headers=staff
    )
    assert "would leave the zone of Vải thiều Lục Ngạn" in errors_of(moved)["geometry"]


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [[106.6, 21.4], [106.7, 21.5], [106.7, 21.4], [106.6, 21.5], [106.6, 21.4]]
                ],
            },
            "the rings are not valid: Self-intersection",
        ),
        ({"type": "Point", "coordinates": [21.43, 106.68]}, "outside Vietnam's bounding box"),
        (
            {"type": "LineString", "coordinates": [[106.6, 21.4], [106.7, 21.5]]},
            "type must be one of MultiPolygon, Point, Polygon",
        ),
        ({"type": "Polygon", "coordinates": "x"}, "coordinates are malformed"),
    ],
)
def test_area_geometry_is_checked(
    client: FlaskClient, staff: dict, registry: dict, geometry: dict, message: str
) -> None:
    body = {
        "code": "vn-bg-ln-0099",
        "crop": "vải",
        "owner_id": registry["coop"],
        "hectares": "3",
        "geometry": geometry,
    }
    response = client.post("/api/v1/registry/areas", json=body, headers=staff)
    assert message in errors_of(response)["geometry"]


def test_area_point_and_certificate(client: FlaskClient, staff: dict, registry: dict) -> None:
    body = {
        "code": "vn-bg-ln-0099",
        "crop": "vải",
        "owner_id": registry["coop"],
        "hectares": "3",
        "geometry": {"type": "Point", "coordinates": [106.68, 21.43]},
    }
    created = client.post("/api/v1/registry/areas", json=body, headers=staff)
    assert created.status_code == 201
    assert created.json["code"] == "VN-BG-LN-0099"
    url = f"/api/v1/registry/areas/{created.json['id']}/certificates"
    bad = client.post(
        url,
        json={
            "scheme": "vietgap",
            "number": "1",
            "issuer": "X",
            "valid_from": "2026-01-01",
            "valid_to": "2025-01-01",
        },
        headers=staff,
    )
    assert errors_of(bad) == {"valid_to": "cannot be before valid_from"}
    ok = client.post(
        url,
        json={
            "scheme": "vietgap",
            "number": "VG-1",
            "issuer": "Trung tâm",
            "valid_to": "2027-12-31",
        },
        headers=staff,
    )
    assert ok.status_code == 201
    dup = client.post("/api/v1/registry/areas", json=body, headers=staff)
    assert errors_of(dup) == {"code": "another area has code VN-BG-LN-0099"}


def ocop_body(registry: dict, **over: Any) -> dict[str, Any]:
    return {
        "name": "Vải thiều sấy khô Phượng Sơn",
        "producer_id": registry["coop"],
        "product_group": "food",
        "criteria_version": "148/2023",
        "score": 78,
        "stars": 4,
        "rating_level": "provincial",
        "decision_number": "1234/QĐ-UBND",
        "decision_date": "2024-08-31",
        "asset_ids": [registry["gi"]],
        **over,
    }


def test_ocop_rules_and_expiry(client: FlaskClient, staff: dict, registry: dict) -> None:
    wrong_stars = client.post(
        "/api/v1/registry/ocop", json=ocop_body(registry, stars=3), headers=staff
    )
    assert errors_of(wrong_stars) == {
        "stars": "a score of 78 gives 4 stars, not 3 (3 stars need 50–69)"
    }
    wrong_level = client.post(
        "/api/v1/registry/ocop",
        json=ocop_body(registry, score=92, stars=5, rating_level="provincial"),
        headers=staff,
    )
    assert errors_of(wrong_level) == {"rating_level": "5-star products are rated at national level"}
    ok = client.post("/api/v1/registry/ocop", json=ocop_body(registry), headers=staff)
    assert ok.status_code == 201
    assert ok.json["expiry_date"] == "2027-08-31"
    assert ok.json["assets"][0]["name"] == "Vải thiều Lục Ngạn"


def test_ocop_rerating_keeps_the_old_rating(
    client: FlaskClient, staff: dict, registry: dict
) -> None:
    first = client.post("/api/v1/registry/ocop", json=ocop_body(registry), headers=staff).json
    url = f"/api/v1/registry/ocop/{first['id']}/rerate"
    as_criteria = {
        "criteria_version": "1489/2025",
        "score": 91,
        "stars": 5,
        "rating_level": "national",
        "decision_number": "88/QĐ-TTg",
        "decision_date": "2027-06-01",
    }
    refused = client.post(url, json=as_criteria, headers=staff)
    assert (
        "changed the rating procedure, not the criteria" in errors_of(refused)["criteria_version"]
    )
    rerate = {
        "criteria_version": "148/2023",
        "procedure_version": "1489/2025",
        "score": 91,
        "stars": 5,
        "rating_level": "national",
        "decision_number": "88/QĐ-TTg",
        "decision_date": "2027-06-01",
    }
    early = client.post(url, json={**rerate, "decision_date": "2024-01-01"}, headers=staff)
    assert "after the rating it replaces" in errors_of(early)["decision_date"]
    new = client.post(url, json=rerate, headers=staff)
    assert new.status_code == 201, new.json
    assert new.json["previous_id"] == first["id"]
    assert new.json["expiry_date"] == "2030-06-01"
    assert new.json["name"] == first["name"]
    assert (new.json["criteria_version"], new.json["procedure_version"]) == (
        "148/2023",
        "1489/2025",
    )
    assert client.get(f"/api/v1/registry/ocop/{first['id']}").json["status"] == "rerated"
    twice = client.post(url, json=rerate, headers=staff)
    assert "only an active rating can be re-rated" in errors_of(twice)["status"]
