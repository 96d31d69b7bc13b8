"""The EPCIS 2.0 REST interface (GS1 REST bindings): /epcis/capture and /epcis/events.

Kept apart from the /api/v1 OpenAPI document: GS1's own OpenAPI description
(``standards/epcis/epcis-rest-openapi.json`` in shared/) is the contract for these paths.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, request, url_for
from flask_login import current_user
from sqlalchemy import select

from nguon.auth import is_staff, login_required
from nguon.db import db, utcnow
from nguon.errors import problem
from nguon.inputs import InvalidInput, load_json
from traceability import epcis
from traceability.api import acting_organisation
from traceability.models import CaptureJob, EpcisEvent

bp = Blueprint("epcis", __name__, url_prefix="/epcis")
EPCIS_JSON = "application/ld+json"
MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 30

LIST_PARAMS = {
    "eventType": "event_types",
    "EQ_bizStep": "biz_steps",
    "EQ_disposition": "dispositions",
    "EQ_bizLocation": "biz_locations",
    "EQ_readPoint": "read_points",
    "EQ_action": "actions",
    "EQ_eventID": "event_ids",
    "MATCH_epc": "match_epc",
    "MATCH_anyEPC": "match_any_epc",
    "MATCH_epcClass": "match_epc_class",
    "MATCH_inputEPC": "match_input_epc",
    "MATCH_outputEPC": "match_output_epc",
}
TIME_PARAMS = {
    "GE_eventTime": "ge_event_time",
    "LT_eventTime": "lt_event_time",
    "GE_recordTime": "ge_record_time",
    "LT_recordTime": "lt_record_time",
}
PAGING_PARAMS = {"perPage", "nextPageToken"}


@bp.errorhandler(epcis.EpcisError)
def _epcis_error(exc: epcis.EpcisError) -> Response:
    return problem(
        400,
        f"{exc.path}: {exc.message}",
        title="Invalid EPCIS data",
        errors=[{"field": exc.path, "message": exc.message}],
    )


@bp.after_request
def _epcis_headers(response: Response) -> Response:
    response.headers["GS1-EPCIS-Version"] = "2.0.0"
    response.headers["GS1-CBV-Version"] = "2.0.0"
    return response


def _body() -> Any:
    if request.mimetype not in ("application/json", EPCIS_JSON):
        abort(415, description="send EPCIS JSON (application/json or application/ld+json)")
    try:  # strict JSON: no NaN, bounded numbers and nesting, UTF-8 without NUL
        return load_json(request.get_data(cache=False) or b"null")
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
    behaviour = request.headers.get("GS1-Capture-Error-Behaviour", "rollback").lower()
    if behaviour not in ("rollback", "proceed"):
        abort(400, description="GS1-Capture-Error-Behaviour must be rollback or proceed")
    document = _body()
    if not isinstance(document, dict) or document.get("type") != "EPCISDocument":
        raise epcis.EpcisError("a capture takes an EPCISDocument", "/type")
    events = (document.get("epcisBody") or {}).get("eventList")
    if isinstance(events, list) and len(events) > epcis.CAPTURE_LIMIT:
        abort(413, description=f"at most {epcis.CAPTURE_LIMIT} events per capture")
    errors = epcis.validation_errors(document)
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
    good = [e for i, e in enumerate(events or []) if i not in bad_events]
    context = epcis.extra_context(document.get("@context"))
    try:
        result = epcis.store_events(good, context, organisation_id=acting_organisation(), job=job)
    except epcis.EpcisError as exc:
        raise epcis.EpcisError(exc.message, f"/epcisBody/eventList{exc.path}") from None
    job.errors = [{"path": e.path, "message": e.message} for e in errors]
    job.captured, job.duplicates = len(result.stored), len(result.duplicates)
    job.running, job.success, job.finished_at = False, not errors, utcnow()
    location = url_for(".capture_job", capture_id=job.id)
    return _json(_job_document(job), 202, Location=location, **_capture_limits())


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
    status = 201 if result.stored else 200
    return _json({"eventID": event_id, "stored": bool(result.stored)}, status, Location=location)


def _pipe_list(name: str) -> tuple[str, ...]:
    values: list[str] = []
    for raw in request.args.getlist(name):
        values += [v for v in raw.split("|") if v]
    return tuple(values)


def parse_query() -> tuple[epcis.EventQuery, int, str]:
    """The query, the page size and the query's fingerprint (for page tokens)."""
    known = set(LIST_PARAMS) | set(TIME_PARAMS) | PAGING_PARAMS
    unknown = sorted(set(request.args) - known)
    if unknown:
        raise epcis.EpcisError(f"this server does not support {unknown[0]}", unknown[0])
    kwargs: dict[str, Any] = {attr: _pipe_list(name) for name, attr in LIST_PARAMS.items()}
    bad_types = [t for t in kwargs["event_types"] if t not in epcis.EVENT_TYPES]
    if bad_types:
        raise epcis.EpcisError(f"unknown event type {bad_types[0]}", "eventType")
    for name, attr in TIME_PARAMS.items():
        if name in request.args:
            try:
                kwargs[attr] = epcis.parse_time(request.args[name])
            except ValueError:
                raise epcis.EpcisError("must be a date-time with offset", name) from None
    try:
        per_page = int(request.args.get("perPage", DEFAULT_PER_PAGE))
    except ValueError:
        raise epcis.EpcisError("must be a whole number", "perPage") from None
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise epcis.EpcisError(f"must be between 1 and {MAX_PER_PAGE}", "perPage")
    owner = acting_organisation()
    kwargs["organisation_id"] = owner
    fingerprint_source = sorted(
        (k, v) for k, v in request.args.items(multi=True) if k not in PAGING_PARAMS
    )
    fingerprint = hashlib.sha256(json.dumps([fingerprint_source, owner]).encode()).hexdigest()[:16]
    if "nextPageToken" in request.args:
        kwargs["after"] = epcis.read_page_token(request.args["nextPageToken"], fingerprint)
    return epcis.EventQuery(**kwargs), per_page, fingerprint


@bp.get("/events")
@login_required
def query_events() -> Response:
    """Query events (SimpleEventQuery parameters); ``Link: rel="next"`` pages on."""
    query, per_page, fingerprint = parse_query()
    rows = list(db.session.scalars(epcis.build_query(query).limit(per_page + 1)))
    page, more = rows[:per_page], len(rows) > per_page
    document = epcis.query_document(page)
    epcis.validate(document)
    headers = {}
    if more:
        token = epcis.page_token(page[-1], fingerprint)
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "nextPageToken"]
        next_url = f"{request.path}?{urlencode([*args, ('nextPageToken', token)])}"
        headers["Link"] = f'<{next_url}>; rel="next"'
        expires = (utcnow() + dt.timedelta(hours=24)).isoformat()
        headers["GS1_Next_Page_Token_Expires"] = expires
    return _json(document, **headers)


@bp.get("/events/<path:event_id>", merge_slashes=False)
@login_required
def get_event(event_id: str) -> Response:
    stored = db.session.scalar(select(EpcisEvent).where(EpcisEvent.event_id == event_id))
    owner = acting_organisation()
    if stored is None or (owner is not None and stored.organisation_id != owner):
        abort(404, description=f"no event {event_id}")
    document = epcis.query_document([stored])
    epcis.validate(document)
    return _json(document)
