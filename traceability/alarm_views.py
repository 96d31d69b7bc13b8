"""Officers' pages for clone alarms and for one issued code with its scans."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from nguon.auth import staff_required
from nguon.db import db, paginate
from nguon.errors import DomainValidationError
from nguon.i18n import _
from registry.enforcement.models import Case
from registry.enforcement.views import register_case_alarms
from traceability import alarms as alarm_services
from traceability import audit_words
from traceability.models import Batch, CloneAlarm, Label, Scan

bp = Blueprint("alarms", __name__, url_prefix="/traceability")
audit_words.register()
PAGE_SIZE = 50


@bp.record_once
def _tell_the_case_page(_state: Any) -> None:
    register_case_alarms(alarm_services.alarms_of_case)


def _day(name: str) -> dt.date | None:
    raw = request.args.get(name, "")
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@bp.get("/alarms")
@staff_required
def alarms() -> str:
    """Clone alarms, filtered by state and day, each leading to its case, batch and code."""
    status = request.args.get("status") or None
    since, until = _day("since"), _day("until")
    page = max(1, min(request.args.get("page", 1, type=int), 10**6))
    items, total, pages = paginate(
        alarm_services.alarm_query(status, since, until), page, PAGE_SIZE
    )
    cases = {
        c.id: c
        for c in db.session.scalars(
            select(Case).where(Case.id.in_({a.case_id for a in items if a.case_id}))
        )
    }
    return render_template(
        "traceability/alarms.html",
        alarms=items,
        cases=cases,
        total=total,
        page=page,
        pages=pages,
        statuses=alarm_services.STATUSES,
        status=status,
        since=since,
        until=until,
    )


@bp.post("/alarms/<int:alarm_id>/<any(dismiss, void, merge):action>")
@staff_required
def act(alarm_id: int, action: str) -> Any:
    alarm = db.session.get(CloneAlarm, alarm_id) if alarm_id < 2**31 else None
    if alarm is None:
        abort(404)
    actor = (current_user.id, current_user.email)
    try:
        if action == "dismiss":
            alarm_services.dismiss(alarm, request.form.get("reason", ""), actor)
            flash(_("Alarm #%(id)d dismissed.", id=alarm.id), "success")
        elif action == "void":
            alarm_services.void_code(alarm, request.form.get("reason", ""), actor)
            flash(_("The code of alarm #%(id)d is voided.", id=alarm.id), "success")
        else:
            into = alarm_services.merge_into(alarm, request.form.get("into", ""), actor)
            flash(
                _("Alarm #%(id)d merged into %(case)s.", id=alarm.id, case=into.number), "success"
            )
    except DomainValidationError as exc:
        flash(exc.for_people(), "error")
        return redirect(url_for(".alarms", _anchor=f"alarm-{alarm.id}")), 303
    return redirect(url_for(".alarms", _anchor=f"alarm-{alarm.id}")), 303


@bp.get("/codes/<int:label_id>")
@staff_required
def code_page(label_id: int) -> str:
    """One issued code: its batch, its state, its scans (newest first), alarms and cases."""
    label = db.session.get(Label, label_id) if label_id < 2**31 else None
    if label is None:
        abort(404)
    scans = db.session.scalars(
        select(Scan).where(Scan.label_id == label.id).order_by(Scan.id.desc()).limit(200)
    ).all()
    return render_template(
        "traceability/code.html",
        code=label,
        batch=db.session.get(Batch, label.batch_id),
        scans=scans,
        alarms=db.session.scalars(
            select(CloneAlarm).where(CloneAlarm.label_id == label.id).order_by(CloneAlarm.id)
        ).all(),
        cases=db.session.scalars(
            select(Case).where(Case.linked_label_id == label.id).order_by(Case.id)
        ).all(),
    )
