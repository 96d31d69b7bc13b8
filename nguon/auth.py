"""Who is asking, and may they: sessions, Bearer tokens and the permission helpers.

Every view states its rule with one of these and nothing else:

- :func:`login_required` — any signed-in user (401 on the API, login page on HTML);
- :func:`roles_required` — one of the given roles (403 otherwise);
- :func:`require_organisation_access` — officers and admins see all organisations,
  a cooperative user only its own (403 otherwise).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, current_app, g, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select

from nguon.db import db, utcnow
from nguon.models import ApiToken, Role, User

login_manager = LoginManager()
csrf = CSRFProtect()

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_PREFIX = "ngn"  # noqa: S105 - a public marker, not a secret
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# last_used_at is written at most this often per token, to keep reads cheap.
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)


class TokenError(Exception):
    """An ``Authorization`` header that is malformed, unknown or revoked."""


def is_api_request() -> bool:
    return request.path.startswith(("/api/", "/epcis/"))


# --- tokens -----------------------------------------------------------------


def hash_secret(secret: str) -> str:
    # Secrets stored this way (API tokens, report links) carry at least 192 random bits,
    # so a fast hash is enough; no salt is needed.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token_string() -> tuple[str, str, str]:
    """(full token, key id, secret hash) for a new token."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}_{key_id}_{secret}", key_id, hash_secret(secret)


def user_for_token(raw: str) -> tuple[User, ApiToken]:
    """The user a token string belongs to; raises :class:`TokenError` with the reason."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12 or not parts[2]:
        raise TokenError("malformed token: expected ngn_<key id>_<secret>")
    token = db.session.scalar(select(ApiToken).where(ApiToken.key_id == parts[1]))
    if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(parts[2])):
        raise TokenError("unknown token")
    if token.is_revoked:
        raise TokenError("token revoked")
    if not token.user.is_active:
        raise TokenError("account disabled")
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        token.last_used_at = now
    return token.user, token


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    from nguon import sessions

    return sessions.load_user(user_id)


@login_manager.unauthorized_handler
def _unauthorized() -> Any:
    if is_api_request() or request.headers.get("Authorization"):
        abort(401, description=g.get("auth_error") or "authentication required")
    return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))


def _authenticate_request() -> None:
    """A Bearer header, when present, decides who the caller is (a cookie is ignored);
    cookie-authenticated writes must carry the CSRF token."""
    header = request.headers.get("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            abort(401, description="Authorization header must be 'Bearer <token>'")
        try:
            user, token = user_for_token(value.strip())
        except TokenError as exc:
            abort(401, description=str(exc))
        g.api_token_id = token.id
        # What flask-login's loaders would set; the token never touches the session.
        login_manager._update_request_context_with_user(user)
        # A browser cannot send a custom Authorization header cross-site without a
        # CORS preflight we never grant, so token requests need no CSRF token.
        return
    if request.method in UNSAFE_METHODS:
        if is_api_request() and not current_user.is_authenticated:
            return  # no ambient credentials to abuse; the view answers 401 if it needs any
        view = current_app.view_functions.get(request.endpoint or "")
        if not getattr(view, "_csrf_exempt", False):
            csrf.protect()


def csrf_exempt(view: F) -> F:
    """Mark a view that authenticates without cookies (e.g. the public report form uses
    its own token) as not needing the session CSRF token."""
    view._csrf_exempt = True  # type: ignore[attr-defined]
    return view


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    from nguon import sessions

    sessions.install()
    app.before_request(_authenticate_request)


# --- permission helpers -------------------------------------------------------


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def roles_required(*roles: Role | str) -> Callable[[F], F]:
    """Allow only signed-in users with one of ``roles`` (401 if anonymous, 403 otherwise)."""
    allowed = frozenset(str(r) for r in roles)

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in allowed:
                abort(403, description="this needs one of the roles: " + ", ".join(sorted(allowed)))
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


staff_required = roles_required(Role.OFFICER, Role.ADMIN)
admin_required = roles_required(Role.ADMIN)


def is_staff(user: Any = None) -> bool:
    user = current_user if user is None else user
    return bool(user and user.is_authenticated and user.role in (Role.OFFICER, Role.ADMIN))


def can_access_organisation(organisation_id: int | None, user: Any = None) -> bool:
    user = current_user if user is None else user
    if not (user and user.is_authenticated):
        return False
    if user.role in (Role.OFFICER, Role.ADMIN):
        return True
    return organisation_id is not None and user.organisation_id == organisation_id


def require_organisation_access(organisation_id: int | None) -> None:
    """Abort with 403 unless the current user may act for ``organisation_id``."""
    if not current_user.is_authenticated:
        abort(401)
    if not can_access_organisation(organisation_id):
        abort(403, description="this record belongs to another organisation")
