"""The Department's monthly report, IP and traceability part: the month's figures with the
previous month and the year's target, as an editable Word document and as PDF.

It reads the registry, enforcement and traceability records (this package may read them
all) and the portal outbox's state counts by table name (``integrations`` sits above
``traceability``; the outbox table is read, never imported).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, column, func, select, table
from sqlalchemy.sql import ColumnElement

from nguon.app import PROJECT_ROOT
from nguon.db import db
from registry.enforcement.models import Case, CaseState, CaseTransition, Report
from registry.models import (
    AssetKind,
    AuthorisedUser,
    AuthorisedUserStatus,
    IPAsset,
    OcopProduct,
    Target,
    ZoneConfirmation,
)
from traceability.models import Batch, LabelRun, Scan

FONT = PROJECT_ROOT / "static" / "fonts" / "DejaVuSans.ttf"
KIND_NAMES = {
    AssetKind.GEOGRAPHICAL_INDICATION: "chỉ dẫn địa lý",
    AssetKind.CERTIFICATION_MARK: "nhãn hiệu chứng nhận",
    AssetKind.COLLECTIVE_MARK: "nhãn hiệu tập thể",
    AssetKind.MARK: "nhãn hiệu",
}
SYNC_STATES = {
    "pending": "đang chờ gửi",
    "sent": "đã gửi, chờ cổng xác nhận",
    "done": "cổng đã nhận",
    "rejected": "cổng từ chối",
    "parked": "tạm dừng, chờ cán bộ xử lý",
}
OUTBOX = table("outbox", column("state"), column("created_at"))


@dataclass(frozen=True)
class Figure:
    """One line of the report: what, this month, the month before, the year's target."""

    key: str
    section: str
    label: str
    value: int
    previous: int
    target: str  # "—" when none is set
    unit: str = ""


@dataclass(frozen=True)
class MonthlyReport:
    year: int
    month: int
    figures: list[Figure]
    sync: dict[str, int]
    sync_enabled: bool
    generated_on: dt.date

    def value(self, key: str) -> int:
        return next(f.value for f in self.figures if f.key == key)


def month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    """First day of the month and first day of the next (half-open)."""
    start = dt.date(year, month, 1)
    end = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _at(moment: Any, start: dt.date, end: dt.date) -> ColumnElement[bool]:
    """A timestamp column within [start, end) days, in UTC (the stored zone)."""
    low = dt.datetime.combine(start, dt.time(), dt.UTC)
    high = dt.datetime.combine(end, dt.time(), dt.UTC)
    return and_(moment >= low, moment < high)


def _on(day: Any, start: dt.date, end: dt.date) -> ColumnElement[bool]:
    return and_(day >= start, day < end)


def _count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _counts(start: dt.date, end: dt.date) -> dict[str, int]:
    """Every figure of the report for [start, end)."""
    out: dict[str, int] = {}
    for kind in KIND_NAMES:
        out[f"filed_{kind}"] = _count(
            IPAsset, IPAsset.kind == kind, _on(IPAsset.filing_date, start, end)
        )
        out[f"granted_{kind}"] = _count(
            IPAsset, IPAsset.kind == kind, _on(IPAsset.grant_date, start, end)
        )
    out["authorised_users_added"] = _count(
        AuthorisedUser, _on(AuthorisedUser.decision_date, start, end)
    )
    out["authorised_users_suspended"] = _count(
        AuthorisedUser,
        AuthorisedUser.status == AuthorisedUserStatus.SUSPENDED,
        _on(AuthorisedUser.status_changed_on, start, end),
    )
    for stars in (3, 4, 5):
        out[f"ocop_{stars}"] = _count(
            OcopProduct, OcopProduct.stars == stars, _on(OcopProduct.decision_date, start, end)
        )
    out["zones_confirmed"] = _count(
        ZoneConfirmation, _at(ZoneConfirmation.confirmed_at, start, end)
    )
    out["batches_registered"] = _count(Batch, _at(Batch.created_at, start, end))
    out["codes_issued"] = int(
        db.session.scalar(
            select(func.coalesce(func.sum(LabelRun.count), 0)).where(
                _at(LabelRun.created_at, start, end)
            )
        )
        or 0
    )
    out["scans"] = _count(Scan, _at(Scan.at, start, end))
    out["suspicious_scans"] = _count(
        Scan, Scan.verdict.in_(("suspicious", "voided")), _at(Scan.at, start, end)
    )
    out["reports_received"] = _count(Report, _at(Report.created_at, start, end))
    out["cases_opened"] = _count(Case, _at(Case.created_at, start, end))
    out["cases_closed"] = _count(Case, _on(Case.closed_on, start, end))
    decided = select(CaseTransition.case_id).where(
        CaseTransition.to_state == CaseState.SANCTION_DECIDED,
        _at(CaseTransition.at, start, end),
    )
    out["fines_decided"] = _count(Case, Case.id.in_(decided))
    out["fines_total_vnd"] = int(
        db.session.scalar(
            select(func.coalesce(func.sum(Case.fine_vnd), 0)).where(Case.id.in_(decided))
        )
        or 0
    )
    return out


# (key, section, Vietnamese label, unit, yearly target metric or None)
LINES: list[tuple[str, str, str, str, str | None]] = [
    *[
        (f"filed_{k}", "I", f"Đơn đăng ký {name} đã nộp", "đơn", f"filed_{k}")
        for k, name in KIND_NAMES.items()
    ],
    *[
        (f"granted_{k}", "I", f"Văn bằng {name} được cấp", "văn bằng", str(k))
        for k, name in KIND_NAMES.items()
    ],
    (
        "authorised_users_added",
        "I",
        "Tổ chức được trao quyền sử dụng",
        "tổ chức",
        "authorised_users_added",
    ),
    ("authorised_users_suspended", "I", "Tổ chức bị đình chỉ quyền sử dụng", "tổ chức", None),
    ("ocop_3", "I", "Sản phẩm OCOP được công nhận 3 sao", "sản phẩm", None),
    ("ocop_4", "I", "Sản phẩm OCOP được công nhận 4 sao", "sản phẩm", None),
    ("ocop_5", "I", "Sản phẩm OCOP được công nhận 5 sao", "sản phẩm", None),
    (
        "zones_confirmed",
        "I",
        "Vùng sản xuất được xác nhận vào bản đồ khoanh vùng",
        "vùng",
        "zones_confirmed",
    ),
    ("batches_registered", "II", "Lô hàng được đăng ký truy xuất", "lô", "batches_registered"),
    ("codes_issued", "II", "Mã truy xuất được cấp", "mã", "codes_issued"),
    ("scans", "II", "Lượt quét mã", "lượt", None),
    ("suspicious_scans", "II", "Lượt quét đáng ngờ hoặc mã đã huỷ", "lượt", None),
    ("reports_received", "III", "Phản ánh của người dân nhận được", "phản ánh", None),
    ("cases_opened", "III", "Vụ việc được mở", "vụ việc", None),
    ("cases_closed", "III", "Vụ việc được kết thúc", "vụ việc", None),
    ("fines_decided", "III", "Quyết định xử phạt được ban hành", "quyết định", None),
    ("fines_total_vnd", "III", "Tổng số tiền phạt", "đồng", None),
]
SECTIONS = {
    "I": "I. SỞ HỮU TRÍ TUỆ",
    "II": "II. TRUY XUẤT NGUỒN GỐC",
    "III": "III. PHẢN ÁNH VÀ XỬ LÝ VI PHẠM",
    "IV": "IV. ĐỒNG BỘ CỔNG THÔNG TIN TRUY XUẤT NGUỒN GỐC QUỐC GIA",
}


def year_target(metric: str | None, year: int) -> str:
    """The year's target of ``metric``: a target set for ``year`` itself, else the plan
    period's (said with its year); applications: last year's filings grown by the yearly
    rate. "—" when none is set."""
    if metric is None:
        return "—"
    if metric.startswith("filed_"):
        rate = db.session.scalar(
            select(Target.value)
            .where(Target.metric == "applications_growth", Target.by_year >= year)
            .order_by(Target.by_year)
        )
        if rate is None:
            return "—"
        last_year = _count(
            IPAsset,
            IPAsset.kind == metric.removeprefix("filed_"),
            _on(IPAsset.filing_date, dt.date(year - 1, 1, 1), dt.date(year, 1, 1)),
        )
        goal = (Decimal(last_year) * (1 + Decimal(rate))).to_integral_value(
            rounding="ROUND_CEILING"
        )
        return f"{goal} (+{Decimal(rate) * 100:g} %)"
    target = db.session.scalar(
        select(Target)
        .where(Target.metric == metric, Target.by_year >= year)
        .order_by(Target.by_year)
        .limit(1)
    )
    if target is None:
        return "—"
    value = f"{int(target.value)}"
    return value if target.by_year == year else f"{value} (đến năm {target.by_year})"


def build(year: int, month: int, today: dt.date | None = None) -> MonthlyReport:
    """The figures of ``month``/``year`` with the month before and the year's targets."""
    this = _counts(*month_bounds(year, month))
    before = _counts(*month_bounds(*previous_month(year, month)))
    figures = [
        Figure(key, section, text, this[key], before[key], year_target(metric, year), unit)
        for key, section, text, unit, metric in LINES
    ]
    sync = dict(
        db.session.execute(select(OUTBOX.c.state, func.count()).group_by(OUTBOX.c.state)).all()
    )
    from flask import current_app

    return MonthlyReport(
        year,
        month,
        figures,
        {state: int(sync.get(state, 0)) for state in SYNC_STATES},
        bool(current_app.config.get("PORTAL_URL")),
        today or dt.date.today(),
    )


def _number(value: int) -> str:
    return f"{value:,}".replace(",", ".")  # Vietnamese thousands separator


def _sync_sentence(report: MonthlyReport) -> str:
    if not report.sync_enabled:
        return (
            "Đồng bộ với Cổng thông tin truy xuất nguồn gốc sản phẩm, hàng hóa quốc gia chưa được"
            " bật (chưa cấu hình địa chỉ cổng); các bản ghi chờ gửi: "
            f"{_number(report.sync['pending'])}."
        )
    parts = [f"{_number(n)} {SYNC_STATES[s]}" for s, n in report.sync.items()]
    return "Tình trạng đồng bộ tại thời điểm lập báo cáo: " + "; ".join(parts) + "."


def _title(report: MonthlyReport) -> str:
    return (
        "BÁO CÁO KẾT QUẢ CÔNG TÁC SỞ HỮU TRÍ TUỆ VÀ TRUY XUẤT NGUỒN GỐC "
        f"THÁNG {report.month:02d} NĂM {report.year}"
    )


HEAD = ("STT", "Nội dung", "Tháng này", "Tháng trước", "Chỉ tiêu năm")


def _rows(report: MonthlyReport) -> list[tuple[str, list[tuple[str, ...]]]]:
    sections = []
    for code, heading in SECTIONS.items():
        if code == "IV":  # the sync state is a sentence, not a table
            continue
        rows = [
            (str(i), f"{f.label} ({f.unit})", _number(f.value), _number(f.previous), f.target)
            for i, f in enumerate((f for f in report.figures if f.section == code), start=1)
        ]
        sections.append((heading, rows))
    return sections


def to_docx(report: MonthlyReport) -> bytes:
    """The report as an editable Word document (python-docx), in the administrative style:
    the Department's heading, the national motto, a title, one table per part."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(13)
    header = document.add_table(rows=1, cols=2)
    left, right = header.rows[0].cells
    left.text = "UBND TỈNH\nSỞ KHOA HỌC VÀ CÔNG NGHỆ"
    right.text = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc"
    for cell in (left, right):
        for paragraph in cell.paragraphs:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            for run in paragraph.runs:
                run.bold = True
    dated = document.add_paragraph(
        f"ngày {report.generated_on.day:02d} tháng {report.generated_on.month:02d} "
        f"năm {report.generated_on.year}"
    )
    dated.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    title = document.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    title.add_run(_title(report)).bold = True
    document.add_paragraph(
        f"Sở Khoa học và Công nghệ báo cáo kết quả công tác sở hữu trí tuệ và truy xuất nguồn gốc"
        f" tháng {report.month:02d}/{report.year}, so sánh với tháng trước và chỉ tiêu năm"
        f" {report.year}, như sau:"
    )
    for heading, rows in _rows(report):
        paragraph = document.add_paragraph()
        paragraph.add_run(heading).bold = True
        if not rows:
            continue
        grid = document.add_table(rows=1, cols=len(HEAD))
        grid.style = "Table Grid"
        for cell, text in zip(grid.rows[0].cells, HEAD, strict=True):
            cell.text = text
            cell.paragraphs[0].runs[0].bold = True
        for row in rows:
            cells = grid.add_row().cells
            for cell, text in zip(cells, row, strict=True):
                cell.text = text
    paragraph = document.add_paragraph()
    paragraph.add_run(SECTIONS["IV"]).bold = True
    document.add_paragraph(_sync_sentence(report))
    document.add_paragraph(
        "Số liệu do hệ thống Nguồn tổng hợp tự động từ sổ đăng ký; cán bộ kiểm tra, bổ sung"
        " trước khi trình ký."
    )
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def to_pdf(report: MonthlyReport) -> bytes:
    """The same report as PDF (fpdf2, DejaVu Sans: every Vietnamese letter)."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 15, 15)
    pdf.add_page()
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.set_font("DejaVu", size=10)
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    top = pdf.get_y()
    pdf.multi_cell(half, 5, "UBND TỈNH\nSỞ KHOA HỌC VÀ CÔNG NGHỆ", align="C")
    pdf.set_xy(pdf.l_margin + half, top)
    pdf.multi_cell(
        half, 5, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc", align="C"
    )
    pdf.ln(3)
    day = report.generated_on
    pdf.cell(0, 6, f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}", align="R")
    pdf.ln(10)
    pdf.set_font("DejaVu", size=12)
    pdf.multi_cell(0, 6, _title(report), align="C")
    pdf.set_font("DejaVu", size=10)
    pdf.ln(2)
    widths = (12, 93, 22, 22, 26)
    for heading, rows in _rows(report):
        pdf.ln(2)
        pdf.set_font("DejaVu", size=11)
        pdf.cell(0, 7, heading)
        pdf.ln(7)
        pdf.set_font("DejaVu", size=9)
        if not rows:
            continue
        with pdf.table(
            col_widths=widths,
            text_align=("CENTER", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
            headings_style=FontFace(emphasis="", fill_color=(230, 238, 233)),
        ) as grid:
            grid.row(HEAD)
            for row in rows:
                grid.row(row)
    pdf.ln(3)
    pdf.set_font("DejaVu", size=11)
    pdf.cell(0, 7, SECTIONS["IV"])
    pdf.ln(7)
    pdf.set_font("DejaVu", size=10)
    pdf.multi_cell(0, 5, _sync_sentence(report))
    return bytes(pdf.output())


def parse_month(value: str | None, today: dt.date) -> tuple[int, int]:
    """``YYYY-MM`` (the month before ``today`` when absent or malformed)."""
    try:
        year, month = (int(part) for part in (value or "").split("-"))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    return previous_month(today.year, today.month)
