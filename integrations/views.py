"""The officers' sync page: what is waiting, what failed and why, retry and resend."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from integrations import outbox
from integrations.models import OutboxRow, OutboxState
from integrations.worker import resend, retry
from nguon.auth import staff_required
from nguon.db import db
from nguon.i18n import _

bp = Blueprint("integrations", __name__, url_prefix="/integrations")


@bp.record_once
def _register_helpers(state: Any) -> None:
    app: Flask = state.app
    app.jinja_env.globals["sync_state"] = sync_state


def sync_state(kind: str, record_id: Any) -> OutboxRow | None:
    """The latest outbox row of a record (shown on its page), or None."""
    return db.session.scalar(
        select(OutboxRow)
        .where(OutboxRow.kind == kind, OutboxRow.record_id == str(record_id))
        .order_by(OutboxRow.id.desc())
        .limit(1)
    )


@bp.get("/sync")
@staff_required
def sync_page() -> str:
    counts, age, problems = outbox.summary(200)
    failing = db.session.scalars(
        select(OutboxRow)
        .where(OutboxRow.state == OutboxState.PENDING, OutboxRow.attempts > 0)
        .order_by(OutboxRow.attempts.desc())
        .limit(50)
    ).all()
    return render_template(
        "integrations/sync.html",
        counts=counts,
        states=[s.value for s in OutboxState],
        oldest_age=age,
        problems=problems,
        failing=failing,
    )


@bp.post("/sync/<int:row_id>/<any(retry, resend):action>")
@staff_required
def act(row_id: int, action: str) -> Any:
    row = db.session.get(OutboxRow, row_id)
    if row is None:
        abort(404)
    if action == "retry":
        if row.state != OutboxState.PARKED:
            abort(409, description="only a parked row can be retried")
        retry(row)
        flash(_("Row %(id)d will be sent again.", id=row.id), "success")
    else:
        resend(row)
        flash(_("A new row was queued with the record as it is now."), "success")
    return redirect(
        url_for(".sync_page", _anchor=f"row-{row.id}")
        if request.args.get("back") is None
        else request.args["back"]
    )
