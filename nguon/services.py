"""Account services: users, logins with lockout, API tokens.

They change the session and flush; the caller (request, CLI command) commits.
Each raises :class:`~nguon.errors.DomainValidationError` naming the field and rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import NoReturn

from flask import current_app
from sqlalchemy import delete, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from nguon.auth import new_token_string
from nguon.db import db, utcnow
from nguon.errors import ConflictError, DomainValidationError
from nguon.i18n import _
from nguon.inputs import is_digits
from nguon.models import ROLE_VALUES, ApiToken, LoginThrottle, Role, User
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
    user.password_hash = _hash_password(password)  # ends the user's sessions (nguon.sessions)
    lift_lockout(user.email)


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


_DUMMY_HASHES: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash made with the method real passwords use, checked when there is no account
    (or no password), so every sign-in costs one full hash check."""
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    dummy = _DUMMY_HASHES.get(method)
    if dummy is None:
        dummy = _DUMMY_HASHES[method] = generate_password_hash("not-a-password", method=method)
    return dummy


def _searchable(text: str) -> bool:
    """Whether ``text`` can be looked up at all (no NUL, no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def throttle_key(email: str) -> str:
    """The sign-in throttle's key for ``email``: SHA-256 (hex) of the normalised address."""
    normalised = normalise_email(email) if _searchable(email) else email
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


def _count_failure(key: str, now: dt.datetime) -> int:
    """Add one failure to ``key``'s count (one statement, safe under concurrency)."""
    table = LoginThrottle.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).values(key=key, failed=1, updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"failed": table.c.failed + 1, "updated_at": now},
    ).returning(table.c.failed)
    return int(db.session.execute(statement).scalar_one())


def lift_lockout(email: str) -> None:
    """Forget ``email``'s failed sign-ins (and any lockout)."""
    db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == throttle_key(email)))


def authenticate(email: str, password: str) -> User:
    """The user for these credentials, or :class:`LoginRefused`.

    Failures are counted per email (:class:`~nguon.models.LoginThrottle`), whether or
    not an account has that address, and every attempt costs one password-hash check:
    an unknown email gets the same answers, lockout included, in the same time. After
    ``LOGIN_MAX_ATTEMPTS`` failures in a row the email is locked for
    ``LOGIN_LOCKOUT_SECONDS``, doubling with every further failure (capped at a day);
    while locked, even the right password is refused (reason ``locked``, with
    ``locked_until``). A disabled account's right password is a failure like any other.
    The counters are changed in the session: the caller commits them.
    """
    key = throttle_key(email)
    now = utcnow()
    _refuse_if_locked(key, now)
    user = find_user(email) if "@" in email and _searchable(email) else None
    stored = user.password_hash if user is not None else None
    matches = check_password_hash(stored or _dummy_hash(), password) and stored is not None
    if matches and user is not None and user.is_active:
        lift_lockout(email)
        user.last_login_at = now
        db.session.flush()
        return user
    _refuse_failure(key, now)


def verify_own_password(user: User, password: str) -> None:
    """Check a signed-in user's current password (before changing it), counted by the
    same throttle as sign-in: a stolen session cannot guess it without limit. Raises
    :class:`LoginRefused` (``invalid`` or ``locked``); the caller commits the count."""
    key = throttle_key(user.email)
    now = utcnow()
    _refuse_if_locked(key, now)
    if not check_password_hash(user.password_hash or _dummy_hash(), password) or not (
        user.password_hash
    ):
        _refuse_failure(key, now)
    lift_lockout(user.email)


def _refuse_if_locked(key: str, now: dt.datetime) -> None:
    locked_until = db.session.scalar(
        select(LoginThrottle.locked_until).where(LoginThrottle.key == key)
    )
    if locked_until is not None and locked_until > now:
        raise LoginRefused("locked", locked_until)


def _refuse_failure(key: str, now: dt.datetime) -> NoReturn:
    """Count a failure for ``key``; lock it at the limit (the lock doubles with each
    further failure, at most a day)."""
    failed = _count_failure(key, now)
    limit = current_app.config["LOGIN_MAX_ATTEMPTS"]
    if failed >= limit:
        base = dt.timedelta(seconds=current_app.config["LOGIN_LOCKOUT_SECONDS"])
        until = now + min(base * 2 ** min(failed - limit, 20), MAX_LOCKOUT)
        db.session.execute(
            update(LoginThrottle).where(LoginThrottle.key == key).values(locked_until=until)
        )
        raise LoginRefused("locked", until)
    raise LoginRefused("invalid")


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
