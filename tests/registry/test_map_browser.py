"""Zones in a real browser (Playwright, Debian's Chromium, 1366×900): drawn on the map,
imported from files the tests make, measured, confirmed."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from nguon.db import db
from registry.models import ProductionArea, ZoneConfirmation
from tests.browser import chromium, live_server
from tests.conftest import TEST_PASSWORD
from tests.registry import geofiles


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", TEST_PASSWORD)
    page.click("main button[type=submit]")


def _measured(page: Any) -> float:
    text = page.locator("#measured-geometry strong").inner_text()  # "19.84 ha"
    return float(text.split()[0])


def test_draw_a_zone_then_import_kml_gpx_and_a_shapefile(
    app: Flask, make_user: Callable[..., Any], make_org: Callable[..., int]
) -> None:
    """An officer draws a polygon on the map (no typing of coordinates), is asked to confirm
    a declared area the drawing does not bear out, saves; then replaces the shape from a
    KML, a GPX walk and a zipped UTM shapefile, each previewed with its hectares before it is
    saved; finally confirms the zone under a decision."""
    owner = make_org("HTX Vải Phượng Sơn")
    _, officer = make_user("officer")
    folder = Path(tempfile.mkdtemp())
    files = {
        "vung.kml": geofiles.kml(),
        "di-quanh-vuon.gpx": geofiles.gpx_track(),
        "vung-utm48n.zip": geofiles.shapefile_zip(),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    with live_server(app) as base, chromium({"width": 1366, "height": 900}) as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        _sign_in(page, base, officer)
        page.goto(f"{base}/registry/manage/areas/new")
        page.fill("#f-code", "VN-BG-TEST-01")
        page.fill("#f-crop", "vải thiều")
        page.select_option("#f-owner_id", str(owner))
        page.fill("#f-hectares", "1")
        # Draw: the polygon tool, four corners, back to the first to close it.
        page.click(".leaflet-pm-icon-polygon")
        box = page.locator("#map-geometry").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        corners = [(-60, -40), (60, -40), (60, 40), (-60, 40), (-60, -40)]
        for dx, dy in corners:
            page.mouse.click(cx + dx, cy + dy)
        drawn = json.loads(page.locator("#f-geometry").input_value())
        assert drawn["type"] == "Polygon" and len(drawn["coordinates"][0]) == 5
        # Measured as it is drawn, by the server, as it will be on saving.
        page.wait_for_selector("#measured-live-geometry:not([hidden])")
        live = page.locator("#measured-live-geometry").inner_text()
        assert live.startswith("Đo trên ellipsoid (WGS 84):") and float(live.split()[-2]) > 100
        page.click("form.form-grid button[type=submit]:not([value=import])")
        # 1 ha declared, far from the drawing: asked to confirm, the drawing kept.
        refusal = page.locator(".field-error").first.inner_text()
        assert "Khai báo 1.00 ha nhưng hình vẽ đo được" in refusal and "lệch hơn 20 %" in refusal
        assert json.loads(page.locator("#f-geometry").input_value()) == drawn
        page.check("#confirm-hectares input")
        page.click("form.form-grid button[type=submit]:not([value=import])")
        assert page.locator("#area-mismatch").count() == 1  # flagged on the area's page
        # The page's own requests (the map's base) share the test's connection: let them end.
        page.wait_for_load_state("networkidle")
        with app.app_context():
            area = db.session.scalar(
                select(ProductionArea).where(ProductionArea.code == "VN-BG-TEST-01")
            )
            assert area.geometry == drawn
            area_id = area.id

        for name in files:
            page.set_input_files("#f-geometry_file", str(folder / name))
            page.click("button[value=import]")
            assert name in page.locator("#import-result").inner_text()
            assert 19.3 < _measured(page) < 20.5, name  # the same ~20 ha plot every time
            assert page.locator("#f-code").input_value() == "VN-BG-TEST-01"  # nothing lost
        assert (
            "đã chuyển hệ toạ độ từ WGS 84 / UTM zone 48N"
            in page.locator("#import-result").inner_text()
        )
        page.fill("#f-hectares", "20")
        page.click("form.form-grid button[type=submit]:not([value=import])")
        assert page.locator("#area-mismatch").count() == 0, page.locator(
            ".field-error, .notice"
        ).all_inner_texts()
        assert 19.3 < _measured(page) < 20.5

        page.fill("#decision_number", "123/QĐ-SKHCN")
        page.fill("#decision_date", "2026-11-20")
        page.click("#zone-state button[type=submit]")
        assert "123/QĐ-SKHCN" in page.locator("#zone-state").inner_text()
        page.wait_for_load_state("networkidle")
        with app.app_context():
            confirmation = db.session.scalar(
                select(ZoneConfirmation).where(ZoneConfirmation.area_id == area_id)
            )
            assert confirmation.confirmed_by == officer
            assert 19.3 < float(confirmation.hectares) < 20.5
        assert not errors, errors  # no script error
        assert not [url for url in missing if "/static/" in url], missing  # every asset served
