"""The whole EPCIS 2.0 query interface (§8.2.7, the REST binding's ``EPCISEventsQuery``).

:func:`parse_parameters` turns query parameters (``name -> [values]``, from a URL or a
named query's JSON) into an :class:`epcis.EventQuery`; ``epcis.build_query`` makes the
SQL, with the help of :func:`sql_filters` here; what SQL cannot see cheaply (quantities,
sensor reports, user extension fields, business transactions, sources and destinations)
is checked on each candidate event by :func:`matches`, and :func:`run` walks the ordered
candidates until a page is full. Parameters:

- ``eventType``; ``GE_/LT_eventTime``, ``GE_/LT_recordTime``, ``GE_/LT_errorDeclarationTime``
- ``EQ_action``, ``EQ_bizStep``, ``EQ_disposition``, ``EQ_readPoint``, ``EQ_bizLocation``,
  ``WD_readPoint``, ``WD_bizLocation`` (the place or any GLN extension of it: ``414/…/254/…``
  or ``urn:epc:id:sgln:cp.ref.*``), ``EQ_eventID``, ``EQ_transformationID``,
  ``EQ_persistentDisposition_set/unset``
- ``MATCH_epc``, ``MATCH_parentID``, ``MATCH_inputEPC``, ``MATCH_outputEPC``,
  ``MATCH_anyEPC``, ``MATCH_epcClass``, ``MATCH_inputEPCClass``, ``MATCH_outputEPCClass``,
  ``MATCH_anyEPCClass``: an EPC URN, its Digital Link (any host), an EPC pattern
  (``urn:epc:idpat:sgtin:893000.0000001.*``) or a trailing ``*`` prefix
- ``EXISTS_errorDeclaration``, ``EQ_errorReason``, ``EQ_correctiveEventID``
- ``EQ_/GT_/GE_/LT_/LE_quantity``
- sensor reports: ``EQ_type``, ``EQ_deviceID``, ``EQ_uom``, ``EQ_stringValue``, …,
  ``EQ_/GT_/GE_/LT_/LE_`` ``value``, ``minValue``, ``maxValue``, ``meanValue``, ``sDev``,
  ``percRank``; ``GE_/LT_time``, ``GE_/LT_startTime``, ``GE_/LT_endTime``
- ``EQ_bizTransaction_<type>``, ``EQ_source_<type>``, ``EQ_destination_<type>``
- user extension fields, by full name (``namespace#name``) or by the event's own prefix
  (``ex:name``): ``EQ_``, ``GT_``, ``GE_``, ``LT_``, ``LE_``, ``EXISTS_``, with ``ILMD_``,
  ``INNER_``, ``INNER_ILMD_`` variants
- ``orderBy`` (``eventTime`` or ``recordTime``), ``orderDirection`` (``ASC``/``DESC``),
  ``eventCountLimit`` (needs ``orderBy``), ``maxEventCount`` (``QueryTooLargeException``)

Anything else is a ``QueryParameterException`` (400).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from traceability import epcis
from traceability.gs1 import IdentifierError, product_key
from traceability.models import EpcisEvent, EventEpc

QPE = epcis.QueryParameterError

LIST_PARAMS = {
    "eventType": "event_types",
    "EQ_bizStep": "biz_steps",
    "EQ_disposition": "dispositions",
    "EQ_bizLocation": "biz_locations",
    "EQ_readPoint": "read_points",
    "WD_bizLocation": "wd_biz_locations",
    "WD_readPoint": "wd_read_points",
    "EQ_action": "actions",
    "EQ_eventID": "event_ids",
    "EQ_errorReason": "error_reasons",
    "EQ_correctiveEventID": "corrective_event_ids",
    "MATCH_epc": "match_epc",
    "MATCH_anyEPC": "match_any_epc",
    "MATCH_epcClass": "match_epc_class",
    "MATCH_inputEPC": "match_input_epc",
    "MATCH_outputEPC": "match_output_epc",
    "MATCH_parentID": "match_parent_id",
    "MATCH_inputEPCClass": "match_input_epc_class",
    "MATCH_outputEPCClass": "match_output_epc_class",
    "MATCH_anyEPCClass": "match_any_epc_class",
}
TIME_PARAMS = {
    "GE_eventTime": "ge_event_time",
    "LT_eventTime": "lt_event_time",
    "GE_recordTime": "ge_record_time",
    "LT_recordTime": "lt_record_time",
    "GE_errorDeclarationTime": "ge_error_declaration_time",
    "LT_errorDeclarationTime": "lt_error_declaration_time",
}
PAGING_PARAMS = {"perPage", "nextPageToken"}
ORDER_PARAMS = {"orderBy", "orderDirection", "eventCountLimit", "maxEventCount"}
COMPARISONS = ("EQ", "GT", "GE", "LT", "LE")
# Sensor report fields (EPCIS 2.0 §7.3.10.2), by the kind of their values.
SENSOR_TEXT = (
    "type",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "microorganism",
    "chemicalSubstance",
    "bizRules",
    "stringValue",
    "booleanValue",
    "hexBinaryValue",
    "uriValue",
    "uom",
    "component",
    "coordinateReferenceSystem",
)
SENSOR_NUMBERS = ("value", "minValue", "maxValue", "meanValue", "sDev", "percRank")
SENSOR_TIMES = ("time", "startTime", "endTime")
QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_GS1_VOC = re.compile(r"^(?:gs1:|https?://gs1\.org/voc/)")
_CBV_WORD = re.compile(
    r"^(?:https://ref\.gs1\.org/cbv/(?:BTT|SDT|ER)-|urn:epcglobal:cbv:(?:btt|sdt|er):)(.+)$"
)


@dataclass(frozen=True)
class DocumentTest:
    """One condition on the event document: ``family`` (quantity | sensor | bizTransaction
    | source | destination | transformationID | persistentDisposition | field), the
    comparison (EQ, GT, GE, LT, LE, EXISTS, set, unset), the field and the wanted values."""

    family: str
    op: str
    name: str
    values: tuple[Any, ...]
    where: str = "top"  # for fields: top | ilmd | inner | inner_ilmd


def _bare(value: Any) -> str:
    text = str(value)
    match = _CBV_WORD.match(text)
    if match:
        return match[1]
    return epcis.bare_cbv(_GS1_VOC.sub("", text)) or ""


def _number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise QPE("must be a number", name) from None


def _time(name: str, raw: str) -> dt.datetime:
    try:
        return epcis.parse_time(raw)
    except ValueError:
        raise QPE("must be a date-time with offset", name) from None


def _values(args: Mapping[str, Sequence[Any]], name: str) -> list[str]:
    found: list[str] = []
    for raw in args.get(name) or []:
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        found += [v for v in str(raw).split("|") if v]
    return found


def _single(args: Mapping[str, Sequence[Any]], name: str) -> str:
    values = _values(args, name)
    if len(values) != 1:
        raise QPE("takes exactly one value", name)
    return values[0]


def _whole(args: Mapping[str, Sequence[Any]], name: str) -> int:
    try:
        value = int(_single(args, name))
    except ValueError:
        raise QPE("must be a whole number", name) from None
    if value < 1:
        raise QPE("must be at least 1", name)
    return value


def _document_test(name: str, values: list[str]) -> DocumentTest | None:
    """The document condition a parameter stands for; None when it is not one."""
    head, _sep, rest = name.partition("_")
    if head == "EXISTS" and rest:
        where, field = _field_place(rest, name)
        return DocumentTest("field", "EXISTS", field, (), where)
    if head not in COMPARISONS or not rest:
        return None
    if rest == "quantity":
        return DocumentTest("quantity", head, rest, tuple(_number(name, v) for v in values))
    if rest in SENSOR_NUMBERS:
        return DocumentTest("sensor", head, rest, tuple(_number(name, v) for v in values))
    if rest in SENSOR_TIMES and head in ("GE", "LT"):
        return DocumentTest("sensor", head, rest, tuple(_time(name, v) for v in values))
    if head != "EQ":
        where, field = _field_place(rest, name)
        return DocumentTest("field", head, field, tuple(values), where)
    if rest in SENSOR_TEXT:
        return DocumentTest("sensor", "EQ", rest, tuple(values))
    if rest == "transformationID":
        return DocumentTest("transformationID", "EQ", rest, tuple(values))
    for family in ("bizTransaction", "source", "destination"):
        if rest.startswith(family + "_") and len(rest) > len(family) + 1:
            return DocumentTest(family, "EQ", _bare(rest[len(family) + 1 :]), tuple(values))
    if rest in ("persistentDisposition_set", "persistentDisposition_unset"):
        return DocumentTest(
            "persistentDisposition", rest.rsplit("_", 1)[1], rest, tuple(_bare(v) for v in values)
        )
    where, field = _field_place(rest, name)
    return DocumentTest("field", "EQ", field, tuple(values), where)


def _field_place(rest: str, name: str) -> tuple[str, str]:
    for prefix, where in (("INNER_ILMD_", "inner_ilmd"), ("INNER_", "inner"), ("ILMD_", "ilmd")):
        if rest.startswith(prefix):
            return where, _check_field(rest[len(prefix) :], name)
    return "top", _check_field(rest, name)


def _check_field(field: str, name: str) -> str:
    """A user extension field is named by a namespace (``https://…#name``) or a prefix
    (``ex:name``); a bare word is none of them, so not a parameter of the standard."""
    if ":" not in field and "#" not in field:
        raise QPE(f"this server does not support {name}", name)
    return field


def parse_parameters(
    args: Mapping[str, Sequence[Any]], *, organisation_id: int | None
) -> epcis.EventQuery:
    """An :class:`epcis.EventQuery` from query parameters (``name -> list of values``; a
    value may hold several separated by ``|``). Paging parameters are the caller's.

    Raises :class:`epcis.QueryParameterError` naming the parameter (400)."""
    kwargs: dict[str, Any] = {}
    tests: list[DocumentTest] = []
    for name in args:
        if name in PAGING_PARAMS or name in ORDER_PARAMS:
            continue
        values = _values(args, name)
        if name in LIST_PARAMS:
            kwargs[LIST_PARAMS[name]] = tuple(values)
        elif name in TIME_PARAMS:
            kwargs[TIME_PARAMS[name]] = _time(name, _single(args, name))
        elif name == "EXISTS_errorDeclaration":
            kwargs["exists_error_declaration"] = True
        else:
            test = _document_test(name, values) if values or name.startswith("EXISTS_") else None
            if test is None:
                raise QPE(f"this server does not support {name}", name)
            if test.op != "EXISTS" and not test.values:
                raise QPE("needs a value", name)
            tests.append(test)
    bad_types = [t for t in kwargs.get("event_types", ()) if t not in epcis.EVENT_TYPES]
    if bad_types:
        raise QPE(f"unknown event type {bad_types[0]}", "eventType")
    if "orderBy" in args:
        order_by = _single(args, "orderBy")
        if order_by not in ("eventTime", "recordTime"):
            raise QPE("this server orders by eventTime or recordTime", "orderBy")
        kwargs["order_by"] = order_by
    if "orderDirection" in args:
        direction = _single(args, "orderDirection").upper()
        if direction not in ("ASC", "DESC"):
            raise QPE("must be ASC or DESC", "orderDirection")
        kwargs["order_desc"] = direction == "DESC"
    if "eventCountLimit" in args and "maxEventCount" in args:
        raise QPE("eventCountLimit and maxEventCount exclude each other", "maxEventCount")
    if "eventCountLimit" in args:
        if "orderBy" not in args:
            raise QPE("eventCountLimit needs orderBy", "eventCountLimit")
        kwargs["event_count_limit"] = _whole(args, "eventCountLimit")
    if "maxEventCount" in args:
        kwargs["max_event_count"] = _whole(args, "maxEventCount")
    kwargs["document_tests"] = tuple(tests)
    kwargs["organisation_id"] = organisation_id
    return epcis.EventQuery(**kwargs)


# --- SQL ---------------------------------------------------------------------------------------


def _instance_rows(gtin: str, serial: str) -> Any:
    """Rows naming one serialised item, whichever spelling (URN or Digital Link): by the
    (gtin, serial) index."""
    return and_(EventEpc.gtin == gtin, EventEpc.serial == serial)


def epc_condition(value: str) -> Any:
    """The ``event_epc`` rows a MATCH_ value names: an EPC (URN or Digital Link: both
    spellings match), an EPC pattern (``urn:epc:idpat:…``, ``*`` fields), an EPC class
    (``urn:epc:class:lgtin:…`` or ``/01/…/10/…``) or a trailing-``*`` prefix."""
    from traceability import ownership

    if value.startswith("urn:epc:idpat:"):
        return _pattern_condition(value)
    if value.endswith("*"):
        return EventEpc.epc.startswith(value[:-1], autoescape=True)
    try:
        key = product_key(value)
    except IdentifierError:
        key = None
    if key is not None:
        gtin, lot, serial = key
        if serial and len(serial) <= 20:
            return _instance_rows(gtin, serial)
        if serial:
            return EventEpc.epc == value
        # A class: no serial. Written so that the planner starts from (gtin, lot), not from
        # (gtin, serial), which every class row of a GTIN shares.
        return and_(
            EventEpc.gtin == gtin,
            EventEpc.lot == lot if lot else EventEpc.lot.is_(None),
            func.coalesce(EventEpc.serial, "") == "",
        )
    other = ownership.gs1_key(value)
    if other is not None:
        return EventEpc.epc.in_({value, *ownership.spellings(*other)})
    return EventEpc.epc == value


_IDPAT = re.compile(r"^urn:epc:idpat:([a-z]+):(.*)$")


def _pattern_condition(value: str) -> Any:
    match = _IDPAT.match(value)
    if not match:
        raise QPE("not an EPC pattern", value)
    scheme, fields = match[1], match[2].split(".")
    if scheme == "sgtin" and len(fields) == 3:
        prefix, item, serial = fields
        if prefix.isdigit() and item.isdigit() and serial == "*":
            gtin = epcis_gtin(prefix, item)
            return and_(EventEpc.gtin == gtin, EventEpc.serial.isnot(None))
        if prefix.isdigit() and item == "*" and serial == "*":
            return and_(EventEpc.gtin.like("_" + prefix + "%"), EventEpc.serial.isnot(None))
    # Other schemes: the EPC URNs up to the first wildcard field.
    fixed = []
    for part in fields:
        if part == "*":
            break
        fixed.append(part)
    if len(fixed) == len(fields):
        raise QPE("an EPC pattern ends in * fields", value)
    head = f"urn:epc:id:{scheme}:" + ".".join(fixed) + ("." if fixed else "")
    return EventEpc.epc.startswith(head, autoescape=True)


def epcis_gtin(company_prefix: str, indicator_item: str) -> str:
    from traceability.gs1 import _gtin_from_urn

    try:
        return _gtin_from_urn(company_prefix, indicator_item)
    except (IdentifierError, ValueError):
        raise QPE("not an SGTIN pattern", "MATCH") from None


def epc_match(values: Sequence[str], roles: Sequence[str]) -> Any:
    """Events naming one of ``values`` in one of ``roles``."""
    # An IN-subquery rather than a correlated EXISTS: both databases then start from the
    # (epc, role) or (gtin, lot) index instead of walking every event.
    return EpcisEvent.id.in_(
        select(EventEpc.event_pk).where(
            EventEpc.role.in_(roles), or_(*(epc_condition(v) for v in values))
        )
    )


def _place_descendants(column: Any, values: Sequence[str]) -> Any:
    """The place itself (any spelling) or a GLN extension of it (its sub-locations)."""
    from traceability import ownership

    conditions = []
    for value in values:
        conditions.append(column == value)
        key = ownership.gs1_key(value)
        if key is None or key[0] != "414":
            conditions.append(column.startswith(value.rstrip("/") + "/", autoescape=True))
            continue
        gln = key[1]
        spellings = ownership.spellings("414", gln, key[2])
        conditions.append(column.in_(spellings))
        if key[2] is None:  # every extension of this GLN
            for spelling in spellings:
                if spelling.startswith("urn:epc:id:sgln:") or spelling.endswith("/254/0"):
                    conditions.append(column.startswith(spelling[:-1], autoescape=True))
                else:
                    conditions.append(column.startswith(spelling + "/254/", autoescape=True))
    return or_(*conditions)


def sql_filters(q: epcis.EventQuery) -> list[Any]:
    """The conditions of the parameters added to the query interface's first set."""
    filters: list[Any] = []
    if q.exists_error_declaration:  # every declaration has its time: the indexed column
        filters.append(EpcisEvent.declaration_time.isnot(None))
    if q.error_reasons:
        filters.append(EpcisEvent.error_reason.in_([_bare(v) for v in q.error_reasons]))
    if q.ge_error_declaration_time:
        filters.append(EpcisEvent.declaration_time >= q.ge_error_declaration_time)
    if q.lt_error_declaration_time:
        filters.append(EpcisEvent.declaration_time < q.lt_error_declaration_time)
    if q.corrective_event_ids:
        from traceability.error_declarations import CORRECTIVE_ROLE

        filters.append(
            EpcisEvent.id.in_(
                select(EventEpc.event_pk).where(
                    EventEpc.role == CORRECTIVE_ROLE, EventEpc.epc.in_(q.corrective_event_ids)
                )
            )
        )
    if q.wd_biz_locations:
        filters.append(_place_descendants(EpcisEvent.biz_location, q.wd_biz_locations))
    if q.wd_read_points:
        filters.append(_place_descendants(EpcisEvent.read_point, q.wd_read_points))
    for values, roles in (
        (q.match_parent_id, ("parent",)),
        (q.match_input_epc_class, ("input_quantity",)),
        (q.match_output_epc_class, ("output_quantity",)),
        (
            q.match_any_epc_class,
            ("quantity", "child_quantity", "input_quantity", "output_quantity"),
        ),
    ):
        if values:
            filters.append(epc_match(values, roles))
    return filters


# --- on the document ---------------------------------------------------------------------------


def _compare(op: str, have: Any, want: Any) -> bool:
    try:
        if op == "EQ":
            return have == want
        if op == "GT":
            return have > want
        if op == "GE":
            return have >= want
        if op == "LT":
            return have < want
        if op == "LE":
            return have <= want
    except TypeError:
        return False
    return False


def _any(op: str, have: Any, wanted: Sequence[Any]) -> bool:
    if op == "EQ":
        return any(_compare("EQ", have, w) for w in wanted)
    return all(_compare(op, have, w) for w in wanted)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _sensor(event: dict[str, Any], tests: list[DocumentTest]) -> bool:
    """All sensor conditions met by one report of one sensor element (metadata's times
    by that element's ``sensorMetadata``)."""
    for element in event.get("sensorElementList") or []:
        metadata = element.get("sensorMetadata") or {}
        for report in element.get("sensorReport") or []:
            if all(_sensor_test(t, report, metadata) for t in tests):
                return True
    return False


def _sensor_test(test: DocumentTest, report: dict[str, Any], metadata: dict[str, Any]) -> bool:
    if test.name in SENSOR_TIMES:
        raw = report.get(test.name) or metadata.get(test.name)
        if raw is None:
            return False
        try:
            have = epcis.parse_time(str(raw))
        except (ValueError, epcis.EpcisError):
            return False
        return _any(test.op, have, test.values)
    raw = report.get(test.name)
    if raw is None and test.name in ("deviceID", "deviceMetadata", "rawData", "bizRules"):
        raw = metadata.get(test.name)
    if raw is None:
        return False
    if test.name in SENSOR_NUMBERS:
        have = _as_number(raw)
        return have is not None and _any(test.op, have, test.values)
    if test.name == "booleanValue":
        return str(raw).lower() in {str(v).lower() for v in test.values}
    if test.name == "type":
        return _bare(raw) in {_bare(v) for v in test.values}
    return str(raw) in test.values


def _expand(key: str, context: Sequence[Any]) -> tuple[str, str] | None:
    """(namespace without its closing / or #, local name) of an extension key, through
    the event's own @context."""
    if "#" in key and "://" in key:
        ns, _sep, local = key.rpartition("#")
        return ns.rstrip("/#"), local
    prefix, sep, local = key.partition(":")
    if not sep:
        return None
    if local.startswith("//"):
        ns, _s, name = key.rstrip("/").rpartition("/")
        return ns, name
    for item in context:
        if isinstance(item, dict) and isinstance(item.get(prefix), str):
            return item[prefix].rstrip("/#"), local
    return None


def _wanted_name(field: str, context: Sequence[Any]) -> tuple[str, str] | None:
    if "#" in field and "://" in field:
        return _expand(field, ())
    return _expand(field, context)


def _fields(where: str, event: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(key, value) pairs a field parameter looks at: the event's (or ILMD's) top-level
    extension fields, or every field nested inside them (INNER)."""
    base = event.get("ilmd") or {} if where in ("ilmd", "inner_ilmd") else event
    if where in ("top", "ilmd"):
        yield from ((k, v) for k, v in base.items() if ":" in k)
        return

    def walk(value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for key, inner in value.items():
                if ":" in key:
                    yield key, inner
                yield from walk(inner)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    for key, value in base.items():
        if ":" in key:
            yield from walk(value)


def _field(event: dict[str, Any], context: Sequence[Any], test: DocumentTest) -> bool:
    wanted = _wanted_name(test.name, context)
    if wanted is None:
        return False
    for key, raw in _fields(test.where, event):
        if _expand(key, context) != wanted:
            continue
        if test.op == "EXISTS":
            return True
        if isinstance(raw, (dict, list)):
            continue
        if test.op == "EQ":
            text = str(raw).lower() if isinstance(raw, bool) else str(raw)
            if text in test.values:
                return True
            number = _as_number(raw)
            if number is not None and any(_as_number(v) == number for v in test.values):
                return True
            continue
        number = _as_number(raw)
        if number is not None:
            bounds = [_as_number(v) for v in test.values]
            if None not in bounds and _any(test.op, number, bounds):
                return True
            continue
        try:
            have = epcis.parse_time(str(raw))
            bounds_t = [epcis.parse_time(str(v)) for v in test.values]
        except (ValueError, epcis.EpcisError):
            continue
        if _any(test.op, have, bounds_t):
            return True
    return False


def matches(q: epcis.EventQuery, stored: EpcisEvent) -> bool:
    """Whether the stored event meets the query's document conditions."""
    if not q.document_tests:
        return True
    event = stored.document
    sensor_tests = [t for t in q.document_tests if t.family == "sensor"]
    if sensor_tests and not _sensor(event, sensor_tests):
        return False
    for test in q.document_tests:
        if test.family == "sensor":
            continue
        if test.family == "quantity":
            amounts = [
                _as_number(item.get("quantity"))
                for key in QUANTITY_LISTS
                for item in event.get(key) or []
            ]
            if not any(a is not None and _any(test.op, a, test.values) for a in amounts):
                return False
        elif test.family == "bizTransaction":
            if not any(
                _bare(t.get("type", "")) == test.name and t.get("bizTransaction") in test.values
                for t in event.get("bizTransactionList") or []
            ):
                return False
        elif test.family in ("source", "destination"):
            if not any(
                _bare(t.get("type", "")) == test.name and t.get(test.family) in test.values
                for t in event.get(f"{test.family}List") or []
            ):
                return False
        elif test.family == "transformationID":
            if event.get("transformationID") not in test.values:
                return False
        elif test.family == "persistentDisposition":
            have = {_bare(v) for v in (event.get("persistentDisposition") or {}).get(test.op, [])}
            if not have & set(test.values):
                return False
        elif test.family == "field" and not _field(event, stored.context or [], test):
            return False
    return True


def more_than(query: Select[tuple[EpcisEvent]], q: epcis.EventQuery, count: int) -> bool:
    """Whether more than ``count`` events answer the query (for maxEventCount): counted
    in SQL when no condition needs the documents."""
    from nguon.db import db

    if q.document_tests:
        return len(run(query, q, count + 1)) > count
    ids = query.with_only_columns(EpcisEvent.id).order_by(None).limit(count + 1).subquery()
    return (db.session.scalar(select(func.count()).select_from(ids)) or 0) > count


def run(query: Select[tuple[EpcisEvent]], q: epcis.EventQuery, limit: int) -> list[EpcisEvent]:
    """Up to ``limit`` events of ``query`` (built from ``q``) that meet its document
    conditions, read in chunks in the query's order."""
    from nguon.db import db

    if not q.document_tests:
        return list(db.session.scalars(query.limit(limit)))
    found: list[EpcisEvent] = []
    chunk, offset = max(limit * 4, 200), 0
    while len(found) < limit:
        rows = list(db.session.scalars(query.offset(offset).limit(chunk)))
        found += [r for r in rows if matches(q, r)]
        if len(rows) < chunk:
            break
        offset += chunk
    return found[:limit]
