"""Every page and form, as every role, in both languages: no untranslated message.

The pages come from the URL map, so a new page is covered (or the test says it must be
added to ``PAGE_ARGS``/``NOT_PAGES``). Each page is read as a person sees it (visible
text, placeholders, labels of buttons); each of its forms is sent empty and with
nonsense, so the error states (field errors, flash messages, error pages) are read too.

In Vietnamese, a text fails when it is a msgid of the catalogue left in English, or holds
English words a Vietnamese page never needs. In both languages, raw stored values
(``geographical_indication``, ``fake_code``) and UN/ECE unit codes (KGM, XBX) fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_from

CATALOGUE = Path(__file__).resolve().parents[2] / "nguon/translations/vi/LC_MESSAGES/messages.po"
DEMO_USERS = {
    "anonymous": None,
    "cooperative": ("htx@demo.nguon.vn", "demo-htx-2026"),
    "officer": ("canbo@demo.nguon.vn", "demo-officer-2026"),
    "admin": ("admin@demo.nguon.vn", "demo-admin-2026"),
}
# Routes that are not HTML pages for people (files, images, machine interfaces), each
# with its reason; every other GET route must be visited.
NOT_PAGES = {
    "static": "files",
    "main.health": "JSON for load balancers",
    "main.set_language": "redirects",
    "resolver.resolver_description": "JSON (GS1 resolver description)",
    "epcis.capture_jobs": "EPCIS interface (JSON)",
    "epcis.capture_job": "EPCIS interface (JSON)",
    "epcis.query_events": "EPCIS interface (JSON)",
    "epcis.get_event": "EPCIS interface (JSON)",
    "epcis.capture_options": "EPCIS interface",
    "epcis_subscriptions.list_subscriptions": "EPCIS interface (JSON)",
    "epcis_subscriptions.subscription": "EPCIS interface (JSON)",
    "epcis.event_types": "EPCIS interface (JSON)",
    "epcis.event_type": "EPCIS interface (JSON)",
    "epcis.event_type_events": "EPCIS interface (JSON)",
    "epcis.epcs": "EPCIS interface (JSON)",
    "epcis.epc_resource": "EPCIS interface (JSON)",
    "epcis.named_queries": "EPCIS interface (JSON)",
    "epcis.named_query": "EPCIS interface (JSON)",
    "epcis.named_query_events": "EPCIS interface (JSON)",
    "epcis.bizSteps_listing": "EPCIS interface (JSON)",
    "epcis.bizSteps_one": "EPCIS interface (JSON)",
    "epcis.bizSteps_events": "EPCIS interface (JSON)",
    "epcis.bizLocations_listing": "EPCIS interface (JSON)",
    "epcis.bizLocations_one": "EPCIS interface (JSON)",
    "epcis.bizLocations_events": "EPCIS interface (JSON)",
    "epcis.readPoints_listing": "EPCIS interface (JSON)",
    "epcis.readPoints_one": "EPCIS interface (JSON)",
    "epcis.readPoints_events": "EPCIS interface (JSON)",
    "epcis.dispositions_listing": "EPCIS interface (JSON)",
    "epcis.dispositions_one": "EPCIS interface (JSON)",
    "epcis.dispositions_events": "EPCIS interface (JSON)",
    "registry.dashboard_csv": "CSV file",
    "registry.export_page": "CSV/JSON file",
    "registry.document": "uploaded file",
    "reports.cases_csv": "CSV file",
    "reports.attachment": "uploaded photo",
    "reports.report_photo": "uploaded photo",
    "monthly.monthly_file": "Word/PDF file",
    "traceability.image": "product image",
    "traceability.batches_xlsx": "Excel file",
    "traceability.products_xlsx": "Excel file",
    "traceability.scans_xlsx": "Excel file",
    "traceability.import_template": "Excel file",
    "traceability.labels.run_codes_file": "CSV/Excel file",
    "traceability.labels.label_preview": "PNG image",
    "traceability.labels.label_sheet": "PDF file",
    "traceability.labels.label_png": "PNG image",
    "traceability.labels.label_svg": "SVG image",
    "audit.record_history": "redirects to the audit log",
}
ENGLISH = re.compile(
    r"\b(the|is|are|not|must|of|and|with|this|please|required|invalid|valid|number|"
    r"missing|should|cannot|choose|between|nothing|yet|found|error|page|field|data|"
    r"than|more|already|your|you)\b",
    re.IGNORECASE,
)
RAW_KEY = re.compile(r"(?<![\w/.:@-])[a-z]+(?:_[a-z]+)+(?![\w/.:@-])")
UNIT_CODE = re.compile(r"\b(KGM|TNE|H87|XBX|XCT|LTR)\b")
ISO_DATE = re.compile(r"(?<![\w/-])\d{4}-\d{2}-\d{2}(?![\w-])")  # dates are dd/MM/yyyy
ENGLISH_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,])")  # 1,234.5
SKIP_TEXT_IN = {"script", "style", "code", "pre", "svg", "title"}
# Records kept as the sources wrote them, in English: the province's asset list notes and
# the provenance notes of the fine bands' reviewed extract (shared/data).
SOURCE_DATA = (
    "GI registration in Japan prepared with Japan's food industry agency",
    "Read on ",  # a fine band's provenance
    "Art. ",  # what the reviewed extract still lacks, as it lists it
)


class PageReader(HTMLParser):
    """The text a person reads, and the page's post forms."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.forms: list[dict[str, Any]] = []
        self._skip = 0
        self._form: dict[str, Any] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in SKIP_TEXT_IN:
            self._skip += 1
        for key in ("placeholder", "title", "alt", "aria-label"):
            if a.get(key) and tag not in ("svg",):
                self.texts.append(a[key])
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._form = {"action": a.get("action", ""), "fields": {}}
            self.forms.append(self._form)
        if self._form is None or not a.get("name"):
            return
        fields = self._form["fields"]
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("file", "checkbox", "radio", "submit"):
                return
            else:
                fields[a["name"]] = (a.get("value", ""), kind)
        elif tag == "textarea":
            fields[a["name"]] = ("", "textarea")
        elif tag == "select":
            self._select = a["name"]
            fields[a["name"]] = ("", "select")
        elif tag == "option" and self._select and a.get("value"):
            value, kind = fields[self._select]
            if not value:
                fields[self._select] = (a["value"], kind)

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TEXT_IN and self._skip:
            self._skip -= 1
        if tag == "form":
            self._form = None
        if tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._skip:
            self.texts.append(text)


def read(html: str) -> PageReader:
    reader = PageReader()
    reader.feed(html)
    return reader


def untranslated_msgids() -> tuple[set[str], re.Pattern[str]]:
    """Catalogue msgids whose Vietnamese differs: whole ones, and the fixed start of those
    with placeholders (how a formatted one shows)."""
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="vi")
    whole, starts = set(), set()
    for message in catalogue:
        msgid = message.id if isinstance(message.id, str) else (message.id or ("",))[0]
        string = message.string if isinstance(message.string, str) else (message.string or ("",))[0]
        if not msgid or msgid == string or len(msgid) < 4 or " " not in msgid:
            continue
        head = re.split(r"%\(|\{|%[sd]", msgid)[0].strip()
        if head == msgid:
            whole.add(msgid)
        elif len(head) >= 12 and " " in head:
            starts.add(re.escape(head))
    return whole, re.compile("|".join(sorted(starts, key=len, reverse=True)))


def problems_in(texts: list[str], lang: str, whole: set[str], starts: re.Pattern[str]) -> list[str]:
    found = []
    for text in texts:
        if text.startswith(SOURCE_DATA):
            continue
        if (
            RAW_KEY.search(text)
            or UNIT_CODE.search(text)
            or (lang == "vi" and (text in whole or starts.match(text) or ENGLISH.search(text)))
        ):
            found.append(text)
    return found


def sign_in(client: FlaskClient, role: str, lang: str) -> None:
    client.get(f"/lang/{lang}")
    account = DEMO_USERS[role]
    if account:
        token = csrf_from(client.get("/login").get_data(as_text=True))
        response = client.post(
            "/login", data={"email": account[0], "password": account[1], "csrf_token": token}
        )
        assert response.status_code == 302, (role, response.status_code)


def page_args(app: Flask, client: FlaskClient) -> dict[str, dict[str, Any]]:
    """One real record for each page that names one (from the demo, plus a report)."""
    from nguon.db import db
    from registry.enforcement.models import Case
    from registry.models import (
        AuthorisedUser,
        IPAsset,
        OcopProduct,
        Organisation,
        ProductionArea,
        Target,
    )
    from traceability.models import Batch, Label, LabelRun, Product

    token = csrf_from(client.get("/report").get_data(as_text=True))
    client.post(
        "/report",
        data={"csrf_token": token, "category": "fake_code", "description": "Tem giả ở chợ"},
    )
    with app.app_context():
        from traceability.models import Scan

        code = db.session.scalar(select(Label).where(Label.serial.isnot(None)).limit(1))
        path = "/01/" + code.uri.split("/01/", 1)[1] if code else None
    if path:  # a consumer's scan, to be shown again by its reference
        client.get(path)
    with app.app_context():
        scan_ref = db.session.scalar(select(Scan.ref).where(Scan.ref.isnot(None)).limit(1))
        first = lambda model: db.session.scalar(select(model.id).order_by(model.id).limit(1))  # noqa: E731
        label = db.session.scalar(select(Label).where(Label.serial.isnot(None)).limit(1))
        case = db.session.scalar(select(Case).limit(1))
        return {
            "registry.asset": {"asset_id": first(IPAsset)},
            "registry.manage_asset": {"asset_id": first(IPAsset)},
            "registry.edit_asset": {"asset_id": first(IPAsset)},
            "registry.edit_area": {"area_id": first(ProductionArea)},
            "registry.new_area_certificate": {"area_id": first(ProductionArea)},
            "registry.edit_authorised_user": {"user_id": first(AuthorisedUser)},
            "registry.rerate_ocop": {"ocop_id": first(OcopProduct)},
            "registry.edit_organisation": {"org_id": first(Organisation)},
            "registry.edit_target": {"target_id": first(Target)},
            "reports.case_page": {"case_id": case.id if case else 1},
            "reports.report_status": {"receipt": "R-0000-0000", "secret": "x" * 20},
            "resolver.resolve": {"rest": label.uri.split("/01/", 1)[1]} if label else {},
            "traceability.batch": {"batch_id": first(Batch)},
            "traceability.edit_batch": {"batch_id": first(Batch)},
            "traceability.edit_product": {"product_id": first(Product)},
            "traceability.labels.run": {"run_id": first(LabelRun)},
            "alarms.code_page": {"label_id": label.id if label else 1},
            "resolver.scan_page": {"ref": scan_ref or "0" * 16},
        }


def pages(app: Flask, args: dict[str, dict[str, Any]]) -> Iterator[str]:
    missing = []
    with app.test_request_context():
        from flask import url_for

        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in rule.methods or rule.rule.startswith("/api/"):
                continue
            if rule.endpoint in NOT_PAGES:
                continue
            if rule.arguments and rule.endpoint not in args:
                missing.append(rule.endpoint)
                continue
            yield url_for(rule.endpoint, **args.get(rule.endpoint, {}))
    assert not missing, f"new pages: give them a record in PAGE_ARGS or a reason: {missing}"


def nonsense(fields: dict[str, tuple[str, str]], token: str, plausible: bool) -> dict[str, str]:
    """Every field filled with "x" (lists with a missing choice, or with their first
    choice when ``plausible``, to get past them to the rules behind)."""
    data = {}
    for name, (value, kind) in fields.items():
        if kind == "hidden" or (kind == "select" and plausible):
            data[name] = value
        elif kind == "select":
            data[name] = "999999999"
        else:
            data[name] = "x"
    data["csrf_token"] = token
    return data


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_page_and_form_is_in_the_visitors_language(app: Flask, lang: str) -> None:
    runner = app.test_cli_runner()
    from nguon.cli import main

    assert runner.invoke(main, ["demo", "load"]).exit_code == 0
    whole, starts = untranslated_msgids()
    args = page_args(app, app.test_client())
    urls = list(pages(app, args))
    assert len(urls) > 40
    failures: dict[str, list[str]] = {}
    for role in DEMO_USERS:
        client = app.test_client()
        sign_in(client, role, lang)
        for url in urls:
            response = client.get(url, follow_redirects=True)
            if "text/html" not in response.content_type:
                continue
            html = response.get_data(as_text=True)
            page = read(html)
            bad = problems_in(page.texts, lang, whole, starts)
            if bad:
                failures[f"{role} GET {url}"] = bad[:5]
            for form in page.forms:
                action = form["action"] or url
                if action.endswith("/logout"):
                    continue  # (a form with a file input is sent without the file)
                token = csrf_from(html) if "csrf_token" in html else ""
                variants = (
                    {"csrf_token": token},
                    nonsense(form["fields"], token, plausible=False),
                    nonsense(form["fields"], token, plausible=True),
                )
                for data in variants:
                    sent = client.post(action, data=data, follow_redirects=True)
                    if "text/html" not in sent.content_type:
                        continue
                    bad = problems_in(read(sent.get_data(as_text=True)).texts, lang, whole, starts)
                    if bad:
                        failures[f"{role} POST {action} from {url}"] = bad[:5]
    for where, texts in failures.items():
        print(where, texts)
    assert failures == {}
