"""EPCIS subscription notifications, delivered to subscribers' webhooks by the outbox.

Each notification (``traceability.subscriptions``) is one outbox row of kind
``epcis_notify`` to the ``webhook`` target, written in the transaction that matched its
events. The worker freezes the row's body (an EPCISQueryDocument) at its first attempt
and re-sends exactly those bytes, with the same ``Idempotency-Key`` and therefore the
same ``GS1-Signature``, after a failure (an answer lost, a 5xx, a timeout, a worker that
crashed between sending and recording): a subscriber that keeps the keys it has seen
takes every event exactly once.

Each POST carries ``GS1-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the
subscriber's signatureToken>``, ``Idempotency-Key``, ``GS1-EPCIS-Version`` and
``GS1-Subscription-ID``. The destination is checked again right before each send (scheme,
every resolved address public unless ``NGUON_SUBSCRIPTION_ALLOW_PRIVATE``) and the
connection goes to the address that was checked (no second lookup, so no DNS rebinding);
redirects are not followed (a 3xx parks the row); timeouts are short.

A subscriber's failures are its own: they back its rows off and, after
``NGUON_SYNC_RETRY_FOR``, park them, but never open the ``webhook`` circuit that every
subscriber shares.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import certifi
import urllib3
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from integrations import delivery, mapping
from integrations.models import OutboxRow, OutboxState
from integrations.outbox import enqueue
from integrations.pace import Unpaced
from integrations.portal import Outcome, retry_after
from nguon.db import db, utcnow
from traceability import epcis
from traceability import subscriptions as subs

KIND = "epcis_notify"
TARGET = "webhook"
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
MAX_ANSWER = 64 * 1024  # bytes of a subscriber's answer read (the rest is dropped)


class SubscriberOutcome(Outcome):
    """An answer of one subscriber: never counted against the shared ``webhook``
    circuit (one subscriber down must not hold the others)."""

    @property
    def reached(self) -> bool:
        return True


class WebhookClient:
    """POSTs signed notifications to subscribers' checked addresses (urllib3)."""

    def __init__(
        self,
        *,
        allow_http: bool = False,
        allow_private: bool = False,
        resolve: Callable[..., Any] = socket.getaddrinfo,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.allow_http, self.allow_private = allow_http, allow_private
        self.resolve = resolve
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pace = Unpaced()  # each subscriber is its own server

    def probe(self) -> Outcome:
        return SubscriberOutcome("ok")

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """One POST; the outcome sorted as the worker expects (ok, retry, throttled,
        invalid)."""
        try:
            destination = subs.check_destination(
                url, allow_http=self.allow_http, allow_private=self.allow_private,
                resolve=self.resolve,
            )  # fmt: skip
        except subs.DestinationRefused as exc:
            if isinstance(exc.__cause__, OSError):  # the name does not resolve now
                return SubscriberOutcome("retry", error=exc.message)
            return SubscriberOutcome("invalid", reasons=[exc.message], error=exc.message)
        address = destination.addresses[0]
        if destination.scheme == "https":
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                address, destination.port, timeout=self.timeout, retries=False, maxsize=1,
                server_hostname=destination.host, assert_hostname=destination.host,
                cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
            )  # fmt: skip
        else:
            pool = urllib3.HTTPConnectionPool(
                address, destination.port, timeout=self.timeout, retries=False, maxsize=1
            )
        try:
            response = pool.urlopen(
                "POST", destination.target, body=body,
                headers={**headers, "Host": destination.host_header},
                redirect=False, retries=False, preload_content=False, assert_same_host=False,
            )  # fmt: skip
            try:
                text = response.read(MAX_ANSWER, decode_content=False)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            return SubscriberOutcome("retry", error=f"{type(exc).__name__}: {exc}"[:500])
        finally:
            pool.close()
        return classify(response.status, response.headers.get("Retry-After"), text)


def classify(status: int, retry_after_header: str | None, text: bytes) -> Outcome:
    detail = text[:300].decode("utf-8", "replace")
    if 200 <= status < 300:
        return SubscriberOutcome("ok", status)
    if status == 429:
        return SubscriberOutcome("throttled", status, retry_after=retry_after(retry_after_header),
                                 error="rate limited")  # fmt: skip
    if status >= 500 or status == 408:
        return SubscriberOutcome("retry", status, retry_after=retry_after(retry_after_header),
                                 error=f"HTTP {status}")  # fmt: skip
    if 300 <= status < 400:
        reason = f"HTTP {status}: redirects are not followed"
    else:
        reason = f"HTTP {status}" + (f": {detail}" if detail else "")
    return SubscriberOutcome("invalid", status, reasons=[reason], error=reason)


def _subscription_of(notification_id: str) -> tuple[Any, Any]:
    notification = db.session.get(subs.EpcisNotification, int(notification_id))
    if notification is None:
        return None, None
    return notification, db.session.get(subs.EpcisSubscription, notification.subscription_pk)


def build(record_id: str) -> mapping.Call:
    """The notification's EPCISQueryDocument (frozen at the first attempt)."""
    notification, subscription = _subscription_of(record_id)
    if notification is None or subscription is None:
        raise mapping.Unsendable(f"notification {record_id}: the subscription ended")
    document = subs.notification_document(db.session, notification, subscription)
    return mapping.Call("POST", f"/subscriptions/{subscription.subscription_id}", document)


def send_signed(client: WebhookClient, row: OutboxRow) -> Outcome:
    """POST the frozen body to the subscriber, signed with its secret."""
    _notification, subscription = _subscription_of(row.record_id)
    if subscription is None:  # unsubscribed while the row was in flight: nothing to do
        return SubscriberOutcome("ok", error="the subscription ended")
    body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/ld+json",
        "GS1-EPCIS-Version": "2.0.0",
        "GS1-CBV-Version": "2.0.0",
        "GS1-Subscription-ID": subscription.subscription_id,
        "Idempotency-Key": row.idempotency_key,
        subs.SIGNATURE_HEADER: subs.sign(body, subscription.signature_token),
        "User-Agent": "Nguon-EPCIS/2.0",
    }
    outcome = client.post(subscription.dest, body, headers)
    if outcome.kind == "ok":
        subscription.last_notified_at = utcnow()
    return outcome


def webhook_client(app: Flask) -> WebhookClient:
    return WebhookClient(
        allow_http=bool(app.config.get("SUBSCRIPTION_ALLOW_HTTP")),
        allow_private=bool(app.config.get("SUBSCRIPTION_ALLOW_PRIVATE")),
    )


def _enqueue(session: Session, ids: list[int]) -> None:
    if ids:
        enqueue(session.connection(), {(KIND, str(i)) for i in ids}, target=TARGET)


def _events_stored(_sender: Any, session: Session, event_pks: list[int] | None = None,
                   **_: Any) -> None:  # fmt: skip
    """Captured events are matched against every subscription in the capture's own
    transaction; stream subscriptions' notifications are enqueued at once."""
    _enqueue(session, subs.match_captured(session, event_pks or []))


def _notifications_ready(_sender: Any, session: Session, notification_ids: list[int],
                         **_: Any) -> None:  # fmt: skip
    _enqueue(session, notification_ids)


def _subscription_ended(_sender: Any, session: Session, subscription_pk: int, **_: Any) -> None:
    """Rows not yet sent of an ended subscription are dropped (superseded)."""
    ids = [
        str(i)
        for i in session.scalars(
            select(subs.EpcisNotification.id).where(
                subs.EpcisNotification.subscription_pk == subscription_pk
            )
        )
    ]
    for start in range(0, len(ids), 1000):
        session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.kind == KIND,
                OutboxRow.record_id.in_(ids[start : start + 1000]),
                OutboxRow.state == OutboxState.PENDING,
            )
            .values(state=OutboxState.SUPERSEDED, lease_owner=None, lease_until=None)
        )


def run_schedule(now: Any = None) -> int:
    """Fire the scheduled subscriptions that are due (``nguon epcis schedule``); returns
    the notifications enqueued. Flushes; the caller commits."""
    ids = subs.tick(db.session, now)
    _enqueue(db.session, ids)
    return len(ids)


def install() -> None:
    """Register the kind, its target and the hooks (idempotent)."""
    delivery.register(KIND, delivery.Delivery(TARGET, build, send=send_signed), priority=5)
    delivery.register_target(TARGET, webhook_client)
    epcis.events_stored.connect(_events_stored, weak=False)
    subs.notifications_ready.connect(_notifications_ready, weak=False)
    subs.subscription_ended.connect(_subscription_ended, weak=False)
