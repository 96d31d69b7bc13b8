"""The transactional outbox: what must reach another system, written with the change."""

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
    PARKED = "parked"  # refused as invalid, or failed too often: an officer decides


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "state", "next_attempt_at", "priority", "id"),
        Index(None, "kind", "record_id"),
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
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    remote_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Frozen at the first attempt, so every retry with this key sends the same body.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    method: Mapped[str | None] = mapped_column(String(10))
    path: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
