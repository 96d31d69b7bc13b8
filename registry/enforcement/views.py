"""The public report form (no account, works without JavaScript) and the reporter's
status page (reached only through the secret link given at filing)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from sqlalchemy import select

from nguon.db import db
from nguon.errors import DomainValidationError
from nguon.inputs import is_digits
from nguon.ratelimit import limiter, public_limit
from registry import photos
from registry.enforcement import services
from registry.enforcement.models import CATEGORIES
from registry.models import AdminUnit, IPAsset, Organisation
from registry.services import current_provinces, get_or_404

bp = Blueprint("reports", __name__)
FIELDS = (
    "category",
    "description",
    "admin_unit_code",
    "place",
    "shop_name",
    "shop_address",
    "asset_id",
    "product",
    "code",
    "contact_name",
    "contact_phone",
    "contact_email",
    "contact_consent",
)


def _choices() -> dict[str, Any]:
    assets = db.session.execute(
        select(IPAsset.id, IPAsset.name)
        .where(IPAsset.status == "granted")
        .order_by(IPAsset.name_key)
    ).all()
    return {"assets": assets, "provinces": current_provinces(), "categories": CATEGORIES}


@bp.route("/report", methods=["GET", "POST"])
@limiter.limit(public_limit, methods=["POST"])
def report_form() -> Any:
    values = {"code": request.args.get("code", "")}
    errors: dict[str, list[str]] = {}
    status = 200
    chosen = 0
    if request.method == "POST":
        values = {name: request.form.get(name, "") for name in FIELDS}
        uploads = [
            (f.filename or "", f.read())
            for f in request.files.getlist("photos")
            if f and f.filename
        ]
        chosen = len(uploads)
        try:
            filed = services.file_report(values, uploads)
        except DomainValidationError as exc:
            errors, status = exc.errors, 422
        else:
            link = url_for(
                ".report_status", receipt=filed.report.receipt, secret=filed.secret, _external=True
            )
            return render_template("enforcement/receipt.html", report=filed.report, link=link), 201
    return render_template(
        "enforcement/report_form.html",
        values=values,
        errors=errors,
        chosen=chosen,
        photo_limit_mb=photos.megabytes(services.photo_limit()),
        max_photos=services.MAX_PHOTOS,
        accept=photos.ACCEPT,
        **_choices(),
    ), status


@bp.get("/report/<receipt>/<secret>")
def report_status(receipt: str, secret: str) -> Any:
    report = services.report_for(receipt, secret)
    if report is None:
        abort(404)
    return render_template("enforcement/status.html", report=report)


# --- officers' casework ---------------------------------------------------------------------

import csv  # noqa: E402 - kept with the code that uses it
import datetime as dt  # noqa: E402
import io  # noqa: E402

from flask import Response, flash, redirect  # noqa: E402
from flask_login import current_user  # noqa: E402

from nguon.auth import staff_required  # noqa: E402
from nguon.db import paginate, utcnow  # noqa: E402
from nguon.i18n import _, label  # noqa: E402
from nguon.models import Role, User  # noqa: E402
from registry.enforcement.models import Case, CaseState  # noqa: E402

DATE_FIELDS = {
    "deadline",
    "inspection_decision_date",
    "effective_from",
    "effective_to",
    "violation_date",
}
INT_FIELDS = {
    "fine_vnd",
    "goods_value_vnd",
    "assignee_id",
    "fine_band_id",
    "organisation_id",
    "min_vnd",
    "max_vnd",
    "goods_value_above_vnd",
    "goods_value_up_to_vnd",
}
BAND_FIELDS = (
    "decree",
    "amended_by",
    "article",
    "clause",
    "description",
    "min_vnd",
    "max_vnd",
    "goods_value_above_vnd",
    "goods_value_up_to_vnd",
    "effective_from",
    "effective_to",
    "source",
)


def _case_query(args: Any) -> Any:
    query = select(Case)
    if args.get("state"):
        query = query.where(Case.state == args["state"])
    if args.get("mine"):
        query = query.where(Case.assignee_id == current_user.id)
    if args.get("overdue"):
        query = query.where(Case.deadline < utcnow().date(), Case.state != CaseState.CLOSED)
    return query.order_by(Case.id.desc())


@bp.get("/registry/cases")
@staff_required
def cases() -> str:
    page = max(1, request.args.get("page", 1, type=int))
    items, total, pages = paginate(_case_query(request.args), page, 50)
    return render_template(
        "enforcement/cases.html",
        cases=items,
        total=total,
        page=page,
        pages=pages,
        states=[s.value for s in CaseState],
        overdue=services.is_overdue,
    )


@bp.get("/registry/cases.csv")
@staff_required
def cases_csv() -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = [
        "number",
        "state",
        "source",
        "title",
        "asset_id",
        "code",
        "deadline",
        "infringer",
        "legal_basis",
        "fine_vnd",
        "closed_on",
        "created_at",
    ]
    writer.writerow(columns)
    for case in db.session.scalars(_case_query(request.args)):
        writer.writerow([getattr(case, c) if getattr(case, c) is not None else "" for c in columns])
    response = Response(out.getvalue(), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="nguon-cases-{dt.date.today()}.csv"'
    )
    return response


def _parse_fields(form: Any, names: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values of the filled-in ``names`` (dates, whole numbers with "." or ","
    separators, text) and a problem for each that does not parse; blanks are left out."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in names:
        raw = (form.get(name) or "").strip()
        if raw == "":
            continue
        if name in DATE_FIELDS:
            try:
                values[name] = dt.date.fromisoformat(raw)
            except ValueError:
                problems[name] = _("must be a date (YYYY-MM-DD)")
        elif name in INT_FIELDS:
            digits = raw.replace(".", "").replace(",", "").replace(" ", "")
            if is_digits(digits, 18):
                values[name] = int(digits)
            else:
                problems[name] = _("must be a whole number")
        else:
            values[name] = raw
    return values, problems


@bp.route("/registry/cases/<int:case_id>", methods=["GET", "POST"])
@staff_required
def case_page(case_id: int) -> Any:
    case = get_or_404(Case, case_id)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values, problems = _parse_fields(request.form, services.CASE_FIELDS)
        try:
            if problems:
                raise DomainValidationError(problems)
            services.move_case(
                case,
                request.form.get("to_state", ""),
                request.form.get("reason", ""),
                values,
                (current_user.id, current_user.email),
            )
        except DomainValidationError as exc:
            errors, status = exc.errors, 422
        else:
            flash(
                _("The case is now: %(state)s.", state=label("case_state", case.state)), "success"
            )
            return redirect(url_for(".case_page", case_id=case.id))
    officers = db.session.execute(
        select(User.id, User.email)
        .where(User.role.in_((Role.OFFICER, Role.ADMIN)))
        .order_by(User.email)
    ).all()
    from registry.enforcement import fines

    proposal = services.fine_proposal(case)
    return render_template(
        "enforcement/case.html",
        case=case,
        errors=errors,
        form=request.form,
        next_states=sorted(services.FLOW.get(case.state, set())),
        required=services.REQUIRED,
        fields_for=services.FIELDS_FOR,
        proposal=proposal,
        proposal_basis=fines.legal_basis(proposal.band) if proposal and proposal.band else "",
        articles=fines.articles(),
        infringer_kinds=fines.INFRINGER_KINDS,
        alarms=alarms_of(case),
        officers=officers,
        organisations=db.session.execute(
            select(Organisation.id, Organisation.name).order_by(Organisation.name)
        ).all(),
        overdue=services.is_overdue(case),
        bands=services.bands_in_force(services.case_date(case)),
    ), status


_case_alarms: list[Any] = []


def register_case_alarms(finder: Any) -> None:
    """Traceability tells the case page which clone alarms a case came from (registry does
    not import traceability)."""
    if finder not in _case_alarms:
        _case_alarms.append(finder)


def alarms_of(case: Case) -> list[Any]:
    return [alarm for finder in _case_alarms for alarm in finder(case.id)]


@bp.post("/registry/cases/<int:case_id>/merge")
@staff_required
def merge_case(case_id: int) -> Any:
    duplicate = get_or_404(Case, case_id)
    into = db.session.scalar(
        select(Case).where(Case.number == request.form.get("into", "").strip())
    )
    if into is None:
        flash(_("No case with that number."), "error")
        return redirect(url_for(".case_page", case_id=case_id)), 303
    try:
        services.merge_cases(duplicate, into, (current_user.id, current_user.email))
    except DomainValidationError as exc:
        flash(exc.for_people(), "error")
        return redirect(url_for(".case_page", case_id=case_id)), 303
    return redirect(url_for(".case_page", case_id=into.id))


@bp.post("/registry/cases/<int:case_id>/attachments")
@staff_required
def add_attachment(case_id: int) -> Any:
    case = get_or_404(Case, case_id)
    upload = request.files.get("file")
    try:
        services.attach_to_case(
            case,
            request.form.get("title", ""),
            upload.filename or "" if upload else "",
            upload.read() if upload else b"",
            current_user.email,
        )
    except DomainValidationError as exc:
        flash(exc.for_people(), "error")
    else:
        flash(_("Attachment added."), "success")
    return redirect(url_for(".case_page", case_id=case_id)), 303


@bp.get("/registry/cases/<int:case_id>/attachments/<int:attachment_id>")
@staff_required
def attachment(case_id: int, attachment_id: int) -> Any:
    from flask import send_file

    from registry.enforcement.models import CaseAttachment
    from registry.services import document_path

    found = db.session.get(CaseAttachment, attachment_id)
    if found is None or found.case_id != case_id:
        abort(404)
    inline = found.media_type in ("application/pdf", "image/png", "image/jpeg", "image/webp")
    response = send_file(
        document_path(found.sha256),
        mimetype=found.media_type,
        as_attachment=not inline,
        download_name=found.filename,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    if found.media_type != "application/pdf":  # the PDF viewer does not run in a sandbox
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/registry/report-photos/<int:photo_id>")
@bp.get("/registry/report-photos/<int:photo_id>/thumbnail", defaults={"thumbnail": True})
@staff_required
def report_photo(photo_id: int, thumbnail: bool = False) -> Any:
    """A report's photo (cleaned when it was filed) or its thumbnail: officers only."""
    from flask import send_file

    from registry.enforcement.models import ReportPhoto

    found = db.session.get(ReportPhoto, photo_id) if photo_id < 2**31 else None
    if found is None:
        abort(404)
    path = photos.stored_path(services.photo_folder(), found.sha256, thumbnail)
    if not path.is_file():
        abort(404, description="the photo is missing from storage")
    response = send_file(
        path, mimetype="image/jpeg" if thumbnail else found.media_type, etag=found.sha256
    )
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/registry/cases/dashboard")
@staff_required
def cases_dashboard() -> str:
    from registry.charts import bar_chart

    stats = services.statistics()
    top_assets = stats["cases_by_asset"].most_common(10)
    top_areas = stats["reports_by_province"].most_common(10)
    # Names only for the bars drawn, not for every asset and commune.
    assets = dict(
        db.session.execute(
            select(IPAsset.id, IPAsset.name).where(IPAsset.id.in_([k for k, _v in top_assets]))
        ).all()
    )
    units = dict(
        db.session.execute(
            select(AdminUnit.code, AdminUnit.name).where(
                AdminUnit.code.in_([k for k, _v in top_areas])
            )
        ).all()
    )
    from nguon.i18n import label

    charts = {
        "category": bar_chart(
            [
                (label("report_category", k), [("", v, "s-filed")])
                for k, v in sorted(stats["reports_by_category"].items())
            ],
            _("Reports by category"),
        ),
        "month": bar_chart(
            [(k, [("", v, "s-granted")]) for k, v in sorted(stats["cases_by_month"].items())],
            _("Cases by month"),
        ),
        "state": bar_chart(
            [
                (label("case_state", k), [("", v, "s-granted")])
                for k, v in sorted(stats["cases_by_state"].items())
            ],
            _("Cases by state"),
        ),
        "asset": bar_chart(
            [(assets.get(k, str(k)), [("", v, "s-star4")]) for k, v in top_assets],
            _("Cases by mark or GI"),
        ),
        "area": bar_chart(
            [(units.get(k, _("not given")), [("", v, "s-filed")]) for k, v in top_areas],
            _("Reports by area"),
        ),
    }
    return render_template("enforcement/dashboard.html", stats=stats, charts=charts)


@bp.route("/registry/fine-bands", methods=["GET", "POST"])
@staff_required
def fine_bands() -> Any:
    """The sanctions decree's fine bands as versioned data (entered from the official texts)."""
    from registry.enforcement.models import FineBand

    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        data, problems = _parse_fields(request.form, BAND_FIELDS)
        data["value_undeterminable"] = bool(request.form.get("value_undeterminable"))
        data["warning_possible"] = bool(request.form.get("warning_possible"))
        try:
            if problems:
                raise DomainValidationError(problems)
            services.save_fine_band(data)
        except DomainValidationError as exc:
            errors, status = exc.errors, 422
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".fine_bands"))
    bands = db.session.scalars(
        select(FineBand).order_by(
            FineBand.decree, FineBand.article, FineBand.goods_value_above_vnd, FineBand.id
        )
    ).all()
    from registry.enforcement import fines

    return render_template(
        "enforcement/fine_bands.html",
        bands=bands,
        errors=errors,
        form=request.form,
        missing=fines.missing(),
    ), status
