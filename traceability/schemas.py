"""marshmallow schemas of the traceability API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.schemas import OrganisationRefSchema
from traceability.evidence import describe
from traceability.models import ClaimKind

UNITS = ["KGM", "TNE", "H87", "LTR", "XBX", "XCT"]  # kg, t, piece, litre, box, carton


class ProductSchema(Schema):
    id = fields.Integer(dump_only=True)
    gtin = fields.String(
        required=True, metadata={"description": "GTIN-8/12/13/14; kept as GTIN-14"}
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    brand = fields.String(load_default="")
    producer_id = fields.Integer(required=True)
    description = fields.String(load_default="")
    standards = fields.List(fields.String(), load_default=list)
    safety_warnings = fields.String(load_default="")
    ocop_product_id = fields.Integer(allow_none=True, load_default=None)
    asset_ids = fields.List(fields.Integer(), load_only=True, load_default=list)
    assets = fields.Function(
        lambda p: [{"id": a.id, "name": a.name, "kind": a.kind} for a in p.assets], dump_only=True
    )
    producer = fields.Nested(OrganisationRefSchema, dump_only=True)
    image_url = fields.Function(
        lambda p: f"/traceability/images/{p.image_sha256}" if p.image_sha256 else None,
        dump_only=True,
    )


class ClaimRequestSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf([str(k.value) for k in ClaimKind]))
    asset_id = fields.Integer(load_default=None)
    ocop_product_id = fields.Integer(load_default=None)
    scheme = fields.String(
        load_default=None, validate=validate.OneOf(["vietgap", "globalgap", "organic"])
    )


class ClaimSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    asset_id = fields.Integer(allow_none=True)
    ocop_product_id = fields.Integer(allow_none=True)
    scheme = fields.String(allow_none=True)
    status = fields.String()
    evidence = fields.Method(
        "dump_evidence",
        metadata={"description": "each condition checked: condition, ok, facts, detail (in words)"},
    )
    checked_at = fields.DateTime()

    def dump_evidence(self, claim):  # type: ignore[no-untyped-def]
        return [{**entry, "detail": describe(entry)} for entry in claim.evidence]


class BatchSchema(Schema):
    id = fields.Integer(dump_only=True)
    product_id = fields.Integer(required=True)
    lot = fields.String(required=True)
    quantity = fields.Decimal(required=True, as_string=True)
    unit = fields.String(load_default="KGM", validate=validate.OneOf(UNITS))
    production_date = fields.Date(required=True)
    expiry_date = fields.Date(allow_none=True, load_default=None)
    best_before = fields.Boolean(load_default=False)
    notes = fields.String(load_default="")
    area_ids = fields.List(fields.Integer(), load_only=True, load_default=list)
    claims = fields.Method("dump_claims", deserialize="load_claims")
    gtin = fields.String(dump_only=True)
    producer = fields.Nested(OrganisationRefSchema, dump_only=True)
    areas = fields.Function(
        lambda b: [{"id": a.id, "code": a.code} for a in b.areas], dump_only=True
    )
    trace_code = fields.Method("dump_trace_code", dump_only=True)

    def dump_claims(self, batch):  # type: ignore[no-untyped-def]
        return ClaimSchema(many=True).dump(batch.claims)

    def load_claims(self, value):  # type: ignore[no-untyped-def]
        return ClaimRequestSchema(many=True).load(value)

    def dump_trace_code(self, batch):  # type: ignore[no-untyped-def]
        from flask import current_app

        from traceability.gs1 import DigitalLink

        return DigitalLink(batch.product.gtin, lot=batch.lot).uri(current_app.config["PUBLIC_URL"])


class LineageNodeSchema(Schema):
    gtin = fields.String()
    lot = fields.String()
    depth = fields.Integer()
    batch_id = fields.Integer(allow_none=True)
    via_event = fields.String(allow_none=True)
    from_lot = fields.Function(lambda n: {"gtin": n.from_lot[0], "lot": n.from_lot[1]})


class LineageSchema(Schema):
    batch_id = fields.Integer()
    upstream = fields.List(fields.Nested(LineageNodeSchema))
    downstream = fields.List(fields.Nested(LineageNodeSchema))


class GuidedEventSchema(Schema):
    step = fields.String(
        required=True, validate=validate.OneOf(["harvest", "pack", "ship", "receive", "process"])
    )
    event_time = fields.AwareDateTime(required=True, default_timezone=None)
    quantity = fields.Decimal(load_default=None)
    location = fields.String(load_default=None)
    source = fields.String(load_default=None)
    destination = fields.String(load_default=None)
    output_batch_id = fields.Integer(load_default=None)


class LabelRunSchema(Schema):
    id = fields.Integer(dump_only=True)
    batch_id = fields.Integer(dump_only=True)
    kind = fields.String(required=True, validate=validate.OneOf(["lot", "item"]))
    count = fields.Integer(load_default=1, validate=validate.Range(1, 100_000))
    item_quantity = fields.Decimal(
        as_string=True,
        load_default=None,
        metadata={"description": "quantity per code, in the batch's unit"},
    )
    created_at = fields.DateTime(dump_only=True)
    voided_at = fields.DateTime(dump_only=True)
    void_reason = fields.String(dump_only=True)


class VoidSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    serials = fields.List(
        fields.String(validate=validate.Length(min=1, max=20)),
        load_default=None,
        validate=validate.Length(max=10_000),
        metadata={"description": "only these codes of the run (default: all)"},
    )


class LabelCodeSchema(Schema):
    id = fields.Integer()
    serial = fields.String(allow_none=True)
    uri = fields.String()
    voided_at = fields.DateTime(allow_none=True)
    flagged_at = fields.DateTime(allow_none=True)
    flag_reason = fields.String(allow_none=True)
    scan_count = fields.Integer()
    png = fields.Function(lambda label: f"/traceability/labels/{label.id}.png")
    svg = fields.Function(lambda label: f"/traceability/labels/{label.id}.svg")
