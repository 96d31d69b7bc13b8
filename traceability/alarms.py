"""Handling clone alarms: each one leads to its case, batch and code, and an officer
dismisses it (with a reason), voids the code, or merges its case into an existing one.

Every action records who and when on the alarm, and moves its case with the same reason,
so the case history and the alarm tell the same story.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Select, select

from nguon.db import db, utcnow
from nguon.errors import DomainValidationError
from nguon.i18n import _, label
from nguon.text import nfc
from registry.enforcement import services as cases
from registry.enforcement.models import Case, CaseState
from traceability import labels
from traceability.models import CloneAlarm, Label, LabelRun


class AlarmStatus(enum.StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"
    VOIDED = "voided"
    MERGED = "merged"


STATUSES = tuple(s.value for s in AlarmStatus)
Actor = tuple[int | None, str]


def alarm_query(
    status: str | None = None, since: dt.date | None = None, until: dt.date | None = None
) -> Select[Any]:
    """Alarms newest first, by state and by the day they were raised (inclusive)."""
    query = select(CloneAlarm)
    if status in STATUSES:
        query = query.where(CloneAlarm.status == status)
    if since is not None:
        query = query.where(CloneAlarm.created_at >= dt.datetime.combine(since, dt.time(), dt.UTC))
    if until is not None:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
        query = query.where(CloneAlarm.created_at < end)
    return query.order_by(CloneAlarm.id.desc())


def alarms_of_case(case_id: int) -> list[CloneAlarm]:
    return list(
        db.session.scalars(
            select(CloneAlarm).where(CloneAlarm.case_id == case_id).order_by(CloneAlarm.id)
        )
    )


def _reason(reason: str) -> str:
    text = nfc((reason or "").strip())
    if not text:
        raise DomainValidationError(
            {"reason": _("say why (it is kept with the alarm and its case)")}
        )
    return text


def _open(alarm: CloneAlarm) -> None:
    if alarm.status != AlarmStatus.OPEN:
        raise DomainValidationError(
            {
                "status": _(
                    "the alarm is already %(status)s", status=label("alarm_status", alarm.status)
                )
            }
        )


def _handled(alarm: CloneAlarm, status: AlarmStatus, reason: str, actor: Actor) -> None:
    alarm.status = status
    alarm.handled_at = utcnow()
    alarm.handled_by = actor[1]
    alarm.handled_reason = reason


def _case(alarm: CloneAlarm) -> Case | None:
    return db.session.get(Case, alarm.case_id) if alarm.case_id else None


def dismiss(alarm: CloneAlarm, reason: str, actor: Actor) -> CloneAlarm:
    """A false alarm (e.g. a shop scanning its own stock): the alarm is dismissed and its
    case, if nobody has worked on it yet, is rejected with the same reason."""
    _open(alarm)
    text = _reason(reason)
    case = _case(alarm)
    if case is not None and case.state == CaseState.RECEIVED:
        cases.move_case(case, CaseState.REJECTED, f"alarm dismissed: {text}", {}, actor)
    _handled(alarm, AlarmStatus.DISMISSED, text, actor)
    db.session.flush()
    return alarm


def void_code(alarm: CloneAlarm, reason: str, actor: Actor) -> int:
    """The code is copied: void it (consumers scanning it are told so). Its case stays open
    for the investigation; returns how many codes were voided."""
    _open(alarm)
    text = _reason(reason)
    label = db.session.get(Label, alarm.label_id)
    run = db.session.get(LabelRun, label.run_id)
    count = labels.void_labels(run, text, [label.serial] if label.serial else None)
    case = _case(alarm)
    if case is not None:
        case.evidence = [*case.evidence, {"kind": "code_voided", "detail": text, "by": actor[1]}]
    _handled(alarm, AlarmStatus.VOIDED, text, actor)
    db.session.flush()
    return count


def merge_into(alarm: CloneAlarm, number: str, actor: Actor) -> Case:
    """The alarm belongs to an investigation already open: its case is merged into case
    ``number`` (the duplicate closed, both histories saying so)."""
    _open(alarm)
    into = db.session.scalar(select(Case).where(Case.number == nfc((number or "").strip())))
    if into is None:
        raise DomainValidationError({"into": _("no case with that number")})
    case = _case(alarm)
    if case is not None and case.id != into.id:
        if case.state == CaseState.CLOSED:
            raise DomainValidationError(
                {"into": _("the alarm's case %(number)s is closed", number=case.number)}
            )
        cases.merge_cases(case, into, actor)
    alarm.case_id = into.id
    _handled(alarm, AlarmStatus.MERGED, _("merged into %(case)s", case=into.number), actor)
    db.session.flush()
    return into
