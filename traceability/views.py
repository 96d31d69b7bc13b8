"""Cooperative pages: products, batches with their claims' evidence, lineage, events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from nguon.auth import can_access_organisation, is_staff, login_required
from nguon.db import db, paginate
from nguon.errors import DomainValidationError
from nguon.i18n import _, _l
from registry.forms import FormField, load, parse_form
from registry.models import IPAsset, OcopProduct, Organisation, ProductionArea
from registry.views import form_page
from traceability import api, epcis, labels, ownership, services
from traceability.models import Batch, Label, Product, Scan
from traceability.schemas import (
    UNITS,
    BatchSchema,
    GuidedEventSchema,
    LabelRunSchema,
    ProductSchema,
)

bp = Blueprint("traceability", __name__, url_prefix="/traceability")


def _org_scope(model: Any) -> Any:
    return api.own_scope(select(model), model.producer_id)


def _producer_choices() -> list[tuple[int, str]]:
    query = select(Organisation.id, Organisation.name).order_by(Organisation.name_key)
    if not is_staff():
        query = query.where(Organisation.id == current_user.organisation_id)
    return [(r.id, r.name) for r in db.session.execute(query)]


def _asset_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(IPAsset.id, IPAsset.name)
        .where(IPAsset.status == "granted")
        .order_by(IPAsset.name_key)
    )
    return [(r.id, r.name) for r in rows]


def _ocop_choices() -> list[tuple[Any, str]]:
    query = select(OcopProduct).where(OcopProduct.status == "active")
    if not is_staff():
        query = query.where(OcopProduct.producer_id == current_user.organisation_id)
    return [("", "—")] + [(o.id, f"{o.name} {o.stars}★") for o in db.session.scalars(query)]


def _product_choices() -> list[tuple[int, str]]:
    return [
        (p.id, f"{p.name} ({p.gtin})")
        for p in db.session.scalars(_org_scope(Product).order_by(Product.id))
    ]


def _area_choices() -> list[tuple[int, str]]:
    query = select(ProductionArea).order_by(ProductionArea.code)
    if not is_staff():
        query = query.where(ProductionArea.owner_id == current_user.organisation_id)
    return [(a.id, f"{a.code} — {a.crop} ({a.hectares} ha)") for a in db.session.scalars(query)]


PRODUCT_FORM = [
    FormField(
        "gtin", _l("GTIN"), required=True, help=_l("8, 12, 13 or 14 digits with the check digit")
    ),
    FormField("name", _l("Name"), required=True),
    FormField("brand", _l("Brand")),
    FormField("producer_id", _l("Producer"), "select", _producer_choices, required=True),
    FormField(
        "standards",
        _l("Standards applied"),
        "list",
        help=_l("separate with ';', e.g. TCVN 12850:2019; VietGAP"),
    ),
    FormField("asset_ids", _l("Marks and GIs"), "multiselect", _asset_choices),
    FormField("ocop_product_id", _l("OCOP rating"), "select", _ocop_choices),
    FormField("safety_warnings", _l("Safety warnings"), "textarea"),
    FormField("description", _l("Description"), "textarea"),
]

BATCH_FORM = [
    FormField("product_id", _l("Product"), "select", _product_choices, required=True),
    FormField(
        "lot", _l("Lot number"), required=True, help=_l("up to 20 letters, digits and - . / _")
    ),
    FormField("quantity", _l("Quantity"), "number", required=True),
    FormField("unit", _l("Unit"), "select", lambda: [(u, u) for u in UNITS]),
    FormField("production_date", _l("Production or harvest date"), "date", required=True),
    FormField("expiry_date", _l("Expiry date"), "date"),
    FormField("area_ids", _l("Production areas"), "multiselect", _area_choices),
    FormField("claim_asset_ids", _l("Claim marks and GIs"), "multiselect", _asset_choices),
    FormField("claim_ocop_id", _l("Claim an OCOP rating"), "select", _ocop_choices),
    FormField(
        "claim_gap",
        _l("Claim a GAP certificate"),
        "select",
        lambda: [
            ("", "—"),
            ("vietgap", "VietGAP"),
            ("globalgap", "GlobalG.A.P."),
            ("organic", _("organic")),
        ],
    ),
    FormField("notes", _l("Notes"), "textarea"),
]


@bp.get("/")
@login_required
def home() -> Any:
    return redirect(url_for(".batches"))


@bp.get("/products")
@login_required
def products() -> str:
    page = max(1, request.args.get("page", 1, type=int))
    items, total, pages = paginate(_org_scope(Product).order_by(Product.id.desc()), page, 25)
    return render_template(
        "traceability/products.html", products=items, total=total, page=page, pages=pages
    )


@bp.route("/products/new", methods=["GET", "POST"])
@login_required
def new_product() -> Any:
    def save(data: dict[str, Any]) -> Product:
        if not is_staff() and data.get("producer_id") != current_user.organisation_id:
            raise DomainValidationError({"producer_id": "you can only register your own products"})
        return services.save_product(data)

    return form_page(
        _("New product"),
        PRODUCT_FORM,
        ProductSchema(),
        save,
        lambda p: url_for(".products"),
        initial={"producer_id": current_user.organisation_id or ""},
    )


@bp.get("/images/<sha256>")
def image(sha256: str) -> Response:
    product = db.session.scalar(select(Product).where(Product.image_sha256 == sha256))
    if product is None:
        abort(404)
    from pathlib import Path

    from flask import current_app

    path = Path(current_app.instance_path) / "images" / sha256[:2] / sha256
    return send_file(path, mimetype=product.image_type, max_age=31536000, etag=sha256)


@bp.get("/batches")
@login_required
def batches() -> str:
    page = max(1, request.args.get("page", 1, type=int))
    items, total, pages = paginate(_org_scope(Batch).order_by(Batch.id.desc()), page, 25)
    return render_template(
        "traceability/batches.html", batches=items, total=total, page=page, pages=pages
    )


def _batch_data(form_data: dict[str, Any]) -> dict[str, Any]:
    claims = [
        {"kind": db.session.get(IPAsset, a).kind, "asset_id": a}
        for a in form_data.pop("claim_asset_ids", [])
        if db.session.get(IPAsset, a)
    ]
    ocop = form_data.pop("claim_ocop_id", None)
    if ocop:
        claims.append({"kind": "ocop", "ocop_product_id": int(ocop)})
    gap = form_data.pop("claim_gap", None)
    if gap:
        claims.append({"kind": "gap", "scheme": gap})
    return {**form_data, "claims": claims}


@bp.route("/batches/new", methods=["GET", "POST"])
@login_required
def new_batch() -> Any:
    values: dict[str, Any] = {"unit": "KGM"}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = {
            f.name: request.form.getlist(f.name)
            if f.kind == "multiselect"
            else request.form.get(f.name, "")
            for f in BATCH_FORM
        }
        try:
            data = _batch_data(parse_form(BATCH_FORM, request.form))
            batch = services.save_batch(
                load(BatchSchema(), data), acting_organisation_id=api.acting_organisation()
            )
        except DomainValidationError as exc:
            errors, status = exc.errors, 422
        else:
            flash(_("Batch registered; every claim is backed by the registry."), "success")
            return redirect(url_for(".batch", batch_id=batch.id))
    return render_template(
        "traceability/batch_form.html", fields=BATCH_FORM, values=values, errors=errors
    ), status


@bp.route("/batches/<int:batch_id>", methods=["GET", "POST"])
@login_required
def batch(batch_id: int) -> Any:
    item = api.get_batch(batch_id)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        try:
            data = load(
                GuidedEventSchema(),
                {k: v for k, v in request.form.items() if v and k != "csrf_token"},
            )
            api.record_guided_event(item, data)
        except DomainValidationError as exc:
            errors, status = exc.errors, exc.status
        else:
            flash(_("Event recorded."), "success")
            return redirect(url_for(".batch", batch_id=item.id))
    # Officers see every event, those that fail the ownership rule marked; others see
    # what the public sees.
    events = services.batch_events(item, public=not is_staff())
    refused = ownership.refusals(events) if is_staff() else {}
    untrusted = {e.event_id: epc for e in events for epc in [refused.get(e.id)] if epc}
    others = [
        b
        for b in db.session.scalars(_org_scope(Batch).order_by(Batch.id.desc()).limit(200))
        if b.id != item.id
    ]
    return render_template(
        "traceability/batch.html",
        batch=item,
        events=[epcis.event_document(e) for e in events],
        untrusted=untrusted,
        upstream=services.lineage(item, "up"),
        downstream=services.lineage(item, "down"),
        errors=errors,
        others=others,
        now=dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M"),
    ), status


@bp.route("/events/import", methods=["GET", "POST"])
@login_required
def import_events() -> Any:
    report = None
    status = 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("Choose a CSV file."), "error")
            return redirect(url_for(".import_events"))
        try:
            report = api.import_event_rows(
                upload.read().decode("utf-8-sig"), dry_run=bool(request.form.get("dry_run"))
            )
        except DomainValidationError as exc:
            flash(exc.detail, "error")
            status = 422
        else:
            status = 422 if report["rows_with_errors"] else 200
    return render_template(
        "traceability/import_events.html", report=report, columns=api.EVENT_CSV_COLUMNS
    ), status


# --- labels -----------------------------------------------------------------------------------


def _label_for_image(label_id: int) -> Label:
    label = db.session.get(Label, label_id)
    if label is None or not can_access_organisation(label.batch.producer_id):
        abort(404)
    return label


def _immutable(body: bytes | str, mimetype: str, tag: str) -> Response:
    """Label images never change for a given code: cache them for a year, with an ETag."""
    response = Response(body, mimetype=mimetype)
    response.set_etag(tag)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response.make_conditional(request)


@bp.get("/labels/<int:label_id>.png")
@login_required
def label_png(label_id: int) -> Response:
    label = _label_for_image(label_id)
    uri = label.uri
    return _immutable(
        labels.png(uri, module_px=request.args.get("px", 8, type=int) or 8),
        "image/png",
        labels.etag(uri + "png"),
    )


@bp.get("/labels/<int:label_id>.svg")
@login_required
def label_svg(label_id: int) -> Response:
    label = _label_for_image(label_id)
    uri = label.uri
    return _immutable(labels.svg(uri), "image/svg+xml", labels.etag(uri + "svg"))


def layout_from(args: Any) -> labels.SheetLayout:
    try:
        return labels.SheetLayout(
            rows=int(args.get("rows", 8)),
            columns=int(args.get("columns", 4)),
            margin_top=float(args.get("margin_top", 10)),
            margin_left=float(args.get("margin_left", 8)),
            margin_right=float(args.get("margin_right", 8)),
            margin_bottom=float(args.get("margin_bottom", 10)),
            gap=float(args.get("gap", 2)),
        )
    except ValueError:
        raise DomainValidationError({"rows": "rows, columns and margins must be numbers"}) from None


@bp.get("/label-runs/<int:run_id>/sheet.pdf")
@login_required
def label_sheet(run_id: int) -> Response:
    """Printable A4 sheets of the run's valid codes (rows × columns, margins in mm)."""
    run = api.get_run(run_id)
    layout = layout_from(request.args)
    pdf = labels.sheet_pdf(labels.label_texts(run), layout)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'inline; filename="labels-{run.batch.lot}-{run.id}.pdf"'
    )
    return response


@bp.post("/batches/<int:batch_id>/label-runs")
@login_required
def issue_labels_page(batch_id: int) -> Any:
    batch = api.get_batch(batch_id)
    try:
        data = load(
            LabelRunSchema(), {k: v for k, v in request.form.items() if v and k != "csrf_token"}
        )
        run = labels.issue_run(
            batch, data["kind"], data["count"], data["item_quantity"], created_by_id=current_user.id
        )
    except DomainValidationError as exc:
        flash(exc.detail, "error")
        return redirect(url_for(".batch", batch_id=batch.id)), 303
    flash(_("Issued %(n)d code(s).", n=run.count), "success")
    return redirect(url_for(".batch", batch_id=batch.id))


@bp.post("/label-runs/<int:run_id>/void")
@login_required
def void_run_page(run_id: int) -> Any:
    run = api.get_run(run_id)
    serials = [
        s.strip() for s in request.form.get("serials", "").replace(",", " ").split() if s.strip()
    ]
    try:
        count = labels.void_labels(run, request.form.get("reason", ""), serials or None)
    except DomainValidationError as exc:
        flash(exc.detail, "error")
        return redirect(url_for(".batch", batch_id=run.batch_id)), 303
    flash(_("Voided %(n)d code(s).", n=count), "success")
    return redirect(url_for(".batch", batch_id=run.batch_id))


@bp.get("/scans")
@login_required
def scans() -> str:
    """Scans of my codes (all codes for officers): a table and a map of shared places."""
    query = (
        select(Scan, Label)
        .join(Label, Label.id == Scan.label_id)
        .join(Batch, Batch.id == Label.batch_id)
    )
    if not is_staff():
        query = query.where(Batch.producer_id == current_user.organisation_id)
    rows = db.session.execute(query.order_by(Scan.id.desc()).limit(500)).all()
    from registry import geo

    points = [
        geo.Layer(
            {"type": "Point", "coordinates": [s.longitude, s.latitude]},
            "scan-flagged" if lb.flagged_at else "scan",
            s.place or "",
        )
        for s, lb in rows
        if s.latitude is not None
    ]
    outline = geo.Layer(geo.square(106.0, 16.0, 7.5), "country", "")  # keeps Vietnam in frame
    return render_template(
        "traceability/scans.html",
        rows=rows,
        map_svg=geo.svg_map([outline, *points], 320, 480, _("Scans")) if points else "",
    )
