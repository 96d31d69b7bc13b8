"""EPCIS 2.0 query subscriptions (REST binding, ``/queries/{queryName}/subscriptions``).

A subscriber registers a query (the parameters of ``GET /events``) with a webhook ``dest``
and a ``signatureToken`` it keeps; matching events are sent to it as
``EPCISQueryDocument``s, either as they are captured (``stream``) or on a ``schedule``.

Exactly once per event: events are matched *in the capture's own transaction* (the
``events_stored`` signal) and each match is written as a notification row
(:class:`EpcisNotification`) in that transaction, so a capture that rolls back notifies
nobody and a committed one is never missed, whatever the clocks say. A stream
notification goes at once to the outbox (one row, one Idempotency-Key, one frozen body);
a scheduled subscription's notifications wait, unsealed, until its schedule fires
(:func:`tick`), which merges them into one report.

Security: the server never fetches a URL a client chose freely. A ``dest`` must be https
(``NGUON_SUBSCRIPTION_ALLOW_HTTP`` allows http for local use) and resolve only to public
addresses (``NGUON_SUBSCRIPTION_ALLOW_PRIVATE`` allows loopback and private networks);
the address is resolved and checked again when each notification is sent
(:func:`check_destination`), and the connection goes to the checked address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from blinker import Namespace
from sqlalchemy import JSON, ForeignKey, Index, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.datastructures import MultiDict

from nguon.audit import Audited
from nguon.db import Base, chunks, utcnow
from nguon.models import User
from traceability import epcis, epcis_query
from traceability.models import EpcisEvent

logger = logging.getLogger(__name__)

SIMPLE_EVENT_QUERY = "SimpleEventQuery"
SIGNATURE_HEADER = "GS1-Signature"
MAX_EVENTS_PER_NOTIFICATION = 500  # a larger match goes as several documents
MAX_INITIAL_EVENTS = 50_000  # events an initialRecordTime may reach back to
MAX_DEST_LENGTH = 2000
MIN_TOKEN_LENGTH = 16
SCHEDULE_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")  # a schedule's hours are the province's

# Sent when a subscription ends, in the same transaction: (session, subscription_pk).
subscription_ended = Namespace().signal("subscription-ended")
# Sent when notifications are ready to go: (session, notification_ids=[...]).
notifications_ready = Namespace().signal("notifications-ready")


class EpcisSubscription(Audited, Base):
    """A registered query and where its results go (audited: who sends our events
    where; the secret and the delivery clocks are not logged)."""

    __tablename__ = "epcis_subscription"
    __audit_exclude__ = frozenset({"signature_token", "next_run_at", "last_notified_at"})

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(36), unique=True)
    query_name: Mapped[str] = mapped_column(String(200))
    # The query as (name, value) pairs, exactly the parameters GET /events takes.
    parameters: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dest: Mapped[str] = mapped_column(Text)
    signature_token: Mapped[str] = mapped_column(Text)  # the subscriber's HMAC secret
    stream: Mapped[bool] = mapped_column(default=False)
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report_if_empty: Mapped[bool] = mapped_column(default=False)
    initial_record_time: Mapped[dt.datetime | None]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # Whose events it may see (None: staff, who may read every event).
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_run_at: Mapped[dt.datetime | None]  # scheduled only: when it fires next
    last_notified_at: Mapped[dt.datetime | None]  # the subscriber last answered 2xx


class EpcisNotification(Base):
    """Events matched for one subscription, to be sent as one EPCISQueryDocument.
    Unsealed: collected for a scheduled report that has not fired yet."""

    __tablename__ = "epcis_notification"
    __table_args__ = (Index(None, "subscription_pk", "sealed"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_pk: Mapped[int] = mapped_column(
        ForeignKey("epcis_subscription.id", ondelete="CASCADE")
    )
    event_pks: Mapped[list[int]] = mapped_column(JSON, default=list)
    sealed: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SubscriptionError(ValueError):
    """Subscription controls that cannot be honoured (``SubscriptionControlsException``)."""

    def __init__(self, message: str, field: str = "/"):
        super().__init__(f"{field}: {message}")
        self.message, self.field = message, field


class DestinationRefused(SubscriptionError):
    """A ``dest`` the server will not call (scheme, address, form)."""


# --- destinations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str  # as written (the Host header and TLS server name)
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]  # the checked addresses it resolves to

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def _address_refusal(address: str, allow_private: bool) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"{ip} is not an address a webhook can have"
    if ip.is_global:
        return None
    if allow_private:
        return None
    return f"{ip} is a private, loopback or link-local address"


def check_destination(
    url: Any,
    *,
    allow_http: bool,
    allow_private: bool,
    resolve: Any = socket.getaddrinfo,
) -> Destination:
    """The webhook ``url`` checked: https (http only with ``allow_http``), no user
    information, and every address its host resolves to public (``allow_private``
    allows loopback and private networks). Resolves the host now; call it again right
    before each send (DNS may have changed). Raises :class:`DestinationRefused`;
    a name that does not resolve raises it too (``OSError`` is its cause)."""
    if not isinstance(url, str) or not url or len(url) > MAX_DEST_LENGTH:
        raise DestinationRefused(f"must be a URL of at most {MAX_DEST_LENGTH} characters", "dest")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DestinationRefused("not a URL", "dest") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_http):
        raise DestinationRefused("must be an https URL", "dest")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("must not carry user information", "dest")
    if parts.fragment:
        raise DestinationRefused("must not have a fragment", "dest")
    host = (parts.hostname or "").rstrip(".")
    if not host or any(c.isspace() for c in url):
        raise DestinationRefused("must name a host", "dest")
    port = port or (443 if scheme == "https" else 80)
    try:
        literal: str | None = str(ipaddress.ip_address(host))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise DestinationRefused(f"{host} does not resolve", "dest") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not addresses:
            raise DestinationRefused(f"{host} does not resolve", "dest")
    for address in addresses:
        refusal = _address_refusal(address, allow_private)
        if refusal:
            raise DestinationRefused(f"{host} resolves to {refusal}", "dest")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme, host, port, target, tuple(addresses))


def sign(body: bytes, token: str) -> str:
    """The ``GS1-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the exact body
    bytes, keyed with the subscriber's ``signatureToken`` (UTF-8)."""
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


# --- schedules ----------------------------------------------------------------------------------

# (name, smallest, largest), finest first; dayOfWeek is ISO (1 Monday .. 7 Sunday).
SCHEDULE_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("dayOfMonth", 1, 31),
    ("month", 1, 12),
    ("dayOfWeek", 1, 7),
)
_RANK = {"second": 0, "minute": 1, "hour": 2, "dayOfMonth": 3, "dayOfWeek": 3, "month": 4}


def _field_values(name: str, raw: Any, low: int, high: int) -> frozenset[int]:
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise SubscriptionError("must be a string such as 5, 1-5, 1,15 or 0/30", f"schedule/{name}")
    values: set[int] = set()
    for item in str(raw).replace(" ", "").split(","):
        base, _, step_text = item.partition("/")
        base = base.removeprefix("[").removesuffix("]")
        try:
            step = int(step_text) if step_text else 1
            if base in ("*", ""):
                start, end = low, high
            elif "-" in base:
                first, last = base.split("-", 1)
                start, end = int(first), int(last)
            else:
                start = int(base)
                end = high if step_text else start
        except ValueError:
            raise SubscriptionError(f"cannot read {item!r}", f"schedule/{name}") from None
        if not (low <= start <= end <= high) or step < 1:
            raise SubscriptionError(f"must lie within {low}-{high}", f"schedule/{name}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_schedule(schedule: Any) -> dict[str, frozenset[int]]:
    """The times a schedule fires, field by field. Fields finer than the finest one
    given take their smallest value (``{"hour": "1"}`` is 01:00:00 daily); coarser ones
    any. Items: ``n``, ``a-b`` (or ``[a-b]``), ``*``, ``n/step``, comma lists. Raises
    :class:`SubscriptionError`."""
    if not isinstance(schedule, dict) or not schedule:
        raise SubscriptionError("must be an object with at least one field", "schedule")
    unknown = sorted(set(schedule) - {name for name, _low, _high in SCHEDULE_FIELDS})
    if unknown:
        raise SubscriptionError(f"unknown field {unknown[0]}", "schedule")
    finest = min(_RANK[name] for name in schedule)
    parsed = {}
    for name, low, high in SCHEDULE_FIELDS:
        if name in schedule:
            parsed[name] = _field_values(name, schedule[name], low, high)
        elif _RANK[name] < finest:
            parsed[name] = frozenset({low})
        else:
            parsed[name] = frozenset(range(low, high + 1))
    return parsed


def next_run(schedule: Mapping[str, Any], after: dt.datetime) -> dt.datetime | None:
    """The first time strictly after ``after`` (aware) the schedule fires, in UTC; None
    when it never does within eight years (say, 30 February)."""
    fields = parse_schedule(dict(schedule))
    local = after.astimezone(SCHEDULE_ZONE).replace(microsecond=0)
    day = local.date()
    for _ in range(8 * 366):
        if (
            day.month in fields["month"]
            and day.day in fields["dayOfMonth"]
            and day.isoweekday() in fields["dayOfWeek"]
        ):
            for hour in sorted(fields["hour"]):
                for minute in sorted(fields["minute"]):
                    for second in sorted(fields["second"]):
                        when = dt.datetime(
                            day.year, day.month, day.day, hour, minute, second,
                            tzinfo=SCHEDULE_ZONE,
                        )  # fmt: skip
                        if when > after:
                            return when.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    return None


# --- the query -----------------------------------------------------------------------------------


def parameters_from_body(query: Any) -> list[list[str]]:
    """A ``query`` object (``{"EQ_bizStep": ["shipping"], "GE_eventTime": "..."}``, the
    shape of a named query) as the (name, value) pairs GET /events reads."""
    if query is None:
        return []
    if not isinstance(query, dict):
        raise epcis.EpcisError("must be an object of query parameters", "query")
    pairs: list[list[str]] = []
    for name, value in query.items():
        if name in ("perPage", "nextPageToken"):
            raise epcis.EpcisError("a subscription has no pages", name)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, bool):
                item = "true" if item else "false"
            if not isinstance(item, (str, int, float)):
                raise epcis.EpcisError("must be a string, a number or a list of them", name)
            pairs.append([str(name), str(item)])
    return pairs


def event_query(subscription: EpcisSubscription) -> epcis.EventQuery:
    """The subscription's query, read by the same function as GET /events, scoped to
    the events its owner may read."""
    from traceability.epcis_api import query_from_args

    args = MultiDict([(name, value) for name, value in subscription.parameters])
    query, _per_page, _fingerprint = query_from_args(args, subscription.organisation_id)
    return query


def matching(
    session: Session, subscription: EpcisSubscription, event_pks: Sequence[int]
) -> list[int]:
    """Which of ``event_pks`` the subscription's query selects, in eventTime order."""
    try:
        query = event_query(subscription)
    except epcis.EpcisError:
        logger.warning("subscription %s has a query this server no longer reads",
                       subscription.subscription_id)  # fmt: skip
        return []
    found: list[int] = []
    for chunk in chunks(event_pks, 1000):
        statement = epcis.build_query(query).where(EpcisEvent.id.in_(chunk))
        if query.document_tests:
            # Conditions SQL does not judge (quantities, sensors, extension fields...).
            found += [e.id for e in session.scalars(statement) if epcis_query.matches(query, e)]
        else:
            found += session.scalars(statement.with_only_columns(EpcisEvent.id))
    return found


def _active(session: Session) -> list[EpcisSubscription]:
    """Subscriptions whose owner may still sign in (a deactivated account's stop)."""
    return list(
        session.scalars(
            select(EpcisSubscription)
            .join(User, User.id == EpcisSubscription.user_id)
            .where(User.active.is_(True))
            .order_by(EpcisSubscription.id)
        )
    )


def _notify(
    session: Session, subscription: EpcisSubscription, pks: Sequence[int], sealed: bool
) -> list[int]:
    rows = [
        EpcisNotification(
            subscription_pk=subscription.id,
            event_pks=list(pks[start : start + MAX_EVENTS_PER_NOTIFICATION]),
            sealed=sealed,
        )
        for start in range(0, len(pks), MAX_EVENTS_PER_NOTIFICATION)
    ]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows] if sealed else []


def match_captured(session: Session, event_pks: Sequence[int]) -> list[int]:
    """Match freshly stored events against every subscription (in the capture's
    transaction); returns the notifications to send now (stream subscriptions)."""
    if not event_pks:
        return []
    ready: list[int] = []
    for subscription in _active(session):
        found = matching(session, subscription, event_pks)
        if found:
            ready += _notify(session, subscription, found, sealed=subscription.stream)
    return ready


def backfill(session: Session, subscription: EpcisSubscription) -> list[int]:
    """Events already stored from the subscription's initialRecordTime on: notified
    now (stream) or in the first report (schedule). Raises :class:`SubscriptionError`
    when they are more than :data:`MAX_INITIAL_EVENTS`."""
    if subscription.initial_record_time is None:
        return []
    wanted = event_query(subscription)
    query = epcis.build_query(wanted).where(
        EpcisEvent.record_time >= subscription.initial_record_time
    )
    if wanted.document_tests:
        pks = [e.id for e in epcis_query.run(query, wanted, MAX_INITIAL_EVENTS + 1)]
    else:
        limited = query.with_only_columns(EpcisEvent.id).limit(MAX_INITIAL_EVENTS + 1)
        pks = list(session.scalars(limited))
    if len(pks) > MAX_INITIAL_EVENTS:
        raise SubscriptionError(
            f"more than {MAX_INITIAL_EVENTS} events since then; choose a later time",
            "initialRecordTime",
        )
    return _notify(session, subscription, pks, sealed=subscription.stream) if pks else []


def tick(session: Session, now: dt.datetime | None = None) -> list[int]:
    """Fire every scheduled subscription that is due: its collected events become one
    report (several past :data:`MAX_EVENTS_PER_NOTIFICATION`; an empty one when
    ``reportIfEmpty``). Returns the notifications to send; flushes."""
    now = now or utcnow()
    ready: list[int] = []
    due = session.scalars(
        select(EpcisSubscription)
        .join(User, User.id == EpcisSubscription.user_id)
        .where(
            User.active.is_(True),
            EpcisSubscription.next_run_at.is_not(None),
            EpcisSubscription.next_run_at <= now,
        )
        .order_by(EpcisSubscription.id)
        .with_for_update(skip_locked=True, of=EpcisSubscription)
    )
    for subscription in list(due):
        collected = list(
            session.scalars(
                select(EpcisNotification)
                .where(
                    EpcisNotification.subscription_pk == subscription.id,
                    EpcisNotification.sealed.is_(False),
                )
                .order_by(EpcisNotification.id)
                .with_for_update()
            )
        )
        pks = sorted({pk for n in collected for pk in n.event_pks})
        if collected:
            session.execute(
                delete(EpcisNotification).where(EpcisNotification.id.in_([n.id for n in collected]))
            )
        if pks:
            ordered = _in_event_order(session, pks)
            ready += _notify(session, subscription, ordered, sealed=True)
        elif subscription.report_if_empty:
            empty = EpcisNotification(subscription_pk=subscription.id, event_pks=[], sealed=True)
            session.add(empty)
            session.flush()
            ready.append(empty.id)
        subscription.next_run_at = next_run(subscription.schedule or {}, now)
    return ready


def _in_event_order(session: Session, pks: Sequence[int]) -> list[int]:
    ordered: list[tuple[dt.datetime, int]] = []
    for chunk in chunks(pks, 1000):
        ordered += session.execute(
            select(EpcisEvent.event_time, EpcisEvent.id).where(EpcisEvent.id.in_(chunk))
        ).all()
    return [pk for _time, pk in sorted(ordered)]


def notification_document(
    session: Session, notification: EpcisNotification, subscription: EpcisSubscription
) -> dict[str, Any]:
    """The EPCISQueryDocument a notification sends (events in eventTime order; an event
    deleted since is left out), dated when the events were matched."""
    events: list[EpcisEvent] = []
    for chunk in chunks(notification.event_pks, 1000):
        events += session.scalars(select(EpcisEvent).where(EpcisEvent.id.in_(chunk)))
    events.sort(key=lambda e: (e.event_time, e.id))
    document = epcis.query_document(events)
    # The notification's own time, not the send's: a body built again (a worker that
    # crashed before its frozen body was kept) is the same bytes.
    document["creationDate"] = _iso(notification.created_at)
    results = document["epcisBody"]["queryResults"]
    results["queryName"] = subscription.query_name
    results["subscriptionID"] = subscription.subscription_id
    return document


def new_subscription_id() -> str:
    return str(uuid.uuid4())


def describe(subscription: EpcisSubscription) -> dict[str, Any]:
    """The subscription as the binding lists it (never its secret)."""
    document: dict[str, Any] = {
        "subscriptionID": subscription.subscription_id,
        "queryName": subscription.query_name,
        "dest": subscription.dest,
        "createdAt": _iso(subscription.created_at),
        "reportIfEmpty": subscription.report_if_empty,
    }
    if subscription.stream:
        document["stream"] = True
    if subscription.schedule is not None:
        document["schedule"] = subscription.schedule
        if subscription.next_run_at is not None:
            document["nextRunAt"] = _iso(subscription.next_run_at)
    if subscription.initial_record_time is not None:
        document["initialRecordTime"] = _iso(subscription.initial_record_time)
    if subscription.last_notified_at is not None:
        document["lastNotifiedAt"] = _iso(subscription.last_notified_at)
    if subscription.parameters:
        query: dict[str, list[str]] = {}
        for name, value in subscription.parameters:
            query.setdefault(name, []).append(value)
        document["query"] = query
    return document


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
