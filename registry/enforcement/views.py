"""The public report form (no account, works without JavaScript) and the reporter's
status page (reached only through the secret link given at filing)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from sqlalchemy import select

from nguon.db import db
from nguon.errors import DomainValidationError
from nguon.ratelimit import limiter, public_limit
from registry.enforcement import services
from registry.enforcement.models import CATEGORIES
from registry.models import AdminUnit, IPAsset

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
    provinces = db.session.execute(
        select(AdminUnit.code, AdminUnit.name)
        .where(AdminUnit.level == "province", AdminUnit.valid_to.is_(None))
        .order_by(AdminUnit.name_key)
    ).all()
    return {"assets": assets, "provinces": provinces, "categories": CATEGORIES}


@bp.route("/report", methods=["GET", "POST"])
@limiter.limit(public_limit, methods=["POST"])
def report_form() -> Any:
    values = {"code": request.args.get("code", "")}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = {name: request.form.get(name, "") for name in FIELDS}
        uploads = [
            (f.filename or "", f.read())
            for f in request.files.getlist("photos")
            if f and f.filename
        ]
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
        "enforcement/report_form.html", values=values, errors=errors, **_choices()
    ), status


@bp.get("/report/<receipt>/<secret>")
def report_status(receipt: str, secret: str) -> Any:
    report = services.report_for(receipt, secret)
    if report is None:
        abort(404)
    return render_template("enforcement/status.html", report=report)
