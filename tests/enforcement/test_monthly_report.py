"""The monthly report, IP and traceability part: downloaded from its page as Word and PDF,
its figures read back (python-docx) and checked against the database."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from nguon.db import db
from registry.enforcement import services
from registry.enforcement.models import Case, Report
from traceability.models import Batch, LabelRun, Scan


def _figures_from_docx(data: bytes) -> dict[str, tuple[str, str, str]]:
    """{figure text: (this month, previous month, year's target)} from the Word tables."""
    from docx import Document

    figures = {}
    for table in Document(io.BytesIO(data)).tables[1:]:  # the first is the letterhead
        header, *rows = table.rows
        assert [c.text for c in header.cells] == [
            "STT", "Nội dung", "Tháng này", "Tháng trước", "Chỉ tiêu năm"
        ]  # fmt: skip
        for row in rows:
            cells = [c.text for c in row.cells]
            figures[cells[1]] = (cells[2], cells[3], cells[4])
    return figures


def _int(text: str) -> int:
    return int(text.replace(".", ""))


def test_download_the_monthly_report_and_read_it_back(
    app: Flask,
    item: dict,
    in_tx: Callable[..., Any],
    make_user: Callable[..., Any],
    client: Any,
) -> None:
    """Playwright + Chromium: the officer picks the month, downloads the Word file and the
    PDF; every figure read from the Word file equals what the database holds for that month,
    the previous month's column is there, and the document is in formal Vietnamese."""
    from tests.browser import chromium, live_server
    from tests.conftest import TEST_PASSWORD

    def case_with_a_fine() -> None:
        filed = services.file_report(
            {"category": "counterfeit", "description": "vải giả ở chợ"}, []
        )
        case = filed.report.case
        actor = (None, "canbo@test")
        inspection = {"inspection_decision_number": "1", "inspection_decision_date": today}
        for state, fields in [
            ("accepted", {"deadline": dt.date(2027, 1, 1)}),
            ("investigating", inspection),
            ("violation_recorded", {"infringer": "X", "violation_record": "BB"}),
            ("sanction_decided", {"sanction_decision_number": "9", "legal_basis": "Đ12",
                                  "fine_vnd": 55_000_000, "measures": "tiêu huỷ"}),
        ]:  # fmt: skip
            services.move_case(case, state, "ok", fields, actor)

    today = dt.datetime.now(dt.UTC).date()
    in_tx(case_with_a_fine)
    month = f"{today.year:04d}-{today.month:02d}"
    _, officer = make_user("officer")
    with live_server(app) as base, chromium({"width": 1366, "height": 900}) as page:
        page.goto(f"{base}/login")
        page.fill("#email", officer)
        page.fill("#password", TEST_PASSWORD)
        page.click("main button[type=submit]")
        page.goto(f"{base}/registry/monthly-report")
        page.fill("#month", month)
        page.click("form.filters button[type=submit]")
        with page.expect_download() as download:
            page.click("#download-docx")
        assert (
            download.value.suggested_filename
            == f"bao-cao-thang-{today.month:02d}-{today.year}.docx"
        )
        word = download.value.path().read_bytes()
        with page.expect_download() as download:
            page.click("#download-pdf")
        pdf = download.value.path().read_bytes()

    figures = _figures_from_docx(word)
    start = dt.datetime(today.year, today.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(today.year + (today.month == 12), today.month % 12 + 1, 1, tzinfo=dt.UTC)

    def expected() -> dict[str, int]:
        def count(model: Any, column: Any) -> int:
            return db.session.scalar(
                select(func.count()).select_from(model).where(column >= start, column < end)
            )

        return {
            "Lô hàng được đăng ký truy xuất (lô)": count(Batch, Batch.created_at),
            "Mã truy xuất được cấp (mã)": db.session.scalar(
                select(func.sum(LabelRun.count)).where(
                    LabelRun.created_at >= start, LabelRun.created_at < end
                )
            ),
            "Lượt quét mã (lượt)": count(Scan, Scan.at),
            "Phản ánh của người dân nhận được (phản ánh)": count(Report, Report.created_at),
            "Vụ việc được mở (vụ việc)": count(Case, Case.created_at),
            "Quyết định xử phạt được ban hành (quyết định)": 1,
            "Tổng số tiền phạt (đồng)": 55_000_000,
        }

    wanted = in_tx(expected)
    assert wanted["Lô hàng được đăng ký truy xuất (lô)"] >= 1  # the fixture's batch
    assert wanted["Mã truy xuất được cấp (mã)"] >= 4  # three item codes and the lot code
    for text, value in wanted.items():
        this_month, previous, _target = figures[text]
        assert _int(this_month) == value, text
        assert _int(previous) == 0, text  # nothing was made the month before
    assert figures["Tổng số tiền phạt (đồng)"][0] == "55.000.000"
    assert (
        figures["Văn bằng chỉ dẫn địa lý được cấp (văn bằng)"][2] in ("—",)
        or figures["Văn bằng chỉ dẫn địa lý được cấp (văn bằng)"][2].split()[0].isdigit()
    )

    from docx import Document

    text = "\n".join(p.text for p in Document(io.BytesIO(word)).paragraphs)
    assert f"THÁNG {today.month:02d} NĂM {today.year}" in text
    assert (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
        in Document(io.BytesIO(word)).tables[0].rows[0].cells[1].text
    )
    assert "IV. ĐỒNG BỘ CỔNG THÔNG TIN" in text and "chưa được bật" in text  # no portal set

    import pypdfium2

    pdf_text = "".join(p.get_textpage().get_text_range() for p in pypdfium2.PdfDocument(pdf))
    assert "BÁO CÁO KẾT QUẢ CÔNG TÁC SỞ HỮU TRÍ TUỆ" in pdf_text
    assert "55.000.000" in pdf_text


def test_the_years_target_comes_from_the_targets(in_tx: Callable[..., Any], app: Flask) -> None:
    """A target set for the year is the year's target; a plan period's is said with its year;
    none is a dash."""
    from registry import services as registry_services
    from traceability import monthly

    def run() -> tuple[str, ...]:
        registry_services.save_target(
            {"metric": "geographical_indication", "value": 6, "by_year": 2030}
        )
        registry_services.save_target({"metric": "collective_mark", "value": 12, "by_year": 2026})
        registry_services.save_target(
            {"metric": "batches_registered", "value": 400, "by_year": 2026}
        )
        return (
            monthly.year_target("batches_registered", 2026),
            monthly.year_target("geographical_indication", 2026),
            monthly.year_target("collective_mark", 2026),
            monthly.year_target("certification_mark", 2026),
        )

    assert in_tx(run) == ("400", "6 (đến năm 2030)", "12", "—")


def test_a_month_that_does_not_exist_is_not_found(logged_in: Callable[..., Any]) -> None:
    officer = logged_in("officer")
    assert officer.get("/registry/monthly-report/2026-13.docx").status_code == 404
    assert officer.get("/registry/monthly-report/1999-12.pdf").status_code == 404
    assert officer.get("/registry/monthly-report?month=2026-13").status_code == 200  # falls back
