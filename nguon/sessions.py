"""Server-side session revocation for the signed session cookie.

The cookie stays Flask's signed cookie, and carries a random session id besides
flask-login's user id. A session is valid while the row ``user_session(sha256(id))``
exists, belongs to that user and was made under the user's current
``session_version``:

- signing out deletes the session's row, so a copy of the cookie stops working;
- a password, role, organisation or activity change of the user, and "sign out
  everywhere", raise ``session_version`` (a flush hook does it for every change made
  through the ORM, whatever the route or command), ending every session at once;
- API tokens are separate credentials: they are revoked one by one (tokens page,
  ``nguon tokens revoke``) and stop at once when the account is disabled; a password or
  role change does not revoke them (a token then acts with the user's new role).

Checking costs nothing extra: the user loader reads the user and the session row in
the one query it made before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from flask import current_app, session
from sqlalchemy import delete, event, inspect, or_, select
from sqlalchemy.orm import Session

from nguon.db import db, utcnow
from nguon.models import User, UserSession

SESSION_ID_KEY = "_sid"
# A change to any of these ends every session of the user.
REVOKING_FIELDS = ("password_hash", "role", "organisation_id", "active")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _lifetime() -> dt.timedelta:
    return current_app.permanent_session_lifetime


def start(user: User) -> None:
    """Record a new session for ``user`` (just signed in) and put its id in the cookie.

    The user's rows that can no longer be used (older versions, past the session
    lifetime) are deleted on the way.
    """
    session_id = secrets.token_urlsafe(32)
    db.session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id,
            or_(
                UserSession.version != user.session_version,
                UserSession.created_at < utcnow() - _lifetime(),
            ),
        )
    )
    db.session.add(
        UserSession(id=_digest(session_id), user_id=user.id, version=user.session_version)
    )
    db.session.flush()
    session[SESSION_ID_KEY] = session_id


def end() -> None:
    """End the current session on the server (its row is deleted) and in the cookie."""
    session_id = session.pop(SESSION_ID_KEY, None)
    if isinstance(session_id, str):
        db.session.execute(delete(UserSession).where(UserSession.id == _digest(session_id)))


def end_all(user: User) -> None:
    """End every session of ``user``, this one included ("sign out everywhere")."""
    user.session_version += 1
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    db.session.flush()


def load_user(user_id: str) -> User | None:
    """flask-login's user loader: the user, if the cookie's session is still valid."""
    session_id = session.get(SESSION_ID_KEY)
    if not isinstance(session_id, str) or not user_id.isdigit() or len(user_id) > 18:
        return None
    return db.session.scalar(
        select(User)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            User.id == int(user_id),
            UserSession.id == _digest(session_id),
            UserSession.version == User.session_version,
            UserSession.created_at >= utcnow() - _lifetime(),
        )
    )


def _before_flush(orm_session: Session, _context: Any, _instances: Any) -> None:
    for obj in orm_session.dirty:
        if not isinstance(obj, User):
            continue
        state = inspect(obj)
        if state.attrs.session_version.history.has_changes():
            continue
        if any(state.attrs[name].history.has_changes() for name in REVOKING_FIELDS):
            obj.session_version = (obj.session_version or 1) + 1


def install() -> None:
    """Register the flush hook that ends a user's sessions on a revoking change."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
