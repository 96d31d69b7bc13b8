"""One validation layer between what a client sends and the database.

Every surface (the JSON API, the HTML forms, the public report form, EPCIS capture,
the resolver and the labels) passes through the same checks, so a whole kind of input is
refused in one place rather than route by route:

* the request itself (:func:`screen_request`, before any view): bytes that are not UTF-8
  in the path, the query or a form body, and NUL in the path or query, are refused with 400
  (a NUL in a form field is refused by the form or the flush check, naming the field);
* JSON bodies, wherever they are read (``request.get_json()``, webargs, EPCIS capture,
  the imports), through :func:`load_json`: ``NaN``/``Infinity``, numbers beyond 64 bits,
  nesting deeper than :data:`MAX_JSON_DEPTH`, bytes that are not UTF-8, NUL and lone
  surrogates are refused with 400 (the imports: 422 naming the file);
* ids in URLs: the ``int`` converter matches only ``0 ..`` :data:`MAX_ID` (a bigger id is a
  404, not an overflow in the database);
* what reaches a flush (:func:`check_flush`, a ``before_flush`` listener): every string
  against its column's length, NUL and lone surrogates, integers against their column's
  range and decimals against their column's precision, refused with 422 naming the field;
* what the database still refuses (:func:`integrity_problem`): a unique conflict becomes
  409 naming the field, a reference to a missing record 422 naming the field, on SQLite and
  PostgreSQL alike.

Limits: :data:`MAX_JSON_DEPTH` levels of JSON nesting, integers in JSON within a signed
64-bit integer, floats finite (``NaN``/``Infinity`` and ``1e400`` are refused).
"""

from __future__ import annotations

import decimal
import json
import math
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, abort, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import pagination as smorest_pagination
from flask_smorest.arguments import ArgumentsMixin
from flask_smorest.pagination import PaginationMixin
from sqlalchemy import BigInteger, Integer, Numeric, SmallInteger, String, event, inspect
from sqlalchemy.orm import Mapper, Session
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import IntegerConverter

from nguon.db import MAX_PAGE as db_MAX_PAGE
from nguon.errors import ConflictError, DomainValidationError
from nguon.i18n import _

MAX_JSON_DEPTH = 64  # arrays and objects inside each other; EPCIS documents need about 8
MAX_JSON_INT = 2**63 - 1  # a signed 64-bit integer: the widest integer column
MAX_ID = 2**31 - 1  # the primary keys are 32-bit integers on PostgreSQL
MAX_PAGE = db_MAX_PAGE  # page numbers beyond this are refused by the API, clamped on pages
INT_RANGES = {SmallInteger: 2**15 - 1, BigInteger: 2**63 - 1, Integer: 2**31 - 1}
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def is_digits(text: str, max_length: int | None = None) -> bool:
    """Whether ``text`` is ASCII digits 0-9 only (``str.isdigit()`` also says yes to "¹²"
    and "١٢", which ``int()`` refuses or reads as another number), at most
    ``max_length`` of them."""
    return text.isascii() and text.isdigit() and (max_length is None or len(text) <= max_length)


def has_bad_characters(text: str) -> bool:
    """Whether ``text`` holds a NUL or a lone surrogate (no database stores either)."""
    return _BAD_CHARS.search(text) is not None


class InvalidInput(ValueError):
    """Input refused before it is read further; ``str(exc)`` says why (English, for logs)."""


# --- strict JSON -----------------------------------------------------------------------


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise InvalidInput("a number in the JSON is too large")
    value = int(text)
    if not -MAX_JSON_INT - 1 <= value <= MAX_JSON_INT:
        raise InvalidInput("a number in the JSON is too large")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput("a number in the JSON is too large")
    return value


def _parse_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not JSON")


def _check_tree(value: Any) -> None:
    """Depth and characters of a parsed document, without recursion (a deep document must
    not exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _BAD_CHARS.search(node):
                raise InvalidInput("NUL characters and lone surrogates are not accepted")
        elif isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            items = node.items() if isinstance(node, dict) else ((None, v) for v in node)
            for key, item in items:
                if key is not None and _BAD_CHARS.search(key):
                    raise InvalidInput("NUL characters and lone surrogates are not accepted")
                if isinstance(item, str | dict | list):
                    stack.append((item, depth + 1))


# Where a bad character can come from in JSON text: a \u escape of NUL or of a surrogate
# (a raw one is refused by the UTF-8 decoder and the parser). A false alarm (an escaped
# backslash before "u0000") only costs the full check.
_BAD_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _depth_within(value: Any) -> bool:
    """Whether arrays and objects nest at most :data:`MAX_JSON_DEPTH` levels (strings
    are not visited)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        for item in node.values() if isinstance(node, dict) else node:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
    return True


# A JSON string (skipped whole, escapes included) or one bracket.
_DEPTH_SCAN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.S)


def _too_deep(data: bytes) -> bool:
    """Whether brackets outside strings nest deeper than the limit (checked before parsing:
    Python's parser recurses, so thousands of levels would raise RecursionError)."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for match in _DEPTH_SCAN.finditer(data):
        char = match.group()
        if char in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


def load_json(data: bytes | str) -> Any:
    """Strict JSON (RFC 8259): UTF-8, no ``NaN``/``Infinity``, integers within 64 bits,
    finite floats, at most :data:`MAX_JSON_DEPTH` levels, no NUL or lone surrogate in any
    string. Raises :class:`InvalidInput` (a ``ValueError``)."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8-sig" if data[:3] == b"\xef\xbb\xbf" else "utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("the body is not UTF-8") from exc
        raw = bytes(data)
    else:
        text = data
        raw = data.encode("utf-8", "surrogatepass")
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except InvalidInput:
        raise
    except RecursionError as exc:  # the C parser guards its recursion: nothing overflows
        if _too_deep(raw):
            raise InvalidInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise InvalidInput(f"not JSON: {exc}") from exc
    except ValueError as exc:
        raise InvalidInput(f"not JSON: {exc}") from exc
    if _BAD_CHARS.search(text) or _BAD_ESCAPE.search(text):
        _check_tree(value)  # names the fault exactly
    elif isinstance(value, dict | list) and not _depth_within(value):
        raise InvalidInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading with :func:`load_json` (``request.get_json()`` answers 400)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return load_json(s)


# --- the request -------------------------------------------------------------------------


def _refuse(reason: str, *, text: bool = True) -> None:
    """400: ``reason`` for a program (English, technical); for a person, a sentence about
    the text they sent (``text``) or the general explanation of a 400."""
    from nguon.auth import is_api_request
    from nguon.errors import ForPeople

    if is_api_request() or not text:
        abort(400, description=reason)
    abort(
        400,
        description=ForPeople(
            _("What was sent is not valid text: it is not UTF-8 or it contains a NUL character.")
        ),
    )


def _utf8(raw: bytes, where: str, *, nul: bool = False) -> None:
    """400 unless ``raw`` is UTF-8 (and, unless ``nul``, holds no NUL)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _refuse(f"the {where} is not UTF-8")
    if not nul and "\x00" in text:
        _refuse(f"the {where} contains a NUL character")


def screen_request() -> None:
    """Refuse (400) a request whose path or query is not UTF-8 text without NULs, or whose
    form body is not UTF-8."""
    environ = request.environ
    _utf8(environ.get("PATH_INFO", "").encode("latin-1", "replace"), "path")
    query = environ.get("QUERY_STRING", "")
    if query:
        _utf8(unquote_to_bytes(query.replace("+", " ")), "query")
    if request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return
    mimetype = request.mimetype
    # A NUL in a form field is left to the form, which names the field beside it (and to
    # the flush check as the last net); bytes that are not UTF-8 cannot be shown back.
    if mimetype == "application/x-www-form-urlencoded":
        _utf8(unquote_to_bytes(request.get_data(cache=True).replace(b"+", b" ")), "form", nul=True)
    elif mimetype == "multipart/form-data":
        for values in (request.form.listvalues(), request.files.keys()):
            for value in values:
                for text in value if isinstance(value, list) else [value]:
                    if "\ufffd" in text or re.search("[\ud800-\udfff]", text):
                        _refuse("a form field is not UTF-8 text")
    # A JSON body is read strictly by whoever reads it (get_json(), webargs, EPCIS
    # capture, the imports: all through load_json), each answering in its own shape.


class BoundedIntegerConverter(IntegerConverter):
    """``<int:…>`` that matches only ids a column can hold: a bigger number is a 404."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


# --- what reaches the database -------------------------------------------------------------

_CHECKS: dict[Mapper, list[tuple[str, str, Any]]] = {}


def _column_checks(mapper: Mapper) -> list[tuple[str, str, Any]]:
    """(attribute, kind, limit) for every column of ``mapper`` that has a limit."""
    found = _CHECKS.get(mapper)
    if found is not None:
        return found
    checks: list[tuple[str, str, Any]] = []
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        kind = column.type
        impl = getattr(kind, "impl_instance", None) or kind
        if isinstance(impl, String):
            checks.append((attr.key, "text", impl.length))
        elif isinstance(impl, Numeric) and not isinstance(impl, Integer):
            if impl.precision is not None:
                scale = impl.scale or 0
                checks.append((attr.key, "decimal", (impl.precision, scale)))
            else:
                checks.append((attr.key, "float", None))
        elif isinstance(impl, Integer):
            limit = next(v for t, v in INT_RANGES.items() if isinstance(impl, t))
            checks.append((attr.key, "int", limit))
    _CHECKS[mapper] = checks
    return checks


def _value_problem(kind: str, limit: Any, value: Any) -> str | None:
    if kind == "text":
        if not isinstance(value, str):
            return None
        if limit is not None and len(value) > limit:
            return _("At most %(max)d characters.", max=limit)
        if _BAD_CHARS.search(value):
            return _("Contains a character that is not allowed (NUL or an invalid character).")
    elif kind == "int":
        if isinstance(value, int) and not -limit - 1 <= value <= limit:
            return _("The number is out of range.")
    elif kind in ("decimal", "float") and isinstance(value, float | decimal.Decimal):
        if not math.isfinite(value):
            return _("Must be a finite number.")
        if kind == "decimal":
            precision, scale = limit
            whole = abs(decimal.Decimal(value)).to_integral_value(decimal.ROUND_FLOOR)
            if whole >= 10 ** (precision - scale):
                return _("The number is out of range.")
    return None


def check_flush(session: Session, _context: Any, _instances: Any) -> None:
    """``before_flush``: refuse (422, naming the fields) values their columns cannot hold:
    every value of a new record, the changed values of an existing one (a stored value is
    not judged again by an update that leaves it alone)."""
    problems: dict[str, str] = {}
    for obj, new in [*((o, True) for o in session.new), *((o, False) for o in session.dirty)]:
        state = inspect(obj)
        values = state.dict
        for key, kind, limit in _column_checks(state.mapper):
            value = values.get(key)
            if value is None:
                continue
            if not new and not state.attrs[key].history.added:
                continue
            message = _value_problem(kind, limit, value)
            if message:
                problems.setdefault(key, message)
    if problems:
        raise DomainValidationError(problems)


# --- what the database refuses ---------------------------------------------------------------


def _constraint_columns(name: str) -> tuple[str, list[str], str | None]:
    """(table, columns, kind) of a named constraint or unique index in the metadata."""
    from nguon.db import Base

    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if constraint.name == name:
                kind = type(constraint).__name__
                return table.name, [c.name for c in constraint.columns], kind
        for index in table.indexes:
            if index.name == name:
                return table.name, [c.name for c in index.columns], "Index"
    return "", [], None


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SQLITE_NOT_NULL = re.compile(r"NOT NULL constraint failed: \w+\.(\w+)")
_INSERT = re.compile(r"^\s*INSERT INTO (\w+) \(([^)]*)\)", re.I)
_UPDATE = re.compile(r"^\s*UPDATE (\w+) SET (.+?) WHERE", re.I | re.S)


def _sqlite_missing_references(exc: Any) -> list[str]:
    """The foreign-key columns whose value names no row (SQLite says only "FOREIGN KEY
    constraint failed"): read from the failed statement and looked up."""
    from sqlalchemy import select, text

    from nguon.db import Base, db

    statement, params = exc.statement or "", exc.params
    if isinstance(params, list):
        params = params[0] if params else ()
    names: list[str] = []
    table_name = ""
    if match := _INSERT.match(statement):
        table_name, names = match.group(1), [c.strip() for c in match.group(2).split(",")]
    elif match := _UPDATE.match(statement):
        table_name = match.group(1)
        names = [part.split("=")[0].strip() for part in match.group(2).split(",")]
    table = Base.metadata.tables.get(table_name)
    if table is None or not isinstance(params, tuple | list):
        return []
    given = dict(zip(names, params, strict=False))
    missing = []
    for fk in table.foreign_keys:
        value = given.get(fk.parent.name)
        if value is None:
            continue
        target = fk.column
        found = db.session.execute(
            select(text("1")).select_from(target.table).where(target == value)
        ).first()
        if found is None:
            missing.append(fk.parent.name)
    return missing


def integrity_problem(exc: Any) -> DomainValidationError:
    """The error to answer for an ``IntegrityError`` (the session already rolled back):
    409 for a unique conflict, 422 for a missing reference, a missing value or a broken
    check, each naming the field when the database tells it."""
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    message = str(orig)
    sqlstate = getattr(orig, "sqlstate", None) or ""
    constraint = getattr(diag, "constraint_name", None) if diag is not None else None
    columns: list[str] = []
    if constraint:
        _table, columns, _kind = _constraint_columns(constraint)
    if sqlstate == "23505" or "UNIQUE constraint failed" in message:
        if match := _SQLITE_UNIQUE.search(message):
            columns = [part.strip().split(".")[-1] for part in match.group(1).split(",")]
        fields = columns or ["_schema"]
        return ConflictError({field: _("This value is already used.") for field in fields})
    if sqlstate == "23503" or "FOREIGN KEY constraint failed" in message:
        if not columns and "FOREIGN KEY" in message:
            columns = _sqlite_missing_references(exc)
        fields = columns or ["_schema"]
        return DomainValidationError(
            {field: _("The record this refers to does not exist.") for field in fields}
        )
    if sqlstate == "23502" or "NOT NULL constraint failed" in message:
        column = getattr(diag, "column_name", None) if diag is not None else None
        if match := _SQLITE_NOT_NULL.search(message):
            column = match.group(1)
        return DomainValidationError({column or "_schema": _("Missing data for required field.")})
    return DomainValidationError({(columns or ["_schema"])[0]: _("The value is not allowed.")})


class StrictFlaskParser(FlaskParser):
    """webargs' parser reading the JSON body the request screen already parsed strictly
    (webargs would otherwise parse it again with Python's lenient reader)."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data.strip():
            return core.missing
        try:
            return load_json(data)
        except InvalidInput as exc:  # answered by _handle_invalid_json_error
            raise json.JSONDecodeError(str(exc), "body", 0) from exc  # "" means empty

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        abort(400, description=f"invalid JSON body: {getattr(error, 'msg', error)}")


def _bounded_pagination_schema(page: int, page_size: int, max_page_size: int) -> Any:
    """flask-smorest's pagination arguments with an upper bound on the page number, so a
    page the database cannot offset to is a 422 (and the OpenAPI document says so)."""
    import marshmallow as ma

    schema = _smorest_pagination_schema(page, page_size, max_page_size)
    field = schema._declared_fields["page"]
    field.validators = [ma.validate.Range(min=1, max=MAX_PAGE)]
    return schema


_smorest_pagination_schema = smorest_pagination._pagination_parameters_schema_factory
# Set when this module is imported (``nguon/__init__`` imports it through the app), before
# any API module is: flask-smorest reads these when a view is decorated.
ArgumentsMixin.ARGUMENTS_PARSER = StrictFlaskParser()
PaginationMixin.PAGINATION_ARGUMENTS_PARSER = StrictFlaskParser()
smorest_pagination._pagination_parameters_schema_factory = _bounded_pagination_schema


def init_app(app: Flask) -> None:
    """Install the strict JSON reader, the bounded ``int`` converter, the bounded API page
    numbers and the request screen (call before any blueprint is registered: rules bind
    their converters then)."""
    previous = app.json
    app.json_provider_class = StrictJSONProvider
    app.json = StrictJSONProvider(app)
    for name in ("ensure_ascii", "sort_keys", "compact", "mimetype"):
        setattr(app.json, name, getattr(previous, name))
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request(screen_request)
    if not event.contains(Session, "before_flush", check_flush):
        event.listen(Session, "before_flush", check_flush)
