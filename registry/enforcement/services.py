"""Filing a report: checked input, cleaned photos, the code linked to what it belongs to.

Registry does not know about labels and batches; traceability registers a resolver
(:func:`register_code_resolver`) that turns a scanned code into its label, batch and assets.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask_babel
from flask import current_app
from sqlalchemy import func, select

from nguon.auth import hash_secret
from nguon.db import db, utcnow
from nguon.errors import DomainValidationError
from nguon.formatting import format_decimal
from nguon.i18n import _, label, records_language
from nguon.inputs import is_digits
from nguon.text import nfc
from registry import photos
from registry.enforcement import fines
from registry.enforcement.models import (
    CATEGORIES,
    Case,
    CaseAttachment,
    CaseState,
    CaseTransition,
    FineBand,
    Report,
    ReportPhoto,
)
from registry.models import AdminUnit, IPAsset, Organisation

MAX_PHOTOS = 5
FORM_ROOM = 1024 * 1024  # the report's text fields and multipart framing
CodeResolver = Callable[[str], dict[str, Any] | None]
_resolvers: list[CodeResolver] = []


def register_code_resolver(resolver: CodeResolver) -> None:
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def resolve_code(code: str) -> dict[str, Any] | None:
    """{"label_id", "batch_id", "asset_ids"} for a code issued here, else None."""
    for resolver in _resolvers:
        found = resolver(code)
        if found:
            return found
    return None


def photo_folder() -> Path:
    return Path(current_app.instance_path) / "report-photos"


@dataclass(frozen=True)
class Filed:
    report: Report
    secret: str  # shown once: the reporter's link to follow the report


def photo_limit() -> int:
    """Bytes one photo may have: 10 MiB, or less when the request body limit
    (``NGUON_MAX_CONTENT_LENGTH``) could not carry five of them and the form's text."""
    body = current_app.config["MAX_CONTENT_LENGTH"]
    return max(1024, min(photos.MAX_BYTES, (body - FORM_ROOM) // MAX_PHOTOS))


def file_report(data: Mapping[str, Any], uploads: list[tuple[str, bytes]]) -> Filed:
    """Check and store a report; every photo is cleaned (metadata removed) and searched
    for a QR code. Raises DomainValidationError naming each bad field (and each refused
    photo by its file name), in the reporter's language; stores nothing then."""
    problems: dict[str, str | list[str]] = {}
    category = data.get("category", "")
    if category not in CATEGORIES:
        problems["category"] = _("choose one of the listed kinds of problem")
    description = nfc(data.get("description", ""))
    if len(description) < 10:
        problems["description"] = _("describe what you saw in at least 10 characters")
    if len(description) > 5000:
        problems["description"] = _("at most 5,000 characters")
    unit = data.get("admin_unit_code") or None
    if unit and db.session.get(AdminUnit, unit) is None:
        problems["admin_unit_code"] = _("choose a place from the list")
    asset_id = data.get("asset_id") or None
    if asset_id is not None:
        asset_id = int(asset_id) if is_digits(str(asset_id), 9) else -1
        if not 0 < asset_id < 2**31 or db.session.get(IPAsset, asset_id) is None:
            problems["asset_id"] = _("choose a mark or GI from the list")
    email = nfc(data.get("contact_email", ""))
    if email and "@" not in email:
        problems["contact_email"] = _("must be an email address")
    if (email or data.get("contact_phone")) and not data.get("contact_consent"):
        problems["contact_consent"] = _("tick the consent box to leave your contact details")
    cleaned: list[photos.CleanPhoto] = []
    if len(uploads) > MAX_PHOTOS:
        problems["photos"] = _(
            "at most %(count)d photos; you chose %(chosen)d", count=MAX_PHOTOS, chosen=len(uploads)
        )
    else:
        refused: list[str] = []
        limit = photo_limit()
        for name, content in uploads:
            try:
                cleaned.append(photos.clean_photo(content, max_bytes=limit))
            except DomainValidationError as exc:
                shown = nfc(Path(name.replace("\\", "/")).name)[:100] or "?"
                refused += [f"“{shown}”: {message}" for message in exc.errors["photos"]]
        if refused:
            problems["photos"] = refused
    if problems:
        raise DomainValidationError(problems)
    code = nfc(data.get("code", "")) or None
    found_codes = [c for photo in cleaned for c in photo.codes]
    link = None
    for candidate in ([code] if code else []) + found_codes:
        link = resolve_code(candidate)
        if link:
            code = candidate
            break
    if code is None and found_codes:
        code = found_codes[0]
    secret = secrets.token_urlsafe(24)
    report = Report(
        receipt=f"tmp-{secrets.token_hex(6)}",
        secret_hash=hash_secret(secret),
        category=category,
        description=description,
        admin_unit_code=unit,
        place=nfc(data.get("place", "")),
        shop_name=nfc(data.get("shop_name", "")),
        shop_address=nfc(data.get("shop_address", "")),
        asset_id=asset_id or ((link or {}).get("asset_ids") or [None])[0],
        product=nfc(data.get("product", "")),
        code=code,
        linked_label_id=(link or {}).get("label_id"),
        linked_batch_id=(link or {}).get("batch_id"),
        contact_name=nfc(data.get("contact_name", "")),
        contact_phone=nfc(data.get("contact_phone", "")),
        contact_email=email,
        contact_consent=bool(data.get("contact_consent")),
    )
    for photo in cleaned:
        photos.store(photo, photo_folder())
        report.photos.append(
            ReportPhoto(
                sha256=photo.sha256,
                media_type=photo.media_type,
                width=photo.width,
                height=photo.height,
                codes=photo.codes,
            )
        )
    with records_language():
        title = f"{label('report_category', category)}: {description[:120]}"
    report.case = open_case(
        title,
        "report",
        asset_id=report.asset_id,
        code=code,
        linked_label_id=report.linked_label_id,
        linked_batch_id=report.linked_batch_id,
    )
    db.session.add(report)
    db.session.flush()
    # The receipt follows the row's id: unique without counting (no race between filings).
    report.receipt = f"BC{utcnow().year}-{report.id:06d}"
    db.session.flush()
    return Filed(report, secret)


def report_for(receipt: str, secret: str) -> Report | None:
    """The report this receipt and secret open, or None (no hint which part was wrong)."""
    report = db.session.scalar(select(Report).where(Report.receipt == receipt))
    if report is None or not hmac.compare_digest(report.secret_hash, hash_secret(secret)):
        return None
    return report


# --- cases -------------------------------------------------------------------------------

FLOW: dict[str, set[str]] = {
    CaseState.RECEIVED: {CaseState.ACCEPTED, CaseState.TRANSFERRED, CaseState.REJECTED},
    CaseState.ACCEPTED: {CaseState.INVESTIGATING},
    CaseState.INVESTIGATING: {
        CaseState.EXPERT_ASSESSMENT,
        CaseState.VIOLATION_RECORDED,
        CaseState.NO_VIOLATION,
        CaseState.REFERRED_TO_POLICE,
    },
    CaseState.EXPERT_ASSESSMENT: {
        CaseState.VIOLATION_RECORDED,
        CaseState.NO_VIOLATION,
        CaseState.REFERRED_TO_POLICE,
    },
    CaseState.VIOLATION_RECORDED: {CaseState.SANCTION_DECIDED, CaseState.REFERRED_TO_POLICE},
    CaseState.SANCTION_DECIDED: {CaseState.ENFORCED},
    CaseState.ENFORCED: {CaseState.CLOSED},
    CaseState.NO_VIOLATION: {CaseState.CLOSED},
    CaseState.REJECTED: {CaseState.CLOSED},
    CaseState.TRANSFERRED: {CaseState.CLOSED},
    CaseState.REFERRED_TO_POLICE: {CaseState.CLOSED},
    CaseState.CLOSED: set(),
}
# What a case must hold before it may enter a state.
REQUIRED: dict[str, tuple[str, ...]] = {
    CaseState.ACCEPTED: ("deadline",),
    CaseState.INVESTIGATING: ("inspection_decision_number", "inspection_decision_date"),
    CaseState.VIOLATION_RECORDED: ("infringer", "violation_record"),
    CaseState.SANCTION_DECIDED: ("sanction_decision_number", "legal_basis", "fine_vnd", "measures"),
    CaseState.ENFORCED: ("payment",),
}
CASE_FIELDS = (
    "deadline",
    "assignee_id",
    "inspection_decision_number",
    "inspection_decision_date",
    "infringer",
    "violation_record",
    "goods",
    "goods_value_vnd",
    "sanction_decision_number",
    "legal_basis",
    "fine_vnd",
    "measures",
    "payment",
    "public_note",
    "fine_band_id",
    "organisation_id",
    "violation_article",
    "violation_date",
    "infringer_kind",
)
# What an officer fills in when moving a case to each state (REQUIRED first): the case page
# shows only these for the transition chosen.
FIELDS_FOR: dict[str, tuple[str, ...]] = {
    CaseState.ACCEPTED: ("deadline", "assignee_id"),
    CaseState.TRANSFERRED: ("public_note",),
    CaseState.REJECTED: ("public_note",),
    CaseState.INVESTIGATING: (
        "inspection_decision_number",
        "inspection_decision_date",
        "assignee_id",
        "deadline",
    ),
    CaseState.EXPERT_ASSESSMENT: ("deadline",),
    CaseState.VIOLATION_RECORDED: (
        "infringer",
        "violation_record",
        "infringer_kind",
        "organisation_id",
        "violation_article",
        "violation_date",
        "goods",
        "goods_value_vnd",
    ),
    CaseState.NO_VIOLATION: ("public_note",),
    CaseState.REFERRED_TO_POLICE: ("public_note",),
    CaseState.SANCTION_DECIDED: (
        "sanction_decision_number",
        "legal_basis",
        "fine_vnd",
        "measures",
        "fine_band_id",
        "violation_article",
        "violation_date",
        "infringer_kind",
        "goods_value_vnd",
        "public_note",
    ),
    CaseState.ENFORCED: ("payment", "public_note"),
    CaseState.CLOSED: ("public_note",),
}


def open_case(title: str, source: str, **fields: Any) -> Case:
    case = Case(
        number=f"tmp-{secrets.token_hex(6)}", title=nfc(title)[:300], source=source, **fields
    )
    db.session.add(case)
    db.session.flush()
    case.number = f"VV{utcnow().year}-{case.id:06d}"
    db.session.flush()
    return case


def move_case(
    case: Case, to_state: str, reason: str, fields: Mapping[str, Any], actor: tuple[int | None, str]
) -> Case:
    """Move ``case`` to ``to_state`` (the legal flow in FLOW), recording who, when and why.

    ``fields`` may fill what the new state needs (REQUIRED); DomainValidationError names
    every missing field and an illegal move; nothing changes then."""
    allowed = FLOW.get(case.state, set())
    if to_state not in allowed:
        options = ", ".join(str(label("case_state", s)) for s in sorted(allowed)) or "—"
        raise DomainValidationError(
            {
                "state": _(
                    "cannot go from “%(state)s” to “%(to_state)s” (allowed: %(options)s)",
                    state=label("case_state", case.state),
                    to_state=label("case_state", to_state),
                    options=options,
                )
            }
        )
    problems: dict[str, str] = {}
    if not nfc(reason or ""):
        problems["reason"] = _("say why (it is recorded with the change)")
    values = {
        k: (nfc(v) if isinstance(v, str) else v) for k, v in fields.items() if k in CASE_FIELDS
    }
    for name in REQUIRED.get(to_state, ()):
        value = values.get(name, getattr(case, name))
        if value in (None, "") or (
            name == "fine_vnd" and (not isinstance(value, int) or value <= 0)
        ):
            problems[name] = _(
                "is required to move the case to “%(to_state)s”",
                to_state=label("case_state", to_state),
            )
    org_id = values.get("organisation_id")
    if org_id is not None and (
        not 0 < org_id < 2**31 or db.session.get(Organisation, org_id) is None
    ):
        problems["organisation_id"] = _("no such organisation in the registry")
    article = values.get("violation_article")
    if article is not None and not re.fullmatch(r"\d{1,3}[a-z]?", article):
        problems["violation_article"] = _("the article's number, e.g. 12")
    kind = values.get("infringer_kind")
    if kind is not None and kind not in fines.INFRINGER_KINDS:
        problems["infringer_kind"] = _(
            "must be one of %(value)s", value=", ".join(fines.INFRINGER_KINDS)
        )
    band_id = values.get("fine_band_id", case.fine_band_id)
    fine = values.get("fine_vnd", case.fine_vnd)
    if band_id is not None and "fine_vnd" not in problems and "infringer_kind" not in problems:
        on = values.get("violation_date") or case_date(case)
        problems.update(
            _band_problems(band_id, fine, on, values.get("infringer_kind", case.infringer_kind))
        )
    if problems:
        raise DomainValidationError(problems)
    for name, value in values.items():
        setattr(case, name, value)
    _record_move(case, to_state, nfc(reason), actor)
    db.session.flush()
    return case


def _record_move(case: Case, to_state: str, reason: str, actor: tuple[int | None, str]) -> None:
    """Put ``case`` in ``to_state`` with its history entry (who, when, why); a closing
    case gets its closing date."""
    case.transitions.append(
        CaseTransition(
            from_state=case.state,
            to_state=to_state,
            actor_id=actor[0],
            actor=actor[1],
            reason=reason,
        )
    )
    case.state = to_state
    if to_state == CaseState.CLOSED:
        case.closed_on = utcnow().date()


def band_in_force(band: FineBand, on: Any) -> bool:
    return fines.in_force(band, on)


def case_date(case: Case) -> Any:
    """The date a case is judged by: when the act was committed, else when the case opened."""
    return case.violation_date or case.created_at.date()


def fine_proposal(case: Case) -> fines.Proposal | None:
    """The band proposed for the case from its violation, goods' value and date, or None
    while the violation is not recorded yet."""
    if not case.violation_article:
        return None
    return fines.propose(
        case.violation_article, case.goods_value_vnd, case_date(case), case.infringer_kind
    )


def _band_problems(band_id: int, fine: Any, on: Any, infringer_kind: str | None) -> dict[str, str]:
    """The chosen band must be the one in force on the case's date, and the fine inside it
    (an organisation's range is twice an individual's, within its ceiling)."""
    band = db.session.get(FineBand, band_id) if 0 < band_id < 2**31 else None
    if band is None:
        return {"fine_band_id": _("no such fine band")}
    if not band_in_force(band, on):
        span = _(
            "%(start)s – %(end)s",
            start=flask_babel.format_date(band.effective_from),
            end=flask_babel.format_date(band.effective_to) if band.effective_to else _("now"),
        )
        return {
            "fine_band_id": _(
                "%(band)s was in force %(span)s, not on the case's date %(day)s",
                band=f"{band.decree} {band.article}",
                span=span,
                day=flask_babel.format_date(on),
            )
        }
    low, high = fines.amounts(band, infringer_kind)
    if isinstance(fine, int) and not low <= fine <= high:
        where = " ".join(part for part in (band.decree, band.article, band.clause) if part)
        values = {"low": format_decimal(low), "high": format_decimal(high), "band": where}
        if infringer_kind == "organisation":
            message = _(
                "must be between %(low)s and %(high)s VND for an organisation (%(band)s)",
                **values,
            )
        else:
            message = _("must be between %(low)s and %(high)s VND (%(band)s)", **values)
        return {"fine_vnd": message}
    return {}


def attach_to_case(
    case: Case, title: str, filename: str, content: bytes, actor: str
) -> CaseAttachment:
    """Keep a file on a case: PDF, PNG, JPEG or WebP by content, at most 10 MiB."""
    from registry.services import Problems, check_file, keep_file

    problems = Problems()
    sniffed = check_file(content, problems)
    problems.raise_if_any()
    assert sniffed is not None  # noqa: S101 - check_file raised otherwise
    name = Path(filename).name[:255] or f"attachment.{sniffed[1]}"
    attachment = CaseAttachment(
        title=nfc(title.strip())[:300] or name,
        filename=name,
        media_type=sniffed[0],
        size=len(content),
        sha256=keep_file(content),
        actor=actor,
    )
    case.attachments.append(attachment)
    db.session.flush()
    return attachment


def save_fine_band(data: Mapping[str, Any]) -> FineBand:
    """A band entered by an officer from the official text (audited like every band)."""
    problems = {}
    for name in ("decree", "article", "description", "min_vnd", "max_vnd", "effective_from"):
        if data.get(name) in (None, ""):
            problems[name] = _("is required")
    if not problems:
        if data["min_vnd"] < 0 or data["max_vnd"] < data["min_vnd"]:
            problems["max_vnd"] = _("must be at least the minimum (and both 0 or more)")
        if data["max_vnd"] > fines.CEILING_VND["individual"]:
            problems["max_vnd"] = _("an individual's fine is at most 250,000,000 VND (Art. 2(1))")
        if data.get("effective_to") and data["effective_to"] < data["effective_from"]:
            problems["effective_to"] = _("cannot be before effective_from")
        above, up_to = data.get("goods_value_above_vnd"), data.get("goods_value_up_to_vnd")
        if above is not None and up_to is not None and up_to <= above:
            problems["goods_value_up_to_vnd"] = _("must be more than the lower bound")
    if problems:
        raise DomainValidationError(problems)
    band = FineBand(
        origin="officer", **{k: (nfc(v) if isinstance(v, str) else v) for k, v in data.items()}
    )
    db.session.add(band)
    db.session.flush()
    return band


def bands_in_force(on: Any) -> list[FineBand]:
    """The bands a case dated ``on`` may be sanctioned under (what :func:`band_in_force`
    says of one band, asked of all in one query)."""
    return list(
        db.session.scalars(
            select(FineBand)
            .where(
                FineBand.effective_from <= on,
                (FineBand.effective_to.is_(None)) | (FineBand.effective_to >= on),
            )
            .order_by(FineBand.decree, FineBand.article)
        )
    )


def open_case_from_alarm(
    *,
    code: str,
    rule: str,
    detail: str,
    scan_ids: list[int],
    label_id: int,
    batch_id: int,
    asset_id: int | None,
) -> Case:
    """A clone alarm opens a case by itself, the scans attached as evidence."""
    return open_case(
        _("Clone alarm: %(detail)s", detail=detail),
        "clone_alarm",
        code=code,
        linked_label_id=label_id,
        linked_batch_id=batch_id,
        asset_id=asset_id,
        evidence=[{"kind": "scans", "rule": rule, "scan_ids": scan_ids, "detail": detail}],
    )


def is_overdue(case: Case, today: Any = None) -> bool:
    today = today or utcnow().date()
    return case.deadline is not None and case.state != CaseState.CLOSED and case.deadline < today


def merge_cases(duplicate: Case, into: Case, actor: tuple[int | None, str]) -> Case:
    """Merge a duplicate case into another: its reports move over, it is closed, and both
    histories say so."""
    if duplicate.id == into.id:
        raise DomainValidationError({"into": _("a case cannot be merged into itself")})
    if into.state == CaseState.CLOSED:
        raise DomainValidationError({"into": _("%(number)s is closed", number=into.number)})
    for report in list(duplicate.reports):
        report.case = into
    # A merge closes the duplicate whatever its state (outside FLOW, on purpose).
    # The history is a record: written once, in the words of the officer's language.
    _record_move(duplicate, CaseState.CLOSED, _("merged into %(case)s", case=into.number), actor)
    _record_move(into, into.state, _("%(case)s merged in", case=duplicate.number), actor)
    db.session.flush()
    return into


def statistics(today: Any = None) -> dict[str, Any]:
    """Reports and cases by category, asset, province and month; time to close; open and
    overdue counts. Counted by the database; only timestamps come back row by row."""
    from collections import Counter

    today = today or utcnow().date()
    session = db.session

    def grouped(column: Any, *where: Any) -> Counter[Any]:
        return Counter(
            dict(session.execute(select(column, func.count()).where(*where).group_by(column)).all())
        )

    def by_month(column: Any) -> Counter[str]:
        # In Python: the month of a UTC timestamp, the same on both databases.
        return Counter(at.strftime("%Y-%m") for at in session.scalars(select(column)))

    def count(*where: Any) -> int:
        return session.scalar(select(func.count()).select_from(Case).where(*where)) or 0

    provinces = grouped(Report.admin_unit_code)
    if None in provinces:
        provinces["—"] = provinces.pop(None)
    days = sorted(
        (closed - created.date()).days
        for created, closed in session.execute(
            select(Case.created_at, Case.closed_on).where(Case.closed_on.is_not(None))
        )
    )
    return {
        "reports_by_category": grouped(Report.category),
        "reports_by_month": by_month(Report.created_at),
        "reports_by_province": provinces,
        "cases_by_state": grouped(Case.state),
        "cases_by_asset": grouped(Case.asset_id, Case.asset_id.is_not(None)),
        "cases_by_month": by_month(Case.created_at),
        "open": count(Case.state != CaseState.CLOSED),
        "overdue": count(
            Case.deadline.is_not(None), Case.state != CaseState.CLOSED, Case.deadline < today
        ),
        "median_days_to_close": days[len(days) // 2] if days else None,
    }
