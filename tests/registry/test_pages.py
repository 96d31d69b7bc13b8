"""Access and pages: anyone reads the public register; only officers and admins change it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import csrf_from

WRITES = [
    ("post", "/api/v1/registry/assets", {"kind": "mark", "name": "X", "products": ["x"]}),
    ("post", "/api/v1/registry/organisations", {"kind": "cooperative", "name": "HTX X"}),
    ("post", "/api/v1/registry/areas", {}),
    ("post", "/api/v1/registry/authorised-users", {}),
    ("post", "/api/v1/registry/ocop", {}),
    ("post", "/api/v1/registry/targets", {}),
]


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
def test_cooperative_users_and_anonymous_cannot_change_the_registry(
    client: FlaskClient, bearer: Callable[..., dict], method: str, url: str, body: dict
) -> None:
    assert getattr(client, method)(url, json=body).status_code == 401
    assert getattr(client, method)(url, json=body, headers=bearer("cooperative")).status_code == 403


def test_cooperative_cannot_open_officer_pages(
    logged_in: Callable[..., FlaskClient], registry: dict
) -> None:
    client = logged_in("cooperative")
    for url in (
        "/registry/manage/assets/new",
        f"/registry/manage/assets/{registry['gi']}",
        "/registry/dashboard",
        "/registry/manage/import",
        "/registry/manage/areas",
    ):
        assert client.get(url).status_code == 403, url


def test_public_pages_need_no_sign_in(client: FlaskClient, registry: dict) -> None:
    listing = client.get("/registry/?q=vai+thieu")
    assert listing.status_code == 200
    assert "Vải thiều Lục Ngạn" in listing.get_data(as_text=True)
    assert "Chè Yên Thế" not in listing.get_data(as_text=True)
    page = client.get(f"/registry/assets/{registry['gi']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "00017" in html and "UBND huyện Lục Ngạn" in html
    assert '<svg class="map"' in html and 'class="zone"' in html
    assert client.get("/api/v1/registry/assets").status_code == 200
    assert client.get("/registry/assets/999999").status_code == 404


def test_officer_creates_an_organisation_through_the_form(
    logged_in: Callable[..., FlaskClient],
) -> None:
    client = logged_in("officer")
    form_page = client.get("/registry/manage/organisations/new").get_data(as_text=True)
    token = csrf_from(form_page)
    bad = client.post(
        "/registry/manage/organisations/new",
        data={"csrf_token": token, "kind": "cooperative", "name": "HTX Nấm", "tax_code": "12345"},
    )
    assert bad.status_code == 422
    assert "10 chữ số, hoặc 10-3 chữ số với chi nhánh" in bad.get_data(as_text=True)
    ok = client.post(
        "/registry/manage/organisations/new",
        data={
            "csrf_token": token,
            "kind": "cooperative",
            "name": "HTX Nấm",
            "tax_code": "2400999999",
            "gln": "8930000000019",
        },
    )
    assert ok.status_code == 302
    assert "HTX Nấm" in client.get("/registry/manage/organisations?q=nam").get_data(as_text=True)


def test_officer_creates_and_manages_an_asset_through_pages(
    logged_in: Callable[..., FlaskClient], registry: dict
) -> None:
    client = logged_in("officer")
    token = csrf_from(client.get("/registry/manage/assets/new").get_data(as_text=True))
    base = {
        "csrf_token": token,
        "kind": "collective_mark",
        "name": "Mỳ Kế",
        "status": "preparing",
        "products": "mỳ; bánh đa",
        "nice_classes": "30",
        "holder_id": str(registry["coop"]),
    }
    bad = client.post("/registry/manage/assets/new", data={**base, "nice_classes": "30, 50"})
    assert bad.status_code == 422
    assert "Nice classes are 1 to 45 (got 50)" in bad.get_data(as_text=True)
    created = client.post("/registry/manage/assets/new", data=base)
    assert created.status_code == 302
    manage_url = created.headers["Location"]
    refused = client.post(
        manage_url,
        data={"csrf_token": token, "action": "status", "status": "filed", "on_date": "2030-01-01"},
    )
    assert refused.status_code == 422
    assert "bắt buộc khi đơn đã nộp" in refused.get_data(as_text=True)
    filed = client.post(
        manage_url,
        data={
            "csrf_token": token,
            "action": "status",
            "status": "filed",
            "on_date": "2030-01-01",
            "application_number": "4-2030-00001",
            "filing_date": "2030-01-01",
        },
    )
    assert filed.status_code == 302
    page = client.get(manage_url).get_data(as_text=True)
    assert "4-2030-00001" in page


def test_forms_need_csrf(logged_in: Callable[..., FlaskClient]) -> None:
    client = logged_in("officer")
    response = client.post(
        "/registry/manage/organisations/new", data={"kind": "cooperative", "name": "X"}
    )
    assert response.status_code == 400


def test_openapi_describes_registry_endpoints(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    for path in (
        "/api/v1/registry/assets",
        "/api/v1/registry/assets/{asset_id}/status",
        "/api/v1/registry/authorised-users",
        "/api/v1/registry/areas",
        "/api/v1/registry/ocop",
        "/api/v1/registry/dashboard",
        "/api/v1/registry/import/{entity}",
    ):
        assert path in paths, path
    create = paths["/api/v1/registry/assets"]["post"]
    assert "requestBody" in create and "201" in create["responses"]
    assert "Asset" in spec["components"]["schemas"]


def test_demo_loads_every_asset_flagged(app: Any) -> None:
    from sqlalchemy import func, select

    from nguon.cli import main
    from nguon.db import db
    from registry.models import AdminUnit, AuthorisedUser, IPAsset

    result = app.test_cli_runner().invoke(main, ["demo", "load"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assets = db.session.scalars(select(IPAsset)).all()
        assert len(assets) == 28
        granted_gi = [
            a for a in assets if a.kind == "geographical_indication" and a.status == "granted"
        ]
        assert len(granted_gi) == 3 and all(
            "certificate_number" in a.demo_fields for a in granted_gi
        )
        assert all(len(a.certificate_number) == 5 for a in granted_gi)
        preparing = {a.name for a in assets if a.status == "preparing"}
        assert preparing == {"Rượu men lá Tây Yên Tử", "Tương Liên Chung"}
        assert db.session.scalar(select(func.count(AuthorisedUser.id))) >= 5
        legacy = db.session.get(AdminUnit, "LD219")
        assert legacy.name == "Huyện Lục Ngạn" and legacy.valid_to.isoformat() == "2025-06-30"
    again = app.test_cli_runner().invoke(main, ["demo", "load"])
    assert "assets: 0 created" in again.output


def test_officer_suspends_an_authorised_user_from_its_page(
    logged_in: Callable[..., FlaskClient], registry: dict, in_tx: Callable[..., Any]
) -> None:
    import datetime as dt

    from registry import services

    user_id = in_tx(
        lambda: services.save_authorised_user(
            {"asset_id": registry["gi"], "organisation_id": registry["coop"],
             "decision_number": "1/QĐ", "decision_date": dt.date(2024, 1, 1),
             "valid_from": dt.date(2024, 1, 1), "user_code": "LN-9",
             "products": ["quả vải thiều tươi"]}
        ).id
    )  # fmt: skip
    client = logged_in("officer")
    url = f"/registry/manage/authorised-users/{user_id}"
    token = csrf_from(client.get(url).get_data(as_text=True))
    refused = client.post(url, data={"csrf_token": token, "action": "suspended"})
    assert refused.status_code == 303
    assert "Tạm đình chỉ" in client.get(url).get_data(as_text=True)  # still offered
    done = client.post(url, data={"csrf_token": token, "action": "suspended", "reason": "vi phạm"})
    assert done.status_code == 302
    assert "vi phạm" in client.get(url).get_data(as_text=True)
