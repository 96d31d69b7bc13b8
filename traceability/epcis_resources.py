"""The EPCIS 2.0 REST binding's resource endpoints and named queries.

- ``/eventTypes``, ``/bizSteps``, ``/bizLocations``, ``/readPoints``, ``/dispositions``,
  ``/epcs``: the values the caller's events use (a ``Collection``), each with its
  ``/events`` (the query interface with that value fixed, other parameters as for
  ``/events``).
- ``/queries``: named queries (``{"name": …, "query": {parameter: [values]}}``), created,
  listed, read and deleted by the organisation that made them; ``/queries/{name}/events``
  runs one (paging parameters only).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, request, url_for
from flask_login import current_user
from sqlalchemy import select

from nguon.auth import login_required
from nguon.db import db
from nguon.errors import problem
from nguon.i18n import _
from traceability import epcis, epcis_query
from traceability.api import acting_organisation
from traceability.epcis_api import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    PAGING_PARAMS,
    _body,
    _json,
    answer_query,
    bp,
)
from traceability.gs1 import IdentifierError, product_key
from traceability.models import EpcisEvent, EpcisNamedQuery, EventEpc

QUERY_NAME = re.compile(r"^[A-Za-z0-9_.~-]{1,200}$")
RESOURCES = {
    # path: (column listed, query parameter fixed by /{value}/events)
    "bizSteps": (EpcisEvent.biz_step, "EQ_bizStep"),
    "bizLocations": (EpcisEvent.biz_location, "EQ_bizLocation"),
    "readPoints": (EpcisEvent.read_point, "EQ_readPoint"),
    "dispositions": (EpcisEvent.disposition, "EQ_disposition"),
}


def _collection(members: list[str]) -> Response:
    return _json({"@context": [epcis.EPCIS_CONTEXT], "type": "Collection", "member": members})


def _per_page() -> int:
    try:
        per_page = int(request.args.get("perPage", DEFAULT_PER_PAGE))
    except ValueError:
        raise epcis.QueryParameterError("must be a whole number", "perPage") from None
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise epcis.QueryParameterError(f"must be between 1 and {MAX_PER_PAGE}", "perPage")
    return per_page


def _visible(statement: Any) -> Any:
    owner = acting_organisation()
    return statement if owner is None else statement.where(EpcisEvent.organisation_id == owner)


# --- event types ---------------------------------------------------------------------------------


@bp.get("/eventTypes")
@login_required
def event_types() -> Response:
    return _collection(list(epcis.EVENT_TYPES))


@bp.get("/eventTypes/<event_type>")
@login_required
def event_type(event_type: str) -> Response:
    if event_type not in epcis.EVENT_TYPES:
        abort(404, description=f"no event type {event_type}")
    return _collection(["events"])


@bp.get("/eventTypes/<event_type>/events")
@login_required
def event_type_events(event_type: str) -> Response:
    if event_type not in epcis.EVENT_TYPES:
        abort(404, description=f"no event type {event_type}")
    return answer_query(fixed={"eventType": [event_type]})


# --- vocabularies and places ------------------------------------------------------------------


def _values(resource: str) -> Response:
    column, _param = RESOURCES[resource]
    statement = _visible(select(column).distinct().where(column.isnot(None))).order_by(column)
    return _collection(list(db.session.scalars(statement.limit(_per_page()))))


def _one(resource: str, value: str) -> Response:
    column, _param = RESOURCES[resource]
    statement = _visible(select(EpcisEvent.id).where(column == _stored(resource, value)))
    if db.session.scalar(statement.limit(1)) is None:
        abort(404, description=f"no {resource} {value}")
    return _collection(["events"])


def _stored(resource: str, value: str) -> str:
    return (epcis.bare_cbv(value) or value) if resource in ("bizSteps", "dispositions") else value


def _register(resource: str) -> None:
    def listing() -> Response:
        return _values(resource)

    def one(value: str) -> Response:
        return _one(resource, value)

    def events(value: str) -> Response:
        if not value.strip("/|") or "|" in value:  # names no value: not "every event"
            abort(404, description=f"no {resource} {value}")
        return answer_query(fixed={RESOURCES[resource][1]: [value]})

    for view, rule in (
        (listing, f"/{resource}"),
        (one, f"/{resource}/<path:value>"),
        (events, f"/{resource}/<path:value>/events"),
    ):
        view.__name__ = f"{resource}_{view.__name__}"
        bp.add_url_rule(rule, view_func=login_required(view), methods=["GET"], merge_slashes=False)


for _resource in RESOURCES:
    _register(_resource)


# --- EPCs -----------------------------------------------------------------------------------------


@bp.get("/epcs")
@login_required
def epcs() -> Response:
    statement = _visible(
        select(EventEpc.epc)
        .distinct()
        .join(EpcisEvent, EpcisEvent.id == EventEpc.event_pk)
        .where(EventEpc.role.in_(("epc", "child", "parent", "input", "output")))
    ).order_by(EventEpc.epc)
    return _collection(list(db.session.scalars(statement.limit(_per_page()))))


def _epc_parameter(epc: str) -> str:
    """An EPC class (a lot, a GTIN) is matched as a class, anything else as an EPC."""
    try:
        key = product_key(epc)
    except IdentifierError:
        key = None
    if (key is not None and key[2] is None) or epc.startswith("urn:epc:class:"):
        return "MATCH_anyEPCClass"
    return "MATCH_anyEPC"


@bp.get("/epcs/<path:epc>", merge_slashes=False)
@login_required
def epc_resource(epc: str) -> Response:
    wanted = epc.removesuffix("/events")
    if not wanted.strip("/|") or "|" in wanted:
        abort(404, description=f"no EPC {wanted}")
    if wanted != epc:
        return answer_query(fixed={_epc_parameter(wanted): [wanted]})
    return _collection(["events"])


# --- named queries -------------------------------------------------------------------------------


def _named(name: str) -> EpcisNamedQuery:
    found = db.session.scalar(select(EpcisNamedQuery).where(EpcisNamedQuery.name == name))
    if found is None or found.organisation_id != acting_organisation():
        abort(404, description=f"no query {name}")
    return found


def _definition(found: EpcisNamedQuery) -> dict[str, Any]:
    return {"name": found.name, "query": found.parameters}


def _parameters(query: Any) -> dict[str, list[Any]]:
    """A query body's parameters as ``name -> [values]`` (a single value is a list of one)."""
    if not isinstance(query, dict):
        raise epcis.QueryParameterError("a query is an object of parameters", "/query")
    parameters: dict[str, list[Any]] = {}
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise epcis.QueryParameterError("takes a value or a list of values", name)
        parameters[str(name)] = values
    paging = sorted(set(parameters) & PAGING_PARAMS)
    if paging:
        raise epcis.QueryParameterError("belongs to a request, not to a query", paging[0])
    return parameters


@bp.post("/queries")
@login_required
def create_query() -> Response:
    """Create a named query: ``{"name": "…", "query": {…}}``; 201 with its location, 409
    when the name is taken, 400 (QueryParameterException) for a parameter it cannot run."""
    body = _body()
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise epcis.QueryParameterError("a query needs a name", "/name")
    name = body["name"]
    if not QUERY_NAME.match(name):
        raise epcis.QueryParameterError(
            "a query name is 1 to 200 letters, digits, and . _ ~ -", "/name"
        )
    parameters = _parameters(body.get("query"))
    epcis_query.parse_parameters(parameters, organisation_id=acting_organisation())
    location = url_for(".named_query", name=name)
    if db.session.scalar(select(EpcisNamedQuery.id).where(EpcisNamedQuery.name == name)):
        return problem(
            409,
            str(_("a query named %(name)s exists already", name=name)),
            title="ResourceAlreadyExistsException",
            type_="epcisException:ResourceAlreadyExistsException",
        )
    db.session.add(
        EpcisNamedQuery(
            name=name,
            parameters=parameters,
            organisation_id=acting_organisation(),
            user_id=current_user.id,
        )
    )
    db.session.flush()
    response = _json({"name": name, "query": parameters}, 201, Location=location)
    return response


@bp.get("/queries")
@login_required
def named_queries() -> Response:
    owner = acting_organisation()
    found = db.session.scalars(
        select(EpcisNamedQuery)
        .where(
            EpcisNamedQuery.organisation_id.is_(None)
            if owner is None
            else EpcisNamedQuery.organisation_id == owner
        )
        .order_by(EpcisNamedQuery.name)
        .limit(_per_page())
    )
    return _json([_definition(q) for q in found])


@bp.get("/queries/<name>")
@login_required
def named_query(name: str) -> Response:
    return _json(_definition(_named(name)))


@bp.delete("/queries/<name>")
@login_required
def delete_query(name: str) -> Response:
    db.session.delete(_named(name))
    db.session.flush()
    return Response(status=204)


@bp.get("/queries/<name>/events")
@login_required
def named_query_events(name: str) -> Response:
    found = _named(name)
    extra = sorted(set(request.args) - PAGING_PARAMS)
    if extra:
        raise epcis.QueryParameterError("a named query takes paging parameters only", extra[0])
    args = {**found.parameters, **request.args.to_dict(flat=False)}
    return answer_query(args, query_name=name)
