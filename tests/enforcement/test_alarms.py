"""Clone alarms lead somewhere: to their case, batch and code; an officer dismisses one
(with a reason), voids its code, or merges its case into an existing one; filters work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from nguon.db import db
from nguon.errors import DomainValidationError
from nguon.models import AuditEntry
from registry.enforcement import services
from registry.enforcement.models import Case
from traceability import alarms
from traceability.models import CloneAlarm, Label
from traceability.scans import flag

OFFICER = (None, "canbo@test.nguon.vn")


def _raise_alarm(in_tx: Callable[..., Any], label_id: int, detail: str = "scanned 30 times") -> int:
    def run() -> int:
        flag(label_id, "too_many_scans", detail)
        return db.session.scalar(select(CloneAlarm.id).order_by(CloneAlarm.id.desc()))

    return in_tx(run)


def test_an_alarm_links_its_case_and_is_opened_by_the_system(
    in_tx: Callable[..., Any], item: dict
) -> None:
    alarm_id = _raise_alarm(in_tx, item["codes"][0]["id"])

    def check() -> None:
        alarm = db.session.get(CloneAlarm, alarm_id)
        case = db.session.get(Case, alarm.case_id)
        assert case.source == "clone_alarm" and case.linked_label_id == alarm.label_id
        assert alarms.alarms_of_case(case.id) == [alarm]
        opened = db.session.scalar(
            select(AuditEntry).where(
                AuditEntry.record_table == "infringement_case",
                AuditEntry.record_id == str(case.id),
            )
        )
        assert opened.actor == "system:clone-detection"  # not "anonymous"

    in_tx(check)


def test_dismissing_needs_a_reason_and_rejects_the_untouched_case(
    in_tx: Callable[..., Any], item: dict
) -> None:
    alarm_id = _raise_alarm(in_tx, item["codes"][0]["id"])
    with pytest.raises(DomainValidationError, match="hãy ghi lý do"):
        in_tx(lambda: alarms.dismiss(db.session.get(CloneAlarm, alarm_id), " ", OFFICER))

    in_tx(
        lambda: alarms.dismiss(db.session.get(CloneAlarm, alarm_id), "shop scanning stock", OFFICER)
    )

    def check() -> None:
        alarm = db.session.get(CloneAlarm, alarm_id)
        assert (alarm.status, alarm.handled_by, alarm.handled_reason) == (
            "dismissed",
            OFFICER[1],
            "shop scanning stock",
        )
        case = db.session.get(Case, alarm.case_id)
        assert case.state == "rejected" and "shop scanning stock" in case.transitions[-1].reason
        with pytest.raises(DomainValidationError, match="cảnh báo đã ở trạng thái đã bỏ qua"):
            alarms.dismiss(alarm, "again", OFFICER)

    in_tx(check)


def test_voiding_the_code(in_tx: Callable[..., Any], item: dict, client: FlaskClient) -> None:
    """The copied code is voided (consumers are told); the case stays open with the note."""
    code = item["codes"][1]
    alarm_id = _raise_alarm(in_tx, code["id"])
    assert (
        in_tx(lambda: alarms.void_code(db.session.get(CloneAlarm, alarm_id), "copied", OFFICER))
        == 1
    )

    def check() -> None:
        label = db.session.get(Label, code["id"])
        assert label.voided_at is not None and label.void_reason == "copied"
        others = db.session.scalars(select(Label).where(Label.id != code["id"])).all()
        assert all(other.voided_at is None for other in others)  # only this code
        alarm = db.session.get(CloneAlarm, alarm_id)
        case = db.session.get(Case, alarm.case_id)
        assert alarm.status == "voided" and case.state == "received"
        assert case.evidence[-1]["kind"] == "code_voided"

    in_tx(check)


def test_merging_into_an_existing_case(in_tx: Callable[..., Any], item: dict) -> None:
    alarm_id = _raise_alarm(in_tx, item["codes"][2]["id"])
    existing = in_tx(lambda: services.open_case("Điều tra hàng giả ở chợ", "report").number)
    with pytest.raises(DomainValidationError, match="không có vụ việc mang số này"):
        in_tx(
            lambda: alarms.merge_into(
                db.session.get(CloneAlarm, alarm_id), "VV0000-999999", OFFICER
            )
        )
    in_tx(lambda: alarms.merge_into(db.session.get(CloneAlarm, alarm_id), existing, OFFICER))

    def check() -> None:
        alarm = db.session.get(CloneAlarm, alarm_id)
        into = db.session.scalar(select(Case).where(Case.number == existing))
        assert alarm.status == "merged" and alarm.case_id == into.id
        duplicate = db.session.scalar(
            select(Case).where(Case.source == "clone_alarm").order_by(Case.id.desc())
        )
        assert (
            duplicate.state == "closed"
            and f"đã gộp vào {existing}" in duplicate.transitions[-1].reason
        )

    in_tx(check)


def test_filters_by_state_and_day(in_tx: Callable[..., Any], item: dict) -> None:
    first = _raise_alarm(in_tx, item["codes"][0]["id"])
    second = _raise_alarm(in_tx, item["codes"][1]["id"], "scanned far apart")
    in_tx(lambda: alarms.dismiss(db.session.get(CloneAlarm, first), "test", OFFICER))
    today = dt.datetime.now(dt.UTC).date()

    def ids(**filters: Any) -> list[int]:
        return list(
            db.session.scalars(alarms.alarm_query(**filters).with_only_columns(CloneAlarm.id))
        )

    assert in_tx(lambda: ids(status="open")) == [second]
    assert in_tx(lambda: ids(status="dismissed")) == [first]
    assert in_tx(lambda: ids(since=today, until=today)) == [second, first]
    assert in_tx(lambda: ids(until=today - dt.timedelta(days=1))) == []


def test_acting_on_an_alarm_in_a_browser(
    app: Flask, item: dict, in_tx: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    """Playwright + Chromium at 1366×900: the alarms page links each alarm to its code's page
    (with the scans), its batch and its case; the officer voids the code with a reason and
    sees the alarm handled, with who and why."""
    from tests.browser import chromium, live_server
    from tests.conftest import TEST_PASSWORD

    code = item["codes"][0]
    alarm_id = _raise_alarm(in_tx, code["id"], "scanned in Hà Nội and Cà Mau within 2 hours")
    _, officer = make_user("officer")
    with live_server(app) as base, chromium({"width": 1366, "height": 900}) as page:
        page.goto(f"{base}/login")
        page.fill("#email", officer)
        page.fill("#password", TEST_PASSWORD)
        page.click("main button[type=submit]")
        page.goto(f"{base}/traceability/alarms?status=open")
        # The officer's menu: four groups on one line at 1366 px.
        tops = {round(li.bounding_box()["y"]) for li in page.locator(".main-nav > ul > li").all()}
        groups = page.locator(".main-nav .menu summary").all_inner_texts()
        assert len(tops) == 1 and groups == [
            "Sở hữu trí tuệ",
            "Truy xuất",
            "Xử lý vi phạm",
            "Hệ thống",
        ]
        row = page.locator(f"#alarm-{alarm_id}")
        assert "scanned in Hà Nội and Cà Mau" in row.inner_text()
        assert row.locator("a", has_text="Vụ việc VV").count() == 1
        assert row.locator("a", has_text="Lô LN2026-001").count() == 1
        row.locator(f"a[href='/traceability/codes/{code['id']}']").click()
        assert code["uri"] in page.locator("dl.facts").inner_text()
        page.go_back()
        row = page.locator(f"#alarm-{alarm_id}")
        row.locator("summary").click()
        row.locator(f"#void-{alarm_id}").fill("mã bị sao chép, in lại tem mới")
        row.locator("button", has_text="Huỷ mã").click()
        assert "Đã huỷ mã của cảnh báo" in page.locator(".notice").first.inner_text()
        row = page.locator(f"#alarm-{alarm_id}")
        assert "đã huỷ mã" in row.inner_text()
        assert officer in row.inner_text() and "mã bị sao chép" in row.inner_text()
        page.goto(f"{base}/traceability/alarms?status=open")
        assert page.locator(f"#alarm-{alarm_id}").count() == 0
