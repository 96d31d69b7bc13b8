"""Cooperative pages: the home page, products and batches (with their claims' evidence,
labels, journey and corrections), steps recorded through forms, Excel in and out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select

from nguon.auth import can_access_organisation, is_staff, login_required
from nguon.db import db, paginate
from nguon.errors import DomainValidationError
from nguon.formatting import format_decimal, local_now, time_zone
from nguon.i18n import _, _l, label
from registry import geo
from registry.forms import FormField, load, parse_form, values_of
from registry.models import (
    AreaCertificate,
    AuthorisedUser,
    IPAsset,
    OcopProduct,
    Organisation,
    ProductionArea,
)
from traceability import (
    api,
    corrections,
    epcis,
    error_declarations,
    event_forms,
    evidence,
    labels,
    ownership,
    places,
    services,
    tabular,
)
from traceability.label_views import bp as labels_bp
from traceability.models import Batch, EpcisEvent, Label, LabelRun, Product, Scan
from traceability.schemas import UNITS, BatchSchema, ProductSchema

bp = Blueprint("traceability", __name__, url_prefix="/traceability")
bp.register_blueprint(labels_bp)


@bp.app_template_global()
def describe_evidence(entry: dict[str, Any]) -> str:
    return evidence.describe(entry)


RECEIVED_SHOWN = 100  # received lots listed on the batches page, newest first


def _org_scope(model: Any) -> Any:
    return api.own_scope(select(model), model.producer_id)


def _producer_choices() -> list[tuple[int, str]]:
    query = select(Organisation.id, Organisation.name).order_by(Organisation.name_key)
    if not is_staff():
        query = query.where(Organisation.id == current_user.organisation_id)
    return [(r.id, r.name) for r in db.session.execute(query)]


def asset_title(name: str, kind: str, number: str | None) -> str:
    """A mark or GI as a list shows it: name, kind and certificate number, so two with one
    name ("Vải thiều Lục Ngạn", the GI and a mark) are told apart."""
    kind_word = label("asset_kind", kind)
    return f"{name} — {kind_word} {_('no.')} {number}" if number else f"{name} — {kind_word}"


def _asset_choices(kinds: tuple[str, ...] | None = None) -> list[tuple[int, str]]:
    query = select(IPAsset.id, IPAsset.name, IPAsset.kind, IPAsset.certificate_number).where(
        IPAsset.status == "granted"
    )
    if kinds:
        query = query.where(IPAsset.kind.in_(kinds))
    rows = db.session.execute(query.order_by(IPAsset.name_key, IPAsset.kind))
    return [(r.id, asset_title(r.name, r.kind, r.certificate_number)) for r in rows]


def _claimable_asset_choices() -> list[tuple[int, str]]:
    """Marks and GIs a batch may claim (a plain mark is not a claim the registry checks)."""
    return _asset_choices(("geographical_indication", "collective_mark", "certification_mark"))


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
    return [
        (a.id, f"{a.code} — {a.name or a.crop} ({format_decimal(a.hectares)} ha)")
        for a in db.session.scalars(query)
    ]


def _unit_choices() -> list[tuple[str, str]]:
    return [(u, label("unit", u)) for u in UNITS]


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
    FormField("asset_ids", _l("Marks and GIs"), "multiselect", lambda: _asset_choices()),
    FormField("ocop_product_id", _l("OCOP rating"), "select", _ocop_choices),
    FormField("safety_warnings", _l("Safety warnings"), "textarea"),
    FormField("description", _l("Description"), "textarea"),
]

BATCH_FORM = [
    FormField("product_id", _l("Product"), "select", _product_choices, required=True),
    FormField(
        "lot", _l("Lot number"), required=True, help=_l("up to 20 letters, digits and - . / _")
    ),
    FormField("quantity", _l("Quantity"), "number", required=True, help=_l("e.g. 1.250,5")),
    FormField("unit", _l("Unit"), "select", _unit_choices),
    FormField("production_date", _l("Production or harvest date"), "date", required=True),
    FormField("expiry_date", _l("Expiry date"), "date"),
    FormField("area_ids", _l("Production areas"), "multiselect", _area_choices),
    FormField(
        "claim_asset_ids", _l("Claim marks and GIs"), "multiselect", _claimable_asset_choices
    ),
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
BATCH_EDIT_FORM = [
    f
    for f in BATCH_FORM
    if f.name in ("quantity", "unit", "production_date", "expiry_date", "area_ids", "notes")
]
REASON_FIELD = FormField(
    "reason",
    _l("Reason for the correction"),
    "textarea",
    help=_l("needed once labels are printed or the record was sent to the portal"),
)


# --- home ---------------------------------------------------------------------------------

EXPIRY_WINDOW_DAYS = 90


@bp.get("/")
@login_required
def home() -> Any:
    """A cooperative's working day: batches awaiting labels, recent and suspicious scans,
    certificates and authorisations expiring, and where its records are with the portal."""
    org = current_user.organisation_id
    if org is None:
        return redirect(url_for(".batches"))
    labelled = select(LabelRun.batch_id).where(LabelRun.voided_at.is_(None))
    awaiting = db.session.scalars(
        select(Batch)
        .where(Batch.producer_id == org, Batch.id.not_in(labelled))
        .order_by(Batch.production_date.desc())
        .limit(10)
    ).all()
    scans = db.session.execute(
        _scan_query().where(Batch.producer_id == org).order_by(Scan.id.desc()).limit(8)
    ).all()
    suspicious = db.session.execute(
        select(Label, Batch)
        .join(Batch, Batch.id == Label.batch_id)
        .where(Batch.producer_id == org, Label.flagged_at.isnot(None))
        .order_by(Label.flagged_at.desc())
        .limit(8)
    ).all()
    today = local_now().date()
    horizon = today + dt.timedelta(days=EXPIRY_WINDOW_DAYS)
    certificates = db.session.execute(
        select(AreaCertificate, ProductionArea)
        .join(ProductionArea, ProductionArea.id == AreaCertificate.area_id)
        .where(ProductionArea.owner_id == org, AreaCertificate.valid_to <= horizon)
        .order_by(AreaCertificate.valid_to)
    ).all()
    authorisations = db.session.scalars(
        select(AuthorisedUser)
        .where(
            AuthorisedUser.organisation_id == org,
            AuthorisedUser.valid_to.isnot(None),
            AuthorisedUser.valid_to <= horizon,
        )
        .order_by(AuthorisedUser.valid_to)
    ).all()
    recent = db.session.scalars(
        select(Batch).where(Batch.producer_id == org).order_by(Batch.id.desc()).limit(8)
    ).all()
    return render_template(
        "traceability/home.html",
        awaiting=awaiting,
        scans=scans,
        suspicious=suspicious,
        certificates=certificates,
        authorisations=authorisations,
        recent=recent,
        today=today,
    )


# --- products -----------------------------------------------------------------------------


@bp.get("/products")
@login_required
def products() -> str:
    page = max(1, min(request.args.get("page", 1, type=int), 10**6))
    items, total, pages = paginate(_org_scope(Product).order_by(Product.id.desc()), page, 25)
    return render_template(
        "traceability/products.html",
        products=items,
        total=total,
        page=page,
        pages=pages,
        asset_title=asset_title,
    )


def _save_image(product: Product) -> None:
    upload = request.files.get("image")
    if upload is not None and upload.filename:
        services.set_product_image(product, upload.read(services.IMAGE_MAX_BYTES + 1))


def _product_form(title: str, product: Product | None) -> Any:
    fields = PRODUCT_FORM
    values = (
        values_of(product, fields)
        if product
        else {"producer_id": current_user.organisation_id or ""}
    )
    if product is not None:
        values["asset_ids"] = [a.id for a in product.assets]
    published = product is not None and corrections.product_is_published(product)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = {
            f.name: request.form.getlist(f.name)
            if f.kind == "multiselect"
            else request.form.get(f.name, "")
            for f in fields
        }
        values["reason"] = request.form.get("reason", "")
        try:
            data = load(
                ProductSchema(), parse_form(fields, request.form)
            )  # the whole form each time: a cleared field is cleared
            if (
                not is_staff()
                and data.get("producer_id", current_user.organisation_id)
                != current_user.organisation_id
            ):
                raise DomainValidationError(
                    {"producer_id": _("you can only register your own products")}
                )
            if product is None:
                saved = services.save_product(data)
            else:
                saved = corrections.update_product(
                    product, data, request.form.get("reason", ""), current_user.id
                )
            _save_image(saved)
        except DomainValidationError as exc:
            errors, status = exc.errors, 422
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".products"))
    return render_template(
        "traceability/product_form.html",
        title=title,
        fields=fields,
        values=values,
        errors=errors,
        product=product,
        published=published,
        reason_field=REASON_FIELD,
        history=corrections.corrections_of("product", product.id) if product else [],
        field_labels={f.name: f.label for f in PRODUCT_FORM},
    ), status


@bp.route("/products/new", methods=["GET", "POST"])
@login_required
def new_product() -> Any:
    return _product_form(_("New product"), None)


@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
@login_required
def edit_product(product_id: int) -> Any:
    product = api.get_product(product_id)
    return _product_form(_("Edit product"), product)


@bp.get("/products.xlsx")
@login_required
def products_xlsx() -> Response:
    items = db.session.scalars(_org_scope(Product).order_by(Product.id)).all()
    columns = [
        ("gtin", "GTIN"),
        ("name", _("Name")),
        ("brand", _("Brand")),
        ("producer", _("Producer")),
        ("assets", _("Marks and GIs")),
        ("standards", _("Standards applied")),
        ("safety_warnings", _("Safety warnings")),
    ]
    rows = (
        [
            p.gtin,
            p.name,
            p.brand,
            p.producer.name,
            [asset_title(a.name, a.kind, a.certificate_number) for a in p.assets],
            p.standards,
            p.safety_warnings,
        ]
        for p in items
    )
    return _download(tabular.xlsx(columns, rows, _("Products")), "products.xlsx")


def _download(body: bytes | str, filename: str) -> Response:
    mime = tabular.XLSX_MIME if filename.endswith(".xlsx") else "text/csv; charset=utf-8"
    response = Response(body, mimetype=mime)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/images/<sha256>")
def image(sha256: str) -> Response:
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        abort(404)
    product = db.session.scalar(select(Product).where(Product.image_sha256 == sha256).limit(1))
    if product is None:
        abort(404)
    path = Path(current_app.instance_path) / "images" / sha256[:2] / sha256
    return send_file(path, mimetype=product.image_type, max_age=31536000, etag=sha256)


# --- batches ------------------------------------------------------------------------------


@bp.get("/batches")
@login_required
def batches() -> str:
    page = max(1, min(request.args.get("page", 1, type=int), 10**6))
    items, total, pages = paginate(_org_scope(Batch).order_by(Batch.id.desc()), page, 25)
    # Lots other producers shipped to the organisation: steps are recorded on them too.
    org = None if is_staff() else current_user.organisation_id
    received = (
        db.session.scalars(
            select(Batch)
            .where(Batch.id.in_(sorted(ownership.received_batch_ids(org))))
            .order_by(Batch.id.desc())
            .limit(RECEIVED_SHOWN)
        ).all()
        if org is not None and page == 1
        else []
    )
    return render_template(
        "traceability/batches.html",
        batches=items,
        received=received,
        total=total,
        page=page,
        pages=pages,
    )


@bp.get("/batches.xlsx")
@login_required
def batches_xlsx() -> Response:
    items = db.session.scalars(_org_scope(Batch).order_by(Batch.id)).all()
    columns = [
        ("gtin", "GTIN"),
        ("lot", _("Lot number")),
        ("product", _("Product")),
        ("quantity", _("Quantity")),
        ("unit", _("Unit")),
        ("production_date", _("Production or harvest date")),
        ("expiry_date", _("Expiry date")),
        ("areas", _("Production areas")),
        ("claims", _("Claims")),
    ]
    rows = (
        [
            b.product.gtin,
            b.lot,
            b.product.name,
            b.quantity,
            label("unit", b.unit),
            b.production_date,
            b.expiry_date,
            [a.code for a in b.areas],
            [
                label("claim_kind", c.kind) + (f": {c.asset.name}" if c.asset else "")
                for c in b.claims
            ],
        ]
        for b in items
    )
    return _download(tabular.xlsx(columns, rows, _("Batches")), "batches.xlsx")


def _batch_data(form_data: dict[str, Any]) -> dict[str, Any]:
    claims = [
        {"kind": db.session.get(IPAsset, a).kind, "asset_id": a}
        for a in form_data.pop("claim_asset_ids", [])
        if db.session.get(IPAsset, a)
    ]
    ocop = form_data.pop("claim_ocop_id", None)
    if ocop:
        claims.append({"kind": "ocop", "ocop_product_id": ocop})
    gap = form_data.pop("claim_gap", None)
    if gap:
        claims.append({"kind": "gap", "scheme": gap})
    return {**form_data, "claims": claims}


def _form_values(fields: list[FormField]) -> dict[str, Any]:
    return {
        f.name: request.form.getlist(f.name)
        if f.kind == "multiselect"
        else request.form.get(f.name, "")
        for f in fields
    }


@bp.route("/batches/new", methods=["GET", "POST"])
@login_required
def new_batch() -> Any:
    values: dict[str, Any] = {"unit": "KGM"}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = _form_values(BATCH_FORM)
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


@bp.route("/batches/<int:batch_id>/edit", methods=["GET", "POST"])
@login_required
def edit_batch(batch_id: int) -> Any:
    item = api.get_batch(batch_id)
    values = values_of(item, BATCH_EDIT_FORM)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = {**_form_values(BATCH_EDIT_FORM), "reason": request.form.get("reason", "")}
        try:
            data = load(
                BatchSchema(partial=True), parse_form(BATCH_EDIT_FORM, request.form), partial=True
            )
            data.setdefault("area_ids", [])
            data.setdefault("expiry_date", None)
            data.setdefault("notes", "")
            corrections.update_batch(item, data, request.form.get("reason", ""), current_user.id)
        except DomainValidationError as exc:
            errors, status = exc.errors, 422
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".batch", batch_id=item.id))
    return render_template(
        "traceability/batch_edit.html",
        batch=item,
        fields=BATCH_EDIT_FORM,
        values=values,
        errors=errors,
        published=corrections.batch_is_published(item),
        reason_field=REASON_FIELD,
    ), status


FORM_FIELDS = {"location": "place", "source": "partner", "destination": "partner"}


JOURNEY_LINES = 200  # the latest lines of a batch's journey its page shows


def _journey(
    events: list[EpcisEvent],
    untrusted: dict[str, str],
    declared: dict[str, EpcisEvent] | None = None,
) -> list[dict[str, Any]]:
    """The batch's events as the page tells them: step, local time, place, parties, and
    for officers whether the public sees it (the ownership rule) and whether it was
    declared erroneous (``declared``: the declaration of each such eventID)."""
    declared = declared or {}
    steps: list[dict[str, Any]] = []
    named: dict[str | None, str] = {}  # each place in words once, not once per event

    def describe(uri: str | None) -> str:
        if uri not in named:
            named[uri] = places.describe(uri)
        return named[uri]

    for stored in events:
        document = epcis.event_document(stored)
        if document.get("type") == "TransformationEvent":
            name = label("step", "process")
        elif document.get("bizStep"):
            name = label("biz_step", document["bizStep"])
        else:
            name = document.get("type", "")
        place = (document.get("bizLocation") or document.get("readPoint") or {}).get("id")
        quantities = document.get("quantityList") or document.get("inputQuantityList") or []
        steps.append(
            {
                "name": name,
                "time": stored.event_time,
                "place": describe(place),
                "parties": places.parties(document, describe),
                "quantity": quantities[0].get("quantity") if quantities else None,
                "unit": quantities[0].get("uom") if quantities else None,
                "untrusted": untrusted.get(stored.event_id),
                "retracted": (
                    error_declarations.reason_text(declared[stored.event_id].error_reason)
                    if stored.event_id in declared
                    else None
                ),
            }
        )
    return _in_rows(steps)


def _in_rows(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps in a row that say the same (step, place, parties, quantity, and the same
    marks for officers) as one line, with ``count`` and ``last_time``: a season's
    capture names each of thousands of boxes in its own event."""
    lines: list[dict[str, Any]] = []
    for step in steps:
        key = {k: v for k, v in step.items() if k != "time"}
        last = lines[-1] if lines else None
        if last is not None and last["key"] == key:
            last["count"] += 1
            last["last_time"] = step["time"]
        else:
            lines.append({**step, "key": key, "count": 1, "last_time": step["time"]})
    return lines


def _batch_or_received(batch_id: int) -> tuple[Batch, bool]:
    """The batch, and whether it is a lot another producer shipped to the caller's
    organisation (who then sees its journey and records steps, nothing more); 404 when
    neither its own nor received."""
    item = db.session.get(Batch, batch_id) if batch_id < 2**31 else None
    if item is not None and can_access_organisation(item.producer_id):
        return item, False
    org = current_user.organisation_id
    if item is None or org is None or item.id not in ownership.received_batch_ids(org, [item.id]):
        abort(404)
    return item, True


@bp.route("/batches/<int:batch_id>", methods=["GET", "POST"])
@login_required
def batch(batch_id: int) -> Any:
    item, received = _batch_or_received(batch_id)
    acting = current_user.organisation_id if received else item.producer_id
    errors: dict[str, list[str]] = {}
    warnings: list[str] = []
    values = event_forms.initial_values()
    status = 200
    if request.method == "POST":
        values = event_forms.values_of(request.form)
        try:
            data = event_forms.read(item, request.form, acting)
            warnings = event_forms.warnings(item, data)
            if warnings and not request.form.get("confirm"):
                status = 422  # nothing recorded until the person confirms
            else:
                api.record_guided_event(item, data, acting)
        except DomainValidationError as exc:
            # The guided event names its parts as the API does; the form's fields differ.
            errors, status = {FORM_FIELDS.get(k, k): v for k, v in exc.errors.items()}, exc.status
        else:
            if status == 200:
                flash(_("Event recorded."), "success")
                return redirect(url_for(".batch", batch_id=item.id))
    # Officers see every event, those that fail the ownership rule marked; others see
    # what the public sees.
    events = services.batch_events(item, public=not is_staff())
    refused = ownership.refusals(events) if is_staff() else {}
    untrusted = {e.event_id: epc for e in events for epc in [refused.get(e.id)] if epc}
    # Officers see a retracted event (an EPCIS error declaration) with the reason.
    declared = (
        error_declarations.declarations_of([e.event_id for e in events]) if is_staff() else {}
    )
    journey = _journey(events, untrusted, declared)
    others = [
        b
        for b in db.session.scalars(_org_scope(Batch).order_by(Batch.id.desc()).limit(200))
        if b.id != item.id
    ]
    runs = db.session.scalars(
        select(LabelRun).where(LabelRun.batch_id == item.id).order_by(LabelRun.id.desc())
    ).all()
    counts = dict(
        db.session.execute(
            select(Label.run_id, func.count(Label.id))
            .where(Label.batch_id == item.id, Label.voided_at.isnot(None))
            .group_by(Label.run_id)
        ).all()
    )
    return render_template(
        "traceability/batch.html",
        batch=item,
        journey=journey[-JOURNEY_LINES:],
        journey_earlier=max(0, len(journey) - JOURNEY_LINES),
        upstream=services.lineage(item, "up"),
        downstream=services.lineage(item, "down"),
        errors=errors,
        warnings=warnings,
        values=values,
        others=others,
        runs=runs,
        voided_counts=counts,
        place_choices=places.place_choices(acting),
        partner_choices=places.partner_choices(acting),
        steps=event_forms.steps_for(received),
        received=received,
        time_zone=str(time_zone()),
        history=corrections.corrections_of("batch", item.id),
        field_labels={f.name: f.label for f in BATCH_FORM},
        presets=labels.PRESETS,
    ), status


# --- imports ------------------------------------------------------------------------------


def _import_page(kind: str) -> Any:
    report = None
    status = 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("Choose a CSV or Excel (.xlsx) file."), "error")
            return redirect(request.path)
        try:
            rows = tabular.read_rows(upload.filename, upload.read())
            run = api.import_event_rows if kind == "events" else api.import_batch_rows
            report = run(rows, dry_run=bool(request.form.get("dry_run")))
        except DomainValidationError as exc:
            flash("; ".join(m for ms in exc.errors.values() for m in ms), "error")
            status = 422
        else:
            status = 422 if report["rows_with_errors"] else 200
    columns = api.EVENT_CSV_COLUMNS if kind == "events" else api.BATCH_COLUMNS
    return render_template(
        "traceability/import.html", kind=kind, report=report, columns=columns
    ), status


@bp.route("/events/import", methods=["GET", "POST"])
@login_required
def import_events() -> Any:
    return _import_page("events")


@bp.route("/batches/import", methods=["GET", "POST"])
@login_required
def import_batches() -> Any:
    return _import_page("batches")


@bp.get("/import-template-<any(events, batches):kind>.xlsx")
@login_required
def import_template(kind: str) -> Response:
    """An empty workbook with the import's columns and one example row."""
    if kind == "events":
        columns = [(c, c) for c in api.EVENT_CSV_COLUMNS]
        example = ["harvest", "8930000000019", "LN2026-001", "20/06/2026 06:30", "1000,5"]
    else:
        columns = [(c, c) for c in api.BATCH_COLUMNS]
        example = ["8930000000019", "LN2026-002", "1000", "kg", "20/06/2026", "", "", "", ""]
    return _download(tabular.xlsx(columns, [example], kind), f"nguon-{kind}.xlsx")


# --- scans and alarms -----------------------------------------------------------------------


def _scan_query() -> Any:
    return (
        select(Scan, Label, Batch)
        .join(Label, Label.id == Scan.label_id)
        .join(Batch, Batch.id == Label.batch_id)
    )


@bp.get("/scans")
@login_required
def scans() -> str:
    """Scans of my codes (all codes for officers): product, lot and code, and a map of the
    places consumers shared (only when there are any)."""
    query = _scan_query()
    if not is_staff():
        query = query.where(Batch.producer_id == current_user.organisation_id)
    rows = db.session.execute(query.order_by(Scan.id.desc()).limit(500)).all()
    points = [
        geo.Layer(
            {"type": "Point", "coordinates": [s.longitude, s.latitude]},
            "scan-flagged" if lb.flagged_at else "scan",
            s.place or "",
        )
        for s, lb, _b in rows
        if s.latitude is not None
    ]
    outline = geo.Layer(geo.square(106.0, 16.0, 7.5), "country", "")  # keeps Vietnam in frame
    return render_template(
        "traceability/scans.html",
        rows=rows,
        map_svg=geo.svg_map([outline, *points], 320, 480, _("Scans")) if points else "",
    )


@bp.get("/scans.xlsx")
@login_required
def scans_xlsx() -> Response:
    query = _scan_query()
    if not is_staff():
        query = query.where(Batch.producer_id == current_user.organisation_id)
    rows = db.session.execute(query.order_by(Scan.id.desc()).limit(50_000))
    zone = time_zone()
    columns = [
        ("at", _("When")),
        ("product", _("Product")),
        ("lot", _("Lot number")),
        ("serial", _("Code")),
        ("verdict", _("Verdict")),
        ("place", _("Place")),
        ("scans", _("Scans of the code")),
    ]
    lines = (
        [s.at.astimezone(zone), b.product.name, b.lot, code.serial or _("lot code"),
         label("verdict", s.verdict), s.place or "", code.scan_count]
        for s, code, b in rows
    )  # fmt: skip
    return _download(tabular.xlsx(columns, lines, _("Scans")), "scans.xlsx")
