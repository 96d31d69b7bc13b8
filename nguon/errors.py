"""One error shape: ``application/problem+json`` (RFC 9457) under ``/api/`` and
``/epcis/``, a friendly page everywhere else.

Services raise :class:`DomainValidationError` with messages per field; schema
validation (flask-smorest/webargs) ends up here too, so every 4xx from the API has
``type``, ``title``, ``status``, ``detail`` and, for validation, ``errors``: a list of
``{"field", "message"}`` naming the field and the rule it broke.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Response, current_app, g, json, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from nguon.i18n import _

PROBLEM_MIME = "application/problem+json"
log = logging.getLogger(__name__)


class DomainValidationError(Exception):
    """Input that breaks a rule. ``errors`` maps a field path to its messages."""

    status = 422

    def __init__(self, errors: Mapping[str, str | Iterable[str]], detail: str | None = None):
        self.errors = {
            field: [msgs] if isinstance(msgs, str) else list(msgs) for field, msgs in errors.items()
        }
        if detail is None:
            detail = "; ".join(f"{field}: {msgs[0]}" for field, msgs in self.errors.items())
        self.detail = detail
        super().__init__(self.detail)

    def for_people(self) -> str:
        """The messages alone, for a page's flash (``detail`` names the fields in English,
        for programs)."""
        return "; ".join(str(m) for messages in self.errors.values() for m in messages)


class ForPeople(str):
    """A description for ``abort()`` written for the person reading the page (translated);
    error pages show it instead of the status's general explanation."""


class ConflictError(DomainValidationError):
    """The request conflicts with a record that exists (a duplicate, a stale state)."""

    status = 409


def flatten_messages(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """marshmallow's nested ``{field: [msg] | {sub: [msg]}}`` as ``[{field, message}]``."""
    out: list[dict[str, str]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_messages(value, path))
    elif isinstance(messages, list | tuple):
        for item in messages:
            if isinstance(item, Mapping | list | tuple):
                out.extend(flatten_messages(item, prefix))
            else:
                out.append({"field": prefix or "_schema", "message": str(item)})
    else:
        out.append({"field": prefix or "_schema", "message": str(messages)})
    return out


def problem(
    status: int,
    detail: str = "",
    *,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
) -> Response:
    from werkzeug.http import HTTP_STATUS_CODES

    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    if g.get("request_id"):
        body["instance"] = f"urn:request:{g.request_id}"
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MIME
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _wants_problem() -> bool:
    from nguon.auth import is_api_request

    return is_api_request() or request.accept_mimetypes.best in (
        "application/json",
        PROBLEM_MIME,
    )


def _page(status: int, title: str, detail: str) -> Response:
    try:
        html = render_template("errors/error.html", status=status, title=title, detail=detail)
    except Exception:  # the page itself failed (e.g. the database is down): stay plain
        log.exception("error page could not be rendered")
        html = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
    return current_app.response_class(html, status=status, mimetype="text/html")


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    if _wants_problem():
        errors = None
        # webargs/flask-smorest put the schema's messages here.
        messages = getattr(exc, "data", {}).get("messages") if hasattr(exc, "data") else None
        if messages:
            # {"json": {"email": ["..."]}, "query": {...}}: keep the location only off-body.
            flat: list[dict[str, str]] = []
            for location, fields in messages.items():
                prefix = "" if location in ("json", "form", "files") else location
                flat.extend(flatten_messages(fields, prefix))
            errors = flat
        detail = exc.description or ""
        if errors and status == 422:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        own = exc.get_response().headers
        headers = {}
        if status == 405 and own.get("Allow"):
            headers["Allow"] = own["Allow"]
        if own.get("Retry-After"):
            headers["Retry-After"] = own["Retry-After"]
        return problem(status, detail, errors=errors, headers=headers)
    titles = {
        400: _("The request could not be understood"),
        401: _("Please sign in"),
        403: _("You do not have access to this page"),
        404: _("Page not found"),
        405: _("This action is not allowed here"),
        413: _("The upload is too large"),
        429: _("Too many attempts; please wait and try again"),
    }
    title = titles.get(status, _("Something went wrong"))
    # The page says it in the visitor's language: a description given to abort() is shown
    # only when it was written for people (``ForPeople``); others are for the API (English,
    # technical: "no batch 12").
    if isinstance(exc.description, ForPeople):
        return _page(status, title, exc.description)
    details = {
        400: _("Please go back and check what was sent."),
        403: _("Your account cannot open this page. Sign in with another account if you have one."),
        404: _("The address may be mistyped, or the page was removed."),
        405: _("Please go back and use the page's own buttons."),
        413: _("Please send a smaller file."),
        429: _("Please wait a moment before trying again."),
    }
    return _page(status, title, details.get(status, ""))


def handle_domain_error(exc: DomainValidationError) -> Response:
    errors = [{"field": f, "message": m} for f, msgs in exc.errors.items() for m in msgs]
    if _wants_problem():
        return problem(exc.status, exc.detail, errors=errors)
    return _page(
        exc.status,
        _("The data is not valid"),
        "; ".join(str(m) for ms in exc.errors.values() for m in ms),
    )


def handle_database_unavailable(exc: Exception) -> Response:
    """The database did not answer (unreachable, missing, or a statement past
    ``NGUON_DB_STATEMENT_TIMEOUT``): 503 with the reason and ``Retry-After``, not a bare
    500; the cause is logged with its traceback."""
    from nguon.health import timed_out

    log.error("database unavailable on %s %s", request.method, request.path, exc_info=exc)
    if timed_out(exc):
        detail = _("The database took too long to answer. Please try again in a moment.")
    else:
        detail = _("The database cannot be reached. Please try again in a moment.")
    headers = {"Retry-After": "10"}
    if _wants_problem():
        return problem(503, detail, headers=headers)
    response = _page(503, _("The service is briefly unavailable"), detail)
    response.headers.update(headers)
    return response


def handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return handle_http_exception(InternalServerError())


def _rolled_back() -> None:
    """The request's session after a failed statement: rolled back, usable again (the
    error page may read the signed-in user)."""
    from nguon.db import db

    session = g.get("_nguon_session")
    if session is not None:
        db.session.rollback()


def handle_integrity_error(exc: Exception) -> Response:
    """What the database refused: 409 for a unique conflict, 422 for a missing reference,
    naming the field (see :func:`nguon.inputs.integrity_problem`)."""
    from nguon.inputs import integrity_problem

    _rolled_back()
    log.info("integrity error turned into a client error: %s", getattr(exc, "orig", exc))
    return handle_domain_error(integrity_problem(exc))


def handle_out_of_range(exc: Exception) -> Response:
    """A value the database or its driver cannot hold (an overflowing number, a string
    the column refuses): 422 rather than 500. The flush check refuses these first; this is
    the last net for values that reach a query without being stored (filters)."""
    _rolled_back()
    log.info("out-of-range value refused: %s", exc)
    return handle_domain_error(
        DomainValidationError({"_schema": _("A value is out of range or not allowed.")})
    )


def init_app(app: Flask) -> None:
    from sqlalchemy.exc import DataError, IntegrityError

    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainValidationError, handle_domain_error)
    from sqlalchemy.exc import OperationalError

    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(DataError, handle_out_of_range)
    app.register_error_handler(OverflowError, handle_out_of_range)
    if not app.debug and not app.testing:
        app.register_error_handler(Exception, handle_unexpected)
