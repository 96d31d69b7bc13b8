"""EPCIS 2.0 error declarations (§7.4.1.2) and the one-eventID-one-event rule at capture.

An error declaration is the erroneous event itself, its own ``eventID``, with
``errorDeclaration`` added (``declarationTime``, an optional ``reason`` and
``correctiveEventIDs``). It is stored beside the event it corrects, as a second row with
the same eventID and ``error_declaration`` set, so a query returns both and
``EXISTS_errorDeclaration``, ``EQ_errorReason``, ``EQ_correctiveEventID`` and
``GE_/LT_errorDeclarationTime`` find it. The event hash ignores ``errorDeclaration``, so a
declaration sent without an eventID gets the original's.

Only the organisation that recorded the event (or staff) may declare it erroneous. A
declared event leaves every public view (``services.lots_events``); officers still see it,
with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert

from nguon.db import db, utcnow
from nguon.i18n import _, _l
from traceability import epcis
from traceability.models import CaptureJob, EpcisEvent, EventEpc
from traceability.ownership import OwnershipError

CORRECTIVE_ROLE = "corrective"  # event_epc rows naming a declaration's correctiveEventIDs
# CBV 2.0 §7.5 error reasons, in words for officers.
REASONS = {
    "did_not_occur": _l("the event did not occur"),
    "incorrect_data": _l("the event's data were wrong"),
}


def reason_text(reason: str | None) -> str:
    """The reason of a declaration in the reader's language (a non-CBV reason as sent)."""
    if not reason:
        return str(_("no reason given"))
    found = REASONS.get(reason)
    return str(found) if found is not None else reason


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def bare(event: dict[str, Any]) -> str:
        rest = {k: v for k, v in event.items() if k not in ("eventID", "recordTime")}
        return json.dumps(rest, sort_keys=True)

    return bare(a) == bare(b)


def one_event_per_id(
    events: Sequence[dict[str, Any]],
    context: list[Any],
    *,
    error_behaviour: str,
    result: epcis.CaptureResult,
) -> list[dict[str, Any]]:
    """The events of a document with one event per eventID (and one declaration per
    eventID): an identical repeat (or one with the same reference hash) is a duplicate;
    a *different* event with an eventID already used in the document is refused — with
    ``rollback`` the whole capture (:class:`EpcisError` naming ``/<index>/eventID``), with
    ``proceed`` that event only (listed in ``result.errors``)."""
    first: dict[tuple[str, bool], dict[str, Any]] = {}
    kept: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        key = (event["eventID"], event.get("errorDeclaration") is not None)
        seen = first.get(key)
        if seen is None:
            first[key] = event
            kept.append(event)
            continue
        if _same(seen, event) or _hash(seen, context) == _hash(event, context):
            result.duplicates.append(event["eventID"])
            continue
        message = _(
            "another event of this document already has the eventID %(event_id)s: one "
            "eventID names one event",
            event_id=event["eventID"],
        )
        if error_behaviour != "proceed":
            raise epcis.EpcisError(str(message), f"/{index}/eventID")
        result.errors.append({"path": f"/{index}/eventID", "message": str(message)})
    return kept


def _hash(event: dict[str, Any], context: list[Any]) -> str:
    return epcis.event_hashes([event], context)[0]


def store(
    declared: Sequence[dict[str, Any]],
    context: list[Any],
    *,
    organisation_id: int | None,
    job: CaptureJob | None,
    result: epcis.CaptureResult,
) -> None:
    """Store error declarations beside the events they correct (flushes).

    Raises :class:`OwnershipError` (403) when ``organisation_id`` did not record the
    event. A declaration already stored is a duplicate."""
    if not declared:
        return
    originals: dict[str, EpcisEvent] = {}
    already: set[str] = set()
    ids = [e["eventID"] for e in declared]
    for (row,) in epcis.stored_matching(EpcisEvent.event_id, ids, EpcisEvent):
        if row.error_declaration:
            already.add(row.event_id)
        else:
            originals[row.event_id] = row
    rows, fresh = [], []
    for index, event in enumerate(declared):
        event_id = event["eventID"]
        original = originals.get(event_id)
        # A declaration of an event held elsewhere is kept too (GS1's own examples send
        # them alone); one of an event held here is its recorder's to make.
        if (
            original is not None
            and organisation_id is not None
            and original.organisation_id != organisation_id
        ):
            message = _(
                "only the organisation that recorded event %(event_id)s may declare it erroneous",
                event_id=event_id,
            )
            raise OwnershipError({f"/{index}/eventID": message}, detail=message)
        if event_id in already:
            result.duplicates.append(event_id)
            continue
        already.add(event_id)
        declaration = event["errorDeclaration"]
        fresh.append(event)
        rows.append(
            {
                "event_id": event_id,
                "event_type": event["type"],
                "event_time": epcis.parse_time(event["eventTime"]),
                "record_time": utcnow(),
                "action": event.get("action"),
                "biz_step": epcis.bare_cbv(event.get("bizStep")),
                "disposition": epcis.bare_cbv(event.get("disposition")),
                "read_point": (event.get("readPoint") or {}).get("id"),
                "biz_location": (event.get("bizLocation") or {}).get("id"),
                "organisation_id": organisation_id
                if organisation_id is not None or original is None
                else original.organisation_id,
                "capture_job_id": job.id if job else None,
                "document": event,
                "context": context,
                "error_declaration": True,
                "declaration_time": epcis.parse_time(declaration["declarationTime"]),
                "error_reason": epcis.bare_cbv(declaration.get("reason")),
            }
        )
    if not rows:
        return
    pks = list(
        db.session.scalars(
            insert(EpcisEvent).returning(EpcisEvent.id, sort_by_parameter_order=True), rows
        )
    )
    epc_rows = []
    for pk, event in zip(pks, fresh, strict=True):
        epc_rows += epcis._epc_rows(pk, event)
        for corrective in event["errorDeclaration"].get("correctiveEventIDs") or []:
            epc_rows.append(
                {
                    "event_pk": pk,
                    "role": CORRECTIVE_ROLE,
                    "epc": corrective,
                    "gtin": None,
                    "lot": None,
                    "serial": None,
                }
            )
    if epc_rows:
        db.session.execute(insert(EventEpc), epc_rows)
    # The lots the corrected events told about: their records change (the portal's too).
    lots = {(r["gtin"], r["lot"]) for r in epc_rows if r["gtin"] and r["lot"]}
    epcis.events_stored.send(None, session=db.session, lots=lots, event_pks=pks)
    result.stored += [e["eventID"] for e in fresh]


def is_declared(event: EpcisEvent) -> bool:
    """The row is a declaration, or (stored before declarations had their own row) the
    event was declared erroneous in place."""
    return event.error_declaration or bool((event.document or {}).get("errorDeclaration"))


def declarations_of(event_ids: Sequence[str]) -> dict[str, EpcisEvent]:
    """The declaration row of each of these eventIDs that has one."""
    where = [EpcisEvent.error_declaration.is_(True)]
    rows = epcis.stored_matching(EpcisEvent.event_id, event_ids, EpcisEvent, where=where)
    return {row.event_id: row for (row,) in rows}
