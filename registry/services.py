"""Registry services: they validate against the rules, change the session and flush.

Every function raises :class:`~nguon.errors.DomainValidationError` naming each broken
rule by field; the caller's commit boundary then rolls the whole change back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from biip import ParseError
from biip.gln import Gln
from flask import current_app
from sqlalchemy import Select, or_, select

from nguon.db import db
from nguon.errors import ConflictError, DomainValidationError
from nguon.i18n import _, label
from nguon.text import nfc, search_key, search_terms
from registry import geo, rules
from registry.models import (
    AdminUnit,
    AreaCertificate,
    AssetKind,
    AssetRenewal,
    AssetStatus,
    AssetStatusChange,
    AuthorisedUser,
    AuthorisedUserStatus,
    Document,
    ForeignProtection,
    IPAsset,
    OcopProduct,
    OcopStatus,
    Organisation,
    ProductionArea,
    Target,
    ZoneConfirmation,
)
from registry.photos import write_once

TAX_CODE = re.compile(r"^\d{10}(-\d{3})?$")
AREA_CODE = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{2,49}$")
USER_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,49}$")
TERRITORY = re.compile(r"^[A-Z]{2}$")


class Problems:
    """Collects broken rules by field, then raises them together."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str | None) -> None:
        if message:
            self.errors.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise DomainValidationError(self.errors)


def _today() -> dt.date:
    return dt.date.today()


def _set(obj: Any, data: Mapping[str, Any], fields: Iterable[str]) -> None:
    for field in fields:
        if field in data:
            value = data[field]
            setattr(obj, field, nfc(value) if isinstance(value, str) else value)


# --- organisations ---------------------------------------------------------------------

ORGANISATION_FIELDS = (
    "kind",
    "name",
    "tax_code",
    "address",
    "admin_unit_code",
    "gln",
    "phone",
    "email",
)


def check_gln(value: str) -> str | None:
    """None for a valid 13-digit GLN, else what is wrong, for a person (the same words as
    ``traceability.gs1.parse_gln``; biip's own message is English)."""
    if not value.isdigit() or len(value) != 13:
        return _("GLN %(value)r: must be 13 digits", value=value)
    try:
        Gln.parse(value)
    except ParseError:
        return _(
            "%(what)s %(value)s: check digit should be %(expected)s (got %(got)s)",
            what="GLN",
            value=value,
            expected=gs1_check_digit(value[:12]),
            got=value[12],
        )
    return None


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of ``digits`` (weights 3, 1, … from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def save_organisation(data: Mapping[str, Any], org: Organisation | None = None) -> Organisation:
    """Create (``org`` None) or update an organisation."""
    org = org or Organisation()
    _set(org, data, ORGANISATION_FIELDS)
    problems = Problems()
    if not org.name:
        problems.add("name", _("is required"))
    if org.tax_code:
        if not TAX_CODE.match(org.tax_code):
            problems.add("tax_code", _("must be 10 digits, or 10-3 digits for a branch"))
        elif _taken(Organisation, Organisation.tax_code, org.tax_code, org.id):
            problems.add(
                "tax_code",
                _("another organisation has tax code %(tax_code)s", tax_code=org.tax_code),
            )
    if org.gln:
        problems.add("gln", check_gln(org.gln))
    if org.admin_unit_code and db.session.get(AdminUnit, org.admin_unit_code) is None:
        problems.add(
            "admin_unit_code",
            _("no administrative unit %(admin_unit_code)s", admin_unit_code=org.admin_unit_code),
        )
    problems.raise_if_any()
    db.session.add(org)
    db.session.flush()
    return org


def _taken(model: Any, column: Any, value: Any, own_id: int | None) -> bool:
    query = select(model.id).where(column == value)
    if own_id is not None:
        query = query.where(model.id != own_id)
    return db.session.scalar(query.limit(1)) is not None


def current_provinces() -> list[Any]:
    """(code, name) of today's provinces, by name."""
    return list(
        db.session.execute(
            select(AdminUnit.code, AdminUnit.name)
            .where(AdminUnit.level == "province", AdminUnit.valid_to.is_(None))
            .order_by(AdminUnit.name_key)
        ).all()
    )


def get_or_404(model: Any, ident: Any) -> Any:
    from flask import abort

    found = db.session.get(model, ident)
    if found is None:
        abort(404, description=f"no {model.__tablename__.replace('_', ' ')} {ident}")
    return found


# --- IP assets -----------------------------------------------------------------------------

ASSET_FIELDS = (
    "kind",
    "name",
    "products",
    "nice_classes",
    "holder_id",
    "managing_organisation_id",
    "admin_unit_code",
    "district_name",
    "application_number",
    "filing_date",
    "certificate_number",
    "grant_decision",
    "grant_date",
    "product_specification",
    "notes",
)
GRANTED_STATES = {AssetStatus.GRANTED, AssetStatus.EXPIRED, AssetStatus.REVOKED}
STATUS_FLOW: dict[str, set[str]] = {
    AssetStatus.PREPARING: {AssetStatus.FILED, AssetStatus.ABANDONED},
    AssetStatus.FILED: {
        AssetStatus.EXAMINING,
        AssetStatus.GRANTED,
        AssetStatus.REFUSED,
        AssetStatus.ABANDONED,
    },
    AssetStatus.EXAMINING: {AssetStatus.GRANTED, AssetStatus.REFUSED, AssetStatus.ABANDONED},
    AssetStatus.GRANTED: {AssetStatus.EXPIRED, AssetStatus.REVOKED},
    AssetStatus.EXPIRED: {AssetStatus.GRANTED},  # restored by a renewal within the grace period
    AssetStatus.REFUSED: {AssetStatus.FILED},
    AssetStatus.ABANDONED: {AssetStatus.PREPARING},
    AssetStatus.REVOKED: set(),
}


def compute_expiry(asset: IPAsset) -> dt.date | None:
    """Marks: filing + 10 years (+10 per renewal). GIs: never."""
    if asset.kind == AssetKind.GEOGRAPHICAL_INDICATION or asset.filing_date is None:
        return None
    if asset.status not in GRANTED_STATES:
        return None
    return rules.mark_expiry(asset.filing_date, len(asset.renewals))


def _validate_asset(asset: IPAsset) -> None:
    problems = Problems()
    if asset.kind not in set(AssetKind):
        problems.add("kind", _("must be one of %(value)s", value=", ".join(AssetKind)))
        problems.raise_if_any()
    if not asset.name:
        problems.add("name", _("is required"))
    asset.products = [nfc(p) for p in (asset.products or []) if p and nfc(p)]
    if not asset.products:
        problems.add("products", _("name at least one product"))
    problems.add("nice_classes", rules.check_nice_classes(asset.nice_classes or [], asset.kind))
    if asset.application_number:
        problems.add(
            "application_number",
            rules.check_application_number(asset.application_number, asset.kind, asset.filing_date),
        )
        if _taken(IPAsset, IPAsset.application_number, asset.application_number, asset.id):
            problems.add("application_number", _("another asset has this application number"))
    if asset.certificate_number:
        problems.add(
            "certificate_number",
            rules.check_certificate_number(asset.certificate_number, asset.kind),
        )
    if asset.status in GRANTED_STATES:
        for field in ("certificate_number", "grant_date", "filing_date"):
            if not getattr(asset, field):
                problems.add(field, _("is required once the asset is granted"))
    if asset.status != AssetStatus.PREPARING and not asset.application_number:
        problems.add("application_number", _("is required once the application is filed"))
    if asset.kind == AssetKind.GEOGRAPHICAL_INDICATION:
        if asset.holder_id is not None:
            problems.add(
                "holder_id", _("a GI is held by the State: name its managing organisation")
            )
        if asset.managing_organisation_id is None and asset.status in GRANTED_STATES:
            problems.add(
                "managing_organisation_id", _("a granted GI needs a managing organisation")
            )
    elif asset.holder_id is None and asset.status != AssetStatus.PREPARING:
        problems.add("holder_id", _("a mark needs its holder"))
    for field in ("holder_id", "managing_organisation_id"):
        value = getattr(asset, field)
        if value is not None and db.session.get(Organisation, value) is None:
            problems.add(field, _("no organisation %(value)s", value=value))
    asset.expiry_date = compute_expiry(asset)
    problems.add(
        "grant_date", rules.check_date_order(asset.filing_date, asset.grant_date, asset.expiry_date)
    )
    problems.raise_if_any()


def _asset_search_key(asset: IPAsset) -> str:
    holder = db.session.get(Organisation, asset.holder_id) if asset.holder_id else None
    manager = (
        db.session.get(Organisation, asset.managing_organisation_id)
        if asset.managing_organisation_id
        else None
    )
    parts = [asset.name, *asset.products, asset.district_name or ""]
    parts += [org.name for org in (holder, manager) if org]
    parts += [asset.certificate_number or "", asset.application_number or ""]
    return search_key(" ".join(parts))


def save_asset(data: Mapping[str, Any], asset: IPAsset | None = None) -> IPAsset:
    """Create or update an asset. A new asset's first status is recorded in its history;
    later status changes go through :func:`change_asset_status`."""
    creating = asset is None
    asset = asset or IPAsset(
        status=data.get("status", AssetStatus.PREPARING), products=[], nice_classes=[]
    )
    _set(asset, data, ASSET_FIELDS)
    if "area" in data:
        asset.area = _area_geometry(data["area"], "area") if data["area"] else None
    if "demo_fields" in data:
        asset.demo_fields = list(data["demo_fields"])
        asset.is_demo = bool(asset.demo_fields)
    _validate_asset(asset)
    asset.name_key = search_key(asset.name)
    asset.district_key = search_key(asset.district_name or "")
    asset.search_key = _asset_search_key(asset)
    if creating:
        asset.status_history.append(
            AssetStatusChange(
                status=asset.status,
                on_date=data.get("status_date")
                or asset.grant_date
                or asset.filing_date
                or _today(),
                note=data.get("status_note", ""),
            )
        )
    db.session.add(asset)
    db.session.flush()
    return asset


def _area_geometry(value: Any, field: str) -> dict[str, Any]:
    try:
        return geo.normalised(value)
    except geo.GeometryError as exc:
        raise DomainValidationError({field: str(exc)}) from None


def change_asset_status(
    asset: IPAsset, status: str, on_date: dt.date, note: str = "", **fields: Any
) -> IPAsset:
    """Move ``asset`` to ``status`` (the legal flow in STATUS_FLOW), recording it.

    ``fields`` may carry what the new state needs (certificate number, grant date...).
    """
    allowed = STATUS_FLOW.get(asset.status, set())
    if status not in allowed:
        options = ", ".join(sorted(allowed)) or "none"
        raise DomainValidationError(
            {
                "status": _(
                    "cannot go from %(status)s to %(to_status)s (allowed: %(options)s)",
                    status=label("asset_status", asset.status),
                    to_status=label("asset_status", status),
                    options=options,
                )
            }
        )
    if asset.status_history and on_date < asset.status_history[-1].on_date:
        raise DomainValidationError(
            {
                "on_date": _(
                    "cannot be before the previous status change (%(value)s)",
                    value=asset.status_history[-1].on_date.isoformat(),
                )
            }
        )
    _set(asset, fields, ASSET_FIELDS)
    asset.status = status
    _validate_asset(asset)
    asset.search_key = _asset_search_key(asset)
    asset.status_history.append(AssetStatusChange(status=status, on_date=on_date, note=nfc(note)))
    db.session.flush()
    return asset


def renew_asset(asset: IPAsset, on_date: dt.date, decision: str = "") -> AssetRenewal:
    """Renew a mark for 10 more years; only inside the window (6 months before expiry
    to 6 months after). GIs never expire and cannot be renewed."""
    if asset.kind == AssetKind.GEOGRAPHICAL_INDICATION:
        raise DomainValidationError({"kind": _("a geographical indication never expires")})
    if asset.status not in (AssetStatus.GRANTED, AssetStatus.EXPIRED) or asset.expiry_date is None:
        raise DomainValidationError({"status": _("only a granted mark can be renewed")})
    problem = rules.check_renewal_date(asset.expiry_date, on_date)
    if problem:
        raise DomainValidationError({"renewed_on": problem})
    renewal = AssetRenewal(
        renewed_on=on_date,
        decision=nfc(decision),
        new_expiry=rules.mark_expiry(asset.filing_date, len(asset.renewals) + 1),  # type: ignore[arg-type]
    )
    asset.renewals.append(renewal)
    asset.expiry_date = renewal.new_expiry
    if asset.status == AssetStatus.EXPIRED:
        asset.status = AssetStatus.GRANTED
        asset.status_history.append(
            AssetStatusChange(status=AssetStatus.GRANTED, on_date=on_date, note="renewed")
        )
    db.session.flush()
    return renewal


def expire_lapsed_marks(today: dt.date) -> list[IPAsset]:
    """Move granted marks whose grace period has ended to ``expired`` (recorded in their
    history). Run daily (``nguon registry expire``)."""
    lapsed = db.session.scalars(
        select(IPAsset).where(
            IPAsset.status == AssetStatus.GRANTED,
            IPAsset.expiry_date.isnot(None),
            IPAsset.expiry_date < rules.add_months(today, -rules.RENEWAL_GRACE_MONTHS),
        )
    ).all()
    for asset in lapsed:
        asset.status = AssetStatus.EXPIRED
        asset.status_history.append(
            AssetStatusChange(
                status=AssetStatus.EXPIRED, on_date=today, note="grace period for renewal ended"
            )
        )
    db.session.flush()
    return list(lapsed)


def add_foreign_protection(asset: IPAsset, data: Mapping[str, Any]) -> ForeignProtection:
    territory = str(data.get("territory", "")).upper()
    if not TERRITORY.match(territory) or territory == "VN":
        raise DomainValidationError({"territory": _("must be a foreign ISO 3166 code, e.g. JP")})
    protection = ForeignProtection(
        territory=territory,
        route=data.get("route", "national"),
        number=data.get("number"),
        on_date=data.get("on_date"),
        note=nfc(data.get("note", "")),
    )
    asset.foreign_protections.append(protection)
    db.session.flush()
    return protection


# --- documents ------------------------------------------------------------------------------

DOCUMENT_TYPES = {  # leading bytes -> (media type, extension)
    b"%PDF-": ("application/pdf", "pdf"),
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
}
DOCUMENT_MAX_BYTES = 10 * 1024 * 1024


def sniff_media_type(head: bytes) -> tuple[str, str] | None:
    for magic, kind in DOCUMENT_TYPES.items():
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ("image/webp", "webp")
    return None


def documents_dir() -> Path:
    return Path(current_app.instance_path) / "documents"


def document_path(sha256: str) -> Path:
    return documents_dir() / sha256[:2] / sha256


def check_file(content: bytes, problems: Problems) -> tuple[str, str] | None:
    """The media type and extension of an uploaded file, judged by its content; problems
    (empty, too large, not PDF/PNG/JPEG/WebP) are added under ``file``."""
    if len(content) == 0:
        problems.add("file", _("is empty"))
    if len(content) > DOCUMENT_MAX_BYTES:
        problems.add(
            "file", _("is larger than %(value)s MiB", value=DOCUMENT_MAX_BYTES // (1024 * 1024))
        )
    sniffed = sniff_media_type(content[:16])
    if content and sniffed is None:
        problems.add("file", _("must be a PDF, PNG, JPEG or WebP file (checked by its content)"))
    return sniffed


def keep_file(content: bytes) -> str:
    """Store ``content`` once under the instance folder by its SHA-256; return the digest."""
    digest = hashlib.sha256(content).hexdigest()
    write_once(document_path(digest), content)
    return digest


def add_document(asset: IPAsset, kind: str, title: str, filename: str, content: bytes) -> Document:
    """Keep an uploaded file for ``asset``: checked by its content (PDF, PNG, JPEG, WebP),
    at most 10 MiB, stored once by SHA-256 under the instance folder."""
    problems = Problems()
    sniffed = check_file(content, problems)
    if kind not in {"regulation", "certificate", "logo", "map", "other"}:
        problems.add("kind", _("must be regulation, certificate, logo, map or other"))
    problems.raise_if_any()
    digest = keep_file(content)
    document = Document(
        kind=kind,
        title=nfc(title) or filename,
        filename=Path(filename).name[:255] or f"document.{sniffed[1]}",  # type: ignore[index]
        media_type=sniffed[0],  # type: ignore[index]
        size=len(content),
        sha256=digest,
    )
    asset.documents.append(document)
    db.session.flush()
    return document


# --- search -----------------------------------------------------------------------------------

ASSET_SORTS = {
    "name": IPAsset.name_key,
    "filing_date": IPAsset.filing_date,
    "grant_date": IPAsset.grant_date,
    "expiry_date": IPAsset.expiry_date,
    "kind": IPAsset.kind,
}


@dataclass(frozen=True)
class AssetQuery:
    q: str = ""
    kind: str | None = None
    status: str | None = None
    area: str | None = None  # district name or administrative unit code
    product: str | None = None
    holder_id: int | None = None
    sort: str = "name"
    descending: bool = False


def asset_search(params: AssetQuery) -> Select[tuple[IPAsset]]:
    """The assets matching ``params``: every query word must appear (without diacritics,
    any case) in the name, products, holder, district or numbers."""
    query = select(IPAsset)
    for term in search_terms(params.q):
        query = query.where(IPAsset.search_key.contains(term, autoescape=True))
    if params.kind:
        query = query.where(IPAsset.kind == params.kind)
    if params.status:
        query = query.where(IPAsset.status == params.status)
    if params.area:
        query = query.where(
            or_(
                IPAsset.admin_unit_code == params.area,
                IPAsset.district_key == search_key(params.area),
            )
        )
    if params.product:
        for term in search_terms(params.product):
            query = query.where(IPAsset.search_key.contains(term, autoescape=True))
    if params.holder_id:
        query = query.where(
            or_(
                IPAsset.holder_id == params.holder_id,
                IPAsset.managing_organisation_id == params.holder_id,
            )
        )
    column = ASSET_SORTS.get(params.sort, IPAsset.name_key)
    order = column.desc() if params.descending else column.asc()
    return query.order_by(order.nulls_last(), IPAsset.id)


def organisation_search(q: str) -> Select[tuple[Organisation]]:
    query = select(Organisation)
    for term in search_terms(q):
        query = query.where(
            or_(
                Organisation.name_key.contains(term, autoescape=True),
                Organisation.tax_code.contains(term, autoescape=True),
            )
        )
    return query.order_by(Organisation.name_key, Organisation.id)


# --- production areas ---------------------------------------------------------------------

AREA_FIELDS = (
    "code",
    "name",
    "crop",
    "owner_id",
    "admin_unit_code",
    "hectares",
    "expected_yield_kg_per_ha",
)


def save_area(data: Mapping[str, Any], area: ProductionArea | None = None) -> ProductionArea:
    area = area or ProductionArea()
    if data.get("code"):
        data = {**data, "code": str(data["code"]).strip().upper()}
    _set(area, data, AREA_FIELDS)
    problems = Problems()
    if not area.code or not AREA_CODE.match(area.code):
        problems.add("code", _("3 to 50 letters, digits, '.', '-', '_' or '/', e.g. VN-BG-LN-0012"))
    elif _taken(ProductionArea, ProductionArea.code, area.code, area.id):
        problems.add("code", _("another area has code %(code)s", code=area.code))
    if not area.crop:
        problems.add("crop", _("is required"))
    if area.owner_id is None or db.session.get(Organisation, area.owner_id) is None:
        problems.add("owner_id", _("must be an existing organisation"))
    if area.hectares is None or Decimal(area.hectares) <= 0:
        problems.add("hectares", _("must be more than 0"))
    if area.expected_yield_kg_per_ha is not None and Decimal(area.expected_yield_kg_per_ha) < 0:
        problems.add("expected_yield_kg_per_ha", _("cannot be negative"))
    if "geometry" in data:
        try:
            area.geometry = geo.normalised(data["geometry"])
        except geo.GeometryError as exc:
            problems.add("geometry", str(exc))
    elif area.geometry is None:
        problems.add("geometry", _("is required (a GeoJSON Point or Polygon)"))
    problems.raise_if_any()
    db.session.add(area)
    db.session.flush()
    _check_area_inside_authorised_zones(area)
    return area


def _check_area_inside_authorised_zones(area: ProductionArea) -> None:
    """An area that serves an authorised user must stay inside that asset's zone."""
    users = db.session.scalars(
        select(AuthorisedUser).where(AuthorisedUser.areas.any(ProductionArea.id == area.id))
    )
    for user in users:
        if user.asset.area and not geo.inside(area.geometry, user.asset.area):
            raise DomainValidationError(
                {
                    "geometry": _(
                        "area %(code)s would leave the zone of %(name)s, where authorised user "
                        "%(user_code)s uses it",
                        code=area.code,
                        name=user.asset.name,
                        user_code=user.user_code,
                    )
                }
            )


def add_area_certificate(area: ProductionArea, data: Mapping[str, Any]) -> AreaCertificate:
    problems = Problems()
    for field in ("scheme", "number", "issuer", "valid_to"):
        if not data.get(field):
            problems.add(field, _("is required"))
    if data.get("valid_from") and data.get("valid_to") and data["valid_to"] < data["valid_from"]:
        problems.add("valid_to", _("cannot be before valid_from"))
    problems.raise_if_any()
    certificate = AreaCertificate(
        scheme=data["scheme"],
        number=nfc(data["number"]),
        issuer=nfc(data["issuer"]),
        valid_from=data.get("valid_from"),
        valid_to=data["valid_to"],
    )
    area.certificates.append(certificate)
    db.session.flush()
    return certificate


def valid_certificate(area: ProductionArea, scheme: str, on: dt.date) -> AreaCertificate | None:
    """The area's certificate of ``scheme`` in force on ``on``, if any."""
    for cert in area.certificates:
        if cert.scheme == scheme and (cert.valid_from or on) <= on <= cert.valid_to:
            return cert
    return None


# --- authorised users -------------------------------------------------------------------

AUTHORISED_USER_FIELDS = (
    "asset_id",
    "organisation_id",
    "decision_number",
    "decision_date",
    "valid_from",
    "valid_to",
    "user_code",
    "products",
    "yearly_ceiling",
    "ceiling_unit",
)


def save_authorised_user(
    data: Mapping[str, Any], user: AuthorisedUser | None = None
) -> AuthorisedUser:
    """Create or update an authorisation to use a mark or GI, checking that the holder
    of a certification mark is not its own user, that the products belong to the asset,
    and that every area lies inside the asset's zone."""
    user = user or AuthorisedUser(products=[])
    _set(user, data, AUTHORISED_USER_FIELDS)
    problems = Problems()
    asset = db.session.get(IPAsset, user.asset_id) if user.asset_id else None
    org = db.session.get(Organisation, user.organisation_id) if user.organisation_id else None
    if asset is None:
        problems.add("asset_id", _("must be an existing asset"))
    if org is None:
        problems.add("organisation_id", _("must be an existing organisation"))
    for field in ("decision_number", "decision_date", "valid_from", "user_code"):
        if not getattr(user, field):
            problems.add(field, _("is required"))
    if user.user_code and not USER_CODE.match(user.user_code):
        problems.add("user_code", _("letters, digits, '.', '-', '_' or '/', at most 50"))
    if user.valid_from and user.valid_to and user.valid_to < user.valid_from:
        problems.add("valid_to", _("cannot be before valid_from"))
    if user.decision_date and user.valid_from and user.valid_from < user.decision_date:
        problems.add("valid_from", _("cannot be before the decision date"))
    if user.yearly_ceiling is not None and Decimal(user.yearly_ceiling) <= 0:
        problems.add("yearly_ceiling", _("must be more than 0 (leave it empty for no ceiling)"))
    user.products = [nfc(p) for p in user.products or [] if p and nfc(p)]
    if not user.products:
        problems.add("products", _("name at least one product"))
    area_ids = data.get("area_ids")
    areas = list(user.areas)
    if area_ids is not None:
        areas = [db.session.get(ProductionArea, i) for i in area_ids]
        missing = [i for i, a in zip(area_ids, areas, strict=True) if a is None]
        if missing:
            problems.add(
                "area_ids", _("no production area %(value)s", value=", ".join(map(str, missing)))
            )
            areas = [a for a in areas if a is not None]
        if org is not None:
            foreign = [a for a in areas if a.owner_id != org.id]
            for area in foreign:
                problems.add(
                    "area_ids",
                    _(
                        "area %(code)s belongs to %(name)s, not to %(name2)s",
                        code=area.code,
                        name=area.owner.name,
                        name2=org.name,
                    ),
                )
    if asset is not None:
        if (
            asset.kind == AssetKind.CERTIFICATION_MARK
            and org is not None
            and (asset.holder_id == org.id)
        ):
            problems.add(
                "organisation_id",
                _("the holder of a certification mark cannot be its own authorised user"),
            )
        outside = [p for p in user.products if search_key(p) not in _product_keys(asset)]
        if outside:
            problems.add(
                "products",
                _(
                    "not products of %(name)s: %(value)s (the asset covers: %(value2)s)",
                    name=asset.name,
                    value=", ".join(outside),
                    value2=", ".join(asset.products),
                ),
            )
        if asset.area:
            for area in areas:
                if not geo.inside(area.geometry, asset.area):
                    problems.add(
                        "area_ids",
                        _(
                            "area %(code)s lies outside the zone of %(name)s",
                            code=area.code,
                            name=asset.name,
                        ),
                    )
        if user.user_code and _code_taken(user):
            problems.add(
                "user_code",
                _(
                    "%(user_code)s is already used for %(name)s",
                    user_code=user.user_code,
                    name=asset.name,
                ),
            )
    problems.raise_if_any()
    if area_ids is not None:
        user.areas = areas
    db.session.add(user)
    db.session.flush()
    return user


def _product_keys(asset: IPAsset) -> set[str]:
    return {search_key(p) for p in asset.products}


def _code_taken(user: AuthorisedUser) -> bool:
    query = select(AuthorisedUser.id).where(
        AuthorisedUser.asset_id == user.asset_id, AuthorisedUser.user_code == user.user_code
    )
    if user.id is not None:
        query = query.where(AuthorisedUser.id != user.id)
    return db.session.scalar(query.limit(1)) is not None


USER_STATUS_FLOW = {
    AuthorisedUserStatus.ACTIVE: {AuthorisedUserStatus.SUSPENDED, AuthorisedUserStatus.REVOKED},
    AuthorisedUserStatus.SUSPENDED: {AuthorisedUserStatus.ACTIVE, AuthorisedUserStatus.REVOKED},
    AuthorisedUserStatus.REVOKED: set(),
}


def change_authorised_user_status(
    user: AuthorisedUser, status: str, reason: str, on_date: dt.date | None = None
) -> AuthorisedUser:
    """Suspend, reinstate or revoke; suspending and revoking need a reason."""
    if status not in USER_STATUS_FLOW.get(user.status, set()):
        raise DomainValidationError(
            {
                "status": _(
                    "cannot go from %(status)s to %(to_status)s",
                    status=label("user_status", user.status),
                    to_status=label("user_status", status),
                )
            }
        )
    if status != AuthorisedUserStatus.ACTIVE and not nfc(reason):
        raise DomainValidationError(
            {
                "reason": _(
                    "a reason is required to make it %(status)s",
                    status=label("user_status", status),
                )
            }
        )
    user.status = status
    user.status_reason = nfc(reason)
    user.status_changed_on = on_date or _today()
    db.session.flush()
    return user


def active_authorisation(organisation_id: int, asset_id: int, on: dt.date) -> AuthorisedUser | None:
    """The authorisation of ``organisation_id`` to use ``asset_id`` in force on ``on``.

    Asked by traceability when a batch claims a mark or GI.
    """
    return db.session.scalar(
        select(AuthorisedUser).where(
            AuthorisedUser.organisation_id == organisation_id,
            AuthorisedUser.asset_id == asset_id,
            AuthorisedUser.status == AuthorisedUserStatus.ACTIVE,
            AuthorisedUser.valid_from <= on,
            or_(AuthorisedUser.valid_to.is_(None), AuthorisedUser.valid_to >= on),
        )
    )


# --- OCOP ----------------------------------------------------------------------------------

OCOP_FIELDS = (
    "name",
    "producer_id",
    "product_group",
    "criteria_version",
    "procedure_version",
    "score",
    "stars",
    "rating_level",
    "decision_number",
    "decision_date",
    "gtins",
)


def save_ocop_product(data: Mapping[str, Any], ocop: OcopProduct | None = None) -> OcopProduct:
    ocop = ocop or OcopProduct(gtins=[])
    _set(ocop, data, OCOP_FIELDS)
    problems = Problems()
    if not ocop.name:
        problems.add("name", _("is required"))
    if ocop.producer_id is None or db.session.get(Organisation, ocop.producer_id) is None:
        problems.add("producer_id", _("must be an existing organisation"))
    if ocop.score is not None and ocop.stars is not None:
        problems.add("stars", rules.check_stars(ocop.score, ocop.stars))
        if not problems.errors.get("stars"):
            problems.add("rating_level", rules.check_ocop_level(ocop.stars, ocop.rating_level))
    for field in ("decision_number", "decision_date", "product_group", "criteria_version"):
        if not getattr(ocop, field):
            problems.add(field, _("is required"))
    bad_gtins = [g for g in ocop.gtins or [] if not re.fullmatch(r"\d{8}|\d{12,14}", g)]
    if bad_gtins:
        problems.add("gtins", _("not GTINs: %(value)s", value=", ".join(bad_gtins)))
    asset_ids = data.get("asset_ids")
    assets: list[IPAsset] = []
    if asset_ids is not None:
        assets = [a for a in (db.session.get(IPAsset, i) for i in asset_ids) if a is not None]
        if len(assets) != len(asset_ids):
            problems.add("asset_ids", _("every linked asset must exist"))
    problems.raise_if_any()
    ocop.expiry_date = rules.ocop_expiry(ocop.decision_date)
    ocop.name_key = search_key(ocop.name)
    if asset_ids is not None:
        ocop.assets = assets
    db.session.add(ocop)
    db.session.flush()
    return ocop


def rerate_ocop_product(previous: OcopProduct, data: Mapping[str, Any]) -> OcopProduct:
    """A new rating replaces ``previous`` (kept, marked re-rated, linked from the new one)."""
    if previous.status != OcopStatus.ACTIVE:
        raise DomainValidationError(
            {
                "status": _(
                    "only an active rating can be re-rated (this one is %(status)s)",
                    status=label("ocop_status", previous.status),
                )
            }
        )
    if data.get("decision_date") and data["decision_date"] <= previous.decision_date:
        raise DomainValidationError(
            {"decision_date": _("a re-rating must be decided after the rating it replaces")}
        )
    carried = {f: getattr(previous, f) for f in ("name", "producer_id", "product_group", "gtins")}
    new = save_ocop_product(
        {**carried, "asset_ids": [a.id for a in previous.assets], **data}, OcopProduct()
    )
    new.previous_id = previous.id
    previous.status = OcopStatus.RERATED
    db.session.flush()
    return new


def ocop_is_valid(ocop: OcopProduct, on: dt.date) -> bool:
    return ocop.status == OcopStatus.ACTIVE and ocop.decision_date <= on < ocop.expiry_date


# --- targets ----------------------------------------------------------------------------------

TARGET_METRICS = (
    "geographical_indication",
    "certification_mark",
    "collective_mark",
    "mark",
    "applications_growth",
    # Yearly figures of the monthly report (a target for the year itself).
    "authorised_users_added",
    "zones_confirmed",
    "batches_registered",
    "codes_issued",
)


def save_target(data: Mapping[str, Any], target: Target | None = None) -> Target:
    target = target or Target()
    _set(target, data, ("metric", "value", "by_year", "source"))
    problems = Problems()
    if target.metric not in TARGET_METRICS:
        problems.add("metric", _("must be one of %(value)s", value=", ".join(TARGET_METRICS)))
    if target.value is None or Decimal(target.value) < 0:
        problems.add("value", _("must be 0 or more"))
    if not target.by_year or not 2000 <= int(target.by_year) <= 2100:
        problems.add("by_year", _("must be a year between 2000 and 2100"))
    problems.raise_if_any()
    query = select(Target.id).where(
        Target.metric == target.metric, Target.by_year == target.by_year
    )
    if target.id is not None:
        query = query.where(Target.id != target.id)
    if db.session.scalar(query):
        raise ConflictError(
            {
                "metric": _(
                    "a target for %(metric)s in %(by_year)s exists",
                    metric=label("metric", target.metric),
                    by_year=target.by_year,
                )
            }
        )
    db.session.add(target)
    db.session.flush()
    return target


# --- zones on the map: confirmations and the editor's base ------------------------------------


def _zone_subject(record: ProductionArea | IPAsset) -> dict[str, int]:
    return {"area_id": record.id} if isinstance(record, ProductionArea) else {"asset_id": record.id}


def _zone_geometry(record: ProductionArea | IPAsset) -> dict[str, Any] | None:
    return record.geometry if isinstance(record, ProductionArea) else record.area


def confirmations(
    area: ProductionArea | None = None, asset: IPAsset | None = None
) -> list[ZoneConfirmation]:
    """Every confirmation of an area's (or asset's) zone, newest first."""
    record = area if area is not None else asset
    assert record is not None  # noqa: S101 - one of the two is given
    column = ZoneConfirmation.area_id if area is not None else ZoneConfirmation.asset_id
    return list(
        db.session.scalars(
            select(ZoneConfirmation)
            .where(column == record.id)
            .order_by(ZoneConfirmation.confirmed_at.desc(), ZoneConfirmation.id.desc())
        )
    )


def latest_confirmation(
    area: ProductionArea | None = None, asset: IPAsset | None = None
) -> ZoneConfirmation | None:
    found = confirmations(area=area, asset=asset)
    return found[0] if found else None


def confirm_zone(
    record: ProductionArea | IPAsset,
    decision_number: str,
    decision_date: Any,
    note: str,
    actor: tuple[int | None, str],
) -> ZoneConfirmation:
    """Record that an officer confirmed the zone as mapped now (the step the Department
    performs for mark applications: "xác nhận vào bản đồ khoanh vùng sản xuất"), under a
    decision; the confirmation names the shape by its hash. Raises DomainValidationError."""
    problems = Problems()
    geometry = _zone_geometry(record)
    if not geometry:
        problems.add("geometry", _("there is no zone to confirm: draw or import it first"))
    number = nfc((decision_number or "").strip())
    if not number:
        problems.add("decision_number", _("the decision (or document) under which it is confirmed"))
    elif len(number) > 100:
        problems.add("decision_number", _("at most 100 characters"))
    on = decision_date
    if isinstance(on, str):
        try:
            on = dt.date.fromisoformat(on.strip())
        except ValueError:
            problems.add("decision_date", _("must be a date (YYYY-MM-DD)"))
            on = None
    if on is None and "decision_date" not in problems.errors:
        problems.add("decision_date", _("is required"))
    problems.raise_if_any()
    confirmation = ZoneConfirmation(
        **_zone_subject(record),
        decision_number=number,
        decision_date=on,
        note=nfc((note or "").strip()),
        geometry_sha256=geo.fingerprint(geometry),
        hectares=geo.hectares(geometry),
        confirmed_by_id=actor[0],
        confirmed_by=actor[1],
    )
    db.session.add(confirmation)
    db.session.flush()
    return confirmation


def map_base(exclude_area: int | None = None, exclude_asset: int | None = None) -> dict[str, Any]:
    """The map editor's offline base: communes in force as [name, longitude, latitude], and
    the registered areas and asset zones as GeoJSON features with their names and owners."""
    communes = [
        [name, round(lon, 5), round(lat, 5)]
        for name, lon, lat in db.session.execute(
            select(AdminUnit.name, AdminUnit.longitude, AdminUnit.latitude).where(
                AdminUnit.level == "commune",
                AdminUnit.valid_to.is_(None),
                AdminUnit.latitude.isnot(None),
                AdminUnit.longitude.isnot(None),
            )
        )
    ]
    features = []
    areas = db.session.execute(
        select(ProductionArea.id, ProductionArea.code, ProductionArea.geometry, Organisation.name)
        .join(Organisation, Organisation.id == ProductionArea.owner_id)
        .where(ProductionArea.id != (exclude_area or 0))
    )
    for area_id, code, geometry, owner in areas:
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {"kind": "area", "id": area_id, "name": f"{code} — {owner}"},
            }
        )
    zones = db.session.execute(
        select(IPAsset.id, IPAsset.name, IPAsset.area).where(
            IPAsset.area.isnot(None), IPAsset.id != (exclude_asset or 0)
        )
    )
    for asset_id, name, geometry in zones:
        if geometry:
            features.append(
                {
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {"kind": "zone", "id": asset_id, "name": name},
                }
            )
    return {"communes": communes, "areas": {"type": "FeatureCollection", "features": features}}
