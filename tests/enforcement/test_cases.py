"""Casework: the state machine with its required fields, alarms opening cases, privacy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from nguon.db import db
from nguon.errors import DomainValidationError
from registry.enforcement import services
from registry.enforcement.models import Case, CaseState
from tests.enforcement.test_reports import URI_PATTERN
from tests.registry.test_photos import photo_with_qr_and_gps

ACTOR = (None, "officer@test")


@pytest.fixture
def case_id(in_tx: Callable[..., Any]) -> int:
    return in_tx(lambda: services.open_case("Hàng giả vải thiều", "report").id)


def move(
    in_tx: Callable[..., Any], case_id: int, state: str, reason: str = "ok", **fields: Any
) -> Any:
    return in_tx(
        lambda: (
            services.move_case(db.session.get(Case, case_id), state, reason, fields, ACTOR).state
        )
    )


@pytest.mark.parametrize(
    ("path", "fields", "missing"),
    [
        (["accepted"], {}, ["deadline"]),
        (
            ["accepted", "investigating"],
            {},
            ["inspection_decision_date", "inspection_decision_number"],
        ),
        (
            ["accepted", "investigating", "violation_recorded"],
            {},
            ["infringer", "violation_record"],
        ),
        (
            ["accepted", "investigating", "violation_recorded", "sanction_decided"],
            {"fine_vnd": 0},
            ["fine_vnd", "legal_basis", "measures", "sanction_decision_number"],
        ),
        (
            ["accepted", "investigating", "violation_recorded", "sanction_decided", "enforced"],
            {},
            ["payment"],
        ),
    ],
)
def test_each_state_needs_its_fields(
    in_tx: Callable[..., Any], case_id: int, path: list[str], fields: dict, missing: list[str]
) -> None:
    ready = {
        "deadline": dt.date(2026, 12, 31),
        "inspection_decision_number": "12/QĐ-TTr",
        "inspection_decision_date": dt.date(2026, 11, 20),
        "infringer": "Cửa hàng X",
        "violation_record": "BB-01",
        "sanction_decision_number": "34/QĐ-XPVPHC",
        "legal_basis": "Nghị định 99/2013/NĐ-CP, điều 11",
        "fine_vnd": 15_000_000,
        "measures": "tịch thu, tiêu hủy",
    }
    for state in path[:-1]:
        move(in_tx, case_id, state, **{n: ready[n] for n in services.REQUIRED.get(state, ())})
    with pytest.raises(DomainValidationError) as refused:
        move(in_tx, case_id, path[-1], **fields)
    assert sorted(refused.value.errors) == missing
    needed = {name: ready.get(name, "paid 2026-12-01") for name in missing}
    assert move(in_tx, case_id, path[-1], **needed) == path[-1]


def test_illegal_moves_and_reasons(in_tx: Callable[..., Any], case_id: int) -> None:
    with pytest.raises(
        DomainValidationError,
        match="không thể chuyển từ “đã tiếp nhận, chờ cán bộ xử lý” sang “đã quyết định xử phạt”",
    ):
        move(in_tx, case_id, "sanction_decided")
    with pytest.raises(DomainValidationError) as no_reason:
        move(in_tx, case_id, "rejected", reason=" ")
    assert list(no_reason.value.errors) == ["reason"]
    assert move(in_tx, case_id, "rejected", reason="trùng báo cáo BC2026-000001") == "rejected"
    assert move(in_tx, case_id, "closed", reason="đóng") == "closed"
    with pytest.raises(DomainValidationError, match="được phép: —"):
        move(in_tx, case_id, "accepted")
    history = in_tx(
        lambda: [
            (t.from_state, t.to_state, t.actor) for t in db.session.get(Case, case_id).transitions
        ]
    )
    assert history == [
        ("received", "rejected", "officer@test"),
        ("rejected", "closed", "officer@test"),
    ]


def test_a_clone_alarm_opens_a_case_with_the_scans(
    client: FlaskClient, item: dict, app: Flask
) -> None:
    path = item["codes"][1]["uri"].split("127.0.0.1:5000", 1)[1]
    for _ in range(app.config["CLONE_MAX_SCANS"] + 1):
        client.get(path, headers={"Accept": "application/json"})
    with app.app_context():
        case = db.session.scalar(select(Case).where(Case.source == "clone_alarm"))
        assert case is not None and case.state == CaseState.RECEIVED
        assert case.code == item["codes"][1]["uri"] and case.linked_batch_id == item["batch"]
        assert (
            case.evidence[0]["rule"] == "too_many_scans" and len(case.evidence[0]["scan_ids"]) == 21
        )
        assert case.asset_id is not None


def test_cooperatives_cannot_read_cases(
    logged_in: Callable[..., FlaskClient], case_id: int
) -> None:
    client = logged_in("cooperative")
    assert client.get("/registry/cases").status_code == 403
    assert client.get(f"/registry/cases/{case_id}").status_code == 403


def move_in_browser(page: Any, state: str, reason: str, fields: dict[str, str]) -> None:
    """Open the transition's own form (it shows only the fields that step needs), fill it
    and send it."""
    if page.locator(f"#to-{state}").get_attribute("open") is None:
        page.click(f"#to-{state} summary")
    page.fill(f"#{state}-reason", reason)
    for name, value in fields.items():
        if page.locator(f"#{state}-{name}").evaluate("e => e.tagName") == "SELECT":
            page.select_option(f"#{state}-{name}", value)
        else:
            page.fill(f"#{state}-{name}", value)
    page.click(f"#to-{state} button[type=submit]")


def test_phone_report_to_sanction_in_a_browser(
    app: Flask, item: dict, make_user: Callable[..., Any], fine_bands: Any
) -> None:
    """Playwright + Chromium at 390×844: a report with a photo of a code (and GPS); the officer
    opens the photo from the case, moves the case step by step (each step's form shows only
    its fields), records the violation (Art. 12, goods worth 36,000,000 VND on 2025-10-15, by
    an organisation), sees the band proposed (40,000,000–70,000,000 VND, Art. 2(1) doubled),
    is refused a fine outside it, then decides the sanction; the reporter's status page
    shows the new state."""
    import tempfile
    from pathlib import Path

    from tests.browser import chromium, live_server
    from tests.conftest import TEST_PASSWORD

    code = item["codes"][0]["uri"]
    photo = Path(tempfile.mkdtemp()) / "nhan.jpg"
    photo.write_bytes(photo_with_qr_and_gps(uri=code))
    _, officer = make_user("officer")
    with live_server(app) as base, chromium({"width": 390, "height": 844}) as page:
        page.goto(f"{base}/report")
        page.select_option("#category", "fake_code")
        page.fill("#description", "Mã QR giống nhau trên nhiều hộp vải ở chợ")
        page.set_input_files("#photos", str(photo))
        page.click("form.report button[type=submit]")
        link = page.locator(".secret-link a").inner_text()
        receipt = URI_PATTERN.search(link).group(1)

        page.goto(f"{base}/login")
        page.fill("#email", officer)
        page.fill("#password", TEST_PASSWORD)
        page.click("main button[type=submit]")
        page.goto(f"{base}/registry/cases")
        with app.app_context():
            case_id = db.session.scalar(select(Case.id).order_by(Case.id.desc()))
        page.goto(f"{base}/registry/cases/{case_id}")
        assert code in page.content() and receipt in page.content()
        # The evidence is visible: the thumbnail is an image, and it opens the full photo.
        thumbnail = page.locator(".photos img").first
        assert thumbnail.evaluate("img => img.complete && img.naturalWidth > 0")
        page.click(".photos a.photo")
        assert page.evaluate("document.contentType") == "image/jpeg"
        page.go_back()
        labels = page.locator("#to-accepted label").all_inner_texts()
        assert labels == ["Hạn xử lý *", "Cán bộ thụ lý", "Lý do *"]  # only what it needs
        move_in_browser(page, "accepted", "theo quy trình", {"deadline": "2026-12-31"})
        move_in_browser(
            page,
            "investigating",
            "theo quy trình",
            {"inspection_decision_number": "12/QĐ-TTr", "inspection_decision_date": "2026-11-20"},
        )
        move_in_browser(
            page,
            "violation_recorded",
            "lập biên bản",
            {
                "infringer": "Công ty TNHH Thương mại X",
                "violation_record": "BB-01",
                "infringer_kind": "organisation",
                "violation_article": "12",
                "violation_date": "2025-10-15",
                "goods_value_vnd": "36.000.000",
            },
        )
        proposal = page.locator("#fine-proposal").inner_text()
        assert "Khoản 4 Điều 12 Nghị định 99/2013/NĐ-CP" in proposal
        assert "40.000.000–70.000.000" in proposal
        # The band is chosen and the legal basis written out from the proposal.
        assert (
            page.locator("#sanction_decided-legal_basis")
            .input_value()
            .startswith("Khoản 4 Điều 12")
        )
        move_in_browser(page, "sanction_decided", "xử phạt", {"fine_vnd": "15.000.000"})
        errors = page.locator("#to-sanction_decided .field-error").all_inner_texts()
        # In Vietnamese, with Vietnamese digit grouping (it said "must be between 40,000,000
        # and 70,000,000 VND" on this Vietnamese page).
        assert any("từ 40.000.000 đến 70.000.000 đồng đối với tổ chức" in e for e in errors), errors
        assert len(errors) == 3  # the fine, the decision number, the measures
        move_in_browser(
            page,
            "sanction_decided",
            "xử phạt",
            {
                "sanction_decision_number": "34/QĐ-XPVPHC",
                "fine_vnd": "55.000.000",
                "measures": "tịch thu, tiêu hủy",
                "public_note": "Đã xử phạt cơ sở vi phạm",
            },
        )
        assert page.locator(".field-error").count() == 0
        assert "55.000.000" in page.locator("dl.facts").inner_text()

        page.goto(link)
        status = page.locator("main").inner_text()
        assert "đã quyết định xử phạt" in status  # the state, in Vietnamese
        assert "Đã xử phạt cơ sở vi phạm" in status
        assert "Công ty TNHH" not in status  # the officer's case data stays private


def test_merging_duplicates_and_the_dashboard(
    in_tx: Callable[..., Any], logged_in: Callable[..., FlaskClient], client: FlaskClient
) -> None:
    def two_reports() -> tuple[int, int, str]:
        first = services.file_report(
            {"category": "counterfeit", "description": "vải giả ở chợ A"}, []
        ).report
        second = services.file_report(
            {"category": "counterfeit", "description": "vải giả ở chợ A (lần 2)"}, []
        )
        return first.case_id, second.report.case_id, status_url(second)

    def status_url(filed: Any) -> str:
        return f"/report/{filed.report.receipt}/{filed.secret}"

    keep, duplicate, second_status = in_tx(two_reports)
    deadline = dt.date.today() + dt.timedelta(days=400)  # ahead whenever the suite runs
    move(in_tx, keep, "accepted", deadline=deadline, public_note="Đã tiếp nhận")
    officer = logged_in("officer")
    page = officer.get(f"/registry/cases/{duplicate}").get_data(as_text=True)
    from tests.conftest import csrf_from

    number = in_tx(lambda: db.session.get(Case, keep).number)
    response = officer.post(
        f"/registry/cases/{duplicate}/merge", data={"csrf_token": csrf_from(page), "into": number}
    )
    assert response.status_code == 302
    merged = in_tx(lambda: [r.receipt for r in db.session.get(Case, keep).reports])
    assert len(merged) == 2
    assert in_tx(lambda: db.session.get(Case, duplicate).state) == "closed"
    # The merged report's reporter now follows the case it joined: its state and its note.
    status = client.get(second_status).get_data(as_text=True)
    assert "Đã tiếp nhận" in status
    dashboard = officer.get("/registry/cases/dashboard").get_data(as_text=True)
    assert dashboard.count('<svg class="chart"') == 5
    stats = in_tx(services.statistics)
    assert stats["reports_by_category"]["counterfeit"] == 2 and stats["open"] == 1
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    assert stats["cases_by_state"] == {"accepted": 1, "closed": 1}
    assert stats["reports_by_province"] == {"—": 2} and stats["reports_by_month"] == {month: 2}
    assert stats["cases_by_month"] == {month: 2} and stats["median_days_to_close"] == 0
    assert stats["overdue"] == 0
    later = in_tx(lambda: services.statistics(today=deadline + dt.timedelta(days=1)))
    assert later["overdue"] == 1  # the open case's deadline has passed
    assert stats["reports_by_province"] == {"—": 2}


def test_the_fine_band_in_force_on_the_case_date_bounds_the_fine(
    in_tx: Callable[..., Any], case_id: int
) -> None:
    """Bands are data with dates; a case uses the band in force when it was opened."""

    def bands() -> tuple[int, int]:
        old = services.save_fine_band(
            {
                "decree": "Nghị định (mẫu)",
                "article": "Điều A (cũ)",
                "description": "bản cũ",
                "min_vnd": 1_000_000,
                "max_vnd": 5_000_000,
                "effective_from": dt.date(2014, 1, 1),
                "effective_to": dt.date(2021, 12, 31),
            }
        )
        new = services.save_fine_band(
            {
                "decree": "Nghị định (mẫu)",
                "amended_by": "sửa đổi (mẫu)",
                "article": "Điều A",
                "description": "bản mới",
                "min_vnd": 2_000_000,
                "max_vnd": 10_000_000,
                "effective_from": dt.date(2022, 1, 1),
            }
        )
        return old.id, new.id

    old, new = in_tx(bands)
    for state, fields in [
        ("accepted", {"deadline": dt.date(2027, 1, 31)}),
        (
            "investigating",
            {"inspection_decision_number": "1", "inspection_decision_date": dt.date(2026, 11, 1)},
        ),
        ("violation_recorded", {"infringer": "X", "violation_record": "BB"}),
    ]:
        move(in_tx, case_id, state, **fields)
    sanction = {"sanction_decision_number": "9/QĐ", "legal_basis": "Điều A", "measures": "tiêu hủy"}
    with pytest.raises(DomainValidationError) as outdated:
        move(in_tx, case_id, "sanction_decided", fine_band_id=old, fine_vnd=3_000_000, **sanction)
    assert "không phải vào ngày của vụ việc" in outdated.value.errors["fine_band_id"][0]
    with pytest.raises(DomainValidationError) as too_low:
        move(in_tx, case_id, "sanction_decided", fine_band_id=new, fine_vnd=1_500_000, **sanction)
    assert too_low.value.errors["fine_vnd"] == [
        "phải từ 2.000.000 đến 10.000.000 đồng (Nghị định (mẫu) Điều A)"
    ]
    assert (
        move(in_tx, case_id, "sanction_decided", fine_band_id=new, fine_vnd=3_000_000, **sanction)
        == "sanction_decided"
    )
    with pytest.raises(DomainValidationError) as bad_band:
        in_tx(
            lambda: services.save_fine_band(
                {
                    "decree": "x",
                    "article": "y",
                    "description": "z",
                    "min_vnd": 5,
                    "max_vnd": 1,
                    "effective_from": dt.date(2024, 1, 1),
                }
            )
        )
    assert "max_vnd" in bad_band.value.errors


def test_officers_enter_fine_bands_on_their_page(
    in_tx: Callable[..., Any], logged_in: Callable[..., FlaskClient], case_id: int
) -> None:
    from registry.enforcement.models import FineBand
    from tests.conftest import csrf_from

    officer = logged_in("officer")
    page = officer.get("/registry/fine-bands").get_data(as_text=True)
    form = {
        "csrf_token": csrf_from(page),
        "decree": "Nghi\u0323 đi\u0323nh (mẫu)",  # decomposed on purpose: stored NFC
        "article": "Điều B",
        "description": "giả mạo chỉ dẫn địa lý",
        "min_vnd": "",
        "max_vnd": "20.000.000",
        "effective_from": "2022-01-01",
    }
    refused = officer.post("/registry/fine-bands", data=form)
    assert refused.status_code == 422
    assert 'has-error"><label for="min_vnd"' in refused.get_data(as_text=True)
    not_a_number = officer.post("/registry/fine-bands", data={**form, "min_vnd": "năm triệu"})
    assert not_a_number.status_code == 422
    assert "phải là số nguyên" in not_a_number.get_data(as_text=True)
    assert in_tx(lambda: db.session.scalar(select(func.count()).select_from(FineBand))) == 0
    saved = officer.post("/registry/fine-bands", data={**form, "min_vnd": "5.000.000"})
    assert saved.status_code == 302
    band = in_tx(lambda: db.session.scalars(select(FineBand)).one())
    assert (band.decree, band.min_vnd, band.max_vnd) == ("Nghị định (mẫu)", 5_000_000, 20_000_000)
    assert "Điều B" in officer.get("/registry/fine-bands").get_data(as_text=True)
    old = officer.post(
        "/registry/fine-bands",
        data={**form, "article": "Điều C", "min_vnd": "1", "effective_to": "2023-12-31"},
    )
    assert old.status_code == 302
    # A case opened today offers the band in force today, not the one that has ended.
    move(in_tx, case_id, "accepted", deadline=dt.date(2027, 1, 31))
    move(
        in_tx,
        case_id,
        "investigating",
        inspection_decision_number="1",
        inspection_decision_date=dt.date(2026, 11, 1),
    )
    move(in_tx, case_id, "violation_recorded", infringer="X", violation_record="BB")
    case_page = officer.get(f"/registry/cases/{case_id}").get_data(as_text=True)
    choices = case_page.split('id="sanction_decided-fine_band_id"', 1)[1].split("</select>", 1)[0]
    assert f'<option value="{band.id}">' in choices and "Điều C" not in choices
    officer.post("/logout", data={"csrf_token": csrf_from(page)})
    assert logged_in("cooperative").get("/registry/fine-bands").status_code == 403


def test_officers_attach_files_to_a_case(
    in_tx: Callable[..., Any], logged_in: Callable[..., FlaskClient], case_id: int
) -> None:
    import io

    from registry.enforcement.models import CaseAttachment
    from tests.conftest import csrf_from

    officer = logged_in("officer")
    page = officer.get(f"/registry/cases/{case_id}").get_data(as_text=True)
    token = csrf_from(page)
    url = f"/registry/cases/{case_id}/attachments"
    fake = officer.post(
        url,
        data={"csrf_token": token, "title": "x", "file": (io.BytesIO(b"MZ\x90\x00"), "a.pdf")},
        follow_redirects=True,
    )
    assert "phải là tệp PDF, PNG, JPEG hoặc WebP" in fake.get_data(as_text=True)
    count = select(func.count()).select_from(CaseAttachment)
    assert in_tx(lambda: db.session.scalar(count)) == 0
    minutes = b"%PDF-1.4\n% bi\xc3\xaan b\xe1\xba\xa3n\n%%EOF\n"
    added = officer.post(
        url,
        data={
            "csrf_token": token,
            "title": "Biên bản kiểm tra",
            "file": (io.BytesIO(minutes), "bien-ban.pdf"),
        },
    )
    assert added.status_code == 303
    attachment_id = in_tx(lambda: db.session.scalars(select(CaseAttachment.id)).one())
    shown = officer.get(f"/registry/cases/{case_id}").get_data(as_text=True)
    assert "Biên bản kiểm tra" in shown
    got = officer.get(f"{url}/{attachment_id}")
    assert got.status_code == 200 and got.data == minutes
    assert (
        got.mimetype == "application/pdf" and "bien-ban.pdf" in got.headers["Content-Disposition"]
    )
    assert (
        officer.get(f"/registry/cases/{case_id + 1}/attachments/{attachment_id}").status_code == 404
    )
    officer.post("/logout", data={"csrf_token": token})
    assert logged_in("cooperative").get(f"{url}/{attachment_id}").status_code == 403


def test_a_case_links_to_a_registered_organisation(in_tx: Callable[..., Any], case_id: int) -> None:
    from registry.services import save_organisation

    org_id = in_tx(
        lambda: (
            save_organisation(
                {"name": "Công ty Giả Mạo", "kind": "enterprise", "tax_code": "2400999999"}
            ).id
        )
    )
    deadline = {"deadline": dt.date(2027, 1, 31)}
    with pytest.raises(DomainValidationError) as unknown:
        move(in_tx, case_id, "accepted", organisation_id=org_id + 1000, **deadline)
    assert unknown.value.errors == {"organisation_id": ["sổ đăng ký không có tổ chức này"]}
    assert in_tx(lambda: db.session.get(Case, case_id).state) == "received"
    move(in_tx, case_id, "accepted", organisation_id=org_id, **deadline)
    assert in_tx(lambda: db.session.get(Case, case_id).organisation.name) == "Công ty Giả Mạo"


def test_the_shared_fine_bands_load_with_their_provenance(in_tx: Callable[..., Any]) -> None:
    """The reviewed extract loads as data (each band with its decree, amending decree,
    article, clause and source), once: loading again adds nothing; every band is audited."""
    from nguon.models import AuditEntry
    from registry.enforcement import fines
    from registry.enforcement.models import FineBand

    added, present = in_tx(fines.load_extract)
    assert (added, present) == (13, 0)
    assert in_tx(fines.load_extract) == (0, 13)

    def check() -> None:
        band = db.session.scalar(
            select(FineBand).where(FineBand.article == "12", FineBand.clause == "4")
        )
        assert (band.decree, band.amended_by) == ("99/2013/NĐ-CP", "126/2021/NĐ-CP")
        assert (band.goods_value_above_vnd, band.goods_value_up_to_vnd) == (20_000_000, 40_000_000)
        assert band.origin == "extract" and "01/VBHN-BKHCN" in band.source
        audited = db.session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.record_table == "fine_band", AuditEntry.action == "insert")
        )
        assert audited == 13

    in_tx(check)


@pytest.mark.parametrize(
    ("article", "value", "on", "kind", "expected"),
    [
        # The check: an organisation, goods worth 36,000,000 VND, 2025-10-15.
        ("12", 36_000_000, dt.date(2025, 10, 15), "organisation", (40_000_000, 70_000_000)),
        ("12", 36_000_000, dt.date(2025, 10, 15), "individual", (20_000_000, 35_000_000)),
        # Lower bounds are exclusive ("từ trên"), upper bounds inclusive.
        ("12", 20_000_000, dt.date(2025, 10, 15), "individual", (12_000_000, 20_000_000)),
        ("12", 20_000_001, dt.date(2025, 10, 15), "individual", (20_000_000, 35_000_000)),
        # The value cannot be determined: its own band (clause 11).
        ("12", None, dt.date(2025, 10, 15), "organisation", (20_000_000, 60_000_000)),
        # Art. 11 clause 12 (above 500 million): doubled, capped by the 500 million ceiling.
        ("11", 600_000_000, dt.date(2025, 1, 1), "organisation", (400_000_000, 500_000_000)),
    ],
)
def test_the_proposed_band(
    in_tx: Callable[..., Any],
    fine_bands: Any,
    article: str,
    value: int | None,
    on: dt.date,
    kind: str,
    expected: tuple[int, int],
) -> None:
    from registry.enforcement import fines

    proposal = in_tx(lambda: fines.propose(article, value, on, kind))
    assert (proposal.min_vnd, proposal.max_vnd) == expected


@pytest.mark.parametrize(
    ("article", "value", "on"),
    [
        ("12", 45_000_000, dt.date(2025, 10, 15)),  # Art. 12 above 40 million: not entered yet
        ("12", 36_000_000, dt.date(2021, 6, 1)),  # Art. 12 before 2022: not entered yet
        ("14", 1_000_000, dt.date(2025, 10, 15)),  # Art. 14: not entered at all
    ],
)
def test_no_band_is_proposed_when_none_was_entered(
    in_tx: Callable[..., Any], fine_bands: Any, article: str, value: int, on: dt.date
) -> None:
    """The extract's gaps are not filled by guessing: no band, and the case page says so."""
    from registry.enforcement import fines

    proposal = in_tx(lambda: fines.propose(article, value, on, "organisation"))
    assert proposal.band is None and proposal.min_vnd is None


def test_the_cases_list_names_source_and_category_in_words(
    app: Flask, in_tx: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    """Walking the officer's journey found the cases list showing a report's case as
    "report" and titled "counterfeit: …": in Chromium, the list says where the case came
    from and what was reported in Vietnamese, as the case page does."""
    from tests.browser import chromium, live_server
    from tests.conftest import TEST_PASSWORD

    in_tx(
        lambda: services.file_report(
            {"category": "counterfeit", "description": "Thùng vải in mã QR này bán ở chợ"}, []
        )
    )
    _, officer = make_user("officer")
    with live_server(app) as base, chromium() as page:
        page.goto(f"{base}/login")
        page.fill("#email", officer)
        page.fill("#password", TEST_PASSWORD)
        page.click("main button[type=submit]")
        page.goto(f"{base}/registry/cases")
        row = page.locator("main table tbody tr").first.inner_text()
        assert "phản ánh" in row and "hàng giả: Thùng vải in mã QR" in row, row
        assert "report" not in row and "counterfeit" not in row, row
