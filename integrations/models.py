"""The transactional outbox: what must reach another system, written with the change;
what the portal holds of ours; and the state each destination's workers share."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nguon.db import Base, utcnow

# Dependencies first: an organisation before its products, a product before its records.
PRIORITY = {"organisation": 0, "location": 1, "product": 2, "trace_record": 3, "epcis_event": 4}


class OutboxState(enum.StrEnum):
    PENDING = "pending"  # waiting to be sent (or re-sent after a failure)
    SENT = "sent"  # the portal took it and will accept or reject it later
    DONE = "done"  # the portal accepted it
    REJECTED = "rejected"  # the portal rejected it later: reasons kept, resend after correction
    PARKED = "parked"  # refused as invalid, or failed for too long: an officer decides
    SUPERSEDED = "superseded"  # a later revision of the record went before the portal decided


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "state", "next_attempt_at", "priority", "id"),
        Index(None, "kind", "record_id"),
        Index(None, "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(20), default="portal")
    priority: Mapped[int] = mapped_column(default=3)
    idempotency_key: Mapped[str] = mapped_column(String(36), unique=True)
    state: Mapped[str] = mapped_column(String(10), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Since when the row has met transient failures while its destination answered
    # others (None: it has not failed, or an outage reset the clock). Time, not the
    # number of attempts, decides when a row gives up.
    failing_since: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    remote_id: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[int | None]  # the revision of the portal's record this row sends
    sent_at: Mapped[dt.datetime | None]  # when the destination took it (the delivery rate)
    last_error: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Frozen at the first attempt, so every retry with this key sends the same body.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    method: Mapped[str | None] = mapped_column(String(10))
    path: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PortalRecord(Base):
    """A record the portal holds for us: its id there and the last revision it took.
    A later change of the same record is sent as the next revision of this id."""

    __tablename__ = "portal_record"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    remote_id: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Circuit(enum.StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # the destination is unreachable: no calls but a probe now and then
    REFUSED = "refused"  # it refuses our credentials: no calls but a probe now and then


class SyncChannel(Base):
    """One destination's shared state: every worker reads and writes the same row, so the
    circuit breaker and the heartbeat are common to all."""

    __tablename__ = "sync_channel"

    target: Mapped[str] = mapped_column(String(20), primary_key=True)
    circuit: Mapped[str] = mapped_column(String(10), default=Circuit.CLOSED)
    failures: Mapped[int] = mapped_column(default=0)  # transient failures in a row
    failing_since: Mapped[dt.datetime | None]  # the first of those
    unreachable_since: Mapped[dt.datetime | None]  # when the circuit opened: since then
    next_probe_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[dt.datetime | None]
    worker_seen_at: Mapped[dt.datetime | None]  # the latest heartbeat of any worker
    worker_name: Mapped[str | None] = mapped_column(String(100))


class SyncPace(Base):
    """A destination's pace on PostgreSQL without Redis: the next free send time. Apart
    from the channel: a reservation (autocommit) never waits for a worker's transaction."""

    __tablename__ = "sync_pace"

    target: Mapped[str] = mapped_column(String(20), primary_key=True)
    next_slot: Mapped[dt.datetime]


class ReconcileRun(Base):
    """A comparison of our records with the portal's, kept so that it can resume."""

    __tablename__ = "reconcile_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    cursor: Mapped[int] = mapped_column(default=0)  # the last batch id compared
    total: Mapped[int] = mapped_column(default=0)
    checked: Mapped[int] = mapped_column(default=0)
    repair: Mapped[bool] = mapped_column(default=False)
    differences: Mapped[list[Any]] = mapped_column(JSON, default=list)
