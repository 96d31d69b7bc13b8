"""Account services: users, logins with lockout, API tokens.

They change the session and flush; the caller (request, CLI command) commits.
Each raises :class:`~nguon.errors.DomainValidationError` naming the field and rule.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from nguon.auth import new_token_string
from nguon.db import db, utcnow
from nguon.errors import ConflictError, DomainValidationError
from nguon.i18n import _
from nguon.inputs import is_digits
from nguon.models import ROLE_VALUES, ApiToken, Role, User
from nguon.text import nfc

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10
MAX_LOCKOUT = dt.timedelta(days=1)


def normalise_email(email: str) -> str:
    return nfc(email).lower()


def _hash_password(password: str) -> str:
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    return generate_password_hash(password, method=method)


def password_problem(password: str) -> str | None:
    """What is wrong with ``password``, if anything (the one place the rule is written)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters long"
    return None


def check_password_rules(password: str, field: str = "password") -> None:
    problem = password_problem(password)
    if problem:
        raise DomainValidationError({field: problem})


def create_user(
    email: str,
    role: str,
    *,
    password: str | None = None,
    organisation_id: int | None = None,
    name: str = "",
) -> User:
    """Add a user. A cooperative user belongs to exactly one organisation; others to none.

    Raises DomainValidationError for a malformed email, unknown role, missing or
    unexpected organisation, or short password; ConflictError if the email is taken.
    """
    from registry.models import Organisation

    email = normalise_email(email)
    problems: dict[str, str] = {}
    if not EMAIL_RE.match(email):
        problems["email"] = _("must be an email address like name@example.vn")
    if role not in ROLE_VALUES:
        problems["role"] = _("must be one of %(value)s", value=", ".join(ROLE_VALUES))
    elif role == Role.COOPERATIVE and organisation_id is None:
        problems["organisation_id"] = _("a cooperative user must belong to an organisation")
    elif role != Role.COOPERATIVE and organisation_id is not None:
        problems["organisation_id"] = _("only cooperative users belong to an organisation")
    elif organisation_id is not None and db.session.get(Organisation, organisation_id) is None:
        problems["organisation_id"] = _(
            "no organisation with id %(organisation_id)s", organisation_id=organisation_id
        )
    if password is not None and (problem := password_problem(password)):
        problems["password"] = problem
    if problems:
        raise DomainValidationError(problems)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ConflictError({"email": _("a user with email %(email)s already exists", email=email)})
    user = User(
        email=email,
        role=role,
        organisation_id=organisation_id,
        name=nfc(name),
        password_hash=_hash_password(password) if password else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def set_password(user: User, password: str) -> None:
    check_password_rules(password)
    user.password_hash = _hash_password(password)
    user.failed_logins = 0
    user.locked_until = None


def find_user(email_or_id: str) -> User | None:
    if is_digits(email_or_id, 9):
        return db.session.get(User, int(email_or_id))
    return db.session.scalar(select(User).where(User.email == normalise_email(email_or_id)))


# --- logins -------------------------------------------------------------------


class LoginRefused(Exception):
    """Wrong credentials, a disabled account, or a lockout (``locked_until`` set)."""

    def __init__(self, reason: str, locked_until: dt.datetime | None = None):
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


# Compared against when the email is unknown, so both paths cost one hash check.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="pbkdf2:sha256:1000")


def authenticate(email: str, password: str) -> User:
    """The user for these credentials, or :class:`LoginRefused`.

    After ``LOGIN_MAX_ATTEMPTS`` failures in a row the account is locked for
    ``LOGIN_LOCKOUT_SECONDS``, doubling with every further failure (capped at a day).
    While locked, even the right password is refused. The failure counters are
    changed in the session: the caller commits them like any other change.
    """
    user = find_user(email) if email and "@" in email else None
    now = utcnow()
    if user is None or user.password_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        raise LoginRefused("invalid")
    if user.locked_until is not None and user.locked_until > now:
        raise LoginRefused("locked", user.locked_until)
    if not check_password_hash(user.password_hash, password):
        user.failed_logins += 1
        limit = current_app.config["LOGIN_MAX_ATTEMPTS"]
        if user.failed_logins >= limit:
            base = dt.timedelta(seconds=current_app.config["LOGIN_LOCKOUT_SECONDS"])
            lockout = min(base * 2 ** min(user.failed_logins - limit, 20), MAX_LOCKOUT)
            user.locked_until = now + lockout
            db.session.flush()
            raise LoginRefused("locked", user.locked_until)
        db.session.flush()
        raise LoginRefused("invalid")
    if not user.is_active:
        raise LoginRefused("disabled")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.flush()
    return user


# --- API tokens -----------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the whole token string; shown once, never stored


def create_token(user: User, name: str) -> IssuedToken:
    """A new Bearer token for ``user``. The secret is returned once and only hashed."""
    name = nfc(name)
    if not name or len(name) > 100:
        raise DomainValidationError({"name": _("must be 1 to 100 characters")})
    taken = db.session.scalar(
        select(func.count(ApiToken.id)).where(
            ApiToken.user_id == user.id, ApiToken.name == name, ApiToken.revoked_at.is_(None)
        )
    )
    if taken:
        raise ConflictError({"name": _("an active token named %(name)r already exists", name=name)})
    raw, key_id, secret_hash = new_token_string()
    token = ApiToken(user=user, name=name, key_id=key_id, secret_hash=secret_hash)
    db.session.add(token)
    db.session.flush()
    return IssuedToken(token=token, secret=raw)


def revoke_token(token: ApiToken) -> None:
    """Revoke ``token`` (idempotent); requests using it are refused from now on."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.flush()


def tokens_of(user: User) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
        )
    )
