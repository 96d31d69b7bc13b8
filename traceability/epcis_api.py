"""The EPCIS 2.0 REST interface (GS1 REST bindings): /epcis/capture and /epcis/events.

Kept apart from the /api/v1 OpenAPI document: GS1's own OpenAPI description
(``standards/epcis/epcis-rest-openapi.json`` in shared/) is the contract for these paths.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, g, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from nguon.auth import is_staff, login_required
from nguon.db import db, utcnow
from nguon.errors import problem
from nguon.i18n import _
from nguon.inputs import InvalidInput, load_json
from traceability import capture_jobs as runner
from traceability import epcis, epcis_query, hash_workers, ownership
from traceability.api import acting_organisation
from traceability.models import CaptureJob, EpcisEvent

bp = Blueprint("epcis", __name__, url_prefix="/epcis")
EPCIS_JSON = "application/ld+json"
MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 30

PAGING_PARAMS = {"perPage", "nextPageToken"}


@bp.errorhandler(epcis.EpcisError)
def _epcis_error(exc: epcis.EpcisError) -> Response:
    exception = getattr(exc, "exception", None)
    return problem(
        getattr(exc, "status", 400),
        f"{exc.path}: {exc.message}",
        title=exception or "Invalid EPCIS data",
        errors=[{"field": exc.path, "message": exc.message}],
        type_=f"epcisException:{exception}" if exception else "about:blank",
    )


@bp.after_request
def _epcis_headers(response: Response) -> Response:
    response.headers["GS1-EPCIS-Version"] = "2.0.0"
    response.headers["GS1-CBV-Version"] = "2.0.0"
    return response


def _body() -> Any:
    return _body_and_bytes()[0]


def _body_and_bytes() -> tuple[Any, bytes]:
    if request.mimetype not in ("application/json", EPCIS_JSON):
        abort(415, description="send EPCIS JSON (application/json or application/ld+json)")
    raw = request.get_data(cache=False) or b"null"
    try:  # strict JSON: no NaN, bounded numbers and nesting, UTF-8 without NUL
        return load_json(raw), raw
    except InvalidInput as exc:
        raise epcis.EpcisError(str(exc), "/") from None


def _json(document: Any, status: int = 200, **headers: str) -> Response:
    response = current_app.response_class(
        json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        status=status,
        mimetype=EPCIS_JSON,
    )
    for key, value in headers.items():
        response.headers[key.replace("_", "-")] = value
    return response


# --- capture ----------------------------------------------------------------------------------


def _capture_limits() -> dict[str, str]:
    return {
        "GS1_EPCIS_Capture_Limit": str(epcis.CAPTURE_LIMIT),
        "GS1_EPCIS_Capture_File_Size_Limit": str(current_app.config["MAX_CONTENT_LENGTH"]),
    }


@bp.route("/capture", methods=["OPTIONS"])
def capture_options() -> Response:
    response = Response(status=204)
    response.headers["Allow"] = "GET, POST, OPTIONS"
    for key, value in _capture_limits().items():
        response.headers[key.replace("_", "-")] = value
    return response


@bp.get("/capture")
@login_required
def capture_jobs() -> Response:
    """The caller's recent capture jobs, newest first."""
    jobs = db.session.scalars(
        select(CaptureJob)
        .where(CaptureJob.user_id == current_user.id)
        .order_by(CaptureJob.id.desc())
        .limit(50)
    ).all()
    return _json([_job_document(j) for j in jobs], **_capture_limits())


def _job_document(job: CaptureJob) -> dict[str, Any]:
    document: dict[str, Any] = {
        "captureID": str(job.id),
        "createdAt": job.created_at.isoformat(),
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
        "running": job.running,
        "success": job.success,
        "captureErrorBehaviour": job.error_behaviour,
        "captured": job.captured,
        "duplicates": job.duplicates,
    }
    if job.errors:
        document["errors"] = job.errors
    return document


@bp.post("/capture")
@login_required
def capture() -> Response:
    """Capture an EPCISDocument. Schema errors: with ``GS1-Capture-Error-Behaviour:
    rollback`` (the default) the whole document is refused (400, naming the path);
    with ``proceed`` the valid events are kept and the job lists the others."""
    with runner.gc_paused():
        return _capture()


def _capture() -> Response:
    behaviour = request.headers.get("GS1-Capture-Error-Behaviour", "rollback").lower()
    if behaviour not in ("rollback", "proceed"):
        abort(400, description="GS1-Capture-Error-Behaviour must be rollback or proceed")
    document, raw = _body_and_bytes()
    if not isinstance(document, dict) or document.get("type") != "EPCISDocument":
        raise epcis.EpcisError("a capture takes an EPCISDocument", "/type")
    events = (document.get("epcisBody") or {}).get("eventList")
    if isinstance(events, list) and len(events) > epcis.CAPTURE_LIMIT:
        abort(413, description=f"at most {epcis.CAPTURE_LIMIT} events per capture")
    # An event sent before as the same JSON (a retry, a re-sent document) passed the
    # schema then: only the others are validated, their times read.
    digests = epcis.capture_digests(document)
    known = epcis.validated_before(digests)
    seen = [i for i, d in enumerate(digests) if d in known]
    helper = None if len(seen) == len(digests) else _hash_meanwhile(document, raw, events)
    errors = epcis.validation_errors_except(document, seen)
    bad_events: set[int] = set()
    for error in errors:
        parts = error.path.split("/")
        if len(parts) > 3 and parts[1:3] == ["epcisBody", "eventList"] and behaviour == "proceed":
            bad_events.add(int(parts[3]))
        else:
            raise error
    job = CaptureJob(error_behaviour=behaviour, user_id=current_user.id, errors=[])
    db.session.add(job)
    db.session.flush()
    kept = [i for i in range(len(events or [])) if i not in bad_events]
    good = [events[i] for i in kept]

    def in_document(path: str) -> str:  # /<index in good>/... -> its place in the document
        head, _sep, rest = path.lstrip("/").partition("/")
        if head.isdigit() and int(head) < len(kept):
            head = str(kept[int(head)])
        return f"/epcisBody/eventList/{head}" + (f"/{rest}" if rest else "")

    context = epcis.extra_context(document.get("@context"))
    if runner.runs_outside(len(good)):
        # Stored by a runner (traceability.capture_jobs); the job answers how it went.
        # What a client must hear at once is checked here: times and ownership (403).
        # The helper hashed the whole document: its answer serves when every event is
        # kept; it read every time too (when one is not a time, it is named here).
        hashes = None if bad_events else hash_workers.collect(helper)
        skip = bad_events.union(seen)
        for index, event in enumerate(events or []):
            if index not in skip and not (hashes and hashes["times"] is not None):
                epcis.event_time(index, event, "/epcisBody/eventList")
        try:
            ownership.check_events(good, context, organisation_id=acting_organisation())
        except epcis.EpcisError as exc:
            if exc.path.startswith("/@context"):
                raise
            raise epcis.EpcisError(exc.message, in_document(exc.path)) from None
        job.errors = [{"path": e.path, "message": e.message} for e in errors]
        runner.enqueue(
            job, good, context, acting_organisation(), kept, [digests[i] for i in kept], hashes
        )
        runner.start(current_app._get_current_object(), job.id)
        location = url_for(".capture_job", capture_id=job.id)
        return _json(_job_document(job), 202, Location=location, **_capture_limits())
    try:
        result = epcis.store_events(
            good,
            context,
            organisation_id=acting_organisation(),
            job=job,
            error_behaviour=behaviour,
            capture_digests=[digests[i] for i in kept],
        )
    except epcis.EpcisError as exc:
        if exc.path.startswith("/@context"):  # the document's own context
            raise
        raise epcis.EpcisError(exc.message, in_document(exc.path)) from None
    errors = [
        *errors,
        *(epcis.EpcisError(e["message"], in_document(e["path"])) for e in result.errors),
    ]
    job.errors = [{"path": e.path, "message": e.message} for e in errors]
    job.captured, job.duplicates = len(result.stored), len(result.duplicates)
    job.running, job.success, job.finished_at = False, not errors, utcnow()
    location = url_for(".capture_job", capture_id=job.id)
    return _json(_job_document(job), 202, Location=location, **_capture_limits())


def _hash_meanwhile(document: dict[str, Any], raw: bytes, events: Any) -> Any:
    """For a capture a job will store: a helper process hashing its events while this
    request checks them (``hash_workers``); None otherwise."""
    if not isinstance(events, list) or not runner.runs_outside(len(events)):
        return None
    try:
        context = epcis.extra_context(document.get("@context"))
    except epcis.EpcisError:
        return None  # refused below, after the schema's own errors
    return hash_workers.start(raw, context)


@bp.get("/capture/<int:capture_id>")
@login_required
def capture_job(capture_id: int) -> Response:
    job = db.session.get(CaptureJob, capture_id)
    if job is None or (job.user_id != current_user.id and not is_staff()):
        abort(404, description=f"no capture job {capture_id}")
    return _json(_job_document(job))


# --- events -----------------------------------------------------------------------------------


@bp.post("/events")
@login_required
def capture_one() -> Response:
    """Capture a single event (with its @context); 201 with its location."""
    event = _body()
    if not isinstance(event, dict) or event.get("type") not in epcis.EVENT_TYPES:
        raise epcis.EpcisError(f"type must be one of {', '.join(epcis.EVENT_TYPES)}", "/type")
    epcis.validate(event)
    context = epcis.extra_context(event.pop("@context", None))
    result = epcis.store_events([event], context, organisation_id=acting_organisation())
    event_id = (result.stored or result.duplicates)[0]
    location = url_for(".get_event", event_id=event_id)
    if not result.stored:
        # The REST binding: an event already held is a conflict, not a second success.
        return problem(
            409,
            str(_("the repository already holds event %(event_id)s", event_id=event_id)),
            title="ResourceAlreadyExistsException",
            type_="epcisException:ResourceAlreadyExistsException",
            headers={"Location": location},
        )
    return _json({"eventID": event_id, "stored": True}, 201, Location=location)


_ACTING = object()  # parse_query's default owner: the organisation making the request


def parse_query(
    args: Mapping[str, Sequence[Any]] | None = None,
    *,
    fixed: Mapping[str, Sequence[str]] = {},
    owner: Any = _ACTING,
) -> tuple[epcis.EventQuery, int, str]:
    """The query, the page size and the query's fingerprint (for page tokens), from
    ``args`` (``name -> values``; the request's query string by default) and ``fixed``
    parameters of the resource (e.g. ``/bizSteps/{bizStep}/events``), scoped to the
    events of ``owner`` (an organisation id; None: every event; by default the
    organisation making the request). Raises :class:`epcis.EpcisError`."""
    if args is None:
        args = request.args.to_dict(flat=False)
    clash = sorted(set(args) & set(fixed))
    if clash:
        raise epcis.QueryParameterError("is given by the resource's path", clash[0])
    merged = {**args, **fixed}
    if owner is _ACTING:
        owner = acting_organisation()
    query = epcis_query.parse_parameters(merged, organisation_id=owner)
    try:
        per_page = int(_first(merged, "perPage") or DEFAULT_PER_PAGE)
    except ValueError:
        raise epcis.QueryParameterError("must be a whole number", "perPage") from None
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise epcis.QueryParameterError(f"must be between 1 and {MAX_PER_PAGE}", "perPage")
    fingerprint_source = sorted(
        (k, str(v)) for k, vs in merged.items() if k not in PAGING_PARAMS for v in vs
    )
    fingerprint = hashlib.sha256(json.dumps([fingerprint_source, owner]).encode()).hexdigest()[:16]
    token = _first(merged, "nextPageToken")
    if token:
        after, seen = epcis.read_page_token_count(token, fingerprint)
        query = dataclasses.replace(query, after=after)
        g.epcis_seen = seen
    return query, per_page, fingerprint


def query_from_args(
    args: MultiDict[str, str], owner: int | None
) -> tuple[epcis.EventQuery, int, str]:
    """The query ``args`` (SimpleEventQuery parameters, as GET /events takes them) ask
    for, scoped to the events of ``owner`` (None: every event); the page size and the
    query's fingerprint. Subscriptions read their queries with it. Raises
    :class:`epcis.EpcisError`."""
    return parse_query(args.to_dict(flat=False), owner=owner)


def _first(args: Mapping[str, Sequence[Any]], name: str) -> Any:
    values = args.get(name) or []
    return values[0] if values else None


def answer_query(
    args: Mapping[str, Sequence[Any]] | None = None,
    *,
    fixed: Mapping[str, Sequence[str]] = {},
    query_name: str = "SimpleEventQuery",
) -> Response:
    """Run a query and answer with an EPCISQueryDocument, paged by ``Link: rel="next"``."""
    query, per_page, fingerprint = parse_query(args, fixed=fixed)
    seen = g.get("epcis_seen", 0)
    statement = epcis.build_query(query)
    if query.max_event_count is not None and epcis_query.more_than(
        statement, query, query.max_event_count
    ):
        raise epcis.QueryTooLargeError(
            f"more than {query.max_event_count} events match", "maxEventCount"
        )
    wanted = per_page + 1
    if query.event_count_limit is not None:
        wanted = min(wanted, max(query.event_count_limit - seen, 0))
    rows = epcis_query.run(statement, query, wanted) if wanted else []
    page, more = rows[:per_page], len(rows) > per_page
    document = epcis.query_document(page)
    document["epcisBody"]["queryResults"]["queryName"] = query_name
    epcis.validate(document)
    headers = {}
    if more:
        token = epcis.page_token(page[-1], fingerprint, query.order_by, seen + len(page))
        # The URL the client used (a named query's parameters stay in the query).
        pairs = [(k, v) for k, v in request.args.items(multi=True) if k != "nextPageToken"]
        next_url = f"{request.path}?{urlencode([*pairs, ('nextPageToken', token)])}"
        headers["Link"] = f'<{next_url}>; rel="next"'
        expires = (utcnow() + dt.timedelta(hours=24)).isoformat()
        headers["GS1_Next_Page_Token_Expires"] = expires
    return _json(document, **headers)


@bp.get("/events")
@login_required
def query_events() -> Response:
    """Query events (every SimpleEventQuery parameter: traceability/epcis_query.py);
    ``Link: rel="next"`` pages on."""
    return answer_query()


@bp.get("/events/<path:event_id>", merge_slashes=False)
@login_required
def get_event(event_id: str) -> Response:
    # The event and, when it was declared erroneous, its declaration beside it.
    owner = acting_organisation()
    found = [
        e
        for e in db.session.scalars(
            select(EpcisEvent).where(EpcisEvent.event_id == event_id).order_by(EpcisEvent.id)
        )
        if owner is None or e.organisation_id == owner
    ]
    if not found:
        abort(404, description=f"no event {event_id}")
    document = epcis.query_document(found)
    epcis.validate(document)
    return _json(document)


# The resource endpoints and named queries register on this blueprint.
from traceability import epcis_resources  # noqa: E402, F401
