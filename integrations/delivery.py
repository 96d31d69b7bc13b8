"""The kinds of outbox rows: where each goes and how it is sent.

A kind is registered once with its :class:`Delivery`: the destination it goes to (a
*target*: one client, one pace and one circuit breaker per target), the function that
builds its call from the record id (the body is frozen at the first attempt and re-sent
with the same Idempotency-Key), and, for a destination that is not a plain JSON call
(a signed webhook, say), the function that sends it. The worker knows nothing else of
a kind. A new kind plugs in with::

    delivery.register("epcis_subscription", Delivery("webhook", build_notification,
                                                     send=send_signed), priority=5)
    delivery.register_target("webhook", lambda app: WebhookClient(...) or None)

and writes its rows with ``outbox.enqueue(connection, {(kind, id)}, target="webhook")``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from integrations import mapping
from integrations.models import PRIORITY, OutboxRow
from integrations.pace import pace_for
from integrations.portal import EpcisPushClient, Outcome, PortalClient


@dataclass(frozen=True)
class Delivery:
    target: str  # the destination: its client, pace and circuit breaker
    build: Callable[..., mapping.Call]  # record id (and what the portal holds) -> the call
    # How to send a frozen row; None: ``client.call(method, path, payload, key)``.
    send: Callable[[Any, OutboxRow], Outcome] | None = None
    # The destination keeps the record under an id of its own, with revisions: a later
    # change is an update of that id (the row waits for an earlier one still pending).
    revised: bool = False


DELIVERIES: dict[str, Delivery] = {}
TARGETS: dict[str, Callable[[Flask], Any]] = {}


def register(kind: str, delivery: Delivery, priority: int) -> None:
    """Declare a kind of row (``priority``: lower goes first, e.g. dependencies)."""
    DELIVERIES[kind] = delivery
    PRIORITY[kind] = priority


def register_target(name: str, make_client: Callable[[Flask], Any]) -> None:
    """Declare a destination: ``make_client(app)`` gives its client, or None when the
    configuration leaves it off."""
    TARGETS[name] = make_client


def send(client: Any, row: OutboxRow) -> Outcome:
    delivery = DELIVERIES[row.kind]
    if delivery.send is not None:
        return delivery.send(client, row)
    return client.call(row.method, row.path, row.payload, row.idempotency_key)


def portal_client(app: Flask) -> PortalClient | None:
    config = app.config
    if not config.get("PORTAL_URL"):
        return None
    return PortalClient(
        config["PORTAL_URL"],
        config["PORTAL_CLIENT_ID"],
        config.get("PORTAL_CLIENT_SECRET") or "",
        pace=pace_for(app, "portal", config.get("PORTAL_RATE_LIMIT")),
    )


def epcis_client(app: Flask) -> EpcisPushClient | None:
    url = app.config.get("EPCIS_PUSH_URL")
    return EpcisPushClient(url, app.config.get("EPCIS_PUSH_TOKEN")) if url else None


def clients_for(app: Flask) -> dict[str, Any]:
    """Every configured destination's client, by target."""
    found = {name: make(app) for name, make in TARGETS.items()}
    return {name: client for name, client in found.items() if client is not None}


for _kind, _build in (
    ("organisation", mapping.organisation),
    ("location", mapping.location),
    ("product", mapping.product),
):
    register(_kind, Delivery("portal", _build), PRIORITY[_kind])
register("trace_record", Delivery("portal", mapping.trace_record, revised=True), 3)
register("epcis_event", Delivery("epcis", mapping.epcis_event), 4)
register_target("portal", portal_client)
register_target("epcis", epcis_client)
