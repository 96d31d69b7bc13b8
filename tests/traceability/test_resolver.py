"""The resolver: canonical redirects, content negotiation, verdicts, scans and clone rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.traceability.test_labels import codes, issue


@pytest.fixture
def item(
    client: FlaskClient, coop_headers: dict, trace: dict, in_tx: Callable[..., Any], app: Flask
) -> dict:
    """A GI-backed batch with 3 item codes and its lot code; provinces loaded for places."""
    from registry.admin_units import current_units, load_units
    from traceability import resolver, services

    def build() -> int:
        load_units(current_units())
        return services.save_batch(
            {
                "product_id": trace["product"],
                "lot": "LN2026-001",
                "quantity": 1000,
                "production_date": dt.date(2026, 6, 10),
                "expiry_date": dt.date(2026, 6, 24),
                "area_ids": [trace["area"]],
                "claims": [{"kind": "geographical_indication", "asset_id": trace["gi"]}],
            }
        ).id

    batch_id = in_tx(build)
    resolver.clear_caches()
    run = issue(client, coop_headers, batch_id, kind="item", count=3, item_quantity="10").json
    lot = issue(client, coop_headers, batch_id, kind="lot").json
    items = codes(client, coop_headers, run["id"])
    return {
        "batch": batch_id,
        "codes": items,
        "lot": codes(client, coop_headers, lot["id"])[0],
        "lot_run": lot["id"],
        "run": run,
    }


def path_of(uri: str) -> str:
    return uri.split("127.0.0.1:5000", 1)[1]


def test_genuine_page_shows_product_origin_and_verdict(client: FlaskClient, item: dict) -> None:
    response = client.get(path_of(item["codes"][0]["uri"]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Vải thiều Lục Ngạn tươi, thùng 10 kg" in html
    assert "HTX Vải thiều Phượng Sơn" in html
    assert "Chính hãng" in html  # the verdict, in Vietnamese by default
    assert "00017" in html and 'href="/registry/assets/' in html
    assert '<svg class="map"' in html
    assert "<script" not in html
    assert "/report?code=" in html


def test_second_scan_says_already_scanned(client: FlaskClient, item: dict) -> None:
    """Another client's scan of an item code before this one: the buyer is warned."""
    path = path_of(item["codes"][0]["uri"])
    client.get(path, environ_base={"REMOTE_ADDR": "198.51.100.1"})
    second = client.get(path, headers={"Accept-Language": "en"}, query_string={"lang": "en"})
    assert "already scanned 1 time(s)" in second.get_data(as_text=True)


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("/01/8930000000019/10/LN2026-001", "/01/08930000000019/10/LN2026-001"),
        (
            "/01/08930000000019/21/{serial}/10/LN2026-001",
            "/01/08930000000019/10/LN2026-001/21/{serial}",
        ),
    ],
)
def test_non_canonical_forms_redirect(
    client: FlaskClient, item: dict, variant: str, canonical: str
) -> None:
    serial = item["codes"][0]["serial"]
    response = client.get(variant.format(serial=serial))
    assert response.status_code == 301
    assert response.headers["Location"] == canonical.format(serial=serial)


def test_gtin8_redirects_to_gtin14(client: FlaskClient) -> None:
    response = client.get("/01/12345670/10/A1?17=261231")
    assert response.status_code == 301
    assert response.headers["Location"] == "/01/00000012345670/10/A1?17=261231"


def test_json_passport(client: FlaskClient, item: dict) -> None:
    response = client.get(path_of(item["codes"][1]["uri"]), headers={"Accept": "application/json"})
    assert response.mimetype == "application/json"
    body = response.json
    assert body["gtin"] == "08930000000019" and body["lot"] == "LN2026-001"
    assert body["producer"]["name"] == "HTX Vải thiều Phượng Sơn"
    assert body["certifications"][0]["number"] == "00017"
    assert body["production_date"] == "2026-06-10" and body["expiry_date"] == "2026-06-24"
    assert body["safety_warnings"] == "Bảo quản 2–8 °C"
    assert body["verdict"] == "genuine"
    assert {"origin", "traceability_stages", "standards"} <= body.keys()


def test_linkset_by_accept_and_by_query(client: FlaskClient, item: dict) -> None:
    path = path_of(item["codes"][1]["uri"])
    for response in (
        client.get(path, headers={"Accept": "application/linkset+json"}),
        client.get(path + "?linkType=linkset"),
    ):
        assert response.mimetype == "application/linkset+json"
        (entry,) = response.json["linkset"]
        assert entry["anchor"] == item["codes"][1]["uri"]
        assert entry["https://gs1.org/voc/pip"][0]["type"] == "text/html"
        assert "MATCH_epcClass" in entry["https://gs1.org/voc/traceability"][0]["href"]
        assert "/registry/assets/" in entry["https://gs1.org/voc/certificationInfo"][0]["href"]


def test_resolver_description(client: FlaskClient) -> None:
    body = client.get("/.well-known/gs1resolver").json
    assert body["supportedPrimaryKeys"] == ["01"]
    assert body["resolverRoot"] == "http://127.0.0.1:5000"


def test_unknown_codes_are_not_issued_here(client: FlaskClient, item: dict) -> None:
    for path in (
        "/01/08930000000019/10/LN2026-001/21/ZZZZZZZZZZ",
        "/01/08930000000019/10/NOPE",
        "/01/08930000000033/10/LN2026-001",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Mã không do Nguồn cấp" in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)
    wrong_check_digit = client.get("/01/08930000000017/10/X")  # malformed, not unknown
    assert wrong_check_digit.status_code == 400
    assert "check digit should be 9" in wrong_check_digit.get_data(as_text=True)
    problem = client.get("/01/08930000000019/10/NOPE", headers={"Accept": "application/json"})
    assert problem.status_code == 404 and problem.mimetype == "application/problem+json"
    wrong_lot = client.get(f"/01/08930000000019/10/OTHER/21/{item['codes'][0]['serial']}")
    assert wrong_lot.status_code == 404


def test_voided_code(client: FlaskClient, coop_headers: dict, item: dict) -> None:
    code = item["codes"][2]
    client.post(
        f"/api/v1/traceability/label-runs/{item['run']['id']}/void",
        json={"reason": "nhãn rách", "serials": [code["serial"]]},
        headers=coop_headers,
    )
    body = client.get(path_of(code["uri"]), headers={"Accept": "application/json"}).json
    assert body["verdict"] == "voided"
    assert "nhãn rách" in client.get(path_of(code["uri"])).get_data(as_text=True)


def test_voided_lot_code_says_voided(client: FlaskClient, coop_headers: dict, item: dict) -> None:
    voided = client.post(
        f"/api/v1/traceability/label-runs/{item['lot_run']}/void",
        json={"reason": "in sai lô"},
        headers=coop_headers,
    )
    assert voided.status_code == 200, voided.json
    body = client.get(path_of(item["lot"]["uri"]), headers={"Accept": "application/json"}).json
    assert body["verdict"] == "voided"
    page = client.get(path_of(item["lot"]["uri"])).get_data(as_text=True)
    shared = share(client, page, "Bắc Ninh")  # the place question still works on its page
    assert shared.status_code == 200 and "in sai lô" in shared.get_data(as_text=True)


def test_item_code_without_its_lot_resolves(client: FlaskClient, item: dict) -> None:
    """GTIN + serial identifies an item on its own (GS1 SGTIN); the lot is optional."""
    code = item["codes"][0]
    response = client.get(
        f"/01/08930000000019/21/{code['serial']}", headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json["serial"] == code["serial"] and response.json["lot"] == "LN2026-001"
    linkset = client.get(f"/01/08930000000019/21/{code['serial']}?linkType=linkset").json
    (trace,) = linkset["linkset"][0]["https://gs1.org/voc/traceability"]
    assert trace["href"].endswith("%2F10%2FLN2026-001")  # the code's lot, read from its batch


def share(client: FlaskClient, html: str, province_name: str, environ: dict | None = None) -> Any:
    import re

    action = re.search(r'action="(/scans/[^"]+/place)"', html).group(1)
    code = re.search(rf'<option value="(P\d+)">{re.escape(province_name)}</option>', html).group(1)
    return client.post(action, data={"province": code}, environ_base=environ or {})


def test_far_apart_scans_flag_the_code(
    client: FlaskClient, item: dict, logged_in: Callable[..., FlaskClient]
) -> None:
    """Two buyers (two clients) share places 1,100 km apart within the window."""
    path = path_of(item["codes"][0]["uri"])
    hanoi = {"REMOTE_ADDR": "198.51.100.1"}
    first = client.get(path, environ_base=hanoi).get_data(as_text=True)
    assert share(client, first, "Thành phố Hà Nội", hanoi).status_code == 200
    second = client.get(path).get_data(as_text=True)
    shared = share(client, second, "Thành phố Hồ Chí Minh").get_data(as_text=True)
    assert "Đáng ngờ" in shared  # suspicious
    assert "km apart" not in shared and "cách nhau" in shared  # the reason, in Vietnamese
    assert client.get(path, headers={"Accept": "application/json"}).json["verdict"] == "suspicious"
    officer = logged_in("officer")
    alarms = officer.get("/traceability/alarms").get_data(as_text=True)
    assert "Thành phố Hà Nội và Thành phố Hồ Chí Minh" in alarms


def test_near_scans_do_not_flag(client: FlaskClient, item: dict) -> None:
    path = path_of(item["codes"][1]["uri"])
    other = {"REMOTE_ADDR": "198.51.100.1"}
    share(client, client.get(path, environ_base=other).get_data(as_text=True), "Bắc Ninh", other)
    share(client, client.get(path).get_data(as_text=True), "Bắc Ninh")
    third = client.get(
        path, headers={"Accept": "application/json"}, environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert third.json["verdict"] == "scanned_before"  # warned, not flagged


def test_too_many_scans_flag_the_code(client: FlaskClient, item: dict, app: Flask) -> None:
    path = path_of(item["codes"][1]["uri"])
    limit = app.config["CLONE_MAX_SCANS"]
    for n in range(limit):
        client.get(
            path,
            headers={"Accept": "application/json"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n}"},
        )
    assert (
        client.get(path, headers={"Accept": "application/json"}).json["verdict"] == "scanned_before"
    )
    assert client.get(path, headers={"Accept": "application/json"}).json["verdict"] == "suspicious"


def test_lot_code_scanned_more_than_units_made(client: FlaskClient, item: dict) -> None:
    path = path_of(item["lot"]["uri"])
    verdicts = [
        client.get(path, headers={"Accept": "application/json"}).json["verdict"] for _ in range(5)
    ]
    # 3 units were made (3 item codes): the 4th scan of the lot code flags it.
    assert verdicts == ["genuine", "genuine", "genuine", "genuine", "suspicious"]


def test_scans_are_logged_without_the_address(client: FlaskClient, item: dict, app: Flask) -> None:
    from sqlalchemy import select

    from nguon.db import db
    from traceability.models import Scan

    client.get(path_of(item["codes"][0]["uri"]), environ_base={"REMOTE_ADDR": "203.0.113.9"})
    client.get("/01/08930000000019/10/NOPE", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    with app.app_context():
        scans = db.session.scalars(select(Scan).order_by(Scan.id)).all()
        assert [s.verdict for s in scans] == ["genuine", "unknown"]
        assert all("203.0.113.9" not in s.fingerprint and len(s.fingerprint) == 32 for s in scans)
        assert scans[0].fingerprint == scans[1].fingerprint  # same visitor, same day


def test_cooperative_sees_its_scans(
    client: FlaskClient, item: dict, trace: dict, in_tx: Callable[..., Any]
) -> None:
    from tests.traceability.test_pages import sign_in_member

    client.get(path_of(item["codes"][0]["uri"]))
    sign_in_member(client, trace, in_tx)
    page = client.get("/traceability/scans").get_data(as_text=True)
    assert item["codes"][0]["serial"] in page


def test_public_rate_limit(client: FlaskClient, app: Flask, item: dict) -> None:
    from nguon.ratelimit import limiter

    app.config["RATELIMIT_PUBLIC"] = "3 per minute"
    limiter.reset()
    try:
        statuses = [client.get("/01/08930000000019/10/NOPE").status_code for _ in range(4)]
        limited = client.get("/01/08930000000019/10/NOPE", headers={"Accept": "application/json"})
    finally:
        app.config["RATELIMIT_PUBLIC"] = "100000 per minute"
        limiter.reset()
    assert statuses == [404, 404, 404, 429]
    assert limited.status_code == 429 and limited.mimetype == "application/problem+json"
    assert "Retry-After" in limited.headers


def test_rate_limit_counters_in_redis(database_url: str, tmp_path: Any) -> None:
    """With NGUON_RATELIMIT_STORAGE_URL=redis://..., hosts share the counters."""
    import socket
    import uuid

    from tests.conftest import make_test_app

    try:
        socket.create_connection(("127.0.0.1", 6379), 1).close()
    except OSError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (the machine's service)")
    storage = "redis://127.0.0.1:6379/15"
    prefix = uuid.uuid4().hex
    apps = [
        make_test_app(database_url, tmp_path / str(n), RATELIMIT_STORAGE_URI=storage,
                      RATELIMIT_PUBLIC="2 per minute", RATELIMIT_KEY_PREFIX=prefix)
        for n in range(2)
    ]  # fmt: skip
    first, second = (app.test_client() for app in apps)
    bad = "/01/12345678/10/X"  # a wrong check digit: refused before any database work
    codes = [first.get(bad).status_code, second.get(bad).status_code, second.get(bad).status_code]
    assert codes == [400, 400, 429]
    import redis

    assert redis.Redis(host="127.0.0.1", port=6379, db=15).keys(f"*{prefix}*")
