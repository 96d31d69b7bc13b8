"""EPCIS 2.0: schema validation, event hashes, storage and the query interface.

Every document in and out is checked against GS1's JSON schema (kept in
``traceability/standards/epcis``). Event IDs are the reference event hash
(``epcis-event-hash-generator``), so an event sent twice is stored once.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
from blinker import Namespace
from pyld.jsonld import JsonLdError
from sqlalchemy import (
    JSON,
    Select,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    func,
    insert,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY

from nguon.db import chunks, db, utcnow
from traceability import epcis_hash, epcis_time, jsonld, ownership
from traceability.gs1 import IdentifierError, product_key
from traceability.models import CaptureJob, EpcisEvent, EventEpc

STANDARDS = Path(__file__).resolve().parent / "standards" / "epcis"
# Sent after events are stored, in the same transaction: (session, lots={(gtin, lot)},
# event_pks=[...]).
events_stored = Namespace().signal("events-stored")
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "TransactionEvent",
    "AssociationEvent",
)
CAPTURE_LIMIT = 25_000  # events per capture document, advertised in GS1-EPCIS-Capture-Limit
_CBV_URI = re.compile(
    r"^(?:https://ref\.gs1\.org/cbv/(?:BizStep|Disp)-|urn:epcglobal:cbv:(?:bizstep|disp):)(.+)$"
)


class EpcisError(ValueError):
    """A document or event that breaks the schema or a rule; ``path`` says where."""

    def __init__(self, message: str, path: str = "/"):
        super().__init__(f"{path}: {message}")
        self.message = message
        self.path = path


class QueryParameterError(EpcisError):
    """A query parameter the standard does not know, or a value it cannot take."""

    exception = "QueryParameterException"


class QueryTooLargeError(EpcisError):
    """More events match than ``maxEventCount`` (or the server) allows."""

    exception = "QueryTooLargeException"
    status = 413


@functools.cache
def _schema() -> dict[str, Any]:
    with (STANDARDS / "EPCIS-JSON-Schema.json").open(encoding="utf-8") as handle:
        return json.load(handle)


@functools.cache
def validator() -> jsonschema.Draft7Validator:
    """The reference validator: slow, but lists every error with a clear message."""
    return jsonschema.Draft7Validator(_schema(), format_checker=jsonschema.FormatChecker())


@functools.cache
def _fast_validator() -> Any:
    """The same schema compiled to Python (fastjsonschema): about 14 times faster, used to
    accept the valid documents; only a refused one goes through :func:`validator`."""
    return fastjsonschema.compile(_schema())


def schema_errors(document: Any) -> list[EpcisError]:
    """Every place where ``document`` breaks the official schema, most specific first."""
    found = []
    for error in validator().iter_errors(document):
        deepest = jsonschema.exceptions.best_match([error]) if error.context else error
        if deepest.context:
            deepest = min(deepest.context, key=lambda e: -len(e.absolute_path))
        path = "/" + "/".join(str(p) for p in deepest.absolute_path)
        found.append(EpcisError(deepest.message, path))
    found.sort(key=lambda e: e.path)
    return found


def is_valid(document: Any) -> bool:
    return not validation_errors(document)


def validation_errors(document: Any) -> list[EpcisError]:
    """Every schema error of ``document`` (with its JSON path); none when it is valid.

    The compiled validator decides; jsonschema, slower, names the errors. Should the two
    disagree, the refusal is trusted and fastjsonschema's own error is given."""
    try:
        _fast_validator()(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        errors = schema_errors(document)
        if errors:
            return errors
        path = "/" + "/".join(str(p) for p in (exc.path or [])[1:])
        return [EpcisError(exc.message, path)]
    return []


@functools.cache
def _schema_fingerprint() -> str:
    return hashlib.sha256((STANDARDS / "EPCIS-JSON-Schema.json").read_bytes()).hexdigest()


def capture_digests(document: dict[str, Any]) -> list[str]:
    """A SHA-256 per event of ``document["epcisBody"]["eventList"]`` as the client sent
    it, with the document's ``@context`` and the schema's own digest: two events with
    the same capture digest are the same JSON under the same context and schema (key
    order and spacing aside). ``[]`` when the document has no list of events."""
    events = (document.get("epcisBody") or {}).get("eventList")
    if not isinstance(events, list):
        return []
    common = _schema_fingerprint() + json.dumps(document.get("@context"), sort_keys=True)
    return [
        hashlib.sha256((common + epcis_hash.canonical_json(e)).encode()).hexdigest() for e in events
    ]


def validated_before(digests: Sequence[str]) -> set[str]:
    """The capture digests (:func:`capture_digests`) of events stored after passing the
    schema: an event with one of them needs no schema validation again."""
    key = EpcisEvent.capture_digest
    return {row[0] for row in stored_matching(key, digests, key)}


def validation_errors_except(document: Any, known: Sequence[int]) -> list[EpcisError]:
    """:func:`validation_errors` of ``document`` with the events at the indices ``known``
    left out (each is the same JSON as an event that passed the schema before, and the
    schema checks each event on its own); paths name the events' places in the document."""
    events = (
        (document.get("epcisBody") or {}).get("eventList") if isinstance(document, dict) else None
    )
    if not known or not isinstance(events, list):
        return validation_errors(document)
    skip = set(known)
    places = [i for i in range(len(events)) if i not in skip]
    body = {**document["epcisBody"], "eventList": [events[i] for i in places]}
    errors = validation_errors({**document, "epcisBody": body})
    prefix = "/epcisBody/eventList/"

    def in_document(error: EpcisError) -> EpcisError:
        head, sep, rest = error.path.removeprefix(prefix).partition("/")
        if not (error.path.startswith(prefix) and head.isdigit() and int(head) < len(places)):
            return error
        return type(error)(error.message, f"{prefix}{places[int(head)]}{sep}{rest}")

    return [in_document(e) for e in errors]


def validate(document: Any) -> None:
    """Raise the first schema error (with its JSON path), if any."""
    errors = validation_errors(document)
    if errors:
        raise errors[0]


def bare_cbv(value: str | None) -> str | None:
    """``https://ref.gs1.org/cbv/BizStep-shipping`` and ``urn:epcglobal:cbv:bizstep:shipping``
    are both the CBV word ``shipping``; other URIs are kept whole."""
    if value is None:
        return None
    match = _CBV_URI.match(value)
    return match[1] if match else value


def extra_context(context: Any) -> list[Any]:
    """The document's @context without the EPCIS context itself (under any of the URLs
    GS1 publishes it at). ``EpcisError`` (400) naming a remote context this server does
    not hold: nothing is ever fetched (``traceability.jsonld``)."""
    items = context if isinstance(context, list) else [context] if context else []
    try:
        jsonld.check_context(items, "/@context")
    except jsonld.UnknownContext as exc:
        raise EpcisError(
            f"unknown @context {exc.url}: only GS1's published contexts and inline context "
            "objects are accepted",
            exc.path,
        ) from None
    return [c for c in items if not jsonld.is_epcis_context(c)]


def event_hashes(
    events: Sequence[dict[str, Any]], context: list[Any], iris: frozenset[str] | None = None
) -> list[str]:
    """The reference event hash (``ni:///sha-256;...?ver=CBV2.0``) of each event, exactly
    as ``epcis_event_hash_generator`` computes it (``traceability.epcis_hash``), offline.

    Raises ``EpcisError`` (400) for a remote context this server does not hold, a context
    JSON-LD refuses, or an event the algorithm cannot hash (path ``/<index>``)."""
    if not events:
        return []
    try:
        jsonld.check_context(context, "/@context")
        return epcis_hash.event_hashes(events, context, iris)
    except jsonld.UnknownContext as exc:
        raise EpcisError(
            f"unknown @context {exc.url}: only GS1's published contexts and "
            "inline context objects are accepted",
            exc.path,
        ) from None
    except epcis_hash.HashError as exc:
        raise EpcisError(exc.message, f"/{exc.index}") from None
    except JsonLdError as exc:
        raise EpcisError(f"JSON-LD: {_jsonld_reason(exc)}", "/@context") from None


def _jsonld_reason(exc: JsonLdError) -> str:
    code = getattr(exc, "code", None)
    return f"{code}" if code else str(exc).splitlines()[0][:200]


def parse_time(value: str) -> dt.datetime:
    """The UTC instant of an RFC 3339 time in any form the EPCIS schema accepts
    (``traceability.epcis_time``); ``EpcisError`` for one this service cannot take."""
    try:
        return epcis_time.parse_rfc3339(value)
    except epcis_time.TimeError as exc:
        raise EpcisError(str(exc)) from None


ROLE_FIELDS = (
    ("epcList", "epc", False),
    ("childEPCs", "child", False),
    ("inputEPCList", "input", False),
    ("outputEPCList", "output", False),
    ("quantityList", "quantity", True),
    ("childQuantityList", "child_quantity", True),
    ("inputQuantityList", "input_quantity", True),
    ("outputQuantityList", "output_quantity", True),
)


def identifiers(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, identifier) for every EPC and EPC class the event names."""
    found: list[tuple[str, str]] = []
    if event.get("parentID"):
        found.append(("parent", event["parentID"]))
    for key, role, quantities in ROLE_FIELDS:
        for item in event.get(key) or []:
            epc = item.get("epcClass") if quantities else item
            if isinstance(epc, str):
                found.append((role, epc))
    return found


def _epc_rows(event_pk: int, event: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for role, epc in identifiers(event):
        try:
            key = product_key(epc)
        except IdentifierError:
            key = None
        rows.append(
            {
                "event_pk": event_pk,
                "role": role,
                "epc": epc,
                "gtin": key[0] if key else None,
                "lot": key[1] if key else None,
                # (a serial past AI 21's 20 characters is no GS1 serial: matched by spelling)
                "serial": key[2] if key and key[2] and len(key[2]) <= 20 else None,
            }
        )
    return rows


@dataclass
class CaptureResult:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)


def store_events(
    events: Sequence[dict[str, Any]],
    context: list[Any],
    *,
    organisation_id: int | None,
    job: CaptureJob | None = None,
    error_behaviour: str = "rollback",
    times_checked: bool = False,
    capture_digests: Sequence[str] | None = None,
    hashed: dict[str, Any] | None = None,
) -> CaptureResult:
    """Store schema-valid events; one whose eventID is already stored is skipped.

    Events without an eventID get the reference hash. Flushes; the caller commits.
    An organisation's events must pass the ownership rule (``ownership.check_events``:
    403 naming what it may not name, 400 for an eventID that is not the reference hash).
    A client's ``recordTime`` is dropped: the repository sets it. Two different events
    with one eventID are refused (``error_declarations.one_event_per_id``, per
    ``error_behaviour``); error declarations are stored beside the event they correct
    (``error_declarations.store``). ``capture_digests``: for events that passed the
    schema in a capture, each one's :func:`capture_digests`, in the order of ``events``;
    ``hashed``: what a helper computed for these events (``hash_workers.compute``).
    """
    from traceability import error_declarations

    sent = (
        {} if capture_digests is None else dict(zip(map(id, events), capture_digests, strict=True))
    )

    # ``times_checked``: a capture job's times were all read in its request; each stored
    # event's time is then read once, when its row is made.
    times = {} if times_checked else {id(e): event_time(index, e) for index, e in enumerate(events)}
    if hashed and hashed.get("times") and len(hashed["times"]) == len(events):
        from traceability.hash_workers import event_time as helper_time

        times = {id(e): helper_time(t) for e, t in zip(events, hashed["times"], strict=True)}
    for index, event in enumerate(events):
        if "@context" in event:
            try:
                jsonld.check_context(event["@context"], f"/{index}/@context")
            except jsonld.UnknownContext as exc:
                raise EpcisError(f"unknown @context {exc.url}", exc.path) from None
    ownership.check_events(events, context, organisation_id=organisation_id)
    result = CaptureResult()
    digests = _assign_event_ids(events, context, hashed)
    for event in events:
        event.pop("recordTime", None)
    events = error_declarations.one_event_per_id(
        events, context, error_behaviour=error_behaviour, result=result
    )
    declared = [e for e in events if e.get("errorDeclaration") is not None]
    if declared:
        events = [e for e in events if e.get("errorDeclaration") is None]
    ids = [e["eventID"] for e in events]
    key = EpcisEvent.event_id
    where = [EpcisEvent.error_declaration.is_(False)]
    known = {row[0] for row in stored_matching(key, ids, key, where=where)}
    now = utcnow()
    fresh: list[dict[str, Any]] = []
    for event in events:
        if event["eventID"] in known:
            result.duplicates.append(event["eventID"])
            continue
        known.add(event["eventID"])
        fresh.append(event)
    if fresh:
        _insert(fresh, context, organisation_id, job, now, result, times, digests, sent)
    # After the events: a declaration may correct an event of the same document.
    error_declarations.store(
        declared, context, organisation_id=organisation_id, job=job, result=result
    )
    return result


def _insert(
    fresh: list[dict[str, Any]],
    context: list[Any],
    organisation_id: int | None,
    job: CaptureJob | None,
    now: dt.datetime,
    result: CaptureResult,
    times: dict[int, dt.datetime],
    digests: dict[int, str],
    sent: dict[int, str],
) -> None:
    rows = [
        {
            "event_id": e["eventID"],
            "event_type": e["type"],
            "event_time": times[id(e)] if id(e) in times else parse_time(e["eventTime"]),
            "record_time": now,
            "action": e.get("action"),
            "biz_step": bare_cbv(e.get("bizStep")),
            "disposition": bare_cbv(e.get("disposition")),
            "read_point": (e.get("readPoint") or {}).get("id"),
            "biz_location": (e.get("bizLocation") or {}).get("id"),
            "organisation_id": organisation_id,
            "capture_job_id": job.id if job else None,
            "document": e,
            "context": context,
            "content_digest": digests.get(id(e)),
            "capture_digest": sent.get(id(e)),
        }
        for e in fresh
    ]
    pks = bulk_insert(EpcisEvent.__table__, rows, ids=True)
    epc_rows = [row for pk, e in zip(pks, fresh, strict=True) for row in _epc_rows(pk, e)]
    bulk_insert(EventEpc.__table__, epc_rows)
    lots = {(row["gtin"], row["lot"]) for row in epc_rows if row["gtin"] and row["lot"]}
    events_stored.send(None, session=db.session, lots=lots, event_pks=pks)
    result.stored = [e["eventID"] for e in fresh]


def bulk_insert(table: Table, rows: list[dict[str, Any]], *, ids: bool = False) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in the session's
    transaction; with ``ids`` the new primary keys, in the order of ``rows``.

    On PostgreSQL one ``COPY`` (the keys drawn from the table's sequence first); an
    INSERT ... RETURNING in the rows' order there costs 6 times as much (0.9 s against
    0.15 s for 5,000 events). On SQLite one executemany of the driver (after the first
    row, whose key gives the next ones), each value bound by its column type's own
    processor: SQLAlchemy's executemany builds every row's parameters anew, a third of
    the time of 10,000 events. Core INSERTs, never the ORM's bulk path (it sent the
    event_epc rows one statement each). Python-side column defaults are applied as
    SQLAlchemy would."""
    if not rows:
        return []
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        if ids:
            query = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return list(connection.execute(query, rows).scalars())
        connection.execute(insert(table), rows)
        return []
    keys = list(rows[0])
    defaults = {
        c.name: c.default
        for c in table.columns
        if c.name not in keys and c.name != "id" and c.default is not None
    }
    fixed = [d.arg(None) if d.is_callable else d.arg for d in defaults.values()]
    columns = [table.c[k] for k in (*keys, *defaults)]
    quote = dialect.identifier_preparer
    names = ", ".join(quote.quote(c.name) for c in columns)
    if dialect.name == "sqlite":
        new_ids: list[int] = []
        if ids:
            # The first row's key, then the next keys given: from the first INSERT on,
            # this transaction holds the database's write lock, and a new rowid is max + 1.
            first = connection.execute(insert(table).returning(table.c.id), rows[0]).scalar_one()
            new_ids = list(range(first, first + len(rows)))
            rows = rows[1:]
        convert = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
        values = [
            tuple(
                [
                    f(v) if f else v
                    for f, v in zip(convert, [row[k] for k in keys] + fixed, strict=True)
                ]
            )
            for row in rows
        ]
        if ids:
            values = [(key, *row) for key, row in zip(new_ids[1:], values, strict=True)]
        if values:
            marks = ", ".join("?" * (len(columns) + ids))
            head = "id, " if ids else ""
            # Names from the table's own columns, quoted by the dialect; values bound.
            statement = f"INSERT INTO {quote.format_table(table)} ({head}{names}) VALUES ({marks})"  # noqa: S608
            connection.exec_driver_sql(statement, values)
        return new_ids
    new_ids = []
    if ids:
        new_ids = list(
            connection.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"table": table.name, "n": len(rows)},
            ).scalars()
        )
    convert = [_copy_converter(c, dialect) for c in columns]
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:
        head = "id, " if ids else ""
        with cursor.copy(f"COPY {quote.format_table(table)} ({head}{names}) FROM STDIN") as copy:
            for index, row in enumerate(rows):
                values = [row[k] for k in keys] + fixed
                values = [f(v) if f else v for f, v in zip(convert, values, strict=True)]
                copy.write_row([new_ids[index], *values] if ids else values)
    return new_ids


def _copy_converter(column: Any, dialect: Any) -> Any:
    """How a value of ``column`` is written by COPY as SQLAlchemy would bind it."""
    kind = column.type
    if isinstance(kind, JSON):
        serialise = dialect._json_serializer or json.dumps
        if kind.none_as_null:
            return lambda v: None if v is None else serialise(v)
        return serialise
    if isinstance(kind, TypeDecorator):
        return lambda v: kind.process_bind_param(v, dialect)
    return None


def _assign_event_ids(
    events: Sequence[dict[str, Any]], context: list[Any], hashed: dict[str, Any] | None = None
) -> dict[int, str]:
    """Give each event without eventID its reference hash; {id(event): content digest}.

    An event stored before with the same content digest (a re-capture) takes the stored
    eventID without being hashed (``epcis_hash.content_digests``: equal digests, equal
    hashes); the others are hashed in one pass, in the document they came in, unless
    ``hashed`` (``hash_workers.compute`` of these very events) holds their hashes."""
    places = [i for i, e in enumerate(events) if not e.get("eventID")]
    if not places:
        return {}
    missing = [events[i] for i in places]
    if hashed and (hashed.get("count"), hashed.get("missing")) != (len(events), places):
        hashed = None  # computed for another list of events: not these
    try:
        jsonld.check_context(context, "/@context")
        iris = frozenset(hashed["iris"]) if hashed else epcis_hash.document_iris(missing, context)
    except jsonld.UnknownContext as exc:
        raise EpcisError(f"unknown @context {exc.url}", exc.path) from None
    except JsonLdError as exc:
        raise EpcisError(f"JSON-LD: {_jsonld_reason(exc)}", "/@context") from None
    if hashed:
        digests = list(hashed["digests"])
        computed = dict(zip(map(id, missing), hashed["hashes"], strict=True))
    else:
        digests = epcis_hash.content_digests(missing, context, iris)
        computed = {}
    key = EpcisEvent.content_digest
    known = dict(stored_matching(key, digests, key, EpcisEvent.event_id))
    unknown = [(e, d) for e, d in zip(missing, digests, strict=True) if d not in known]
    try:
        if computed:
            hashes = [computed[id(e)] for e, _ in unknown]
        else:
            hashes = event_hashes([e for e, _ in unknown], context, iris) if unknown else []
    except EpcisError as exc:
        index = exc.path[1:]
        if index.isdigit():  # the event's place in the document, not in this list
            place = next(i for i, e in enumerate(events) if e is unknown[int(index)][0])
            raise EpcisError(exc.message, f"/{place}") from None
        raise
    for (event, _), event_id in zip(unknown, hashes, strict=True):
        event["eventID"] = event_id
    for event, digest in zip(missing, digests, strict=True):
        if digest in known:
            event["eventID"] = known[digest]
    return {id(e): d for e, d in zip(missing, digests, strict=True)}


def event_time(index: int, event: dict[str, Any], where: str = "") -> dt.datetime:
    """The event's eventTime in UTC; ``EpcisError`` naming ``<where>/<index>/eventTime``."""
    try:
        return parse_time(event.get("eventTime"))
    except EpcisError as exc:
        raise EpcisError(exc.message, f"{where}/{index}/eventTime") from None


def stored_matching(
    key: Any, values: Iterable[str], *columns: Any, where: Sequence[Any] = ()
) -> list[Any]:
    """``columns`` (or ``EpcisEvent`` itself) of each stored event whose ``key`` column is
    one of ``values`` (and that meets ``where``).

    On PostgreSQL one statement joining the values given as one array (``unnest``): an
    ``IN`` list of bound parameters is compared value by value under a generic plan
    (psycopg prepares a statement run five times), 6 s for 10,000 digests against
    10,000 rows just captured, against 0.1 s joined. Elsewhere ``IN`` lists of 500."""
    wanted = sorted(set(values))
    if not wanted:
        return []
    if db.session.get_bind().dialect.name == "postgresql":
        given = (
            func.unnest(bindparam("wanted", wanted, type_=ARRAY(Text)))
            .table_valued("value")
            .render_derived(name="wanted")
        )
        query = select(*columns).select_from(EpcisEvent).join(given, key == given.c.value)
        return list(db.session.execute(query.where(*where)))
    found: list[Any] = []
    for chunk in chunks(wanted, 500):
        found.extend(db.session.execute(select(*columns).where(key.in_(chunk), *where)))
    return found


def event_document(stored: EpcisEvent) -> dict[str, Any]:
    """The event as captured, with its eventID and recordTime."""
    event = dict(stored.document)
    # Always the repository's own (a client's value was never kept; older rows may hold one).
    event["recordTime"] = stored.record_time.isoformat().replace("+00:00", "Z")
    return event


def merged_context(events: Sequence[EpcisEvent]) -> tuple[list[Any], list[dict[str, Any]]]:
    """One @context for events captured in different documents, and each event's document
    written against it.

    A prefix two documents bind to different namespaces keeps the first binding; the
    other document's events get a prefix of their own for it (``ex`` → ``ex_2``, their
    keys renamed), or the prefix already bound to the same namespace: a stored event
    means the same thing when it comes back."""
    context: list[Any] = [EPCIS_CONTEXT]
    bound: dict[str, Any] = {}
    documents = []
    for stored in events:
        renames: dict[str, str] = {}
        for item in stored.context or []:
            if not isinstance(item, dict):
                if item not in context:
                    context.append(item)
                continue
            for prefix, iri in item.items():
                if bound.get(prefix, iri) == iri:
                    if prefix not in bound:
                        bound[prefix] = iri
                        context.append({prefix: iri})
                    continue
                same = next((p for p, i in bound.items() if i == iri), None)
                if same is None:
                    number = 2
                    while f"{prefix}_{number}" in bound:
                        number += 1
                    same = f"{prefix}_{number}"
                    bound[same] = iri
                    context.append({same: iri})
                renames[prefix] = same
        document = event_document(stored)
        documents.append(_renamed(document, renames) if renames else document)
    return context, documents


def _renamed(value: Any, renames: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            prefix, sep, local = key.partition(":")
            if sep and prefix in renames:
                key = f"{renames[prefix]}:{local}"
            out[key] = _renamed(inner, renames)
        return out
    if isinstance(value, list):
        return [_renamed(v, renames) for v in value]
    return value


def query_document(events: Sequence[EpcisEvent]) -> dict[str, Any]:
    """An EPCISQueryDocument for ``events`` (validated against the schema by the caller)."""
    context, documents = merged_context(events)
    return {
        "@context": context,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": utcnow().isoformat().replace("+00:00", "Z"),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": documents},
            }
        },
    }


def epcis_document(events: Sequence[EpcisEvent]) -> dict[str, Any]:
    """An EPCISDocument (JSON-LD) holding ``events``, e.g. a batch's whole history."""
    query = query_document(events)
    return {
        "@context": query["@context"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": query["creationDate"],
        "epcisBody": {"eventList": query["epcisBody"]["queryResults"]["resultsBody"]["eventList"]},
    }


# --- the query interface -------------------------------------------------------------------


@dataclass(frozen=True)
class EventQuery:
    event_types: tuple[str, ...] = ()
    ge_event_time: dt.datetime | None = None
    lt_event_time: dt.datetime | None = None
    ge_record_time: dt.datetime | None = None
    lt_record_time: dt.datetime | None = None
    biz_steps: tuple[str, ...] = ()
    dispositions: tuple[str, ...] = ()
    biz_locations: tuple[str, ...] = ()
    read_points: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    match_epc: tuple[str, ...] = ()
    match_any_epc: tuple[str, ...] = ()
    match_epc_class: tuple[str, ...] = ()
    match_input_epc: tuple[str, ...] = ()
    match_output_epc: tuple[str, ...] = ()
    organisation_id: int | None = None  # a cooperative sees its own events only
    # (ordering value, id) of the last event seen: eventTime, or recordTime by orderBy
    after: tuple[dt.datetime, int] | None = None
    # The rest of §8.2.7 (parsed by epcis_query.parse_parameters).
    ge_error_declaration_time: dt.datetime | None = None
    lt_error_declaration_time: dt.datetime | None = None
    exists_error_declaration: bool = False
    error_reasons: tuple[str, ...] = ()
    corrective_event_ids: tuple[str, ...] = ()
    wd_biz_locations: tuple[str, ...] = ()
    wd_read_points: tuple[str, ...] = ()
    match_parent_id: tuple[str, ...] = ()
    match_input_epc_class: tuple[str, ...] = ()
    match_output_epc_class: tuple[str, ...] = ()
    match_any_epc_class: tuple[str, ...] = ()
    # Conditions checked on each candidate's document (epcis_query.matches): quantities,
    # sensor reports, extension fields, business transactions, sources, destinations.
    document_tests: tuple[Any, ...] = ()
    order_by: str = "eventTime"  # or recordTime
    order_desc: bool = False
    event_count_limit: int | None = None
    max_event_count: int | None = None


def _epc_match(values: tuple[str, ...], roles: tuple[str, ...]) -> Any:
    """Events naming one of ``values`` in one of ``roles``: an EPC in either spelling
    (URN, Digital Link), an EPC pattern, or a trailing * prefix (epcis_query.epc_match)."""
    from traceability import epcis_query

    return epcis_query.epc_match(values, roles)


def order_column(q: EventQuery) -> Any:
    return EpcisEvent.record_time if q.order_by == "recordTime" else EpcisEvent.event_time


def build_query(q: EventQuery) -> Select[tuple[EpcisEvent]]:
    """The SQL of a query (SimpleEventQuery semantics), in its order. Conditions on the
    document itself (``q.document_tests``) are not in it: ``epcis_query.run`` checks them
    (``epcis_query.matches``)."""
    from traceability import epcis_query

    query = select(EpcisEvent)
    filters = epcis_query.sql_filters(q)
    ordered = order_column(q)
    if q.after is not None:
        position = tuple_(ordered, EpcisEvent.id)
        filters.append(position < tuple_(*q.after) if q.order_desc else position > tuple_(*q.after))
    if q.event_types:
        filters.append(EpcisEvent.event_type.in_(q.event_types))
    if q.ge_event_time:
        filters.append(EpcisEvent.event_time >= q.ge_event_time)
    if q.lt_event_time:
        filters.append(EpcisEvent.event_time < q.lt_event_time)
    if q.ge_record_time:
        filters.append(EpcisEvent.record_time >= q.ge_record_time)
    if q.lt_record_time:
        filters.append(EpcisEvent.record_time < q.lt_record_time)
    for column, values in (
        (EpcisEvent.biz_step, q.biz_steps),
        (EpcisEvent.disposition, q.dispositions),
        (EpcisEvent.biz_location, q.biz_locations),
        (EpcisEvent.read_point, q.read_points),
        (EpcisEvent.action, q.actions),
        (EpcisEvent.event_id, q.event_ids),
    ):
        if values:
            wanted = (
                [bare_cbv(v) for v in values]
                if column in (EpcisEvent.biz_step, EpcisEvent.disposition)
                else list(values)
            )
            filters.append(column.in_(wanted))
    if q.match_epc:
        filters.append(_epc_match(q.match_epc, ("epc", "child")))
    if q.match_any_epc:
        filters.append(_epc_match(q.match_any_epc, ("epc", "child", "parent", "input", "output")))
    if q.match_epc_class:
        filters.append(_epc_match(q.match_epc_class, ("quantity", "child_quantity")))
    if q.match_input_epc:
        filters.append(_epc_match(q.match_input_epc, ("input",)))
    if q.match_output_epc:
        filters.append(_epc_match(q.match_output_epc, ("output",)))
    if q.organisation_id is not None:
        filters.append(EpcisEvent.organisation_id == q.organisation_id)
    # In eventTime order (ties by arrival), which the (event_time, id) index serves directly.
    if q.order_desc:
        return query.where(*filters).order_by(ordered.desc(), EpcisEvent.id.desc())
    return query.where(*filters).order_by(ordered, EpcisEvent.id)


def page_token(
    last: EpcisEvent, fingerprint: str, order_by: str = "eventTime", seen: int = 0
) -> str:
    """A nextPageToken: the last event's position in the query's order and how many
    events the pages so far held (for eventCountLimit)."""
    when = last.record_time if order_by == "recordTime" else last.event_time
    raw = json.dumps({"t": when.isoformat(), "id": last.id, "q": fingerprint, "n": seen})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def read_page_token(token: str, fingerprint: str) -> tuple[dt.datetime, int]:
    """The position a nextPageToken stands for; it only fits the query that made it."""
    return read_page_token_count(token, fingerprint)[0]


def read_page_token_count(token: str, fingerprint: str) -> tuple[tuple[dt.datetime, int], int]:
    """The position a nextPageToken stands for and the events already given."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        after = (dt.datetime.fromisoformat(data["t"]), int(data["id"]))
        seen = int(data.get("n", 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise EpcisError("not a token this server issued", "nextPageToken") from None
    if data.get("q") != fingerprint:
        raise EpcisError("the token belongs to another query", "nextPageToken")
    return after, seen
