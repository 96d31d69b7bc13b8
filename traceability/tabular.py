"""Tables in and out: the rows of an uploaded CSV or Excel workbook (.xlsx, first sheet,
first row the column names) and lists written as .xlsx (openpyxl) or CSV.

An .xlsx is a zip of XML: openpyxl reads it read-only (streaming), without formulas'
evaluation, and the size of what it may expand to is bounded before it is opened.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from nguon.errors import DomainValidationError
from nguon.i18n import _

XLSX_MAGIC = b"PK\x03\x04"
MAX_ROWS = 10_000
MAX_UNZIPPED = 50 * 1024 * 1024  # a workbook that inflates beyond this is refused
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_rows(filename: str, payload: bytes) -> list[dict[str, str]]:
    """The rows of a CSV (UTF-8, a BOM is fine) or .xlsx upload, as text by column name.
    Empty rows are skipped; DomainValidationError on ``file`` says what is wrong."""
    if payload.startswith(XLSX_MAGIC) or filename.lower().endswith(".xlsx"):
        return _xlsx_rows(payload)
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainValidationError(
            {"file": _("the file is not UTF-8 text (CSV) nor .xlsx")}
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    for row in reader:
        if len(rows) >= MAX_ROWS:
            raise DomainValidationError({"file": _("at most %(n)d rows", n=MAX_ROWS)})
        rows.append({(k or "").strip(): (v or "").strip() for k, v in row.items() if k})
    header = [name.strip() for name in reader.fieldnames or []]
    _check_header(header)
    return _with_header(rows, header)


def _check_header(names: Sequence[str]) -> None:
    if not names:
        raise DomainValidationError({"file": _("the first row must name the columns")})


def _xlsx_rows(payload: bytes) -> list[dict[str, str]]:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED:
                raise DomainValidationError({"file": _("the workbook is too large")})
        book = openpyxl.load_workbook(io.BytesIO(payload), read_only=True, data_only=True)
    except DomainValidationError:
        raise
    except Exception:  # openpyxl raises many kinds for a broken file
        raise DomainValidationError(
            {"file": _("the file is not a readable .xlsx workbook")}
        ) from None
    try:
        sheet = book.worksheets[0]
        lines = sheet.iter_rows(values_only=True)
        header = [_cell(v) for v in next(lines, ())]
        while header and not header[-1]:
            header.pop()
        _check_header(header)
        rows = []
        for line in lines:
            values = [_cell(v) for v in line[: len(header)]]
            if not any(values):
                continue
            if len(rows) >= MAX_ROWS:
                raise DomainValidationError({"file": _("at most %(n)d rows", n=MAX_ROWS)})
            rows.append({name: value for name, value in zip(header, values, strict=False) if name})
        return _with_header(rows, header)
    finally:
        book.close()


class _Rows(list):  # type: ignore[type-arg]
    """Rows that remember the header they were read with (for column checks)."""

    fieldnames: list[str]


def _with_header(rows: list[dict[str, str]], header: list[str]) -> list[dict[str, str]]:
    out = _Rows(rows)
    out.fieldnames = header
    return out


def header_of(rows: list[dict[str, str]]) -> list[str]:
    names = getattr(rows, "fieldnames", None)
    if names is not None:
        return list(names)
    return list(rows[0]) if rows else []


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value == value.to_integral() or abs(value) < 10**12 else str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, list | tuple):
        return "; ".join(map(str, value))
    return value


def xlsx(
    columns: Sequence[tuple[str, Any]], rows: Iterable[Sequence[Any]], title: str = ""
) -> bytes:
    """A workbook of one sheet: a bold header (the column titles) then the rows; dates
    shown dd/mm/yyyy."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title=(title or "Sheet1")[:31])
    header = []
    for _key, heading in columns:
        cell = WriteOnlyCell(sheet, value=str(heading))
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
            if isinstance(value, dt.datetime):
                cell.number_format = "dd/mm/yyyy hh:mm"
            elif isinstance(value, dt.date):
                cell.number_format = "dd/mm/yyyy"
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_text(columns: Sequence[tuple[str, Any]], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([key for key, _heading in columns])
    for row in rows:
        writer.writerow(["" if v is None else _xlsx_value(v) for v in row])
    return out.getvalue()
