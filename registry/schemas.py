"""marshmallow schemas of the registry API: what comes in, and exactly what goes out."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from nguon.i18n import _
from registry.models import (
    AssetKind,
    AssetStatus,
    AuthorisedUserStatus,
    CertificateScheme,
    DocumentKind,
    OcopCriteria,
    OcopGroup,
    OcopLevel,
    OcopProcedure,
    OrganisationKind,
    ProtectionRoute,
)


def one_of(enum_cls) -> validate.OneOf:  # type: ignore[no-untyped-def]
    return validate.OneOf([str(m.value) for m in enum_cls])


def ocop_criteria(value: str) -> None:
    """A criteria version; 1489/2025 is refused with the reason (it is a procedure)."""
    if value == OcopProcedure.V2025:
        raise ValidationError(
            _(
                "Decision 1489/QĐ-TTg (2025) changed the rating procedure, not the criteria:"
                " give it as procedure_version, with criteria 148/2023"
            )
        )
    one_of(OcopCriteria)(value)


def ocop_procedure() -> fields.String:
    return fields.String(load_default=OcopProcedure.V2023.value, validate=one_of(OcopProcedure))


def geojson_geometry() -> dict[str, Any]:
    """The OpenAPI shape of a GeoJSON geometry (RFC 7946 §3.1): a type and positions of
    longitude, latitude in degrees (a free-form object would promise any JSON)."""
    position = {
        "type": "array",
        "items": {"type": "number", "minimum": -180, "maximum": 180},
        "minItems": 2,
        "maxItems": 3,
    }
    ring = {"type": "array", "items": position}
    polygon = {"type": "array", "items": ring}
    return {
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": ["Point", "Polygon", "MultiPolygon"]},
            "coordinates": {"anyOf": [position, polygon, {"type": "array", "items": polygon}]},
        },
    }


class OrganisationSchema(Schema):
    id = fields.Integer(dump_only=True)
    kind = fields.String(required=True, validate=one_of(OrganisationKind))
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    tax_code = fields.String(allow_none=True, validate=validate.Length(max=14))
    address = fields.String(load_default="")
    admin_unit_code = fields.String(allow_none=True)
    gln = fields.String(allow_none=True, validate=validate.Length(equal=13))
    phone = fields.String(allow_none=True)
    email = fields.Email(allow_none=True)
    is_demo = fields.Boolean(dump_only=True)


class OrganisationRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    tax_code = fields.String()
    is_demo = fields.Boolean()


class AdminUnitSchema(Schema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    parent_code = fields.String(allow_none=True)
    valid_from = fields.Date(allow_none=True)
    valid_to = fields.Date(allow_none=True)
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)


class AdminUnitQuerySchema(Schema):
    q = fields.String(load_default="")
    level = fields.String(
        load_default=None, validate=validate.OneOf(["province", "district", "commune"])
    )
    parent = fields.String(load_default=None)
    on = fields.Date(load_default=None, metadata={"description": "units valid on this day"})


class StatusChangeSchema(Schema):
    status = fields.String()
    on_date = fields.Date()
    note = fields.String()


class RenewalSchema(Schema):
    id = fields.Integer(dump_only=True)
    renewed_on = fields.Date(required=True)
    decision = fields.String(load_default="")
    new_expiry = fields.Date(dump_only=True)


class ForeignProtectionSchema(Schema):
    id = fields.Integer(dump_only=True)
    territory = fields.String(required=True, validate=validate.Length(equal=2))
    route = fields.String(load_default="national", validate=one_of(ProtectionRoute))
    number = fields.String(allow_none=True)
    on_date = fields.Date(allow_none=True)
    note = fields.String(load_default="")


class DocumentSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    filename = fields.String()
    media_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    uploaded_at = fields.DateTime()
    url = fields.Function(lambda d: f"/registry/documents/{d.id}/{d.filename}")


class AssetSchema(Schema):
    """An IP asset. ``status`` is set on creation; later changes go through /status."""

    id = fields.Integer(dump_only=True)
    kind = fields.String(required=True, validate=one_of(AssetKind))
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    products = fields.List(fields.String(validate=validate.Length(min=1, max=200)), required=True)
    nice_classes = fields.List(fields.Integer(), load_default=list)
    holder_id = fields.Integer(allow_none=True)
    managing_organisation_id = fields.Integer(allow_none=True)
    admin_unit_code = fields.String(allow_none=True)
    district_name = fields.String(load_default="")
    application_number = fields.String(allow_none=True)
    filing_date = fields.Date(allow_none=True)
    certificate_number = fields.String(allow_none=True)
    grant_decision = fields.String(allow_none=True)
    grant_date = fields.Date(allow_none=True)
    expiry_date = fields.Date(dump_only=True)
    status = fields.String(load_default="preparing", validate=one_of(AssetStatus))
    status_date = fields.Date(load_only=True, metadata={"description": "date of the first status"})
    area = fields.Dict(
        allow_none=True,
        metadata={"description": "GeoJSON Polygon/MultiPolygon", **geojson_geometry()},
    )
    product_specification = fields.String(load_default="")
    notes = fields.String(load_default="")
    is_demo = fields.Boolean(dump_only=True)
    demo_fields = fields.List(fields.String(), dump_only=True)
    holder = fields.Nested(OrganisationRefSchema, dump_only=True, allow_none=True)
    managing_organisation = fields.Nested(OrganisationRefSchema, dump_only=True, allow_none=True)
    status_history = fields.List(fields.Nested(StatusChangeSchema), dump_only=True)
    renewals = fields.List(fields.Nested(RenewalSchema), dump_only=True)
    foreign_protections = fields.List(fields.Nested(ForeignProtectionSchema), dump_only=True)
    documents = fields.List(fields.Nested(DocumentSchema), dump_only=True)


class AssetSummarySchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    name = fields.String()
    products = fields.List(fields.String())
    status = fields.String()
    district_name = fields.String()
    certificate_number = fields.String(allow_none=True)
    grant_date = fields.Date(allow_none=True)
    expiry_date = fields.Date(allow_none=True)
    holder = fields.Nested(OrganisationRefSchema, allow_none=True)
    managing_organisation = fields.Nested(OrganisationRefSchema, allow_none=True)
    is_demo = fields.Boolean()


class AssetQuerySchema(Schema):
    q = fields.String(
        load_default="", metadata={"description": "words, any case, accents optional"}
    )
    kind = fields.String(load_default=None, validate=one_of(AssetKind))
    status = fields.String(load_default=None, validate=one_of(AssetStatus))
    area = fields.String(load_default=None, metadata={"description": "district or unit code"})
    product = fields.String(load_default=None)
    holder = fields.Integer(load_default=None, data_key="holder")
    sort = fields.String(
        load_default="name",
        validate=validate.OneOf(
            [
                "name",
                "-name",
                "filing_date",
                "-filing_date",
                "grant_date",
                "-grant_date",
                "expiry_date",
                "-expiry_date",
                "kind",
                "-kind",
            ]
        ),
    )


class AssetStatusInputSchema(Schema):
    status = fields.String(required=True, validate=one_of(AssetStatus))
    on_date = fields.Date(required=True)
    note = fields.String(load_default="")
    certificate_number = fields.String()
    grant_decision = fields.String()
    grant_date = fields.Date()
    application_number = fields.String()
    filing_date = fields.Date()


class AreaCertificateSchema(Schema):
    id = fields.Integer(dump_only=True)
    scheme = fields.String(required=True, validate=one_of(CertificateScheme))
    number = fields.String(required=True, validate=validate.Length(min=1, max=100))
    issuer = fields.String(required=True, validate=validate.Length(min=1, max=300))
    valid_from = fields.Date(allow_none=True)
    valid_to = fields.Date(required=True)


class AreaSchema(Schema):
    id = fields.Integer(dump_only=True)
    code = fields.String(required=True)
    name = fields.String(load_default="")
    crop = fields.String(required=True)
    owner_id = fields.Integer(required=True)
    admin_unit_code = fields.String(allow_none=True)
    hectares = fields.Decimal(required=True, as_string=True, places=4)
    geometry = fields.Dict(
        required=True,
        metadata={"description": "GeoJSON Point or Polygon", **geojson_geometry()},
    )
    expected_yield_kg_per_ha = fields.Decimal(allow_none=True, as_string=True, places=2)
    is_demo = fields.Boolean(dump_only=True)
    owner = fields.Nested(OrganisationRefSchema, dump_only=True)
    certificates = fields.List(fields.Nested(AreaCertificateSchema), dump_only=True)


class AuthorisedUserSchema(Schema):
    id = fields.Integer(dump_only=True)
    asset_id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    decision_number = fields.String(required=True, validate=validate.Length(min=1, max=100))
    decision_date = fields.Date(required=True)
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(allow_none=True)
    user_code = fields.String(required=True)
    products = fields.List(fields.String(), required=True)
    yearly_ceiling = fields.Decimal(allow_none=True, as_string=True, places=3)
    ceiling_unit = fields.String(
        load_default="KGM", validate=validate.OneOf(["KGM", "TNE", "H87", "LTR"])
    )
    area_ids = fields.List(fields.Integer(), load_only=True, load_default=list)
    areas = fields.List(
        fields.Nested(AreaSchema(only=("id", "code", "name", "crop", "hectares"))), dump_only=True
    )
    status = fields.String(dump_only=True)
    status_reason = fields.String(dump_only=True)
    status_changed_on = fields.Date(dump_only=True)
    organisation = fields.Nested(OrganisationRefSchema, dump_only=True)
    is_demo = fields.Boolean(dump_only=True)


class AuthorisedUserStatusSchema(Schema):
    status = fields.String(required=True, validate=one_of(AuthorisedUserStatus))
    reason = fields.String(load_default="")
    on_date = fields.Date(load_default=None)


class OcopSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    producer_id = fields.Integer(required=True)
    product_group = fields.String(required=True, validate=one_of(OcopGroup))
    criteria_version = fields.String(required=True, validate=ocop_criteria)
    procedure_version = ocop_procedure()
    score = fields.Integer(required=True, validate=validate.Range(0, 100))
    stars = fields.Integer(required=True, validate=validate.Range(3, 5))
    rating_level = fields.String(required=True, validate=one_of(OcopLevel))
    decision_number = fields.String(required=True)
    decision_date = fields.Date(required=True)
    expiry_date = fields.Date(dump_only=True)
    status = fields.String(dump_only=True)
    gtins = fields.List(fields.String(), load_default=list)
    asset_ids = fields.List(fields.Integer(), load_only=True, load_default=list)
    assets = fields.List(
        fields.Nested(AssetSummarySchema(only=("id", "name", "kind"))), dump_only=True
    )
    previous_id = fields.Integer(dump_only=True, allow_none=True)
    producer = fields.Nested(OrganisationRefSchema, dump_only=True)
    is_demo = fields.Boolean(dump_only=True)


class OcopRerateSchema(Schema):
    criteria_version = fields.String(required=True, validate=ocop_criteria)
    procedure_version = ocop_procedure()
    score = fields.Integer(required=True, validate=validate.Range(0, 100))
    stars = fields.Integer(required=True, validate=validate.Range(3, 5))
    rating_level = fields.String(required=True, validate=one_of(OcopLevel))
    decision_number = fields.String(required=True)
    decision_date = fields.Date(required=True)


class TargetSchema(Schema):
    id = fields.Integer(dump_only=True)
    metric = fields.String(required=True)
    value = fields.Decimal(required=True, as_string=True)
    by_year = fields.Integer(required=True)
    source = fields.String(load_default="")


DOCUMENT_KINDS = [str(k.value) for k in DocumentKind]
