"""``/epcis/queries/{queryName}/subscriptions``: subscribe, list, show and unsubscribe
(EPCIS 2.0 REST binding; the contract is GS1's ``epcis-rest-openapi.json``).

``POST`` takes ``dest`` (the webhook), ``signatureToken`` (the HMAC secret the subscriber
keeps, at least 16 characters; never shown again), ``stream: true`` or a ``schedule``,
``reportIfEmpty``, ``initialRecordTime`` and, for ``SimpleEventQuery``, a ``query``
object of GET /events parameters (``{"EQ_bizStep": ["shipping"]}``). Errors are
problem+json: ``SubscriptionControlsException`` for controls that cannot be honoured
(a refused ``dest`` among them), ``ValidationException`` for query parameters,
``NoSuchNameException`` (404) for an unknown query.

Only a signed-in account subscribes; a cooperative's subscription sees its own
organisation's events only (as GET /events), and belongs to its organisation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, request, url_for
from flask_login import current_user
from sqlalchemy import delete, func, select
from werkzeug.datastructures import MultiDict

from nguon.auth import login_required
from nguon.db import db, utcnow
from nguon.errors import problem
from traceability import epcis
from traceability import subscriptions as subs
from traceability.api import acting_organisation
from traceability.epcis_api import query_from_args
from traceability.models import EpcisNamedQuery

bp = Blueprint("epcis_subscriptions", __name__, url_prefix="/epcis/queries")
EPCIS_JSON = "application/ld+json"
MAX_PER_OWNER = 100  # subscriptions an organisation (or a staff account) may hold
BODY_FIELDS = {
    "dest", "signatureToken", "stream", "schedule", "reportIfEmpty", "initialRecordTime", "query",
}  # fmt: skip

# Named queries (``/queries``) plug in here: ``resolver(query_name, owner)`` gives the
# named query's parameters as (name, value) pairs, or None when it does not know it.
NAMED_QUERIES: list[Callable[[str, int | None], list[list[str]] | None]] = []


@bp.errorhandler(subs.SubscriptionError)
def _controls_error(exc: subs.SubscriptionError) -> Response:
    return problem(
        400,
        f"{exc.field}: {exc.message}",
        title="Subscription error",
        type_="epcisException:SubscriptionControlsException",
        errors=[{"field": exc.field, "message": exc.message}],
    )


@bp.errorhandler(epcis.EpcisError)
def _validation_error(exc: epcis.EpcisError) -> Response:
    return problem(
        400,
        f"{exc.path}: {exc.message}",
        title="Invalid query",
        type_="epcisException:ValidationException",
        errors=[{"field": exc.path, "message": exc.message}],
    )


@bp.after_request
def _epcis_headers(response: Response) -> Response:
    response.headers["GS1-EPCIS-Version"] = "2.0.0"
    response.headers["GS1-CBV-Version"] = "2.0.0"
    return response


def _json(document: Any, status: int = 200, **headers: str) -> Response:
    response = current_app.response_class(
        json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        status=status,
        mimetype="application/json",
    )
    for key, value in headers.items():
        response.headers[key] = value
    return response


def _owned() -> Any:
    """The caller's subscriptions: its organisation's, or (staff) its own."""
    owner = acting_organisation()
    query = select(subs.EpcisSubscription)
    if owner is not None:
        return query.where(subs.EpcisSubscription.organisation_id == owner)
    return query.where(
        subs.EpcisSubscription.user_id == current_user.id,
        subs.EpcisSubscription.organisation_id.is_(None),
    )


def _parameters(query_name: str, body: dict[str, Any], owner: int | None) -> list[list[str]]:
    if query_name == subs.SIMPLE_EVENT_QUERY:
        return subs.parameters_from_body(body.get("query"))
    for resolver in NAMED_QUERIES:
        found = resolver(query_name, owner)
        if found is not None:
            if body.get("query") is not None:
                raise epcis.EpcisError("a named query has its parameters already", "query")
            return found
    abort(
        problem(
            404,
            f"no query named {query_name}",
            title="No such query",
            type_="epcisException:NoSuchNameException",
        )
    )


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise subs.SubscriptionError("must be true or false", name)
    return value


@bp.post("/<query_name>/subscriptions")
@login_required
def subscribe(query_name: str) -> Response:
    """Create a subscription; 201, its ``Location`` and its description (no secret)."""
    if request.mimetype not in ("application/json", EPCIS_JSON):
        abort(415, description="send JSON (application/json)")
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise epcis.EpcisError("not JSON", "/") from None
    if not isinstance(body, dict):
        raise epcis.EpcisError("must be an object", "/")
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise subs.SubscriptionError("not a field of a subscription", unknown[0])
    owner = acting_organisation()
    parameters = _parameters(query_name, body, owner)
    # Checked by the same function as GET /events, scoped as it is.
    query_from_args(MultiDict([(n, v) for n, v in parameters]), owner)
    config = current_app.config
    dest = body.get("dest")
    subs.check_destination(
        dest,
        allow_http=config.get("SUBSCRIPTION_ALLOW_HTTP", False),
        allow_private=config.get("SUBSCRIPTION_ALLOW_PRIVATE", False),
    )
    token = body.get("signatureToken")
    if not isinstance(token, str) or not subs.MIN_TOKEN_LENGTH <= len(token) <= 500:
        raise subs.SubscriptionError(
            f"a secret of {subs.MIN_TOKEN_LENGTH} to 500 characters is required", "signatureToken"
        )
    stream, schedule = _flag(body, "stream"), body.get("schedule")
    if schedule is not None and stream:
        raise subs.SubscriptionError("either stream or a schedule, not both", "stream")
    if schedule is None and not stream:
        raise subs.SubscriptionError("set stream to true or give a schedule", "stream")
    now = utcnow()
    next_run_at = None
    if schedule is not None:
        subs.parse_schedule(schedule)
        next_run_at = subs.next_run(schedule, now)
        if next_run_at is None:
            raise subs.SubscriptionError("never fires", "schedule")
    initial = body.get("initialRecordTime")
    initial_time = None
    if initial is not None:
        try:
            initial_time = epcis.parse_time(initial) if isinstance(initial, str) else None
        except ValueError:
            initial_time = None
        if initial_time is None:
            raise subs.SubscriptionError("must be a date-time with offset", "initialRecordTime")
    held = db.session.scalar(_owned().with_only_columns(func.count()).order_by(None))
    if (held or 0) >= MAX_PER_OWNER:
        raise subs.SubscriptionError(f"at most {MAX_PER_OWNER} subscriptions", "/")
    subscription = subs.EpcisSubscription(
        subscription_id=subs.new_subscription_id(),
        query_name=query_name[:200],
        parameters=parameters,
        dest=dest,
        signature_token=token,
        stream=stream,
        schedule=schedule,
        report_if_empty=_flag(body, "reportIfEmpty"),
        initial_record_time=initial_time,
        user_id=current_user.id,
        organisation_id=owner,
        created_at=now,
        next_run_at=next_run_at,
    )
    db.session.add(subscription)
    db.session.flush()
    ready = subs.backfill(db.session, subscription)
    if ready:
        subs.notifications_ready.send(None, session=db.session, notification_ids=ready)
    location = url_for(".subscription", query_name=query_name,
                       subscription_id=subscription.subscription_id)  # fmt: skip
    return _json(subs.describe(subscription), 201, Location=location)


@bp.get("/<query_name>/subscriptions")
@login_required
def list_subscriptions(query_name: str) -> Response:
    """The caller's subscriptions to ``query_name`` (at most MAX_PER_OWNER: one page)."""
    found = db.session.scalars(
        _owned()
        .where(subs.EpcisSubscription.query_name == query_name)
        .order_by(subs.EpcisSubscription.id)
    )
    return _json([subs.describe(s) for s in found])


def _one(query_name: str, subscription_id: str) -> subs.EpcisSubscription:
    found = db.session.scalar(
        _owned().where(
            subs.EpcisSubscription.query_name == query_name,
            subs.EpcisSubscription.subscription_id == subscription_id,
        )
    )
    if found is None:
        abort(
            problem(
                404,
                f"no subscription {subscription_id}",
                title="No such subscription",
                type_="epcisException:NoSuchSubscriptionException",
            )
        )
    return found


@bp.get("/<query_name>/subscriptions/<subscription_id>")
@login_required
def subscription(query_name: str, subscription_id: str) -> Response:
    return _json(subs.describe(_one(query_name, subscription_id)))


@bp.delete("/<query_name>/subscriptions/<subscription_id>")
@login_required
def unsubscribe(query_name: str, subscription_id: str) -> Response:
    """End a subscription: nothing more is sent, notifications still waiting are dropped."""
    found = _one(query_name, subscription_id)
    subs.subscription_ended.send(None, session=db.session, subscription_pk=found.id)
    db.session.execute(
        delete(subs.EpcisNotification).where(subs.EpcisNotification.subscription_pk == found.id)
    )
    db.session.delete(found)
    return Response(status=204)


def _named_query(query_name: str, owner: int | None) -> list[list[str]] | None:
    """A named query of ``/epcis/queries`` that ``owner`` made, as subscription
    parameters (``[name, value]`` pairs); None when there is none by that name."""
    found = db.session.scalar(select(EpcisNamedQuery).where(EpcisNamedQuery.name == query_name))
    if found is None or found.organisation_id != owner:
        return None
    return subs.parameters_from_body(found.parameters)


NAMED_QUERIES.append(_named_query)
