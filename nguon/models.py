"""Accounts, API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from flask_login import UserMixin
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nguon.audit import Audited
from nguon.db import Base, utcnow

if TYPE_CHECKING:
    from registry.models import Organisation


class Role(enum.StrEnum):
    ADMIN = "admin"
    OFFICER = "officer"
    COOPERATIVE = "cooperative"


ROLE_VALUES = tuple(r.value for r in Role)


class User(Audited, UserMixin, Base):
    """A person who logs in: an administrator, a Department officer or a cooperative member."""

    __tablename__ = "user_account"  # "user" is reserved in PostgreSQL
    __audit_exclude__ = frozenset(
        {"password_hash", "failed_logins", "locked_until", "last_login_at", "session_version"}
    )
    __table_args__ = (
        CheckConstraint(f"role IN {ROLE_VALUES!r}", name="role"),
        CheckConstraint(
            "(role = 'cooperative') = (organisation_id IS NOT NULL)", name="cooperative_has_org"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Raised by a password, role, organisation or activity change and by "sign out
    # everywhere": every session signed in under an older version is over
    # (nguon.sessions; failed_logins/locked_until above are no longer written: sign-in
    # throttling is keyed by email in LoginThrottle, whether or not an account exists).
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")

    organisation: Mapped[Organisation | None] = relationship(lazy="joined")
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    # flask-login reads this to refuse deactivated accounts.
    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class ApiToken(Audited, Base):
    """A named Bearer token for a machine client; only a SHA-256 of the secret is stored."""

    __tablename__ = "api_token"
    __audit_exclude__ = frozenset({"secret_hash", "last_used_at"})

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # Public part of the token, used to find the row without scanning hashes.
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens", lazy="joined")

    __table_args__ = (Index(None, "user_id", "name"),)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class UserSession(Base):
    """One signed-in browser session, so it can be ended on the server.

    ``id`` is the SHA-256 (hex) of the random session id the signed cookie carries; the
    session is valid while its row exists and ``version`` equals its user's
    ``session_version``. Signing out deletes the row (a copied cookie stops working).
    """

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LoginThrottle(Base):
    """Failed sign-ins per email, counted the same whether or not an account exists.

    ``key`` is the SHA-256 (hex) of the normalised email, so refused guesses store no
    address. After ``LOGIN_MAX_ATTEMPTS`` failures in a row the key is locked until
    ``locked_until`` (the lockout doubles with each further failure, at most a day).
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class AuditEntry(Base):
    """One insert, update or delete of an audited record, with the fields it changed."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index(None, "record_table", "record_id", "id"),
        CheckConstraint("action IN ('insert', 'update', 'delete')", name="action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(index=True)  # no FK: the log outlives users
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(10))
    record_table: Mapped[str] = mapped_column(String(100))
    record_id: Mapped[str] = mapped_column(String(100))
    # {"field": [before, after]}; for an insert before is null, for a delete after is null.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
