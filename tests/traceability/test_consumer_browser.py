"""A consumer on a 390×844 phone, in Vietnamese and in English, in a real browser."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.browser import chromium, live_server
from tests.traceability.test_resolver import item, path_of  # noqa: F401

PHONE = {"width": 390, "height": 844}
WORDS = {
    "vi": {
        "genuine": "Chính hãng",
        "warned": "Nếu bạn vừa mua hàng mới, hãy cẩn thận.",
        "yours": "Bạn đã quét mã này trước đây",
        "expired": "Lô này đã quá hạn sử dụng (24/06/2026)",
        "unknown": "Mã không do Nguồn cấp",
        "report": "Báo cáo nghi hàng giả",
        "thanks": "Cảm ơn",
    },
    "en": {
        "genuine": "Genuine",
        "warned": "If you just bought it new, be careful.",
        "yours": "You scanned this code before",
        "expired": "This lot's expiry date (24 Jun 2026) has passed",
        "unknown": "Code not issued here",
        "report": "Report a suspected fake",
        "thanks": "Thank you",
    },
}


def fits_the_phone(page: Any) -> None:
    wide = page.evaluate(  # what sticks out, to name it when it does
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 390)"
        ".map(e => e.tagName + '#' + e.id + ' ' + e.getBoundingClientRect().right)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wide


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_a_consumer_on_a_phone(app: Flask, item: dict, lang: str, tmp_path: Any) -> None:  # noqa: F811
    """A genuine item; a second buyer after a far-away share is warned; the same buyer
    again is not; an expired lot says so; an unknown code; then "report a fake", all in
    the language the consumer chose (English by the language switch, kept by cookie)."""
    words = WORDS[lang]
    code = path_of(item["codes"][0 if lang == "vi" else 1]["uri"])
    with live_server(app) as base, chromium(PHONE, locale="vi-VN", user_agent="Phone A") as page:
        page.goto(base + code)
        if lang == "en":  # the consumer switches language once; it stays chosen
            page.click("nav.langs a[lang=en]")  # the same scan again, not another one
            assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator(".verdict-genuine").count() == 1
        assert page.locator(".verdict-word").inner_text() == words["genuine"]
        assert page.locator("h1").inner_text() == "Vải thiều Lục Ngạn tươi, thùng 10 kg"
        assert page.locator("figure.map svg text.commune").count() >= 2
        assert page.locator("figure.map figcaption").is_visible()
        fits_the_phone(page)
        page.screenshot(path=str(tmp_path / f"genuine-{lang}.png"), full_page=True)
        # Share without choosing: the browser asks for a choice, nothing is sent.
        page.click(".share button")
        assert page.locator(".share select:invalid").count() == 1
        page.select_option("#province", label="Thành phố Hà Nội")
        page.click(".share button")
        assert words["thanks"] in page.locator("main").inner_text()
        assert page.locator(".verdict-genuine").count() == 1  # never amber about itself

        # A second buyer, far away, scans the same code: warned.
        other = page.context.browser.new_context(
            viewport=PHONE, locale="en-US" if lang == "en" else "vi-VN", user_agent="Phone B"
        ).new_page()
        other.goto(base + code)
        assert other.locator(".verdict-scanned_before").count() == 1
        assert words["warned"] in other.locator(".verdict").inner_text()
        fits_the_phone(other)
        other.screenshot(path=str(tmp_path / f"warned-{lang}.png"), full_page=True)
        other.goto(base + code)  # the same buyer again: not warned about their own scan
        assert other.locator(".verdict-scanned_by_you").count() == 1
        assert words["yours"] in other.locator(".verdict").inner_text()
        other.context.close()

        page.goto(base + path_of(item["lot"]["uri"]))  # the lot's code: expired
        notice = page.locator(".notice-expired")
        assert notice.is_visible() and words["expired"] in notice.inner_text()
        fits_the_phone(page)

        page.goto(base + "/01/08930000000019/10/LN2026-001/21/AAAAAAAAAA")
        assert page.locator("h1").inner_text() == words["unknown"]
        page.click(f"text={words['report']}")
        assert page.locator("h1").inner_text() == words["report"]
        assert page.locator("html").get_attribute("lang") == lang
        assert "/01/08930000000019/10/LN2026-001/21/AAAAAAAAAA" in page.input_value("#code")
        fits_the_phone(page)
        page.screenshot(path=str(tmp_path / f"report-{lang}.png"), full_page=True)


def test_a_seasons_capture_keeps_the_journey_short_on_a_phone(
    app: Flask,
    item: dict,  # noqa: F811
    in_tx: Any,
    tmp_path: Any,
) -> None:
    """Three thousand item events of one lot (a season's boxes commissioned, packed and
    shipped, interleaved in time) are a few lines of the lot's journey, each with its
    count and its first and last time, not three thousand."""
    import datetime as dt

    from nguon.db import db
    from traceability import epcis, resolver
    from traceability.models import Batch

    def capture() -> None:
        batch = db.session.get(Batch, item["batch"])
        gtin, producer = batch.product.gtin, batch.producer_id
        start = dt.datetime(2026, 6, 20, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        steps = ["commissioning", "packing", "shipping"]
        events = [
            {
                "type": "ObjectEvent",
                "eventTime": (start + dt.timedelta(seconds=n)).isoformat(),
                "eventTimeZoneOffset": "+07:00",
                "epcList": [f"https://id.gs1.org/01/{gtin}/10/LN2026-001/21/B{n:06d}"],
                "action": "ADD" if n % 3 == 0 else "OBSERVE",
                "bizStep": steps[n % 3],
            }
            for n in range(3000)
        ]
        epcis.store_events(events, [], organisation_id=producer)

    in_tx(capture)
    resolver.clear_caches()
    with live_server(app) as base, chromium(PHONE, locale="vi-VN") as page:
        response = page.goto(base + path_of(item["lot"]["uri"]))
        assert len(response.body()) < 200_000
        lines = page.locator("ol.timeline li")
        texts = [lines.nth(k).inner_text() for k in range(lines.count())]
        assert 3 <= len(texts) <= 24, texts
        counted = [t for t in texts if "1.000 lần ghi nhận" in t]
        assert len(counted) == 3, texts  # each step: 1,000 events, written the Vietnamese way
        assert all("20/06/2026" in t and "–" in t for t in counted)  # first – last
        fits_the_phone(page)
        page.screenshot(path=str(tmp_path / "season.png"), full_page=True)
