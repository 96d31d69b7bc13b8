"""Logging configuration: every record with its time (UTC, ISO 8601), level, logger and
the request id of the request it belongs to (``-`` outside one).

Two formats, chosen by ``NGUON_LOG_FORMAT``:

- ``text`` (default)::

    2026-11-29T13:05:12.345Z ERROR [3f9c…] nguon.errors: unhandled error on GET /x
    Traceback (most recent call last):
      ...

- ``json``: one JSON object a line, ``{"time", "level", "logger", "request_id",
  "message"}`` and, for a record with an exception, ``"exception"`` (the whole traceback
  as one string): an unhandled exception is exactly one line.

One handler is put on the root logger (writing to the current ``sys.stderr``); it replaces
the one an earlier app of the same process installed, so creating apps again (tests, the
CLI) does not repeat lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

# The app's loggers, and the development server's request lines (``nguon run``).
PROJECT_LOGGERS = ("nguon", "registry", "traceability", "integrations", "werkzeug")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


def _request_id() -> str:
    from flask import g, has_app_context, has_request_context

    if has_request_context() or has_app_context():
        return str(g.get("request_id") or "-")
    return "-"


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (the request's ``X-Request-ID``, else ``-``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id()
        return True


def _utc_time(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line; newlines inside a message or traceback stay escaped."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler writing to whatever ``sys.stderr`` is at the time of writing."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def make_handler(log_format: str) -> logging.Handler:
    handler = StderrHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler._nguon = True  # type: ignore[attr-defined]
    return handler


def configure(level: str, log_format: str) -> logging.Handler:
    """Install the handler on the root logger (replacing ours from before) at ``level``."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_nguon", False)]:
        root.removeHandler(old)
    handler = make_handler(log_format)
    root.addHandler(handler)
    # The project's own loggers at the chosen level; libraries' (an EPCIS hash library
    # logs every event at INFO) only from WARNING, unless the level asked for is higher.
    root.setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(level)
    return handler
