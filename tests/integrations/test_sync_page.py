"""The officers' sync page: whether sync runs, an outage as one state, the oldest waiting
row, the delivery rate; in Vietnamese first, on a phone too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from integrations.models import OutboxRow, OutboxState, SyncChannel
from nguon.db import db, utcnow
from tests.browser import chromium, live_server
from tests.conftest import TEST_PASSWORD, csrf_from
from tests.factories import lychee_batches
from tests.integrations.conftest import outbox_rows as rows


@pytest.fixture
def portal_set(app: Flask) -> Iterator[None]:
    app.config["PORTAL_URL"] = "http://portal.invalid"
    yield
    app.config["PORTAL_URL"] = None


@pytest.fixture
def queued(in_tx: Callable[..., Any], make_org: Callable[..., int]) -> list[int]:
    producer = make_org(name="HTX Vải thiều Phượng Sơn", tax_code="2400123456")
    return in_tx(lambda: lychee_batches(producer, 3))


def channel(in_tx: Callable[..., Any], **fields: Any) -> None:
    def write() -> None:
        db.session.merge(SyncChannel(target="portal", **{"circuit": "closed", "failures": 0,
                                                          **fields}))  # fmt: skip

    in_tx(write)


def page_text(client: Any, lang: str = "en") -> str:
    return client.get(f"/integrations/sync?lang={lang}").get_data(as_text=True)


def test_the_page_says_when_sync_is_off(logged_in: Callable[..., Any], queued: list[int]) -> None:
    client = logged_in("officer")
    page = page_text(client)
    assert "Sync is switched off: no portal address is configured (NGUON_PORTAL_URL)" in page
    assert "the 5 record(s) waiting will go once it is set" in page
    assert "Đồng bộ đang tắt" in page_text(client, "vi")


def test_the_page_says_when_no_worker_has_run_recently(
    logged_in: Callable[..., Any], queued: list[int], in_tx: Callable[..., Any], portal_set: None
) -> None:
    """The heartbeat decides, not the age of the oldest row: rows 10 s old and no worker
    ever seen is "no worker"; a heartbeat 10 minutes old is too; one just now is not."""
    client = logged_in("officer")
    page = page_text(client)
    assert "No sync worker seems to have run recently" in page
    assert 'data-state="no-worker"' in page
    channel(in_tx, worker_seen_at=utcnow() - dt.timedelta(minutes=10), worker_name="w1")
    assert 'data-state="no-worker"' in page_text(client)
    channel(in_tx, worker_seen_at=utcnow(), worker_name="w1")
    page = page_text(client)
    assert "No sync worker seems to have run" not in page and 'data-state="on"' in page
    assert "Sync is on." in page


def test_with_nothing_waiting_the_page_says_since_when_no_worker_ran(
    logged_in: Callable[..., Any], in_tx: Callable[..., Any], portal_set: None
) -> None:
    client = logged_in("officer")
    assert "No sync worker has run yet." in page_text(client)
    channel(in_tx, worker_seen_at=utcnow() - dt.timedelta(minutes=10), worker_name="w1")
    assert "No sync worker has run since" in page_text(client)
    assert "Không có tiến trình đồng bộ nào chạy kể từ" in page_text(client, "vi")


def test_oldest_waiting_row_delivery_rate_and_retry_of_every_parked_row(
    app: Flask,
    logged_in: Callable[..., Any],
    queued: list[int],
    in_tx: Callable[..., Any],
    portal_set: None,
) -> None:
    def settle() -> None:
        found = db.session.query(OutboxRow).order_by(OutboxRow.id).all()
        for row in found[:2]:  # the organisation and the product: delivered just now
            row.state, row.sent_at = OutboxState.DONE, utcnow()
        for row in found[2:4]:
            row.state, row.last_error = OutboxState.PARKED, "kept failing for 86400 s: HTTP 503"

    in_tx(settle)
    channel(in_tx, worker_seen_at=utcnow())
    client = logged_in("officer")
    page = page_text(client)
    oldest = page.split('id="oldest">')[1].split("</dd>")[0]
    assert f"trace record of batch {queued[2]}" in oldest
    rate = page.split('id="rate">')[1].split("</dd>")[0]
    assert "0.1 rows a minute" in rate  # two rows in the last 15 minutes
    assert page.count("kept failing for 86400 s") == 2
    response = client.post("/integrations/sync/retry-parked", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert "2 dòng bị giữ sẽ được gửi lại." in page_text(client)  # flashed in Vietnamese
    assert [r.state for r in rows(app)][2:] == ["pending"] * 3


def test_a_row_action_redirects_only_to_the_sync_page(
    logged_in: Callable[..., Any], queued: list[int], in_tx: Callable[..., Any]
) -> None:
    """The old ?back= parameter (a redirect to any address a link chose) is gone."""

    def park() -> int:
        row = db.session.query(OutboxRow).order_by(OutboxRow.id).first()
        row.state = OutboxState.PARKED
        return row.id

    row_id = in_tx(park)
    client = logged_in("officer")
    token = csrf_from(page_text(client))
    response = client.post(
        f"/integrations/sync/{row_id}/retry?back=https://evil.example/",
        data={"csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/integrations/sync#row-{row_id}")


def test_an_outage_on_a_phone_in_vietnamese(
    app: Flask,
    make_user: Callable[..., Any],
    queued: list[int],
    in_tx: Callable[..., Any],
    portal_set: None,
    tmp_path: Path,
) -> None:
    """An officer opens the page on a phone during an outage: one line says since when
    the portal is unreachable and how many rows wait, nothing scrolls sideways, and
    "retry every parked row" works."""
    since = utcnow() - dt.timedelta(hours=3)

    def outage() -> None:
        row = db.session.query(OutboxRow).order_by(OutboxRow.id).first()
        row.state, row.reasons = (
            OutboxState.PARKED,
            [{"field": "name", "code": "invalid", "message": "is required"}],
        )
        for row in db.session.query(OutboxRow).filter(OutboxRow.state == "pending"):
            row.failing_since, row.last_error = since, "ConnectionError: refused"

    in_tx(outage)
    channel(in_tx, circuit="open", failures=7, unreachable_since=since,
            next_probe_at=utcnow() + dt.timedelta(seconds=30), worker_seen_at=utcnow(),
            last_error="ConnectionError: [Errno 111] Connection refused")  # fmt: skip
    _, officer = make_user("officer")
    with live_server(app) as base, chromium({"width": 390, "height": 844}) as page:
        page.goto(f"{base}/login")
        page.fill("#email", officer)
        page.fill("#password", TEST_PASSWORD)
        page.click("main button[type=submit]")
        page.goto(f"{base}/integrations/sync")
        banner = page.locator("#outage-portal").inner_text()
        assert "Cổng thông tin truy xuất nguồn gốc quốc gia không kết nối được từ" in banner
        assert "4 dòng đang chờ." in banner
        assert page.locator("#failing td").first.inner_text().startswith("Không còn gì khác")
        page.screenshot(path=str(tmp_path / "sync-outage-390.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.click("text=Thử lại mọi dòng bị giữ")
        assert "1 dòng bị giữ sẽ được gửi lại." in page.locator("[role=status]").first.inner_text()
    assert next(r.state for r in rows(app)) == OutboxState.PENDING
