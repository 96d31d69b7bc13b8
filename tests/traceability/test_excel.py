"""Excel in and out: batches imported from .xlsx with the same dry run, per-row errors in
Vietnamese and all-or-nothing as the CSV import; lists exported as .xlsx."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import openpyxl
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_from
from tests.traceability.conftest import GTIN
from tests.traceability.test_pages import sign_in_member

COLUMNS = ["gtin", "lot", "quantity", "unit", "production_date", "areas", "claims"]


def workbook(*rows: list[Any], header: list[str] = COLUMNS) -> bytes:
    book = openpyxl.Workbook()
    book.active.append(header)
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(
    client: FlaskClient, url: str, content: bytes, dry_run: bool, name: str = "lo-hang.xlsx"
) -> Any:
    token = csrf_from(client.get(url).get_data(as_text=True))
    data = {"csrf_token": token, "file": (io.BytesIO(content), name)}
    if dry_run:
        data["dry_run"] = "1"
    return client.post(url, data=data, content_type="multipart/form-data")


def lots(app: Flask) -> list[str]:
    from nguon.db import db
    from traceability.models import Batch

    with app.app_context():
        return sorted(db.session.scalars(select(Batch.lot)))


def test_batches_from_excel_all_or_nothing(
    app: Flask, client: FlaskClient, trace: dict, in_tx: Callable[..., Any]
) -> None:
    sign_in_member(client, trace, in_tx)
    url = "/traceability/batches/import"
    good = [GTIN, "LN2026-101", "1,5", "tấn", "20/06/2026", "VN-BG-LN-0001", "00017"]
    bad = [GTIN, "LN2026-102", "900", "thùng", "21/06/2026", "VN-XX-9", "00017"]
    refused = upload(client, url, workbook(good, bad), dry_run=False)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "Không ghi nhận gì: 1 dòng có lỗi." in html
    assert "dòng 2" in html and "LN2026-102" in html
    assert "không có vùng sản xuất VN-XX-9 của tổ chức bạn" in html
    assert lots(app) == []
    checked = upload(client, url, workbook(good), dry_run=True)
    assert "Cả 1 dòng đều hợp lệ" in checked.get_data(as_text=True)
    assert lots(app) == []
    done = upload(client, url, workbook(good), dry_run=False)
    assert done.status_code == 200 and "Đã ghi nhận 1 dòng." in done.get_data(as_text=True)
    assert lots(app) == ["LN2026-101"]

    exported = client.get("/traceability/batches.xlsx")
    assert exported.mimetype.endswith("spreadsheetml.sheet")
    rows = list(
        openpyxl.load_workbook(io.BytesIO(exported.data)).active.iter_rows(values_only=True)
    )
    assert rows[0][:5] == ("GTIN", "Số lô", "Sản phẩm", "Số lượng", "Đơn vị")
    assert rows[1][1] == "LN2026-101" and rows[1][3] == 1.5 and rows[1][4] == "tấn"
    assert rows[1][5].strftime("%d/%m/%Y") == "20/06/2026"


def test_a_broken_or_foreign_file_is_refused_in_words(
    client: FlaskClient, trace: dict, in_tx: Callable[..., Any]
) -> None:
    sign_in_member(client, trace, in_tx)
    url = "/traceability/batches/import"
    for content, name, says in (
        (b"PK\x03\x04 not really a zip", "a.xlsx", "tệp không phải bảng tính .xlsx đọc được"),
        (b"\xff\xfe\x00b\x00a\x00d", "a.csv", "tệp không phải văn bản UTF-8"),
        (
            workbook(["x"], header=["colour"]),
            "a.xlsx",
            "thiếu cột: gtin, lot, quantity, production_date",
        ),
    ):
        refused = upload(client, url, content, dry_run=True, name=name)
        assert refused.status_code == 422
        assert says in refused.get_data(as_text=True)


def test_events_from_excel_through_the_api(
    app: Flask, client: FlaskClient, trace: dict, coop_headers: dict
) -> None:
    made = client.post(
        "/api/v1/traceability/batches",
        json={"product_id": trace["product"], "lot": "LN2026-103", "quantity": "100",
              "production_date": "2026-06-20", "area_ids": [trace["area"]]},
        headers=coop_headers,
    )  # fmt: skip
    assert made.status_code == 201, made.json
    content = workbook(
        ["harvest", GTIN, "LN2026-103", "20/06/2026 06:30", "100"],
        header=["step", "gtin", "lot", "event_time", "quantity"],
    )
    report = client.post(
        "/api/v1/traceability/events/import",
        data={"file": (io.BytesIO(content), "events.xlsx")},
        content_type="multipart/form-data",
        headers=coop_headers,
    )
    assert report.status_code == 200, report.json
    assert report.json["recorded"] == 1
    history = client.get(
        f"/api/v1/traceability/batches/{made.json['id']}/epcis", headers=coop_headers
    )
    (event,) = history.json["epcisBody"]["eventList"]
    assert event["eventTime"] == "2026-06-20T06:30:00+07:00"
