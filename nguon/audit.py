"""The audit log: every insert, update and delete of an :class:`Audited` record.

A model opts in by inheriting :class:`Audited`; nothing else is needed. A session hook
reads each flushed object's attribute history and writes ``audit_entry`` rows on the
same connection, inside the same transaction, so a rolled-back change leaves no audit
row and a committed one always has its row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterator
from typing import Any

from flask import g, has_app_context, has_request_context
from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import NO_VALUE

from nguon.db import utcnow


class Audited:
    """Mixin: changes to instances are recorded in the audit log.

    ``__audit_exclude__`` names columns never written to the log (secrets, counters).
    """

    __audit_exclude__: frozenset[str] = frozenset()


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a column value."""
    if value is None or value is NO_VALUE:
        return None
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID | bytes):
        return str(value) if isinstance(value, uuid.UUID) else f"<{len(value)} bytes>"
    if isinstance(value, dict | list | tuple):
        return value
    return str(value)


def current_actor() -> tuple[int | None, str]:
    """Who is acting: the logged-in user, a CLI/worker label, a named system task, or
    "anonymous" (a member of the public, e.g. a report filed without an account)."""
    if has_app_context():
        label = g.get("audit_actor")
        if label:
            return g.get("audit_actor_id"), label
    if has_request_context():
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            return current_user.id, current_user.email
        return None, "anonymous"
    import click

    command = click.get_current_context(silent=True)
    if command is not None:  # a CLI command or a worker started from one (nguon sync run)
        return None, f"system:{command.command_path}"[:300]
    return None, "system"


@contextlib.contextmanager
def acting_as(label: str) -> Iterator[None]:
    """Record what is written inside as done by ``label`` (e.g. ``system:clone-detection``
    when a public scan raises an alarm), whoever made the request."""
    previous = g.get("audit_actor"), g.get("audit_actor_id")
    g.audit_actor, g.audit_actor_id = label, None
    try:
        yield
    finally:
        g.audit_actor, g.audit_actor_id = previous


def _record_id(obj: Any) -> str:
    # Not state.identity: a just-inserted object gets its identity key only after
    # the flush is finalised, but its primary key is already populated.
    state = inspect(obj)
    return "/".join(str(part) for part in state.mapper.primary_key_from_instance(obj))


def _changes(obj: Audited, action: str) -> dict[str, list[Any]]:
    state = inspect(obj)
    changes: dict[str, list[Any]] = {}
    for column_attr in state.mapper.column_attrs:
        key = column_attr.key
        if key in obj.__audit_exclude__:
            continue
        attr = state.attrs[key]
        if action == "insert":
            value = attr.value
            if value is not None:
                changes[key] = [None, _plain(value)]
        elif action == "delete":
            changes[key] = [_plain(attr.loaded_value), None]
        else:
            history = attr.history
            if not history.has_changes():
                continue
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if _plain(before) != _plain(after):
                changes[key] = [_plain(before), _plain(after)]
    return changes


def _after_flush(session: Session, _flush_context: UOWTransaction) -> None:
    rows: list[dict[str, Any]] = []
    groups = (("insert", session.new), ("update", session.dirty), ("delete", session.deleted))
    for action, objects in groups:
        for obj in objects:
            if not isinstance(obj, Audited):
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            changes = _changes(obj, action)
            if action == "update" and not changes:
                continue  # only excluded fields moved (e.g. a token's last use)
            rows.append(
                {
                    "action": action,
                    "record_table": obj.__table__.name,  # type: ignore[attr-defined]
                    "record_id": _record_id(obj),
                    "changes": changes,
                }
            )
    if not rows:
        return
    from nguon.models import AuditEntry

    actor_id, actor = current_actor()
    request_id = g.get("request_id") if has_app_context() else None
    now = utcnow()
    for row in rows:
        row.update(actor_id=actor_id, actor=actor, at=now, request_id=request_id)
    # Written on the flush's own connection: same transaction, same fate.
    session.connection().execute(insert(AuditEntry), rows)


def install() -> None:
    """Register the session hook (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
