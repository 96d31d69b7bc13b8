"""IP assets through the API: rules with clear errors, status life, renewals, search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.registry_fixtures import GI_ZONE

MARK = {
    "kind": "collective_mark",
    "name": "Gà đồi Lục Ngạn",
    "products": ["gà đồi"],
    "nice_classes": [29, 31],
    "district_name": "Lục Ngạn",
    "application_number": "4-2014-01234",
    "filing_date": "2014-05-20",
    "certificate_number": "245678",
    "grant_date": "2015-10-02",
    "status": "granted",
}


def errors_of(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return {e["field"]: e["message"] for e in response.json["errors"]}


@pytest.fixture
def staff(bearer: Callable[..., dict]) -> dict:
    return bearer("officer")


def test_mark_expiry_is_filing_plus_ten_years(
    client: FlaskClient, staff: dict, registry: dict
) -> None:
    response = client.post(
        "/api/v1/registry/assets", json={**MARK, "holder_id": registry["coop"]}, headers=staff
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["expiry_date"] == "2024-05-20"
    assert [h["status"] for h in body["status_history"]] == ["granted"]
    assert body["holder"]["name"] == "HTX Vải thiều Phượng Sơn"


def test_gi_never_expires_and_has_no_holder(
    client: FlaskClient, staff: dict, registry: dict
) -> None:
    gi = client.get(f"/api/v1/registry/assets/{registry['gi']}").json
    assert gi["expiry_date"] is None
    assert gi["managing_organisation"]["name"] == "UBND huyện Lục Ngạn"
    assert gi["area"]["type"] == "Polygon"
    refused = client.post(
        "/api/v1/registry/assets",
        json={
            "kind": "geographical_indication",
            "name": "Na dai Lục Nam",
            "products": ["quả na"],
            "holder_id": registry["coop"],
            "status": "preparing",
        },
        headers=staff,
    )
    assert errors_of(refused) == {
        "holder_id": "a GI is held by the State: name its managing organisation"
    }
    renewal = client.post(
        f"/api/v1/registry/assets/{registry['gi']}/renewals",
        json={"renewed_on": "2030-01-01"},
        headers=staff,
    )
    assert errors_of(renewal) == {"kind": "a geographical indication never expires"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"application_number": "4-2014-1234"},
            "application_number",
            "must look like 4-2025-20619",
        ),
        (
            {"application_number": "4-2013-01234"},
            "application_number",
            "the year in the number (2013) must be the filing year (2014)",
        ),
        ({"certificate_number": "24-5678"}, "certificate_number", "1 to 7 digits"),
        ({"nice_classes": [31, 46]}, "nice_classes", "Nice classes are 1 to 45 (got 46)"),
        (
            {"grant_date": "2014-01-01"},
            "grant_date",
            "the grant date cannot be before the filing date",
        ),
        (
            {"certificate_number": None},
            "certificate_number",
            "is required once the asset is granted",
        ),
        ({"holder_id": None}, "holder_id", "a mark needs its holder"),
        ({"products": []}, "products", "name at least one product"),
        (
            {
                "area": {
                    "type": "Polygon",
                    "coordinates": [[[2.35, 48.85], [2.36, 48.85], [2.36, 48.86], [2.35, 48.85]]],
                }
            },
            "area",
            "lies outside Vietnam's bounding box",
        ),
    ],
)
def test_each_asset_rule_has_its_own_error(
    client: FlaskClient, staff: dict, registry: dict, change: dict, field: str, message: str
) -> None:
    body = {**MARK, "holder_id": registry["coop"], **change}
    response = client.post("/api/v1/registry/assets", json=body, headers=staff)
    errors = errors_of(response)
    assert field in errors, errors
    assert message in errors[field]
    listed = client.get("/api/v1/registry/assets?q=ga doi").json
    assert listed == []  # nothing was stored


def test_duplicate_application_number(client: FlaskClient, staff: dict, registry: dict) -> None:
    body = {**MARK, "holder_id": registry["coop"]}
    assert client.post("/api/v1/registry/assets", json=body, headers=staff).status_code == 201
    again = client.post("/api/v1/registry/assets", json={**body, "name": "Khác"}, headers=staff)
    assert "another asset has this application number" in errors_of(again)["application_number"]


def test_status_flow(client: FlaskClient, staff: dict, registry: dict) -> None:
    created = client.post(
        "/api/v1/registry/assets",
        json={
            "kind": "collective_mark",
            "name": "Tương Liên Chung",
            "products": ["tương"],
            "nice_classes": [30],
            "holder_id": registry["coop"],
            "status": "preparing",
            "status_date": "2024-12-01",
        },
        headers=staff,
    ).json
    url = f"/api/v1/registry/assets/{created['id']}/status"
    skip = client.post(url, json={"status": "granted", "on_date": "2025-01-01"}, headers=staff)
    assert "cannot go from preparing to granted" in errors_of(skip)["status"]
    unfiled = client.post(url, json={"status": "filed", "on_date": "2025-01-02"}, headers=staff)
    assert errors_of(unfiled)["application_number"] == "is required once the application is filed"
    filed = client.post(
        url,
        json={
            "status": "filed",
            "on_date": "2025-01-02",
            "application_number": "4-2025-00077",
            "filing_date": "2025-01-02",
        },
        headers=staff,
    )
    assert filed.status_code == 200, filed.json
    granted = client.post(
        url,
        json={
            "status": "granted",
            "on_date": "2026-03-01",
            "certificate_number": "512345",
            "grant_date": "2026-03-01",
            "note": "Quyết định 1234/QĐ-SHTT",
        },
        headers=staff,
    )
    assert granted.status_code == 200, granted.json
    assert granted.json["expiry_date"] == "2035-01-02"
    assert [h["status"] for h in granted.json["status_history"]] == [
        "preparing",
        "filed",
        "granted",
    ]


def test_renewal_inside_and_outside_the_window(
    client: FlaskClient, staff: dict, registry: dict
) -> None:
    mark_url = f"/api/v1/registry/assets/{registry['mark']}"
    assert client.get(mark_url).json["expiry_date"] == "2025-06-01"
    early = client.post(mark_url + "/renewals", json={"renewed_on": "2024-11-30"}, headers=staff)
    assert "opens on 2024-12-01" in errors_of(early)["renewed_on"]
    late = client.post(mark_url + "/renewals", json={"renewed_on": "2025-12-02"}, headers=staff)
    assert "grace period ended on 2025-12-01" in errors_of(late)["renewed_on"]
    ok = client.post(mark_url + "/renewals", json={"renewed_on": "2025-11-20"}, headers=staff)
    assert ok.status_code == 201
    assert ok.json["new_expiry"] == "2035-06-01"
    assert client.get(mark_url).json["expiry_date"] == "2035-06-01"


def test_foreign_protection(client: FlaskClient, staff: dict, registry: dict) -> None:
    url = f"/api/v1/registry/assets/{registry['gi']}/foreign-protections"
    ok = client.post(url, json={"territory": "jp", "route": "gi_japan"}, headers=staff)
    assert ok.status_code == 201
    assert ok.json["territory"] == "JP"
    bad = client.post(url, json={"territory": "VN"}, headers=staff)
    assert errors_of(bad) == {"territory": "must be a foreign ISO 3166 code, e.g. JP"}


@pytest.mark.parametrize(
    "query",
    ["vai thieu luc ngan", "VẢI THIỀU", "Vải thiều Lục Ngạn", "luc ngan vai", "00017"],
)
def test_search_ignores_case_and_diacritics(
    client: FlaskClient, registry: dict, query: str
) -> None:
    names = [
        a["name"] for a in client.get("/api/v1/registry/assets", query_string={"q": query}).json
    ]
    assert names == ["Vải thiều Lục Ngạn"]


def test_search_d_matches_đ_and_filters(client: FlaskClient, registry: dict, staff: dict) -> None:
    client.post(
        "/api/v1/registry/assets",
        json={
            "kind": "collective_mark",
            "name": "Rau an toàn Đa Mai",
            "products": ["rau"],
            "nice_classes": [31],
            "holder_id": registry["coop"],
            "status": "preparing",
        },
        headers=staff,
    )
    assert [a["name"] for a in client.get("/api/v1/registry/assets?q=da mai").json] == [
        "Rau an toàn Đa Mai"
    ]
    by_kind = client.get("/api/v1/registry/assets?kind=certification_mark").json
    assert [a["name"] for a in by_kind] == ["Chè Yên Thế"]
    by_status = client.get("/api/v1/registry/assets?status=preparing").json
    assert [a["name"] for a in by_status] == ["Rau an toàn Đa Mai"]
    by_area = client.get("/api/v1/registry/assets?area=Lục Ngạn").json
    assert [a["name"] for a in by_area] == ["Vải thiều Lục Ngạn"]
    by_product = client.get("/api/v1/registry/assets?product=che kho").json
    assert [a["name"] for a in by_product] == ["Chè Yên Thế"]
    by_holder = client.get(f"/api/v1/registry/assets?holder={registry['agency']}").json
    assert {a["name"] for a in by_holder} == {"Vải thiều Lục Ngạn", "Chè Yên Thế"}
    newest_first = client.get("/api/v1/registry/assets?sort=-filing_date&page_size=2")
    assert [a["name"] for a in newest_first.json] == ["Chè Yên Thế", "Vải thiều Lục Ngạn"]
    assert '"total": 3' in newest_first.headers["X-Pagination"]


def test_gi_area_is_kept_as_geojson(client: FlaskClient, registry: dict) -> None:
    area = client.get(f"/api/v1/registry/assets/{registry['gi']}").json["area"]
    assert area == GI_ZONE


def test_document_upload_is_checked_by_content(
    client: FlaskClient, staff: dict, registry: dict, app: Any
) -> None:
    import io
    from pathlib import Path

    url = f"/api/v1/registry/assets/{registry['gi']}/documents"
    pdf = b"%PDF-1.7\n" + b"0" * 200
    ok = client.post(
        url,
        data={
            "kind": "regulation",
            "title": "Quy chế sử dụng CDĐL",
            "file": (io.BytesIO(pdf), "quy-che.pdf"),
        },
        headers=staff,
        content_type="multipart/form-data",
    )
    assert ok.status_code == 201, ok.json
    stored = Path(app.instance_path) / "documents" / ok.json["sha256"][:2] / ok.json["sha256"]
    assert stored.read_bytes() == pdf
    fake = client.post(
        url,
        data={"kind": "regulation", "file": (io.BytesIO(b"MZ\x90\x00 not a pdf"), "quy-che.pdf")},
        headers=staff,
        content_type="multipart/form-data",
    )
    assert "must be a PDF, PNG, JPEG or WebP" in errors_of(fake)["file"]
    public = client.get(ok.json["url"])
    assert public.status_code == 200
    assert public.data == pdf
    assert public.mimetype == "application/pdf"
