"""The shell's REST API: who am I, my API tokens, users (admin), the audit log (staff)."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask_login import current_user
from flask_smorest import Blueprint, Page
from sqlalchemy import select

from nguon import services
from nguon.auth import admin_required, login_required, staff_required
from nguon.db import count_rows, db, page_rows
from nguon.models import ApiToken, AuditEntry, User
from nguon.schemas import (
    AuditEntrySchema,
    AuditQuerySchema,
    IssuedTokenSchema,
    TokenSchema,
    UserCreateSchema,
    UserSchema,
)
from nguon.views import audit_query

api_bp = Blueprint("api", __name__, url_prefix="/api/v1", description="Accounts and audit")
SECURITY = [{"bearerAuth": []}]


class SelectPage(Page):
    """flask-smorest pagination over a SQLAlchemy ``select``."""

    @property
    def item_count(self) -> int:
        return count_rows(self.collection)

    @property
    def items(self) -> list[Any]:
        return page_rows(self.collection, self.page_params.page_size, self.page_params.first_item)


@api_bp.get("/me")
@login_required
@api_bp.response(200, UserSchema)
@api_bp.doc(security=SECURITY)
def me() -> User:
    """The signed-in user."""
    return current_user._get_current_object()  # type: ignore[attr-defined]


@api_bp.get("/users")
@staff_required
@api_bp.response(200, UserSchema(many=True))
@api_bp.paginate(SelectPage)
@api_bp.doc(security=SECURITY)
def list_users() -> Any:
    """All users (officers and admins)."""
    return select(User).order_by(User.id)


@api_bp.post("/users")
@admin_required
@api_bp.arguments(UserCreateSchema)
@api_bp.response(201, UserSchema)
@api_bp.doc(security=SECURITY)
def create_user(data: dict[str, Any]) -> User:
    """Create a user (admins only)."""
    return services.create_user(
        data["email"],
        data["role"],
        password=data["password"],
        organisation_id=data.get("organisation_id"),
        name=data.get("name", ""),
    )


@api_bp.get("/tokens")
@login_required
@api_bp.response(200, TokenSchema(many=True))
@api_bp.doc(security=SECURITY)
def list_tokens() -> list[ApiToken]:
    """My API tokens (the secrets are never shown again)."""
    return services.tokens_of(current_user)


@api_bp.post("/tokens")
@login_required
@api_bp.arguments(TokenSchema)
@api_bp.response(201, IssuedTokenSchema)
@api_bp.doc(security=SECURITY)
def create_token(data: dict[str, Any]) -> dict[str, Any]:
    """Issue a named token; the answer carries the secret, once."""
    issued = services.create_token(current_user, data["name"])
    fields = ("id", "name", "key_id", "created_at", "last_used_at", "revoked_at")
    return {**{f: getattr(issued.token, f) for f in fields}, "token": issued.secret}


@api_bp.delete("/tokens/<int:token_id>")
@login_required
@api_bp.response(204)
@api_bp.doc(security=SECURITY)
def revoke_token(token_id: int) -> None:
    """Revoke one of my tokens."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404, description=f"no token {token_id} of yours")
    services.revoke_token(token)


@api_bp.get("/audit")
@staff_required
@api_bp.arguments(AuditQuerySchema, location="query")
@api_bp.response(200, AuditEntrySchema(many=True))
@api_bp.paginate(SelectPage)
@api_bp.doc(security=SECURITY)
def audit(args: dict[str, Any]) -> Any:
    """Audit entries, newest first; filter by table, record id and actor."""
    return audit_query(args["table"], args["record"], args["actor"]).order_by(AuditEntry.id.desc())
