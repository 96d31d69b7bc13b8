"""REST API of traceability: products, batches (claims, lineage, history), guided events.

A cooperative user sees and changes only its own organisation's records; officers and
admins see all.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, request
from flask_babel import force_locale
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields
from sqlalchemy import select

from nguon.api import SECURITY, SelectPage
from nguon.auth import (
    can_access_organisation,
    is_staff,
    login_required,
    require_organisation_access,
)
from nguon.db import db
from nguon.errors import DomainValidationError, flatten_messages
from nguon.formatting import parse_decimal_text, parse_local_datetime
from nguon.i18n import _, label
from registry.models import IPAsset, ProductionArea
from traceability import epcis, labels, ownership, services, tabular
from traceability.gs1 import IdentifierError, parse_gtin
from traceability.models import Batch, Label, LabelRun, Product
from traceability.schemas import (
    UNITS,
    BatchSchema,
    GuidedEventSchema,
    LabelCodeSchema,
    LabelRunSchema,
    LineageSchema,
    ProductSchema,
    VoidSchema,
)

api_bp = Blueprint(
    "traceability_api",
    __name__,
    url_prefix="/api/v1/traceability",
    description="Products, batches with checked claims, lineage and guided EPCIS events",
)


def own_scope(query: Any, column: Any) -> Any:
    """Limit ``query`` to the caller's organisation unless the caller is staff."""
    return query if is_staff() else query.where(column == current_user.organisation_id)


def get_product(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None or not can_access_organisation(product.producer_id):
        abort(404, description=f"no product {product_id}")
    return product


def get_batch(batch_id: int) -> Batch:
    batch = db.session.get(Batch, batch_id)
    if batch is None or not can_access_organisation(batch.producer_id):
        abort(404, description=f"no batch {batch_id}")
    return batch


def acting_organisation() -> int | None:
    """The organisation the caller acts for (None: staff, who see and act for all)."""
    return None if is_staff() else current_user.organisation_id


@api_bp.get("/products")
@login_required
@api_bp.response(200, ProductSchema(many=True))
@api_bp.paginate(SelectPage)
@api_bp.doc(security=SECURITY)
def list_products() -> Any:
    return own_scope(select(Product), Product.producer_id).order_by(Product.id)


@api_bp.post("/products")
@login_required
@api_bp.arguments(ProductSchema)
@api_bp.response(201, ProductSchema)
@api_bp.doc(security=SECURITY)
def create_product(data: dict[str, Any]) -> Product:
    """Register a product; a cooperative registers its own (producer_id must be its own)."""
    require_organisation_access(data["producer_id"])
    return services.save_product(data)


@api_bp.get("/products/<int:product_id>")
@login_required
@api_bp.response(200, ProductSchema)
@api_bp.doc(security=SECURITY)
def get_product_api(product_id: int) -> Product:
    return get_product(product_id)


@api_bp.patch("/products/<int:product_id>")
@login_required
@api_bp.arguments(ProductSchema(partial=True))
@api_bp.response(200, ProductSchema)
@api_bp.doc(security=SECURITY)
def update_product(data: dict[str, Any], product_id: int) -> Product:
    product = get_product(product_id)
    if "producer_id" in data:
        require_organisation_access(data["producer_id"])
    if "asset_ids" in data and "asset_ids" not in (request.get_json(silent=True) or {}):
        data.pop("asset_ids")
    return services.save_product(data, product)


class ImageSchema(Schema):
    image = fields.Raw(metadata={"type": "string", "format": "binary"}, required=True)


@api_bp.put("/products/<int:product_id>/image")
@login_required
@api_bp.arguments(ImageSchema, location="files")
@api_bp.response(200, ProductSchema)
@api_bp.doc(security=SECURITY)
def put_image(files: dict[str, Any], product_id: int) -> Product:
    """Set the product's image (PNG, JPEG or WebP, ≤ 5 MiB)."""
    product = get_product(product_id)
    services.set_product_image(product, files["image"].read())
    return product


@api_bp.get("/batches")
@login_required
@api_bp.response(200, BatchSchema(many=True))
@api_bp.paginate(SelectPage)
@api_bp.doc(security=SECURITY)
def list_batches() -> Any:
    return own_scope(select(Batch), Batch.producer_id).order_by(Batch.id.desc())


@api_bp.post("/batches")
@login_required
@api_bp.arguments(BatchSchema)
@api_bp.response(201, BatchSchema)
@api_bp.doc(security=SECURITY)
def create_batch(data: dict[str, Any]) -> Batch:
    """Register a batch. Each claim (GI, mark, OCOP, GAP) is checked against the registry
    on the production date; a refused claim refuses the batch, naming the failed condition."""
    return services.save_batch(data, acting_organisation_id=acting_organisation())


@api_bp.get("/batches/<int:batch_id>")
@login_required
@api_bp.response(200, BatchSchema)
@api_bp.doc(security=SECURITY)
def get_batch_api(batch_id: int) -> Batch:
    return get_batch(batch_id)


@api_bp.get("/batches/<int:batch_id>/lineage")
@login_required
@api_bp.response(200, LineageSchema)
@api_bp.doc(security=SECURITY)
def batch_lineage(batch_id: int) -> dict[str, Any]:
    """Every upstream source and downstream lot, through transformation events."""
    batch = get_batch(batch_id)
    return {
        "batch_id": batch.id,
        "upstream": services.lineage(batch, "up"),
        "downstream": services.lineage(batch, "down"),
    }


@api_bp.get("/batches/<int:batch_id>/epcis")
@login_required
@api_bp.doc(security=SECURITY, responses={200: {"description": "an EPCISDocument (JSON-LD)"}})
def batch_history(batch_id: int) -> Response:
    """The batch's whole history as an EPCIS 2.0 JSON-LD document."""
    batch = get_batch(batch_id)
    document = epcis.epcis_document(services.batch_events(batch))
    epcis.validate(document)
    response = current_app.response_class(
        current_app.json.dumps(document), mimetype="application/ld+json"
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="epcis-{batch.product.gtin}-{batch.lot}.jsonld"'
    )
    return response


@api_bp.post("/batches/<int:batch_id>/events")
@login_required
@api_bp.arguments(GuidedEventSchema)
@api_bp.response(201, Schema.from_dict({"eventID": fields.String()}))
@api_bp.doc(security=SECURITY)
def record_event(data: dict[str, Any], batch_id: int) -> dict[str, str]:
    """Record a harvest, pack, ship, receive or process step as an EPCIS event."""
    batch = get_batch(batch_id)
    return {"eventID": record_guided_event(batch, data)}


def record_guided_event(
    batch: Batch, data: dict[str, Any], organisation_id: int | None = None
) -> str:
    """Record a guided step about ``batch`` as ``organisation_id`` (default: its producer;
    a holder of a received lot records as itself, and the ownership rule decides); its
    event ID. DomainValidationError / OwnershipError (403) name the form's fields."""
    if data.get("output_batch_id"):
        data["output_batch"] = get_batch(data["output_batch_id"])
    event = services.guided_event(data["step"], batch, data)
    try:
        epcis.validate({"@context": [epcis.EPCIS_CONTEXT], **event})
    except epcis.EpcisError as exc:
        raise DomainValidationError({exc.path.strip("/") or "event": exc.message}) from None
    try:
        result = epcis.store_events(
            [event], [], organisation_id=organisation_id or batch.producer_id
        )
    except ownership.OwnershipError as exc:
        # Name the form's field (location, source, destination, output lot), not the path.
        raise ownership.OwnershipError(
            {GUIDED_FIELDS.get(f.split("/")[2], "step"): m for f, m in exc.errors.items()},
            detail=exc.detail,
        ) from None
    return (result.stored or result.duplicates)[0]


# Where a guided event's part comes from on its form.
GUIDED_FIELDS = {
    "readPoint": "location",
    "bizLocation": "location",
    "sourceList": "source",
    "destinationList": "destination",
    "outputQuantityList": "output_batch_id",
}


EVENT_CSV_COLUMNS = (
    "step",
    "gtin",
    "lot",
    "event_time",
    "quantity",
    "location",
    "source",
    "destination",
    "output_gtin",
    "output_lot",
)


class EventImportQuerySchema(Schema):
    dry_run = fields.Boolean(load_default=False)


@api_bp.post("/events/import")
@login_required
@api_bp.arguments(EventImportQuerySchema, location="query")
@api_bp.doc(security=SECURITY)
def import_events(args: dict[str, Any]) -> Any:
    """Record many guided events from CSV or .xlsx (columns: step, gtin, lot, event_time,
    quantity, location, source, destination, output_gtin, output_lot). Every row is
    checked; with any bad row, or on a dry run, nothing is kept."""
    upload = request.files.get("file")
    payload = upload.read() if upload else request.get_data()
    rows = tabular.read_rows(upload.filename or "" if upload else "", payload)
    report = import_event_rows(rows, dry_run=args["dry_run"])
    return report, (200 if not report["rows_with_errors"] else 422)


def _check_columns(
    rows: list[dict[str, str]], required: tuple[str, ...], known: tuple[str, ...]
) -> None:
    header = tabular.header_of(rows)
    missing = [c for c in required if c not in header]
    if missing:
        raise DomainValidationError(
            {"file": _("missing columns: %(names)s", names=", ".join(missing))}
        )
    unknown = [c for c in header if c not in known]
    if unknown:
        raise DomainValidationError(
            {"file": _("unknown columns: %(names)s", names=", ".join(unknown))}
        )


def import_rows(rows: list[dict[str, str]], record: Any, *, dry_run: bool) -> dict[str, Any]:
    """Check and keep each row with ``record(row)`` (in a savepoint); with any bad row,
    or on a dry run, nothing is kept. Errors are reported per data row (the first row
    after the header is 1), with the row's lot, and field."""
    errors: list[dict[str, Any]] = []
    recorded = 0
    outer = db.session.begin_nested()
    for number, row in enumerate(rows, start=1):
        row = {k: v for k, v in row.items() if v not in (None, "")}
        named = row.get("lot", "")
        savepoint = db.session.begin_nested()
        try:
            record(row)
        except ValidationError as exc:
            savepoint.rollback()
            errors.append({"row": number, "lot": named, "errors": flatten_messages(exc.messages)})
        except DomainValidationError as exc:
            savepoint.rollback()
            errors.append(
                {
                    "row": number,
                    "lot": named,
                    "errors": [
                        {"field": f, "message": str(m)} for f, ms in exc.errors.items() for m in ms
                    ],
                }
            )
        else:
            savepoint.commit()
            recorded += 1
    if errors or dry_run:
        outer.rollback()
    else:
        outer.commit()
    return {
        "dry_run": dry_run,
        "recorded": recorded if not (errors or dry_run) else 0,
        "valid_rows": recorded,
        "rows_with_errors": errors,
    }


def import_event_rows(rows: list[dict[str, str]], *, dry_run: bool) -> dict[str, Any]:
    _check_columns(rows, ("step", "gtin", "lot", "event_time"), EVENT_CSV_COLUMNS)

    def record(row: dict[str, str]) -> None:
        batch = _csv_batch(row.get("gtin", ""), row.get("lot", ""), "lot")
        if row.get("output_lot"):
            row["output_batch_id"] = _csv_batch(
                row.get("output_gtin", row.get("gtin", "")), row["output_lot"], "output_lot"
            ).id
        when = row.get("event_time", "")
        moment = parse_local_datetime(when)
        if moment is not None:  # "20/06/2026 06:30" as typed in a spreadsheet: local time
            row["event_time"] = moment.isoformat()
        if row.get("quantity"):
            row["quantity"] = parse_decimal_text(row["quantity"]) or row["quantity"]
        data = GuidedEventSchema().load(
            {k: v for k, v in row.items() if k in GuidedEventSchema().fields}
        )
        record_guided_event(batch, data)

    return import_rows(rows, record, dry_run=dry_run)


BATCH_COLUMNS = ("gtin", "lot", "quantity", "unit", "production_date", "expiry_date", "areas",
                 "claims", "notes")  # fmt: skip


def import_batch_rows(rows: list[dict[str, str]], *, dry_run: bool) -> dict[str, Any]:
    """Register batches from rows: gtin, lot, quantity, unit (kg, tấn, … or KGM…),
    production_date, expiry_date, areas (codes, ";"), claims (certificate numbers of marks
    and GIs, "OCOP", or a GAP scheme, ";"), notes. Each is checked as the form checks it."""
    _check_columns(rows, ("gtin", "lot", "quantity", "production_date"), BATCH_COLUMNS)

    def record(row: dict[str, str]) -> None:
        problems = services.Problems()
        try:
            gtin = parse_gtin(row.get("gtin", ""))
        except IdentifierError as exc:
            raise DomainValidationError({"gtin": exc.in_words()}) from None
        product = db.session.scalar(select(Product).where(Product.gtin == gtin))
        if product is None or not can_access_organisation(product.producer_id):
            raise DomainValidationError({"gtin": _("no product %(gtin)s of yours", gtin=gtin)})
        quantity = parse_decimal_text(row.get("quantity", ""))
        if quantity is None:
            problems.add("quantity", _("a number such as 5,5"))
        unit = unit_code(row.get("unit", "") or "KGM")
        if unit is None:
            problems.add("unit", _("one of: %(units)s", units=", ".join(unit_words())))
        dates = {}
        for key in ("production_date", "expiry_date"):
            if row.get(key):
                moment = parse_local_datetime(row[key])
                if moment is None:
                    problems.add(key, _("a date such as 20/06/2026"))
                else:
                    dates[key] = moment.date()
        area_ids = []
        for code in filter(None, (c.strip() for c in row.get("areas", "").split(";"))):
            area = db.session.scalar(select(ProductionArea).where(ProductionArea.code == code))
            if area is None or area.owner_id != product.producer_id:
                problems.add("areas", _("no production area %(code)s of yours", code=code))
            else:
                area_ids.append(area.id)
        claims = []
        for word in filter(None, (c.strip() for c in row.get("claims", "").split(";"))):
            claim = claim_request(word, product)
            if claim is None:
                problems.add(
                    "claims", _("no mark, GI, OCOP rating or GAP scheme %(name)s", name=word)
                )
            else:
                claims.append(claim)
        problems.raise_if_any()
        data = BatchSchema().load(
            {
                "product_id": product.id,
                "lot": row.get("lot", ""),
                "quantity": quantity,
                "unit": unit,
                "production_date": str(dates["production_date"])
                if "production_date" in dates
                else None,
                "expiry_date": str(dates["expiry_date"]) if "expiry_date" in dates else None,
                "notes": row.get("notes", ""),
                "area_ids": area_ids,
                "claims": claims,
            }
        )
        services.save_batch(data, acting_organisation_id=acting_organisation())

    return import_rows(rows, record, dry_run=dry_run)


def unit_words() -> list[str]:
    return [str(label("unit", code)) for code in UNITS]


def unit_code(text: str) -> str | None:
    """A unit as written (its code, or its word in either language)."""
    wanted = text.strip()
    if wanted.upper() in UNITS:
        return wanted.upper()
    for code in UNITS:
        words = {str(label("unit", code)).lower()}
        for language in ("vi", "en"):
            with force_locale(language):
                words.add(str(label("unit", code)).lower())
        if wanted.lower() in words:
            return code
    return None


def claim_request(word: str, product: Product) -> dict[str, Any] | None:
    """A claim named in a spreadsheet: a mark's or GI's certificate number (or exact
    name), "OCOP" (the product's rating), or vietgap / globalgap / organic."""
    lowered = word.lower().replace(".", "").replace(" ", "")
    if lowered in ("vietgap", "globalgap", "organic"):
        return {"kind": "gap", "scheme": lowered}
    if lowered == "ocop":
        return (
            {"kind": "ocop", "ocop_product_id": product.ocop_product_id}
            if product.ocop_product_id
            else None
        )
    asset = db.session.scalar(
        select(IPAsset)
        .where((IPAsset.certificate_number == word) | (IPAsset.name == word))
        .limit(1)
    )
    if asset is None or asset.kind == "mark":
        return None
    return {"kind": asset.kind, "asset_id": asset.id}


def _csv_batch(gtin: str, lot: str, field: str) -> Batch:
    try:
        gtin14 = parse_gtin(gtin)
    except IdentifierError as exc:
        raise DomainValidationError({"gtin": exc.in_words()}) from None
    batch = services.batch_by_lot(gtin14, lot)
    if batch is None or not can_access_organisation(batch.producer_id):
        raise DomainValidationError(
            {field: _("no batch %(lot)s of %(gtin)s of yours", lot=lot, gtin=gtin14)}
        )
    return batch


# --- label runs ---------------------------------------------------------------------------------


def get_run(run_id: int) -> LabelRun:
    run = db.session.get(LabelRun, run_id)
    if run is None or not can_access_organisation(run.batch.producer_id):
        abort(404, description=f"no label run {run_id}")
    return run


@api_bp.post("/batches/<int:batch_id>/label-runs")
@login_required
@api_bp.arguments(LabelRunSchema)
@api_bp.response(201, LabelRunSchema)
@api_bp.doc(security=SECURITY)
def issue_labels(data: dict[str, Any], batch_id: int) -> LabelRun:
    """Issue the lot's code, or N serialised item codes (within the batch quantity and the
    authorisation's remaining yearly ceiling)."""
    batch = get_batch(batch_id)
    return labels.issue_run(
        batch, data["kind"], data["count"], data["item_quantity"], created_by_id=current_user.id
    )


@api_bp.get("/batches/<int:batch_id>/label-runs")
@login_required
@api_bp.response(200, LabelRunSchema(many=True))
@api_bp.doc(security=SECURITY)
def list_label_runs(batch_id: int) -> list[LabelRun]:
    batch = get_batch(batch_id)
    return list(
        db.session.scalars(
            select(LabelRun).where(LabelRun.batch_id == batch.id).order_by(LabelRun.id)
        )
    )


@api_bp.get("/label-runs/<int:run_id>/codes")
@login_required
@api_bp.response(200, LabelCodeSchema(many=True))
@api_bp.paginate(SelectPage, page_size=100, max_page_size=1000)
@api_bp.doc(security=SECURITY)
def run_codes(run_id: int) -> Any:
    """The run's codes: Digital Link URI, state, scans, and image links."""
    run = get_run(run_id)
    return select(Label).where(Label.run_id == run.id).order_by(Label.id)


@api_bp.post("/label-runs/<int:run_id>/void")
@login_required
@api_bp.arguments(VoidSchema)
@api_bp.response(200, Schema.from_dict({"voided": fields.Integer()}))
@api_bp.doc(security=SECURITY)
def void_run(data: dict[str, Any], run_id: int) -> dict[str, int]:
    """Void the whole run or some of its codes (damaged labels), with a reason."""
    run = get_run(run_id)
    return {"voided": labels.void_labels(run, data["reason"], data["serials"])}
