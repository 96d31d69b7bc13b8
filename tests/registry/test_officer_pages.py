"""The officer's pages as a working tool: the sync page says when sync is off or stalled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from nguon.db import db, utcnow


def test_the_sync_page_says_when_sync_is_off_or_no_worker_ran(
    app: Flask, logged_in: Callable[..., Any], in_tx: Callable[..., Any]
) -> None:
    from integrations.models import OutboxRow

    officer = logged_in("officer")
    assert app.config["PORTAL_URL"] is None
    html = officer.get("/integrations/sync").get_data(as_text=True)
    assert "Đồng bộ đang tắt: chưa cấu hình địa chỉ cổng (NGUON_PORTAL_URL)" in html

    def queue_old_row() -> None:
        row = OutboxRow(kind="batch", record_id="1", idempotency_key="k-old-row-0001")
        row.created_at = utcnow() - dt.timedelta(hours=3)
        db.session.add(row)

    in_tx(queue_old_row)
    app.config["PORTAL_URL"] = "https://portal.example.vn"
    try:
        html = officer.get("/integrations/sync").get_data(as_text=True)
    finally:
        app.config["PORTAL_URL"] = None
    assert "Có vẻ không có tiến trình đồng bộ nào chạy gần đây" in html
    assert "bản ghi cũ nhất đã chờ 3 tiếng" in html  # the wait in words, not "10800 s"


@pytest.fixture
def staff(bearer: Callable[..., dict]) -> dict:
    return bearer("officer")


def test_an_authorisation_takes_only_the_organisations_own_areas(
    client: Any, staff: dict, registry: dict, make_area: Callable[..., int], logged_in: Any
) -> None:
    """Another cooperative's area is refused on an authorisation (it was saved silently
    before); the form offers the organisation's own areas, each shown with its owner."""
    from tests.registry.test_users_areas_ocop import user_body

    own = make_area(registry["coop"])
    foreign = make_area(registry["other"])
    refused = client.post(
        "/api/v1/registry/authorised-users",
        json=user_body(registry, area_ids=[own, foreign]),
        headers=staff,
    )
    assert refused.status_code == 422
    assert "belongs to HTX Chè Bố Hạ, not to HTX Vải thiều Phượng Sơn" in refused.get_data(
        as_text=True
    )
    saved = client.post(
        "/api/v1/registry/authorised-users", json=user_body(registry, area_ids=[own]), headers=staff
    )
    assert saved.status_code == 201, saved.json
    page = logged_in("officer").get(f"/registry/manage/authorised-users/{saved.json['id']}")
    options = page.get_data(as_text=True).split('id="f-area_ids"', 1)[1].split("</select>", 1)[0]
    assert "(HTX Vải thiều Phượng Sơn)" in options and "HTX Chè Bố Hạ" not in options


def test_map_tiles_are_configured_strictly_and_allowed_by_the_csp(
    app: Flask, logged_in: Callable[..., Any]
) -> None:
    """NGUON_MAP_TILES_URL is parsed like every setting; when set, map pages name it to the
    editor and let the tile server's origin through img-src, and no other page does."""
    import pytest

    from nguon.config import ConfigError, load_settings

    for bad in ("ftp://t.vn/{z}/{x}/{y}", "https://t.vn/{z}/{x}.png", 'https://t.vn/{z}/{x}/{y}"'):
        with pytest.raises(ConfigError, match="NGUON_MAP_TILES_URL"):
            load_settings({"NGUON_MAP_TILES_URL": bad})
    url = "https://{s}.tiles.example.vn/{z}/{x}/{y}.png"
    assert load_settings({"NGUON_MAP_TILES_URL": url})["MAP_TILES_URL"] == url

    client = logged_in("officer")
    offline = client.get("/registry/manage/areas/new")
    assert 'data-tiles=""' in offline.get_data(as_text=True)
    app.config["MAP_TILES_URL"] = url
    try:
        page = client.get("/registry/manage/areas/new")
        other = client.get("/registry/manage/areas")
    finally:
        app.config["MAP_TILES_URL"] = None
    assert f'data-tiles="{url}"' in page.get_data(as_text=True)
    assert (
        "img-src 'self' data: https://*.tiles.example.vn" in page.headers["Content-Security-Policy"]
    )
    assert "tiles.example.vn" not in other.headers["Content-Security-Policy"]


def test_the_fine_bands_page_shows_the_extract_and_what_is_missing(
    logged_in: Callable[..., Any], in_tx: Callable[..., Any]
) -> None:
    from registry.enforcement import fines

    in_tx(fines.load_extract)
    html = logged_in("officer").get("/registry/fine-bands").get_data(as_text=True)
    assert "20.000.000 – 40.000.000" in html  # Art. 12 clause 4's goods value, Vietnamese digits
    assert 'id="missing-bands"' in html
    # The extract's English notes, in Vietnamese on the Vietnamese page (walking the
    # officer's journey found them in English).
    assert "Điều 12 khoản 5–10" in html and "Art. 12 clauses 5-10" not in html


def test_the_editor_measures_what_is_drawn(logged_in: Callable[..., Any]) -> None:
    """The map editor's measure: the same checks and geodesic hectares as on saving; a
    cookie-authenticated request carries the CSRF token like any other write."""
    from registry import geo
    from tests.conftest import csrf_from

    officer = logged_in("officer")
    token = csrf_from(officer.get("/registry/manage/areas/new").get_data(as_text=True))
    square = geo.square(106.606292, 21.375404, 0.01)
    assert officer.post("/registry/manage/measure", json={"geometry": square}).status_code == 400
    headers = {"X-CSRFToken": token}
    answer = officer.post("/registry/manage/measure", json={"geometry": square}, headers=headers)
    assert answer.json == {"valid": True, "hectares": "459.31"}
    outside = officer.post(
        "/registry/manage/measure",
        json={"geometry": geo.square(2.35, 48.85, 0.01)},
        headers=headers,
    ).json
    assert outside["valid"] is False and "nằm ngoài khung bao của Việt Nam" in outside["message"]
