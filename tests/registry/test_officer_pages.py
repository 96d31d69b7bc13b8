"""The officer's pages as a working tool: the sync page says when sync is off or stalled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

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
