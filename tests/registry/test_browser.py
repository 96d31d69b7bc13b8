"""The registry in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from tests.browser import chromium, live_server
from tests.conftest import TEST_PASSWORD


def test_public_search_and_officer_form_in_a_browser(
    app: Flask, registry: dict, make_user: Callable[..., Any]
) -> None:
    _, officer = make_user("officer")
    with live_server(app) as base, chromium({"width": 390, "height": 844}) as page:
        page.goto(f"{base}/registry/")
        page.fill("#q", "vai thieu luc ngan")
        page.click("form[role=search] button[type=submit]")
        assert page.locator(".asset-list li").count() == 1
        page.click("text=Vải thiều Lục Ngạn")
        assert page.locator("h1").inner_text().startswith("Vải thiều Lục Ngạn")
        assert page.locator("svg.map path.zone").count() == 1
        assert page.locator("text=00017").count() == 1

        page.click("text=English")
        assert page.locator("dt", has_text="Certificate number").count() == 1

        page.goto(f"{base}/login")
        page.fill("#email", officer)
        page.fill("#password", TEST_PASSWORD)
        page.click("main button[type=submit]")
        page.goto(f"{base}/registry/manage/organisations/new")
        page.select_option("#f-kind", "cooperative")
        page.fill("#f-name", "HTX Thanh Luận")
        page.fill("#f-tax_code", "12-34")
        page.click("main button[type=submit]")
        assert "10 digits, or 10-3 digits for a branch" in page.locator(".field-error").inner_text()
        assert page.locator("#f-name").input_value() == "HTX Thanh Luận"  # nothing lost
        page.fill("#f-tax_code", "2400123456")
        page.click("main button[type=submit]")
        page.goto(f"{base}/registry/manage/organisations?q=thanh+luan")
        assert page.locator("td", has_text="2400123456").count() == 1

        page.goto(f"{base}/registry/dashboard?on=2026-11-29")
        # No target is set for 2026–2030: the page says so (and links to add one) rather
        # than drawing an empty chart; every chart drawn has its legend.
        assert page.locator("svg.chart").count() == 3
        assert "2026–2030" in page.locator("#no-period-targets").inner_text()
        assert page.locator("ul.legend").count() == 3
