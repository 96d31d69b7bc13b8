"""Readiness: is the database reachable, and is its schema the one this code expects?"""

from __future__ import annotations

import functools
import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from nguon.db import db
from nguon.i18n import _

log = logging.getLogger(__name__)


@functools.cache
def migration_heads() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    from nguon.migrate import MIGRATIONS

    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def timed_out(exc: BaseException) -> bool:
    """Whether a database error is a statement cancelled by ``statement_timeout``."""
    try:
        from psycopg.errors import QueryCanceled
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(getattr(exc, "orig", exc), QueryCanceled)


def readiness() -> tuple[str | None, str | None]:
    """``(None, head)`` when ready, else ``(reason, None)``: the reason is translated and
    says what to do, the technical cause goes to the log (not to the caller)."""
    heads = migration_heads()
    try:
        rows = db.session.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError as exc:
        db.session.rollback()
        cause = str(getattr(exc, "orig", exc)).strip().splitlines()
        log.warning("not ready: %s", cause[0] if cause else type(exc).__name__)
        message = str(exc).lower()
        if "alembic_version" in message and (
            "no such table" in message or "does not exist" in message
        ):
            return _("The database has no schema yet: run “nguon db upgrade”."), None
        return _("The database cannot be reached."), None
    current = frozenset(rows)
    if current != heads:
        log.warning("not ready: schema at %s, code expects %s", sorted(current), sorted(heads))
        return (
            _(
                "The database schema is at revision %(current)s but this code needs"
                " %(expected)s: run “nguon db upgrade”.",
                current=", ".join(sorted(current)) or "—",
                expected=", ".join(sorted(heads)),
            ),
            None,
        )
    return None, ", ".join(sorted(heads))
