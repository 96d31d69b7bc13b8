"""The verdict: what a scan of an issued code tells its buyer.

- ``genuine``: issued here, never scanned before (or a lot code, printed on many units);
- ``scanned_by_you``: an item code this same client scanned before, and nobody else;
- ``scanned_before``: an item code another client scanned before: be careful;
- ``suspicious``: flagged by a clone rule; ``voided``: withdrawn by its producer;
- ``unknown``: never issued here (the 404 page).

A lot whose expiry date has passed keeps its verdict and says so beside it (see the card).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from typing import Any

from flask import current_app, request

from traceability import scans
from traceability.models import LabelKind
from traceability.resolver.lookup import LabelState

VERDICTS = ("genuine", "scanned_by_you", "scanned_before", "suspicious", "voided")


def verdict_of(label: Any, client: str | None = None) -> str:
    """The verdict on ``label`` (as read before this scan) for the client ``client``."""
    if label is None:
        return "unknown"
    if label.voided_at is not None:
        return "voided"
    if label.flagged_at is not None:
        return "suspicious"
    if label.scan_count and label.kind == LabelKind.ITEM:
        if client and label.scanned_by == client:
            return "scanned_by_you"
        return "scanned_before"
    return "genuine"


def as_now(label: LabelState, log: scans.ScanLog, client: str) -> tuple[LabelState, str]:
    """The label with this process's scans still waiting to be written counted in (their
    number, and the client of the last one), and its verdict for ``client``."""
    queued = log.queued(label.id)
    if queued:
        label = label._replace(
            scan_count=label.scan_count + queued,
            scanned_by=log.queued_by(label.id) or label.scanned_by,
        )
    return label, verdict_of(label, client)


def fingerprint() -> str:
    """This request's client fingerprint (see :func:`client_fingerprint`)."""
    return client_fingerprint(
        current_app.config["SECRET_KEY"], request.remote_addr, request.user_agent.string
    )


def client_fingerprint(secret: str, address: str | None, agent: str) -> str:
    """A daily-salted hash of the client's address and agent: counts repeat visitors
    within a day without keeping who they are."""
    return _fingerprint(secret, dt.date.today().isoformat(), address, agent)


@functools.lru_cache(maxsize=4096)  # a phone scanning box after box: hashed once a day
def _fingerprint(secret: str, day: str, address: str | None, agent: str) -> str:
    salt = hmac.new(secret.encode(), day.encode(), hashlib.sha256).digest()
    return hmac.new(salt, f"{address}|{agent}".encode(), hashlib.sha256).hexdigest()[:32]
