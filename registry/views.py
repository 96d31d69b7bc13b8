"""Registry pages: the public register (no sign-in) and the officers' pages."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable, Sequence
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
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from nguon.auth import staff_required
from nguon.db import db, paginate
from nguon.errors import DomainValidationError
from nguon.i18n import _, _l, label
from registry import audit_words, dashboard, geo, services, transfer
from registry.forms import FormField, enum_choices, load, parse_form, values_of
from registry.labels import register_labels
from registry.models import (
    AssetKind,
    AssetStatus,
    AuthorisedUser,
    AuthorisedUserStatus,
    CertificateScheme,
    Document,
    IPAsset,
    OcopCriteria,
    OcopGroup,
    OcopLevel,
    OcopProcedure,
    OcopProduct,
    Organisation,
    OrganisationKind,
    ProductionArea,
    ProtectionRoute,
    Target,
)
from registry.schemas import (
    AreaCertificateSchema,
    AreaSchema,
    AssetSchema,
    AuthorisedUserSchema,
    ForeignProtectionSchema,
    OcopRerateSchema,
    OcopSchema,
    OrganisationSchema,
    TargetSchema,
)

bp = Blueprint("registry", __name__, url_prefix="/registry")
register_labels()
audit_words.register()
PAGE_SIZE = 25


def _values(enum_cls: Any) -> list[str]:
    return [str(m.value) for m in enum_cls]


def organisation_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Organisation.id, Organisation.name).order_by(Organisation.name_key)
    )
    return [(row.id, row.name) for row in rows]


def asset_choices() -> list[tuple[int, str]]:
    """Name, kind and certificate number: two assets with one name are told apart."""
    rows = db.session.execute(
        select(IPAsset.id, IPAsset.name, IPAsset.kind, IPAsset.certificate_number).order_by(
            IPAsset.name_key, IPAsset.kind
        )
    )
    return [
        (
            row.id,
            f"{row.name} ({_kind_label(row.kind)}"
            f"{' ' + _('no.') + ' ' + row.certificate_number if row.certificate_number else ''})",
        )
        for row in rows
    ]


def area_choices(owner_id: int | None = None) -> list[tuple[int, str]]:
    """Areas with their owners; only ``owner_id``'s own when it is known (an authorisation
    covers the authorised organisation's areas, never another's)."""
    query = (
        select(ProductionArea.id, ProductionArea.code, ProductionArea.crop, Organisation.name)
        .join(Organisation, Organisation.id == ProductionArea.owner_id)
        .order_by(Organisation.name_key, ProductionArea.code)
    )
    if owner_id is not None:
        query = query.where(ProductionArea.owner_id == owner_id)
    return [(row.id, f"{row.code} — {row.crop} ({row.name})") for row in db.session.execute(query)]


def _kind_label(kind: str) -> str:
    from nguon.i18n import label

    return label("asset_kind", kind)


def _blank() -> list[tuple[str, str]]:
    return [("", "—")]


def with_blank(choices: Callable[[], Sequence[tuple[Any, Any]]]) -> Callable[[], list[Any]]:
    return lambda: [*_blank(), *choices()]


ORGANISATION_FORM = [
    FormField(
        "kind",
        _l("Kind"),
        "select",
        enum_choices("org_kind", _values(OrganisationKind)),
        required=True,
    ),
    FormField("name", _l("Name"), required=True),
    FormField("tax_code", _l("Tax code"), help=_l("10 digits, or 10-3 for a branch")),
    FormField("address", _l("Address"), "textarea"),
    FormField("gln", _l("GLN"), help=_l("13 digits with the GS1 check digit")),
    FormField("phone", _l("Phone")),
    FormField("email", _l("Email")),
]

ASSET_FORM = [
    FormField(
        "kind", _l("Kind"), "select", enum_choices("asset_kind", _values(AssetKind)), required=True
    ),
    FormField("name", _l("Name"), required=True),
    FormField("products", _l("Products"), "list", help=_l("separate with ';'"), required=True),
    FormField("nice_classes", _l("Nice classes"), "ints", help=_l("1 to 45, separated by commas")),
    FormField("holder_id", _l("Holder (marks)"), "select", with_blank(organisation_choices)),
    FormField(
        "managing_organisation_id",
        _l("Managing organisation (GIs)"),
        "select",
        with_blank(organisation_choices),
    ),
    FormField("district_name", _l("District or area named in the dossier")),
    FormField("application_number", _l("Application number"), help="4-2025-20619"),
    FormField("filing_date", _l("Filing date"), "date"),
    FormField("certificate_number", _l("Certificate number"), help=_l("GIs: 5 digits, e.g. 00096")),
    FormField("grant_decision", _l("Grant decision")),
    FormField("grant_date", _l("Grant date"), "date"),
    FormField(
        "area",
        _l("Zone (GeoJSON polygon)"),
        "geometry",
        help=_l("coordinates as [longitude, latitude]"),
    ),
    FormField("product_specification", _l("Product specification"), "textarea"),
    FormField("notes", _l("Notes"), "textarea"),
]
ASSET_CREATE_FORM = [
    *ASSET_FORM[:2],
    FormField("status", _l("Status"), "select", enum_choices("asset_status", _values(AssetStatus))),
    *ASSET_FORM[2:],
]

AREA_FORM = [
    FormField("code", _l("Area code"), required=True, help="VN-BG-LN-0012"),
    FormField("name", _l("Name")),
    FormField("crop", _l("Crop or livestock"), required=True),
    FormField("owner_id", _l("Owner"), "select", with_blank(organisation_choices), required=True),
    FormField("hectares", _l("Hectares"), "number", required=True),
    FormField("expected_yield_kg_per_ha", _l("Expected yield (kg/ha)"), "number"),
    FormField(
        "geometry",
        _l("Geometry (GeoJSON point or polygon)"),
        "geometry",
        required=True,
        help=_l("coordinates as [longitude, latitude]"),
    ),
]

CERTIFICATE_FORM = [
    FormField(
        "scheme",
        _l("Scheme"),
        "select",
        enum_choices("scheme", _values(CertificateScheme)),
        required=True,
    ),
    FormField("number", _l("Certificate number"), required=True),
    FormField("issuer", _l("Issued by"), required=True),
    FormField("valid_from", _l("Valid from"), "date"),
    FormField("valid_to", _l("Valid to"), "date", required=True),
]

AUTHORISED_USER_FORM = [
    FormField("asset_id", _l("Mark or GI"), "select", with_blank(asset_choices), required=True),
    FormField(
        "organisation_id",
        _l("Organisation"),
        "select",
        with_blank(organisation_choices),
        required=True,
    ),
    FormField("decision_number", _l("Decision number"), required=True),
    FormField("decision_date", _l("Decision date"), "date", required=True),
    FormField("valid_from", _l("Valid from"), "date", required=True),
    FormField("valid_to", _l("Valid to"), "date"),
    FormField("user_code", _l("User code"), required=True),
    FormField("products", _l("Products"), "list", help=_l("separate with ';'"), required=True),
    FormField("yearly_ceiling", _l("Yearly ceiling"), "number"),
    FormField(
        "ceiling_unit",
        _l("Unit"),
        "select",
        lambda: [(u, label("unit", u)) for u in ("KGM", "TNE", "H87", "LTR")],  # in words
    ),
    FormField(
        "area_ids",
        _l("Production areas (the organisation's own)"),
        "multiselect",
        area_choices,
        help=_l("each area is shown with its owner; only the organisation's own are accepted"),
    ),
]


def authorised_user_form(owner_id: int | None) -> list[FormField]:
    """The form, its area choices narrowed to the organisation's own areas once known."""
    if owner_id is None:
        return AUTHORISED_USER_FORM
    return [
        dataclasses.replace(f, choices=lambda: area_choices(owner_id))
        if f.name == "area_ids"
        else f
        for f in AUTHORISED_USER_FORM
    ]


OCOP_FORM = [
    FormField("name", _l("Product"), required=True),
    FormField(
        "producer_id", _l("Producer"), "select", with_blank(organisation_choices), required=True
    ),
    FormField(
        "product_group",
        _l("Group"),
        "select",
        enum_choices("ocop_group", _values(OcopGroup)),
        required=True,
    ),
    FormField(
        "criteria_version",
        _l("Criteria"),
        "select",
        lambda: [(v, v) for v in _values(OcopCriteria)],
        required=True,
    ),
    FormField(
        "procedure_version",
        _l("Procedure"),
        "select",
        lambda: [(v, v) for v in _values(OcopProcedure)],
        required=True,
        help=_l("Decision 1489/QĐ-TTg (2025) changed the procedure, not the criteria"),
    ),
    FormField("score", _l("Score"), "number", required=True),
    FormField(
        "stars", _l("Stars"), "select", lambda: [(3, "3★"), (4, "4★"), (5, "5★")], required=True
    ),
    FormField(
        "rating_level",
        _l("Rating level"),
        "select",
        enum_choices("ocop_level", _values(OcopLevel)),
        required=True,
    ),
    FormField("decision_number", _l("Decision number"), required=True),
    FormField("decision_date", _l("Decision date"), "date", required=True),
    FormField("gtins", _l("GTINs"), "list"),
    FormField("asset_ids", _l("Linked marks and GIs"), "multiselect", asset_choices),
]
RERATE_FORM = [f for f in OCOP_FORM if f.name in OcopRerateSchema().fields]

TARGET_FORM = [
    FormField(
        "metric",
        _l("Metric"),
        "select",
        enum_choices("metric", list(services.TARGET_METRICS)),
        required=True,
    ),
    FormField(
        "value",
        _l("Value"),
        "number",
        required=True,
        help=_l("a count, or a yearly rate such as 0.05"),
    ),
    FormField("by_year", _l("By year"), "number", required=True),
    FormField("source", _l("Source"), "textarea"),
]


def form_page(
    title: str,
    fields: Sequence[FormField],
    schema: Any,
    save: Callable[[dict[str, Any]], Any],
    done: Callable[[Any], str],
    initial: dict[str, Any] | None = None,
    partial: bool = False,
    check: Callable[[dict[str, Any]], None] | None = None,
    **extra: Any,
) -> Any:
    """GET shows the form; POST reads it through ``schema`` and ``save``; errors re-show it.

    A form with a geometry field also takes a zone file (``action=import``): it is read
    into the field and shown for checking, nothing is saved. ``check`` may refuse the
    loaded data before ``save`` (e.g. a declared area the shape does not bear out)."""
    values = initial or {}
    errors: dict[str, list[str]] = {}
    status = 200
    imported: dict[str, Any] = {}
    if request.method == "POST":
        data = parse_form(fields, request.form)
        values = {
            f.name: request.form.getlist(f.name)
            if f.kind == "multiselect"
            else request.form.get(f.name, "")
            for f in fields
        }
        if request.form.get("action") == "import":
            errors, status, imported = _import_into(fields, values)
        else:
            try:
                loaded = load(schema, data, partial=partial)
                if check is not None:
                    check(loaded)
                saved = save(loaded)
            except DomainValidationError as exc:
                errors, status = exc.errors, 422
            else:
                flash(_("Saved."), "success")
                return redirect(done(saved))
    geometry = _geometry_context(fields, values, extra.pop("exclude", {}))
    return render_template(
        "registry/form.html",
        title=title,
        fields=fields,
        values=values,
        errors=errors,
        imported=imported,
        geometry=geometry,
        **extra,
    ), status


def _import_into(
    fields: Sequence[FormField], values: dict[str, Any]
) -> tuple[dict[str, list[str]], int, dict[str, Any]]:
    """Read the uploaded zone file into the geometry field's value (not saved)."""
    import json

    from registry import geoimport

    field = next((f for f in fields if f.kind == "geometry"), None)
    upload = request.files.get(f"{field.name}_file") if field else None
    if field is None or upload is None or not upload.filename:
        name = f"{field.name}_file" if field else "file"
        return {name: [_("choose a file to import")]}, 422, {}
    try:
        found = geoimport.read_shape(upload.filename, upload.read(geoimport.MAX_FILE_BYTES + 1))
        geo.parse_geometry(found.geometry)
    except (geoimport.ImportRefused, geo.GeometryError) as exc:
        return {f"{field.name}_file": [str(exc)]}, 422, {}
    values[field.name] = json.dumps(found.geometry, ensure_ascii=False)
    return {}, 200, {"filename": upload.filename, "kind": found.kind, "parts": found.parts,
                     "notes": found.notes}  # fmt: skip


def _geometry_context(
    fields: Sequence[FormField], values: dict[str, Any], exclude: dict[str, Any]
) -> dict[str, Any]:
    """For the geometry field: the map editor's settings, and the shape as it stands (its
    hectares measured on the ellipsoid and an SVG preview) when it parses."""
    import json

    field = next((f for f in fields if f.kind == "geometry"), None)
    if field is None:
        return {}
    context: dict[str, Any] = {
        "field": field.name,
        "base_url": url_for("registry.map_base", **exclude),
        "tiles": current_app.config.get("MAP_TILES_URL") or "",
    }
    try:
        shape = geo.normalised(json.loads(values.get(field.name) or "null") or {})
    except (ValueError, TypeError, geo.GeometryError):
        return context
    context["hectares"] = geo.hectares(shape)
    context["svg"] = geo.svg_map([geo.Layer(shape, "zone")], 320, 220, _("Preview"))
    return context


def page_of(query: Any, page: int, size: int = PAGE_SIZE) -> tuple[list[Any], int, int]:
    return paginate(query, page, size)


# --- public register -------------------------------------------------------------------


def asset_query_args() -> services.AssetQuery:
    sort = request.args.get("sort", "name")
    kind = request.args.get("kind") or None
    status = request.args.get("status") or None
    holder = request.args.get("holder", type=int)
    return services.AssetQuery(
        q=request.args.get("q", ""),
        kind=kind if kind in _values(AssetKind) else None,
        status=status if status in _values(AssetStatus) else None,
        area=request.args.get("area") or None,
        product=request.args.get("product") or None,
        holder_id=holder,
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
    )


@bp.get("/")
def assets() -> str:
    """The public, searchable list of every asset."""
    params = asset_query_args()
    page = max(1, request.args.get("page", 1, type=int))
    items, total, pages = page_of(services.asset_search(params), page)
    districts = db.session.scalars(
        select(IPAsset.district_name)
        .where(IPAsset.district_name != "")
        .distinct()
        .order_by(IPAsset.district_name)
    ).all()
    return render_template(
        "registry/assets.html",
        assets=items,
        total=total,
        page=page,
        pages=pages,
        params=params,
        districts=districts,
        kinds=_values(AssetKind),
        statuses=_values(AssetStatus),
    )


@bp.get("/assets/<int:asset_id>")
def asset(asset_id: int) -> str:
    """An asset's public page: certificate, holder, zone map, authorised users."""
    item = services.get_or_404(IPAsset, asset_id)
    users = db.session.scalars(
        select(AuthorisedUser)
        .where(
            AuthorisedUser.asset_id == item.id,
            AuthorisedUser.status == AuthorisedUserStatus.ACTIVE,
        )
        .order_by(AuthorisedUser.user_code)
    ).all()
    layers = []
    if item.area:
        layers.append(geo.Layer(item.area, "zone", item.name))
    for user in users:
        for area in user.areas:
            layers.append(
                geo.Layer(area.geometry, "plot", f"{area.code} — {user.organisation.name}")
            )
    map_svg = geo.svg_map(layers, title=_("Area of %(name)s", name=item.name)) if layers else None
    ocop = db.session.scalars(
        select(OcopProduct).where(OcopProduct.assets.any(IPAsset.id == item.id))
    ).all()
    return render_template(
        "registry/asset.html",
        asset=item,
        users=users,
        map_svg=map_svg,
        ocop=ocop,
        regulation=item.latest_document("regulation"),
        today=dt.date.today(),
    )


@bp.get("/documents/<int:document_id>/<path:filename>")
def document(document_id: int, filename: str) -> Response:
    found = services.get_or_404(Document, document_id)
    if filename != found.filename:
        return redirect(url_for(".document", document_id=found.id, filename=found.filename), 301)
    path = services.document_path(found.sha256)
    if not path.exists():
        abort(404, description="the file is missing from storage")
    response = send_file(
        path,
        mimetype=found.media_type,
        download_name=found.filename,
        max_age=31536000,
        etag=found.sha256,
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- officers: assets --------------------------------------------------------------------


@bp.route("/manage/assets/new", methods=["GET", "POST"])
@staff_required
def new_asset() -> Any:
    return form_page(
        _("New mark or GI"),
        ASSET_CREATE_FORM,
        AssetSchema(),
        services.save_asset,
        lambda a: url_for(".manage_asset", asset_id=a.id),
    )


@bp.route("/manage/assets/<int:asset_id>/edit", methods=["GET", "POST"])
@staff_required
def edit_asset(asset_id: int) -> Any:
    item = services.get_or_404(IPAsset, asset_id)
    return form_page(
        _("Edit %(name)s", name=item.name),
        ASSET_FORM,
        AssetSchema(exclude=("status",)),
        lambda data: services.save_asset(data, item),
        lambda a: url_for(".manage_asset", asset_id=a.id),
        initial=values_of(item, ASSET_FORM),
        partial=True,
        exclude={"asset": item.id},
    )


@bp.route("/manage/assets/<int:asset_id>", methods=["GET", "POST"])
@staff_required
def manage_asset(asset_id: int) -> Any:
    """An officer's view of one asset: status, renewals, protection abroad, documents."""
    item = services.get_or_404(IPAsset, asset_id)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        action = request.form.get("action")
        try:
            _asset_action(item, action)
        except DomainValidationError as exc:
            errors, status = {f"{action}.{k}": v for k, v in exc.errors.items()}, 422
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".manage_asset", asset_id=item.id))
    return render_template(
        "registry/asset_manage.html",
        asset=item,
        errors=errors,
        form=request.form,
        next_states=sorted(services.STATUS_FLOW.get(item.status, set())),
        routes=_values(ProtectionRoute),
        window=_window(item),
        zone=_zone_flags(item),
    ), status


def _zone_flags(item: IPAsset) -> dict[str, Any]:
    confirmation = services.latest_confirmation(asset=item)
    return {
        "measured": geo.hectares(item.area),
        "confirmation": confirmation,
        "confirmed": confirmation is not None
        and confirmation.geometry_sha256 == geo.fingerprint(item.area),
    }


def _window(item: IPAsset) -> tuple[dt.date, dt.date] | None:
    from registry import rules

    return rules.renewal_window(item.expiry_date) if item.expiry_date else None


def _asset_action(item: IPAsset, action: str | None) -> None:
    form = request.form
    if action == "status":
        data = {
            k: v
            for k, v in form.items()
            if v
            and k
            in (
                "status",
                "on_date",
                "note",
                "certificate_number",
                "grant_decision",
                "grant_date",
                "application_number",
                "filing_date",
            )
        }
        from registry.schemas import AssetStatusInputSchema

        loaded = load(AssetStatusInputSchema(), data)
        services.change_asset_status(
            item, loaded.pop("status"), loaded.pop("on_date"), loaded.pop("note"), **loaded
        )
    elif action == "renew":
        from registry.schemas import RenewalSchema

        loaded = load(
            RenewalSchema(),
            {k: v for k, v in form.items() if v and k in ("renewed_on", "decision")},
        )
        services.renew_asset(item, loaded["renewed_on"], loaded["decision"])
    elif action == "protection":
        keys = ("territory", "route", "number", "on_date", "note")
        loaded = load(ForeignProtectionSchema(), {k: v for k, v in form.items() if v and k in keys})
        services.add_foreign_protection(item, loaded)
    elif action == "document":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise DomainValidationError({"file": _("choose a file")})
        services.add_document(
            item, form.get("kind", "other"), form.get("title", ""), upload.filename, upload.read()
        )
    else:
        abort(400, description="unknown action")


# --- officers: organisations, areas, authorised users, OCOP, targets ------------------------


def _list_page(
    title: str,
    query: Any,
    columns: list[tuple[str, Callable[[Any], Any]]],
    new_url: str | None,
    link: Callable[[Any], str] | None = None,
) -> str:
    page = max(1, request.args.get("page", 1, type=int))
    items, total, pages = page_of(query, page)
    return render_template(
        "registry/list.html",
        title=title,
        items=items,
        total=total,
        page=page,
        pages=pages,
        columns=columns,
        new_url=new_url,
        link=link,
    )


@bp.get("/manage/organisations")
@staff_required
def organisations() -> str:
    return _list_page(
        _("Organisations"),
        services.organisation_search(request.args.get("q", "")),
        [
            (_("Name"), lambda o: o.name),
            (_("Kind"), lambda o: ("org_kind", o.kind)),
            (_("Tax code"), lambda o: o.tax_code or "—"),
            (_("Address"), lambda o: o.address),
        ],
        url_for(".new_organisation"),
        lambda o: url_for(".edit_organisation", org_id=o.id),
    )


@bp.route("/manage/organisations/new", methods=["GET", "POST"])
@staff_required
def new_organisation() -> Any:
    return form_page(
        _("New organisation"),
        ORGANISATION_FORM,
        OrganisationSchema(),
        services.save_organisation,
        lambda o: url_for(".organisations"),
    )


@bp.route("/manage/organisations/<int:org_id>", methods=["GET", "POST"])
@staff_required
def edit_organisation(org_id: int) -> Any:
    org = services.get_or_404(Organisation, org_id)
    return form_page(
        _("Edit %(name)s", name=org.name),
        ORGANISATION_FORM,
        OrganisationSchema(),
        lambda d: services.save_organisation(d, org),
        lambda o: url_for(".organisations"),
        initial=values_of(org, ORGANISATION_FORM),
        partial=True,
    )


def _area_flags(area: ProductionArea) -> dict[str, Any]:
    """What an area's page and list say about its shape: measured hectares, whether the
    declared area is off by more than the tolerance, and whether an officer confirmed
    this very shape (a confirmation of an earlier shape no longer counts)."""
    measured = geo.hectares(area.geometry)
    confirmation = services.latest_confirmation(area=area)
    return {
        "measured": measured,
        "mismatch": geo.mismatch(area.hectares, measured, current_app.config["AREA_TOLERANCE"]),
        "confirmation": confirmation,
        "confirmed": confirmation is not None
        and confirmation.geometry_sha256 == geo.fingerprint(area.geometry),
    }


@bp.get("/manage/areas")
@staff_required
def areas() -> str:
    def measured(a: ProductionArea) -> str:
        flags = _area_flags(a)
        text = f"{flags['measured']:.2f}" if flags["measured"] else "—"
        if flags["mismatch"]:
            text += " ⚠ " + _("differs from the declared area")
        if flags["confirmed"]:
            text += " ✓ " + _("confirmed")
        return text

    return _list_page(
        _("Production areas"),
        select(ProductionArea)
        .options(selectinload(ProductionArea.owner), selectinload(ProductionArea.certificates))
        .order_by(ProductionArea.code),
        [
            (_("Area code"), lambda a: a.code),
            (_("Crop or livestock"), lambda a: a.crop),
            (_("Owner"), lambda a: a.owner.name),
            (_("Hectares declared"), lambda a: a.hectares),
            (_("Hectares measured"), measured),
            (
                _("Certificates"),
                lambda a: ", ".join(f"{c.scheme} {c.number}" for c in a.certificates) or "—",
            ),
        ],
        url_for(".new_area"),
        lambda a: url_for(".edit_area", area_id=a.id),
    )


def _check_declared_hectares(data: dict[str, Any]) -> None:
    """A declared area further than the tolerance from the drawn shape is refused until the
    officer ticks that it is confirmed (the page then flags it)."""
    if data.get("geometry") is None or data.get("hectares") is None:
        return
    try:
        measured = geo.hectares(geo.normalised(data["geometry"]))
    except geo.GeometryError:
        return  # the service names what is wrong with the shape
    tolerance = current_app.config["AREA_TOLERANCE"]
    if geo.mismatch(data["hectares"], measured, tolerance) and not request.form.get(
        "confirm_hectares"
    ):
        raise DomainValidationError(
            {
                "hectares": _(
                    "%(declared)s ha declared, but the shape measures %(measured)s ha (more than"
                    " %(tolerance)s %% apart): correct one of them, or tick the box below to"
                    " keep the declared area",
                    declared=f"{data['hectares']:.2f}",
                    measured=f"{measured:.2f}",
                    tolerance=f"{float(tolerance) * 100:g}",
                )
            }
        )


@bp.route("/manage/areas/new", methods=["GET", "POST"])
@staff_required
def new_area() -> Any:
    return form_page(
        _("New production area"),
        AREA_FORM,
        AreaSchema(),
        services.save_area,
        lambda a: url_for(".edit_area", area_id=a.id),
        check=_check_declared_hectares,
        confirm_hectares=True,
    )


@bp.route("/manage/areas/<int:area_id>", methods=["GET", "POST"])
@staff_required
def edit_area(area_id: int) -> Any:
    area = services.get_or_404(ProductionArea, area_id)
    return form_page(
        _("Area %(code)s", code=area.code),
        AREA_FORM,
        AreaSchema(),
        lambda d: services.save_area(d, area),
        lambda a: url_for(".edit_area", area_id=a.id),
        initial=values_of(area, AREA_FORM),
        partial=True,
        check=_check_declared_hectares,
        confirm_hectares=True,
        exclude={"area": area.id},
        certificates=area.certificates,
        area=area,
        flags=_area_flags(area),
        confirmations=services.confirmations(area=area),
        links=[(_("Add a certificate"), url_for(".new_area_certificate", area_id=area.id))],
    )


@bp.post("/manage/<any(areas, assets):kind>/<int:record_id>/confirm")
@staff_required
def confirm_zone(kind: str, record_id: int) -> Any:
    """An officer confirms the zone as mapped (who, when, under which decision)."""
    from flask_login import current_user

    record: Any = services.get_or_404(ProductionArea if kind == "areas" else IPAsset, record_id)
    back = (
        url_for(".edit_area", area_id=record.id)
        if kind == "areas"
        else url_for(".manage_asset", asset_id=record.id)
    )
    try:
        services.confirm_zone(
            record,
            request.form.get("decision_number", ""),
            request.form.get("decision_date", ""),
            request.form.get("note", ""),
            (current_user.id, current_user.email),
        )
    except DomainValidationError as exc:
        flash(exc.for_people(), "error")
        return redirect(back + "#confirm"), 303
    flash(_("The zone is confirmed."), "success")
    return redirect(back + "#confirm"), 303


@bp.get("/manage/map-base.json")
@staff_required
def map_base() -> Response:
    """The map editor's offline base: communes as named points (administrative units in
    force), and the other registered areas and zones with their owners."""
    response = Response(
        json.dumps(
            services.map_base(
                exclude_area=request.args.get("area", type=int),
                exclude_asset=request.args.get("asset", type=int),
            ),
            ensure_ascii=False,
            separators=(",", ":"),
        ),
        mimetype="application/json",
    )
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.post("/manage/measure")
@staff_required
def measure() -> Response:
    """The map editor asks, as the officer draws: is the shape valid, and how many hectares
    does it measure on the ellipsoid? (The same checks and measure as on saving.)"""
    body = request.get_json(silent=True)
    geometry = body.get("geometry") if isinstance(body, dict) else None
    try:
        shape = geo.normalised(geometry) if geometry else None
    except geo.GeometryError as exc:
        return Response(
            json.dumps({"valid": False, "message": str(exc)}), mimetype="application/json"
        )
    hectares = geo.hectares(shape) if shape else None
    return Response(
        json.dumps({"valid": shape is not None, "hectares": f"{hectares:.2f}" if shape else None}),
        mimetype="application/json",
    )


@bp.after_request
def _tiles_in_csp(response: Response) -> Response:
    """Pages with the map editor may load tiles from NGUON_MAP_TILES_URL's origin."""
    tiles = current_app.config.get("MAP_TILES_URL")
    if tiles and response.mimetype == "text/html" and b'class="map-editor' in response.get_data():
        from urllib.parse import urlsplit

        from nguon.app import CSP

        parts = urlsplit(tiles.replace("{s}", "a").replace("{z}", "0"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}." in tiles else parts.netloc
        response.headers["Content-Security-Policy"] = CSP.replace(
            "img-src 'self' data:", f"img-src 'self' data: {parts.scheme}://{host}"
        )
    return response


@bp.route("/manage/areas/<int:area_id>/certificates", methods=["GET", "POST"])
@staff_required
def new_area_certificate(area_id: int) -> Any:
    area = services.get_or_404(ProductionArea, area_id)
    return form_page(
        _("Add a certificate to %(code)s", code=area.code),
        CERTIFICATE_FORM,
        AreaCertificateSchema(),
        lambda d: services.add_area_certificate(area, d),
        lambda c: url_for(".edit_area", area_id=area.id),
    )


@bp.get("/manage/authorised-users")
@staff_required
def authorised_users() -> str:
    return _list_page(
        _("Authorised users"),
        select(AuthorisedUser)
        .options(selectinload(AuthorisedUser.asset), selectinload(AuthorisedUser.organisation))
        .order_by(AuthorisedUser.asset_id, AuthorisedUser.user_code),
        [
            (_("User code"), lambda u: u.user_code),
            (_("Mark or GI"), lambda u: u.asset.name),
            (_("Organisation"), lambda u: u.organisation.name),
            (_("Valid to"), lambda u: u.valid_to or "—"),
            (_("Status"), lambda u: ("user_status", u.status)),
        ],
        url_for(".new_authorised_user"),
        lambda u: url_for(".edit_authorised_user", user_id=u.id),
    )


@bp.route("/manage/authorised-users/new", methods=["GET", "POST"])
@staff_required
def new_authorised_user() -> Any:
    return form_page(
        _("New authorised user"),
        AUTHORISED_USER_FORM,
        AuthorisedUserSchema(),
        services.save_authorised_user,
        lambda u: url_for(".authorised_users"),
    )


@bp.route("/manage/authorised-users/<int:user_id>", methods=["GET", "POST"])
@staff_required
def edit_authorised_user(user_id: int) -> Any:
    user = services.get_or_404(AuthorisedUser, user_id)
    if request.method == "POST" and request.form.get("action") in (
        "suspended",
        "revoked",
        "active",
    ):
        try:
            services.change_authorised_user_status(
                user, request.form["action"], request.form.get("reason", "")
            )
        except DomainValidationError as exc:
            flash("; ".join(str(m) for ms in exc.errors.values() for m in ms), "error")
            return redirect(url_for(".edit_authorised_user", user_id=user.id)), 303
        flash(_("Saved."), "success")
        return redirect(url_for(".edit_authorised_user", user_id=user.id))
    initial = values_of(user, AUTHORISED_USER_FORM)
    initial["area_ids"] = [str(a.id) for a in user.areas]
    posted_org = request.form.get("organisation_id", type=int)
    return form_page(
        _("Authorised user %(code)s", code=user.user_code),
        authorised_user_form(posted_org or user.organisation_id),
        AuthorisedUserSchema(),
        lambda d: services.save_authorised_user(d, user),
        lambda u: url_for(".authorised_users"),
        initial=initial,
        partial=True,
        authorised_user=user,
        next_user_states=sorted(services.USER_STATUS_FLOW.get(user.status, set())),
    )


@bp.get("/manage/ocop")
@staff_required
def ocop_products() -> str:
    return _list_page(
        _("OCOP products"),
        select(OcopProduct)
        .options(selectinload(OcopProduct.producer))
        .order_by(OcopProduct.expiry_date),
        [
            (_("Product"), lambda o: o.name),
            (_("Producer"), lambda o: o.producer.name),
            (_("Stars"), lambda o: "★" * o.stars),
            (_("Score"), lambda o: o.score),
            (_("Valid to"), lambda o: o.expiry_date),
            (_("Status"), lambda o: ("ocop_status", o.status)),
        ],
        url_for(".new_ocop"),
        lambda o: url_for(".rerate_ocop", ocop_id=o.id),
    )


@bp.route("/manage/ocop/new", methods=["GET", "POST"])
@staff_required
def new_ocop() -> Any:
    return form_page(
        _("New OCOP rating"),
        OCOP_FORM,
        OcopSchema(),
        services.save_ocop_product,
        lambda o: url_for(".ocop_products"),
    )


@bp.route("/manage/ocop/<int:ocop_id>/rerate", methods=["GET", "POST"])
@staff_required
def rerate_ocop(ocop_id: int) -> Any:
    previous = services.get_or_404(OcopProduct, ocop_id)
    return form_page(
        _("Re-rate %(name)s", name=previous.name),
        RERATE_FORM,
        OcopRerateSchema(),
        lambda d: services.rerate_ocop_product(previous, d),
        lambda o: url_for(".ocop_products"),
    )


@bp.get("/manage/targets")
@staff_required
def targets() -> str:
    return _list_page(
        _("Targets"),
        select(Target).order_by(Target.metric, Target.by_year),
        [
            (_("Metric"), lambda t: ("metric", t.metric)),
            (_("Value"), lambda t: t.value),
            (_("By year"), lambda t: t.by_year),
            (_("Source"), lambda t: t.source),
        ],
        url_for(".new_target"),
        lambda t: url_for(".edit_target", target_id=t.id),
    )


@bp.route("/manage/targets/new", methods=["GET", "POST"])
@staff_required
def new_target() -> Any:
    return form_page(
        _("New target"),
        TARGET_FORM,
        TargetSchema(),
        services.save_target,
        lambda t: url_for(".targets"),
    )


@bp.route("/manage/targets/<int:target_id>", methods=["GET", "POST"])
@staff_required
def edit_target(target_id: int) -> Any:
    target = services.get_or_404(Target, target_id)
    return form_page(
        _("Edit target"),
        TARGET_FORM,
        TargetSchema(),
        lambda d: services.save_target(d, target),
        lambda t: url_for(".targets"),
        initial=values_of(target, TARGET_FORM),
        partial=True,
    )


# --- dashboard, import/export ---------------------------------------------------------------


@bp.get("/dashboard")
@staff_required
def dashboard_page() -> str:
    from nguon.i18n import label

    today = request.args.get("on", type=dt.date.fromisoformat) or dt.date.today()
    figures = dashboard.figures(today)
    period = dashboard.plan_period(today.year)
    previous = (period[0] - 5, period[0] - 1)
    return render_template(
        "registry/dashboard.html",
        today=today,
        period=period,
        previous=previous,
        previous_targets=dashboard.period_outcome(*previous),
        charts=figures.charts,
        charts_svg=chart_svgs(figures.charts),
        targets=figures.targets,
        applications=figures.applications,
        renewals=dashboard.renewals_due(today),
        ocop_expiring=dashboard.ocop_expiring(today),
        counts=figures.counts,
        statuses=_values(AssetStatus),
        statuses_shown=[
            (f"s-{status}", label("asset_status", status))
            for status in _values(AssetStatus)
            if any(row.get(status) for row in figures.counts.values())
        ],
    )


def chart_svgs(charts: dict[str, dashboard.Chart]) -> dict[str, Any]:
    from nguon.i18n import label
    from registry.charts import bar_chart

    svgs: dict[str, Any] = {}
    assets = charts["assets"]
    svgs["assets"] = bar_chart(
        [
            (
                label("asset_kind", row[0]),
                [
                    (label("asset_status", s), v, f"s-{s}")
                    for s, v in zip(assets.columns[1:], row[1:], strict=True)
                    if v
                ],
            )
            for row in assets.rows
        ],
        assets.title,
    )
    svgs["targets"] = bar_chart(
        [
            (
                label("metric", row[0]),
                [(_("granted"), row[1], "s-granted"), (_("target"), row[2], "s-target")],
            )
            for row in charts["targets"].rows
        ],
        charts["targets"].title,
    )
    svgs["applications"] = bar_chart(
        [
            (str(row[0]), [(_("applications"), row[1], "s-filed")])
            for row in charts["applications"].rows
        ],
        charts["applications"].title,
    )
    svgs["ocop"] = bar_chart(
        [
            (
                label("ocop_group", row[0]),
                [(f"{n}★", v, f"s-star{n}") for n, v in zip((3, 4, 5), row[1:], strict=True) if v],
            )
            for row in charts["ocop"].rows
        ],
        charts["ocop"].title,
    )
    return svgs


@bp.get("/dashboard/<key>.csv")
@staff_required
def dashboard_csv(key: str) -> Response:
    today = request.args.get("on", type=dt.date.fromisoformat) or dt.date.today()
    chart = dashboard.figures(today).charts.get(key)
    if chart is None:
        abort(404)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(chart.columns)
    writer.writerows(chart.rows)
    response = Response(out.getvalue(), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="nguon-{key}-{today}.csv"'
    return response


@bp.route("/manage/import", methods=["GET", "POST"])
@staff_required
def import_page() -> Any:
    report = None
    status = 200
    if request.method == "POST":
        entity = request.form.get("entity", "")
        upload = request.files.get("file")
        if entity not in transfer.ENTITIES or upload is None or not upload.filename:
            flash(_("Choose what to import and a file."), "error")
            return redirect(url_for(".import_page"))
        fmt = "csv" if upload.filename.lower().endswith(".csv") else "json"
        try:
            rows = transfer.parse_rows(entity, upload.read(), fmt)
            report = transfer.import_rows(entity, rows, dry_run=bool(request.form.get("dry_run")))
        except DomainValidationError as exc:
            flash("; ".join(str(m) for ms in exc.errors.values() for m in ms), "error")
            status = 422
        else:
            status = 200 if report.ok else 422
    return render_template(
        "registry/import.html", report=report, entities=list(transfer.ENTITIES)
    ), status


@bp.get("/manage/export/<any(assets, areas, 'authorised-users', ocop):entity>.<any(csv, json):fmt>")
@staff_required
def export_page(entity: str, fmt: str) -> Response:
    from registry.api import transfer_response

    return transfer_response(entity, fmt)
