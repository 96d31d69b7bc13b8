"""The monthly report page: the figures of a chosen month, and the Word and PDF files."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, render_template, request

from nguon.auth import staff_required
from traceability import monthly

bp = Blueprint("monthly", __name__, url_prefix="/registry")
MEDIA = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}


@bp.get("/monthly-report")
@staff_required
def monthly_report() -> str:
    year, month = monthly.parse_month(request.args.get("month"), dt.date.today())
    return render_template(
        "registry/monthly_report.html",
        report=monthly.build(year, month),
        month_value=f"{year:04d}-{month:02d}",
    )


@bp.get("/monthly-report/<int:year>-<int:month>.<any(docx, pdf):fmt>")
@staff_required
def monthly_file(year: int, month: int, fmt: str) -> Response:
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        abort(404)
    report = monthly.build(year, month)
    data = monthly.to_docx(report) if fmt == "docx" else monthly.to_pdf(report)
    response = Response(data, mimetype=MEDIA[fmt])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="bao-cao-thang-{month:02d}-{year}.{fmt}"'
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
