"""The officers' sync page: what is waiting, what failed and why, retry and resend."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for
from flask_babel import format_decimal
from sqlalchemy import select

from integrations import outbox
from integrations.models import OutboxRow, OutboxState
from integrations.worker import resend, retry, retry_parked
from nguon.auth import staff_required
from nguon.db import db
from nguon.i18n import LABELS, _, _l

bp = Blueprint("integrations", __name__, url_prefix="/integrations")


# How the sync page names stored values (through the catalogue).
SYNC_LABELS = {
    "outbox_kind": {
        "organisation": _l("organisation"),
        "location": _l("location"),
        "product": _l("product"),
        "trace_record": _l("trace record of batch"),
        "epcis_event": _l("EPCIS event"),
    },
    "sync_target": {
        "portal": _l("National Traceability Portal"),
        "epcis": _l("EPCIS repository"),
    },
}


@bp.record_once
def _register_helpers(state: Any) -> None:
    app: Flask = state.app
    app.jinja_env.globals["sync_state"] = sync_state
    for kind, labels in SYNC_LABELS.items():
        LABELS.setdefault(kind, {}).update(labels)


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
    view = outbox.overview(200)
    return render_template(
        "integrations/sync.html",
        view=view,
        rate=format_decimal(round(view.per_minute, 1)),
        states=[s.value for s in OutboxState],
        waiting_by_target=outbox.waiting_by_target(),
    )


@bp.post("/sync/retry-parked")
@staff_required
def retry_all() -> Any:
    count = retry_parked()
    flash(_("%(count)d parked row(s) will be sent again.", count=count), "success")
    return redirect(url_for(".sync_page"))


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
    return redirect(url_for(".sync_page", _anchor=f"row-{row.id}"))
