"""Label pages: issue a run, see it with its codes, print it on a label stock (A4 decal
sheets or a thermal roll) after a preview of the first page, download its codes (CSV or
Excel), reprint chosen codes, void codes with a reason."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from nguon.auth import can_access_organisation, login_required
from nguon.db import db, paginate
from nguon.errors import DomainValidationError
from nguon.formatting import parse_decimal_text
from nguon.i18n import _
from nguon.inputs import is_digits
from registry.forms import load
from traceability import api, labels, tabular
from traceability.models import Label, LabelRun
from traceability.schemas import LabelRunSchema

bp = Blueprint("labels", __name__)
CODES_PAGE = 200


def _label_for_image(label_id: int) -> Label:
    label = db.session.get(Label, label_id) if label_id < 2**31 else None
    if label is None or not can_access_organisation(label.batch.producer_id):
        abort(404)
    return label


def _immutable(body: bytes | str, mimetype: str, tag: str) -> Response:
    """Label images never change for a given code: cache them for a year, with an ETag."""
    response = Response(body, mimetype=mimetype)
    response.set_etag(tag)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response.make_conditional(request)


def _module_px() -> int:
    raw = request.args.get("px", "8")
    if not is_digits(raw, 2):
        return -1  # refused by labels.png, which names the range
    return int(raw)


@bp.get("/labels/<int:label_id>.png")
@login_required
def label_png(label_id: int) -> Response:
    """The code as a PNG, ``px`` pixels per module (1–16: the cost grows with its square)."""
    label = _label_for_image(label_id)
    module_px = _module_px()
    uri = label.uri
    return _immutable(
        labels.png(uri, module_px=module_px), "image/png", labels.etag(f"{uri}png{module_px}")
    )


@bp.get("/labels/<int:label_id>.svg")
@login_required
def label_svg(label_id: int) -> Response:
    label = _label_for_image(label_id)
    uri = label.uri
    return _immutable(labels.svg(uri), "image/svg+xml", labels.etag(uri + "svg"))


def _pdf(run: LabelRun, items: list[labels.LabelText], layout: labels.SheetLayout) -> Response:
    response = Response(labels.sheet_pdf(items, layout), mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'inline; filename="labels-{run.batch.lot}-{run.id}.pdf"'
    )
    return response


@bp.get("/label-runs/<int:run_id>/sheet.pdf")
@login_required
def label_sheet(run_id: int) -> Response:
    """The run's valid codes on a label stock: ``preset`` (see the run page), or custom
    A4 ``rows`` × ``columns`` with margins and gaps in mm."""
    run = api.get_run(run_id)
    layout = labels.layout_from(request.args)
    return _pdf(run, labels.label_texts(run), layout)


@bp.get("/label-runs/<int:run_id>/preview.png")
@login_required
def label_preview(run_id: int) -> Response:
    """The first page of that PDF as an image, to check the stock before printing."""
    run = api.get_run(run_id)
    layout = labels.layout_from(request.args)
    items = labels.label_texts(run, _first_labels(run, layout.per_page))
    response = Response(labels.preview_png(items, layout), mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _first_labels(run: LabelRun, count: int) -> list[Label]:
    return list(
        db.session.scalars(
            select(Label)
            .where(Label.run_id == run.id, Label.voided_at.is_(None))
            .order_by(Label.id)
            .limit(count)
        )
    )


MAX_CHOSEN = 1000  # codes chosen in one go (a page shows 200)


def _chosen_serials() -> list[str]:
    chosen = request.form.getlist("serial")
    typed = request.form.get("serials", "").replace(",", " ").split()
    serials = [s.strip() for s in [*chosen, *typed] if s.strip()]
    if len(serials) > MAX_CHOSEN:
        raise DomainValidationError({"serials": _("at most %(n)d codes at a time", n=MAX_CHOSEN)})
    return serials


@bp.post("/label-runs/<int:run_id>/reprint")
@login_required
def reprint(run_id: int) -> Any:
    """A PDF of the chosen codes (valid ones only) on the chosen stock."""
    run = api.get_run(run_id)
    serials = _chosen_serials()
    query = select(Label).where(Label.run_id == run.id, Label.voided_at.is_(None))
    if serials:
        query = query.where(Label.serial.in_(serials))
    chosen = list(db.session.scalars(query.order_by(Label.id)))
    if not chosen:
        flash(_("None of the chosen codes is valid: nothing to print."), "error")
        return redirect(url_for(".run", run_id=run.id)), 303
    return _pdf(run, labels.label_texts(run, chosen), labels.layout_from(request.form))


def _code_rows(run: LabelRun) -> tuple[list[tuple[str, str]], Any]:
    columns = [
        ("serial", _("Serial")),
        ("uri", _("Code (URI)")),
        ("state", _("State")),
        ("scans", _("Scans")),
        ("void_reason", _("Reason voided")),
    ]

    def rows() -> Any:
        for label in labels.run_labels(run):
            state = (
                _("voided")
                if label.voided_at
                else (_("flagged") if label.flagged_at else _("valid"))
            )
            yield [label.serial or "", label.uri, state, label.scan_count, label.void_reason or ""]

    return columns, rows()


@bp.get("/label-runs/<int:run_id>/codes.<any(csv, xlsx):fmt>")
@login_required
def run_codes_file(run_id: int, fmt: str) -> Response:
    """The run's codes as a spreadsheet (for a print shop or the cooperative's own list)."""
    run = api.get_run(run_id)
    columns, rows = _code_rows(run)
    name = f"codes-{run.batch.lot}-{run.id}.{fmt}"
    if fmt == "xlsx":
        body: bytes | str = tabular.xlsx(columns, rows, _("Codes"))
        mime = tabular.XLSX_MIME
    else:
        body, mime = tabular.csv_text(columns, rows), "text/csv; charset=utf-8"
    response = Response(body, mimetype=mime)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/label-runs/<int:run_id>")
@login_required
def run(run_id: int) -> str:
    """A run: its state, print form with a preview, its codes to choose, reprint or void."""
    item = api.get_run(run_id)
    page = max(1, min(request.args.get("page", 1, type=int), 10**6))
    codes, total, pages = paginate(
        select(Label).where(Label.run_id == item.id).order_by(Label.id), page, CODES_PAGE
    )
    voided = db.session.scalar(
        select(func.count(Label.id)).where(Label.run_id == item.id, Label.voided_at.isnot(None))
    )
    preset = request.args.get("preset") or ("roll-50x30" if item.kind == "lot" else "a4-40")
    return render_template(
        "traceability/label_run.html",
        run=item,
        batch=item.batch,
        codes=codes,
        total=total,
        page=page,
        pages=pages,
        voided=voided,
        presets=labels.PRESETS,
        preset=preset if preset in labels.PRESETS else "a4-40",
    )


@bp.post("/batches/<int:batch_id>/label-runs")
@login_required
def issue_labels_page(batch_id: int) -> Any:
    batch = api.get_batch(batch_id)
    form = {k: v for k, v in request.form.items() if v and k != "csrf_token"}
    if "item_quantity" in form:
        form["item_quantity"] = parse_decimal_text(form["item_quantity"]) or form["item_quantity"]
    try:
        data = load(LabelRunSchema(), form)
        issued = labels.issue_run(
            batch, data["kind"], data["count"], data["item_quantity"], created_by_id=current_user.id
        )
    except DomainValidationError as exc:
        flash("; ".join(str(m) for ms in exc.errors.values() for m in ms), "error")
        return redirect(url_for("traceability.batch", batch_id=batch.id) + "#labels"), 303
    flash(_("Issued %(n)d code(s).", n=issued.count), "success")
    return redirect(url_for(".run", run_id=issued.id))


@bp.post("/label-runs/<int:run_id>/void")
@login_required
def void_run_page(run_id: int) -> Any:
    item = api.get_run(run_id)
    whole = request.form.get("whole") == "1"
    try:
        serials = _chosen_serials()
        if not serials and not whole:
            raise DomainValidationError(
                {"serials": _("Choose the codes to void, or void the whole run.")}
            )
        count = labels.void_labels(item, request.form.get("reason", ""), None if whole else serials)
    except DomainValidationError as exc:
        flash("; ".join(str(m) for ms in exc.errors.values() for m in ms), "error")
        return redirect(url_for(".run", run_id=item.id)), 303
    flash(_("Voided %(n)d code(s).", n=count), "success")
    return redirect(url_for(".run", run_id=item.id))
