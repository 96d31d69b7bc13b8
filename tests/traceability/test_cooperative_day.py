"""A cooperative's working day in a real browser, on a phone (390×844) and a desk (1366×900):
product, batch with claims, harvest → pack → ship, labels printed on an A4 sheet and on a
thermal roll (every QR code decoded), codes voided and exported, events imported from Excel.
No page is wider than the screen."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pypdfium2
import pytest
import zxingcpp
from biip.checksums import gs1_standard_check_digit
from flask import Flask
from sqlalchemy import select

from tests.browser import chromium, live_server
from tests.conftest import TEST_PASSWORD

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desk": {"width": 1366, "height": 900}}


def gtin13(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


def fits(page: Any, widths: list[tuple[str, int]]) -> None:
    """Remember how wide the page is (it must not scroll sideways)."""
    widths.append((page.url, page.evaluate("document.documentElement.scrollWidth")))


def qr_codes_in(pdf: bytes, dpi: int = 200) -> list[list[str]]:
    """Each page's QR codes, decoded from the page rendered as an image."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [
            [r.text for r in zxingcpp.read_barcodes(
                document[i].render(scale=dpi / 72).to_pil().convert("L"),
                formats=zxingcpp.QRCode)]
            for i in range(len(document))
        ]  # fmt: skip
    finally:
        document.close()


def submit(page: Any, selector: str) -> None:
    """Click and wait for the page it leads to (and for everything that page loads)."""
    with page.expect_navigation():
        page.click(selector)
    page.wait_for_load_state("networkidle")


def settled(app: Flask) -> Any:
    """The app's context for a look at the database once the browser is idle: the live
    server answers on the test's own connection, one request at a time."""
    return app.app_context()


def record_step(page: Any, step: str, day: str, clock: str, **choose: str) -> None:
    form = page.locator("form.event-form")
    form.locator("#step").select_option(step)
    form.locator("#event_date").fill(day)
    form.locator("#event_clock").fill(clock)
    if "place" in choose:
        form.locator("#place").select_option(choose["place"])
    if "place_name" in choose:
        form.locator("details.more summary").first.click()
        form.locator("#place_name").fill(choose["place_name"])
    if "partner" in choose:
        form.locator("#partner").select_option(choose["partner"])
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")


def day_of_a_cooperative(app: Flask, page: Any, base: str, trace: dict, n: int) -> list:
    from nguon.db import db
    from traceability.models import Batch, EpcisEvent, Label, LabelRun, Product

    widths: list[tuple[str, int]] = []
    gtin = gtin13(f"89300009{n:04d}")
    lot = f"HTX{n}-01"

    # A product, created and then edited (its marks show kind and number).
    page.goto(f"{base}/traceability/products/new")
    page.fill("#f-gtin", gtin)
    page.fill("#f-name", f"Vải thiều {n}")
    choices = page.locator("#f-asset_ids").inner_text()
    assert "Vải thiều Lục Ngạn — chỉ dẫn địa lý" in choices
    page.check(f"#f-asset_ids input[value='{trace['gi']}']")
    assert "Vải thiều Lục Ngạn" in page.locator("#f-asset_ids-count").inner_text()
    fits(page, widths)
    submit(page, "main form button[type=submit]")
    assert page.url.endswith("/traceability/products"), page.url
    submit(page, f"text=Vải thiều {n}")
    page.fill("#f-name", f"Vải thiều tươi {n}")
    fits(page, widths)
    submit(page, "main form button[type=submit]")
    assert page.locator(f"text=Vải thiều tươi {n}").count() == 1, page.locator("main").inner_text()
    fits(page, widths)
    with settled(app):
        product = db.session.scalar(select(Product).where(Product.gtin == "0" + gtin))
        assert product.name == f"Vải thiều tươi {n}"

    # A batch: the expired certification mark is refused (in Vietnamese), the GI accepted.
    page.goto(f"{base}/traceability/batches/new")
    page.select_option("#f-product_id", str(product.id))
    page.fill("#f-lot", lot)
    page.fill("#f-quantity", "20.000")
    page.fill("#f-production_date", "2026-06-10")
    page.check(f"#f-area_ids input[value='{trace['area']}']")
    page.check(f"#f-claim_asset_ids input[value='{trace['mark']}']")
    submit(page, "main form button[type=submit]")
    refusal = page.locator(".notice-error").inner_text()
    assert "Chè Yên Thế không còn hiệu lực vào 10/06/2026" in refusal, refusal
    assert page.locator("#f-lot").input_value() == lot  # what was typed is kept
    fits(page, widths)
    page.uncheck(f"#f-claim_asset_ids input[value='{trace['mark']}']")
    page.check(f"#f-claim_asset_ids input[value='{trace['gi']}']")
    submit(page, "main form button[type=submit]")
    assert "/traceability/batches/" in page.url
    evidence = page.locator(".evidence").inner_text()
    assert "là người sử dụng được phép, mã LN-001" in evidence, evidence
    assert "20.000 kg" in page.locator(".facts").inner_text()
    fits(page, widths)
    batch_url = page.url.split("#")[0]

    # Harvest at its area, pack at a new place, ship to a partner of the registry.
    record_step(page, "harvest", "2026-06-10", "06:30", place=f"area:{trace['area']}")
    record_step(page, "pack", "2026-06-10", "14:00", place_name="Kho HTX")
    record_step(page, "ship", "2026-06-11", "05:00", partner=f"org:{trace['other']}")
    journey = page.locator("#journey .timeline").inner_text()
    assert "10/06/2026 06:30" in journey and "VN-BG-LN-0001" in journey, journey
    assert "Kho HTX" in journey and "11/06/2026 05:00" in journey
    assert "HTX Chè Bố Hạ" in journey
    fits(page, widths)
    with settled(app):
        batch = db.session.scalar(select(Batch).where(Batch.lot == lot))
        times = sorted(
            e.event_time.replace(tzinfo=None)
            for e in db.session.scalars(select(EpcisEvent).where(EpcisEvent.biz_step.isnot(None)))
            if e.document["quantityList"][0]["epcClass"].endswith(f"/10/{lot}")
        )
        assert times[0] == dt.datetime(2026, 6, 9, 23, 30)  # 06:30 in Hà Nội, stored in UTC

    # Ten codes; the PDF on an A4 decal sheet and on a 50 × 30 mm roll.
    page.goto(batch_url)
    page.fill("#lc", "10")
    page.fill("#lq", "10")
    submit(page, "form[action$='/label-runs'] button[type=submit]")
    assert "/traceability/label-runs/" in page.url
    run_url = page.url.split("?")[0].split("#")[0]
    with settled(app):
        run = db.session.scalar(select(LabelRun).where(LabelRun.batch_id == batch.id))
        uris = sorted(
            label.uri for label in db.session.scalars(select(Label).where(Label.run_id == run.id))
        )
    assert page.locator("#preset").input_value() == "a4-40"  # item codes: a decal sheet first
    preview = page.locator(".preview img")
    preview.wait_for()
    for _ in range(100):  # the preview is drawn from the PDF itself: wait until it is in
        if preview.evaluate("img => img.complete && img.naturalWidth > 0"):
            break
        page.wait_for_timeout(100)
    loaded = page.request.get(base + preview.get_attribute("src"))
    assert loaded.status == 200 and loaded.headers["content-type"] == "image/png", loaded.text()
    assert preview.evaluate("img => img.complete && img.naturalWidth") > 0
    fits(page, widths)
    sheet = page.request.get(base + page.locator("#open-pdf").get_attribute("href"))
    assert sheet.headers["content-type"] == "application/pdf"
    (codes_a4,) = qr_codes_in(sheet.body())
    assert sorted(codes_a4) == uris
    with page.expect_navigation():  # a new stock redraws the preview
        page.select_option("#preset", "roll-50x30")
    roll = page.request.get(base + page.locator("#open-pdf").get_attribute("href")).body()
    pages = qr_codes_in(roll, dpi=300)
    assert len(pages) == 10 and all(len(codes) == 1 for codes in pages)
    assert sorted(c for codes in pages for c in codes) == uris
    first = pypdfium2.PdfDocument(roll)[0]
    assert (round(first.get_width() * 25.4 / 72), round(first.get_height() * 25.4 / 72)) == (50, 30)

    # Two codes voided, with a reason; the codes exported as Excel.
    boxes = page.locator("table.codes input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.fill("#reason", "tem rách khi in")
    submit(page, "button.button-danger:not([name])")
    assert "Đã hủy 2 mã" in page.locator(".notice").first.inner_text()
    fits(page, widths)
    with page.expect_download() as download:
        page.click("text=Excel (.xlsx)")
    rows = list(
        openpyxl.load_workbook(
            io.BytesIO(Path(download.value.path()).read_bytes())
        ).active.iter_rows(values_only=True)
    )
    assert len(rows) == 11 and sorted(r[1] for r in rows[1:]) == uris
    assert sum(1 for r in rows[1:] if r[2] == "đã hủy") == 2
    assert run_url

    # Events from Excel: a file with one bad row is refused whole, naming the row; then a good one.
    def workbook(*lines: tuple[str, ...]) -> bytes:
        book = openpyxl.Workbook()
        book.active.append(["step", "gtin", "lot", "event_time", "quantity"])
        for line in lines:
            book.active.append(list(line))
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    good = ("receive", gtin, lot, "12/06/2026 08:00", "5,5")
    page.goto(f"{base}/traceability/events/import")
    bad = ("pack", gtin, "KHONG-CO", "12/06/2026 09:00", "")
    for content, name in ((workbook(good, bad), "bad.xlsx"), (workbook(good), "good.xlsx")):
        page.set_input_files("#file", {"name": name, "mimeType": "application/octet-stream",
                                       "buffer": content})  # fmt: skip
        page.uncheck("input[name=dry_run]")
        submit(page, "main form button[type=submit]")
        fits(page, widths)
        if name == "bad.xlsx":
            result = page.locator("table.import-errors").inner_text()
            assert "dòng 2" in result and "KHONG-CO" in result, result
            assert "không có lô KHONG-CO" in result
    assert "Đã ghi nhận 1 dòng" in page.locator(".notice-success").inner_text()
    with settled(app):
        received = [
            e
            for e in db.session.scalars(
                select(EpcisEvent).where(EpcisEvent.biz_step == "receiving")
            )
        ]
        assert len(received) == 1 and received[0].document["quantityList"][0]["quantity"] == 5.5

    # Every other page a cooperative opens, as wide as the screen at most.
    batch_id = batch_url.rsplit("/", 1)[1]
    for path in ("/traceability/", "/traceability/batches", "/traceability/products",
                 "/traceability/scans", "/traceability/batches/import",
                 f"/traceability/batches/{batch_id}/edit", "/account/tokens", "/registry/",
                 "/traceability/no-such-page"):  # fmt: skip
        page.goto(base + path)
        fits(page, widths)
    assert "Không tìm thấy trang" in page.locator("main").inner_text()  # the 404 page, in words
    return widths


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_cooperatives_day_in_the_browser(
    app: Flask, trace: dict, make_user: Callable[..., Any], viewport: str
) -> None:
    _, email = make_user("cooperative", org_id=trace["coop"])
    size = VIEWPORTS[viewport]
    with live_server(app) as base, chromium(size) as page:
        page.goto(f"{base}/login")
        page.fill("#email", email)
        page.fill("#password", TEST_PASSWORD)
        submit(page, "main button[type=submit]")
        assert page.url.endswith("/traceability/")  # a cooperative starts on its own page
        widths = day_of_a_cooperative(app, page, base, trace, size["width"])
    too_wide = [(url, width) for url, width in widths if width > size["width"]]
    assert too_wide == []
