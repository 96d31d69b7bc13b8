"""REST API of the registry (flask-smorest; described at /api/v1/openapi.json).

Reading is open to everyone signed in or not where the record is public (assets,
authorised users, OCOP); changing anything needs an officer or an admin.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from nguon.api import SECURITY, SelectPage
from nguon.auth import staff_required
from nguon.db import db
from nguon.text import search_terms
from registry import dashboard, services, transfer
from registry.models import (
    AdminUnit,
    AuthorisedUser,
    IPAsset,
    OcopProduct,
    Organisation,
    ProductionArea,
    Target,
)
from registry.schemas import (
    DOCUMENT_KINDS,
    AdminUnitQuerySchema,
    AdminUnitSchema,
    AreaCertificateSchema,
    AreaSchema,
    AssetQuerySchema,
    AssetSchema,
    AssetStatusInputSchema,
    AssetSummarySchema,
    AuthorisedUserSchema,
    AuthorisedUserStatusSchema,
    DocumentSchema,
    ForeignProtectionSchema,
    OcopRerateSchema,
    OcopSchema,
    OrganisationSchema,
    RenewalSchema,
    TargetSchema,
)

api_bp = Blueprint(
    "registry_api",
    __name__,
    url_prefix="/api/v1/registry",
    description="IP registry: organisations, marks and GIs, authorised users, areas, OCOP",
)


def asset_query_from(args: dict[str, Any]) -> services.AssetQuery:
    sort = args.get("sort") or "name"
    return services.AssetQuery(
        q=args.get("q") or "",
        kind=args.get("kind"),
        status=args.get("status"),
        area=args.get("area"),
        product=args.get("product"),
        holder_id=args.get("holder"),
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
    )


# --- organisations and administrative units ---------------------------------------------


class SearchSchema(Schema):
    q = fields.String(load_default="")


@api_bp.get("/organisations")
@api_bp.arguments(SearchSchema, location="query")
@api_bp.response(200, OrganisationSchema(many=True))
@api_bp.paginate(SelectPage)
def list_organisations(args: dict[str, Any]) -> Any:
    """Organisations, searched by name (accents optional) or tax code."""
    return services.organisation_search(args["q"])


@api_bp.post("/organisations")
@staff_required
@api_bp.arguments(OrganisationSchema)
@api_bp.response(201, OrganisationSchema)
@api_bp.doc(security=SECURITY)
def create_organisation(data: dict[str, Any]) -> Organisation:
    return services.save_organisation(data)


@api_bp.get("/organisations/<int:org_id>")
@api_bp.response(200, OrganisationSchema)
def get_organisation(org_id: int) -> Organisation:
    return services.get_or_404(Organisation, org_id)


@api_bp.patch("/organisations/<int:org_id>")
@staff_required
@api_bp.arguments(OrganisationSchema(partial=True))
@api_bp.response(200, OrganisationSchema)
@api_bp.doc(security=SECURITY)
def update_organisation(data: dict[str, Any], org_id: int) -> Organisation:
    return services.save_organisation(data, services.get_or_404(Organisation, org_id))


@api_bp.get("/admin-units")
@api_bp.arguments(AdminUnitQuerySchema, location="query")
@api_bp.response(200, AdminUnitSchema(many=True))
@api_bp.paginate(SelectPage)
def list_admin_units(args: dict[str, Any]) -> Any:
    """Administrative units; ``on`` keeps those valid that day (old records keep old names)."""
    query = select(AdminUnit)
    for term in search_terms(args["q"]):
        query = query.where(AdminUnit.name_key.contains(term, autoescape=True))
    if args["level"]:
        query = query.where(AdminUnit.level == args["level"])
    if args["parent"]:
        query = query.where(AdminUnit.parent_code == args["parent"])
    if args["on"]:
        day = args["on"]
        query = query.where(
            or_(AdminUnit.valid_from.is_(None), AdminUnit.valid_from <= day),
            or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= day),
        )
    return query.order_by(AdminUnit.code)


# --- assets ---------------------------------------------------------------------------------


@api_bp.get("/assets")
@api_bp.arguments(AssetQuerySchema, location="query")
@api_bp.response(200, AssetSummarySchema(many=True))
@api_bp.paginate(SelectPage)
def list_assets(args: dict[str, Any]) -> Any:
    """Search assets: words in any case and with or without accents; filters; sorting."""
    return services.asset_search(asset_query_from(args))


@api_bp.post("/assets")
@staff_required
@api_bp.arguments(AssetSchema)
@api_bp.response(201, AssetSchema)
@api_bp.doc(security=SECURITY)
def create_asset(data: dict[str, Any]) -> IPAsset:
    return services.save_asset(data)


@api_bp.get("/assets/<int:asset_id>")
@api_bp.response(200, AssetSchema)
def get_asset(asset_id: int) -> IPAsset:
    return services.get_or_404(IPAsset, asset_id)


@api_bp.patch("/assets/<int:asset_id>")
@staff_required
@api_bp.arguments(AssetSchema(partial=True, exclude=("status",)))
@api_bp.response(200, AssetSchema)
@api_bp.doc(security=SECURITY)
def update_asset(data: dict[str, Any], asset_id: int) -> IPAsset:
    return services.save_asset(data, services.get_or_404(IPAsset, asset_id))


@api_bp.post("/assets/<int:asset_id>/status")
@staff_required
@api_bp.arguments(AssetStatusInputSchema)
@api_bp.response(200, AssetSchema)
@api_bp.doc(security=SECURITY)
def change_asset_status(data: dict[str, Any], asset_id: int) -> IPAsset:
    """Move an asset along its legal life (filed, examining, granted, expired...)."""
    asset = services.get_or_404(IPAsset, asset_id)
    status, on_date, note = data.pop("status"), data.pop("on_date"), data.pop("note")
    return services.change_asset_status(asset, status, on_date, note, **data)


@api_bp.post("/assets/<int:asset_id>/renewals")
@staff_required
@api_bp.arguments(RenewalSchema)
@api_bp.response(201, RenewalSchema)
@api_bp.doc(security=SECURITY)
def renew_asset(data: dict[str, Any], asset_id: int) -> Any:
    """Renew a mark for 10 years (within 6 months before to 6 months after expiry)."""
    asset = services.get_or_404(IPAsset, asset_id)
    return services.renew_asset(asset, data["renewed_on"], data["decision"])


@api_bp.post("/assets/<int:asset_id>/foreign-protections")
@staff_required
@api_bp.arguments(ForeignProtectionSchema)
@api_bp.response(201, ForeignProtectionSchema)
@api_bp.doc(security=SECURITY)
def add_foreign_protection(data: dict[str, Any], asset_id: int) -> Any:
    return services.add_foreign_protection(services.get_or_404(IPAsset, asset_id), data)


class DocumentUploadSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(DOCUMENT_KINDS))
    title = fields.String(load_default="")


class FileSchema(Schema):
    file = fields.Raw(metadata={"type": "string", "format": "binary"}, required=True)


@api_bp.post("/assets/<int:asset_id>/documents")
@staff_required
@api_bp.arguments(DocumentUploadSchema, location="form")
@api_bp.arguments(FileSchema, location="files")
@api_bp.response(201, DocumentSchema)
@api_bp.doc(security=SECURITY)
def upload_document(form: dict[str, Any], files: dict[str, Any], asset_id: int) -> Any:
    """Attach a PDF, PNG, JPEG or WebP (≤ 10 MiB; checked by content) to an asset."""
    asset = services.get_or_404(IPAsset, asset_id)
    upload = files["file"]
    return services.add_document(
        asset, form["kind"], form["title"], upload.filename or "", upload.read()
    )


# --- production areas ----------------------------------------------------------------------


@api_bp.get("/areas")
@api_bp.arguments(SearchSchema, location="query")
@api_bp.response(200, AreaSchema(many=True))
@api_bp.paginate(SelectPage)
def list_areas(args: dict[str, Any]) -> Any:
    query = select(ProductionArea).options(
        selectinload(ProductionArea.owner), selectinload(ProductionArea.certificates)
    )
    for term in search_terms(args["q"]):
        query = query.where(
            or_(ProductionArea.code.ilike(f"%{term}%"), ProductionArea.crop.ilike(f"%{term}%"))
        )
    return query.order_by(ProductionArea.code)


@api_bp.post("/areas")
@staff_required
@api_bp.arguments(AreaSchema)
@api_bp.response(201, AreaSchema)
@api_bp.doc(security=SECURITY)
def create_area(data: dict[str, Any]) -> ProductionArea:
    return services.save_area(data)


@api_bp.get("/areas/<int:area_id>")
@api_bp.response(200, AreaSchema)
def get_area(area_id: int) -> ProductionArea:
    return services.get_or_404(ProductionArea, area_id)


@api_bp.patch("/areas/<int:area_id>")
@staff_required
@api_bp.arguments(AreaSchema(partial=True))
@api_bp.response(200, AreaSchema)
@api_bp.doc(security=SECURITY)
def update_area(data: dict[str, Any], area_id: int) -> ProductionArea:
    return services.save_area(data, services.get_or_404(ProductionArea, area_id))


@api_bp.post("/areas/<int:area_id>/certificates")
@staff_required
@api_bp.arguments(AreaCertificateSchema)
@api_bp.response(201, AreaCertificateSchema)
@api_bp.doc(security=SECURITY)
def add_area_certificate(data: dict[str, Any], area_id: int) -> Any:
    return services.add_area_certificate(services.get_or_404(ProductionArea, area_id), data)


# --- authorised users ------------------------------------------------------------------------


class AuthorisedUserQuerySchema(Schema):
    asset = fields.Integer(load_default=None)
    organisation = fields.Integer(load_default=None)
    status = fields.String(load_default=None)


@api_bp.get("/authorised-users")
@api_bp.arguments(AuthorisedUserQuerySchema, location="query")
@api_bp.response(200, AuthorisedUserSchema(many=True))
@api_bp.paginate(SelectPage)
def list_authorised_users(args: dict[str, Any]) -> Any:
    query = select(AuthorisedUser).options(
        selectinload(AuthorisedUser.areas), selectinload(AuthorisedUser.organisation)
    )
    if args["asset"]:
        query = query.where(AuthorisedUser.asset_id == args["asset"])
    if args["organisation"]:
        query = query.where(AuthorisedUser.organisation_id == args["organisation"])
    if args["status"]:
        query = query.where(AuthorisedUser.status == args["status"])
    return query.order_by(AuthorisedUser.asset_id, AuthorisedUser.user_code)


@api_bp.post("/authorised-users")
@staff_required
@api_bp.arguments(AuthorisedUserSchema)
@api_bp.response(201, AuthorisedUserSchema)
@api_bp.doc(security=SECURITY)
def create_authorised_user(data: dict[str, Any]) -> AuthorisedUser:
    return services.save_authorised_user(data)


@api_bp.get("/authorised-users/<int:user_id>")
@api_bp.response(200, AuthorisedUserSchema)
def get_authorised_user(user_id: int) -> AuthorisedUser:
    return services.get_or_404(AuthorisedUser, user_id)


@api_bp.patch("/authorised-users/<int:user_id>")
@staff_required
@api_bp.arguments(AuthorisedUserSchema(partial=True))
@api_bp.response(200, AuthorisedUserSchema)
@api_bp.doc(security=SECURITY)
def update_authorised_user(data: dict[str, Any], user_id: int) -> AuthorisedUser:
    if "area_ids" in data and "area_ids" not in (request.get_json(silent=True) or {}):
        data.pop("area_ids")  # partial update: an absent list keeps the current areas
    return services.save_authorised_user(data, services.get_or_404(AuthorisedUser, user_id))


@api_bp.post("/authorised-users/<int:user_id>/status")
@staff_required
@api_bp.arguments(AuthorisedUserStatusSchema)
@api_bp.response(200, AuthorisedUserSchema)
@api_bp.doc(security=SECURITY)
def change_authorised_user_status(data: dict[str, Any], user_id: int) -> AuthorisedUser:
    """Suspend, reinstate or revoke (a reason is required to suspend or revoke)."""
    user = services.get_or_404(AuthorisedUser, user_id)
    return services.change_authorised_user_status(
        user, data["status"], data["reason"], data["on_date"]
    )


# --- OCOP ----------------------------------------------------------------------------------------


@api_bp.get("/ocop")
@api_bp.arguments(SearchSchema, location="query")
@api_bp.response(200, OcopSchema(many=True))
@api_bp.paginate(SelectPage)
def list_ocop(args: dict[str, Any]) -> Any:
    query = select(OcopProduct).options(
        selectinload(OcopProduct.assets), selectinload(OcopProduct.producer)
    )
    for term in search_terms(args["q"]):
        query = query.where(OcopProduct.name_key.contains(term, autoescape=True))
    return query.order_by(OcopProduct.name_key, OcopProduct.id)


@api_bp.post("/ocop")
@staff_required
@api_bp.arguments(OcopSchema)
@api_bp.response(201, OcopSchema)
@api_bp.doc(security=SECURITY)
def create_ocop(data: dict[str, Any]) -> OcopProduct:
    return services.save_ocop_product(data)


@api_bp.get("/ocop/<int:ocop_id>")
@api_bp.response(200, OcopSchema)
def get_ocop(ocop_id: int) -> OcopProduct:
    return services.get_or_404(OcopProduct, ocop_id)


@api_bp.post("/ocop/<int:ocop_id>/rerate")
@staff_required
@api_bp.arguments(OcopRerateSchema)
@api_bp.response(201, OcopSchema)
@api_bp.doc(security=SECURITY)
def rerate_ocop(data: dict[str, Any], ocop_id: int) -> OcopProduct:
    """Record a new rating; the old one is kept and marked re-rated."""
    return services.rerate_ocop_product(services.get_or_404(OcopProduct, ocop_id), data)


# --- targets, dashboard, import/export -----------------------------------------------------------


@api_bp.get("/targets")
@api_bp.response(200, TargetSchema(many=True))
def list_targets() -> Any:
    return db.session.scalars(select(Target).order_by(Target.metric, Target.by_year)).all()


@api_bp.post("/targets")
@staff_required
@api_bp.arguments(TargetSchema)
@api_bp.response(201, TargetSchema)
@api_bp.doc(security=SECURITY)
def create_target(data: dict[str, Any]) -> Target:
    return services.save_target(data)


@api_bp.patch("/targets/<int:target_id>")
@staff_required
@api_bp.arguments(TargetSchema(partial=True))
@api_bp.response(200, TargetSchema)
@api_bp.doc(security=SECURITY)
def update_target(data: dict[str, Any], target_id: int) -> Target:
    return services.save_target(data, services.get_or_404(Target, target_id))


class DashboardSchema(Schema):
    on = fields.Date()
    charts = fields.Dict(keys=fields.String(), values=fields.Dict())
    targets = fields.List(fields.Dict())
    applications = fields.List(fields.Dict())
    renewals_due = fields.List(fields.Dict())
    ocop_expiring = fields.List(fields.Dict())


class DashboardQuerySchema(Schema):
    on = fields.Date(load_default=None)


@api_bp.get("/dashboard")
@staff_required
@api_bp.arguments(DashboardQuerySchema, location="query")
@api_bp.response(200, DashboardSchema)
@api_bp.doc(security=SECURITY)
def get_dashboard(args: dict[str, Any]) -> dict[str, Any]:
    """The officer dashboard's figures (``on`` defaults to today)."""
    today = args["on"] or dt.date.today()
    figures = dashboard.figures(today)
    return {
        "on": today,
        "charts": {
            k: {"title": c.title, "columns": c.columns, "rows": c.rows}
            for k, c in figures.charts.items()
        },
        "targets": figures.targets,
        "applications": figures.applications,
        "renewals_due": [
            {
                "asset_id": d["asset"].id,
                "name": d["asset"].name,
                "expiry_date": d["expiry_date"].isoformat(),
                "window_open": d["window_open"],
                "days_left": d["days_left"],
            }
            for d in dashboard.renewals_due(today)
        ],
        "ocop_expiring": [
            {"id": o.id, "name": o.name, "expiry_date": o.expiry_date.isoformat()}
            for o in dashboard.ocop_expiring(today)
        ],
    }


class ExportQuerySchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


@api_bp.get("/export/<any(assets, areas, 'authorised-users', ocop):entity>")
@staff_required
@api_bp.arguments(ExportQuerySchema, location="query")
@api_bp.doc(security=SECURITY, responses={200: {"description": "the records, as CSV or JSON"}})
def export(args: dict[str, Any], entity: str) -> Response:
    """Every record of ``entity`` (assets, areas, authorised-users, ocop) as CSV or JSON."""
    return transfer_response(entity, args["format"])


def transfer_response(entity: str, fmt: str) -> Response:
    import json

    rows = transfer.export_rows(entity)
    stamp = dt.date.today().isoformat()
    if fmt == "csv":
        body, mime = transfer.to_csv(rows), "text/csv; charset=utf-8"
    else:
        body, mime = json.dumps(rows, ensure_ascii=False, indent=1), "application/json"
    response = Response(body, mimetype=mime.split(";")[0], content_type=mime)
    response.headers["Content-Disposition"] = f'attachment; filename="nguon-{entity}-{stamp}.{fmt}"'
    return response


class ImportQuerySchema(Schema):
    format = fields.String(load_default=None, validate=validate.OneOf(["json", "csv"]))
    dry_run = fields.Boolean(load_default=False)


class ImportReportSchema(Schema):
    entity = fields.String()
    dry_run = fields.Boolean()
    total = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    imported = fields.Boolean()
    rows_with_errors = fields.List(fields.Dict())


@api_bp.post("/import/<any(assets, areas, 'authorised-users', ocop):entity>")
@staff_required
@api_bp.arguments(ImportQuerySchema, location="query")
@api_bp.response(200, ImportReportSchema)
@api_bp.alt_response(422, schema=ImportReportSchema, description="rows with errors; nothing kept")
@api_bp.doc(security=SECURITY)
def import_records(args: dict[str, Any], entity: str) -> Any:
    """Import a CSV or JSON body (or an uploaded ``file``). With ``dry_run`` nothing is
    kept; with any bad row nothing is kept and every row's errors are listed (422)."""
    upload = request.files.get("file")
    payload = upload.read() if upload else request.get_data()
    fmt = args["format"] or _guess_format(upload.filename if upload else "", request.mimetype)
    rows = transfer.parse_rows(entity, payload, fmt)
    report = transfer.import_rows(entity, rows, dry_run=args["dry_run"])
    return report.as_dict(), (200 if report.ok else 422)


def _guess_format(filename: str, mimetype: str) -> str:
    if filename.lower().endswith(".csv") or mimetype in ("text/csv", "text/plain"):
        return "csv"
    return "json"
