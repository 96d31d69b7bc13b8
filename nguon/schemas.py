"""marshmallow schemas of the shell's API; each lists the fields it shows."""

from marshmallow import Schema, fields, validate

from nguon.models import ROLE_VALUES


class ProblemSchema(Schema):
    """RFC 9457 problem details, the shape of every API error."""

    type = fields.String(metadata={"example": "about:blank"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    instance = fields.String()
    errors = fields.List(
        fields.Dict(keys=fields.String(), values=fields.String()),
        metadata={"description": "one entry per broken rule: {field, message}"},
    )


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(load_default="", validate=validate.Length(max=200))
    role = fields.String(required=True, validate=validate.OneOf(ROLE_VALUES))
    organisation_id = fields.Integer(allow_none=True, load_default=None)
    active = fields.Boolean(dump_only=True)
    last_login_at = fields.DateTime(dump_only=True)


class UserCreateSchema(UserSchema):
    password = fields.String(
        load_only=True, required=True, validate=validate.Length(min=10, max=1000)
    )


class TokenSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    key_id = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True)
    revoked_at = fields.DateTime(dump_only=True)


class IssuedTokenSchema(TokenSchema):
    token = fields.String(
        dump_only=True, metadata={"description": "the secret; shown only in this answer"}
    )


class AuditQuerySchema(Schema):
    table = fields.String(load_default=None)
    record = fields.String(load_default=None)
    actor = fields.String(load_default=None)


class AuditEntrySchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.Integer(allow_none=True)
    actor = fields.String()
    action = fields.String()
    record_table = fields.String()
    record_id = fields.String()
    changes = fields.Dict()
    request_id = fields.String(allow_none=True)
