# ruff: noqa: F811  (the world fixture is imported, then asked for by name)
"""EPCIS 2.0 semantics (issue 16): error declarations stored beside the event they correct
and leaving every public view, one eventID one event, 409 on POST /events, recordTime set
by the repository, unambiguous prefixes when documents are merged."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pyld import jsonld

from nguon.db import db
from tests.conftest import csrf_from, login
from tests.traceability.test_epcis import DOCUMENT, capture, events_of
from tests.traceability.test_ownership import (  # noqa: F401  (fixtures)
    document,
    headers_of,
    public_views,
    world,
)
from traceability import epcis

JSONLD = "application/ld+json"
DECLARED = {
    "declarationTime": "2026-06-13T08:00:00+07:00",
    "reason": "incorrect_data",
    "correctiveEventIDs": ["urn:uuid:6f2c1d1e-4a55-4c8e-9a51-1f0c2b7d9e01"],
}


@pytest.fixture
def coop(bearer: Callable[..., dict]) -> dict:
    return bearer("cooperative")


@pytest.fixture
def officer(bearer: Callable[..., dict]) -> dict:
    return bearer("officer")


def held(client: FlaskClient, headers: dict, event_id: str) -> dict[str, Any]:
    """The stored event as a client would send it again (no recordTime)."""
    response = client.get(f"/epcis/events/{quote(event_id, safe='')}", headers=headers)
    (event,) = events_of(response)
    event.pop("recordTime")
    return event


def declare(client: FlaskClient, headers: dict, event: dict, **extra: str) -> Any:
    # With the captures' own @context: the event's extension fields (nguon:...) must mean
    # what they meant then, or it is another event with another hash.
    declaration = {
        **document({**event, "errorDeclaration": DECLARED}),
        "@context": DOCUMENT["@context"],
    }
    return client.post(
        "/epcis/capture",
        data=json.dumps(declaration),
        content_type=JSONLD,
        headers={**headers, **extra},
    )


# --- error declarations -------------------------------------------------------------------------


def test_a_declaration_is_stored_beside_its_event_and_found_by_the_query_interface(
    client: FlaskClient, coop: dict
) -> None:
    capture(client, coop)
    first = events_of(client.get("/epcis/events?perPage=1", headers=coop))[0]
    original = held(client, coop, first["eventID"])
    without_id = {k: v for k, v in original.items() if k != "eventID"}
    response = declare(client, coop, without_id)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert (response.json["captured"], response.json["duplicates"]) == (1, 0)

    both = events_of(
        client.get("/epcis/events", query_string={"EQ_eventID": first["eventID"]}, headers=coop)
    )
    assert len(both) == 2  # the event and, beside it, its declaration (the same eventID)
    assert [("errorDeclaration" in e) for e in both] == [False, True]
    assert both[1]["errorDeclaration"] == DECLARED
    for query in (
        "EXISTS_errorDeclaration",
        "EQ_errorReason=incorrect_data",
        "EQ_errorReason=https://ref.gs1.org/cbv/ER-incorrect_data",
        f"EQ_correctiveEventID={DECLARED['correctiveEventIDs'][0]}",
        "GE_errorDeclarationTime=2026-06-13T00:00:00%2B07:00",
    ):
        found = events_of(client.get(f"/epcis/events?{query}&perPage=100", headers=coop))
        ids = {e["eventID"] for e in found}
        assert first["eventID"] in ids, query
        assert all("errorDeclaration" in e for e in found), query
    assert events_of(client.get("/epcis/events?EQ_errorReason=did_not_occur", headers=coop)) == []
    assert (
        events_of(
            client.get("/epcis/events?LT_errorDeclarationTime=2026-06-01T00:00:00Z", headers=coop)
        )
        == []
    )
    again = declare(client, coop, original)
    assert (again.json["captured"], again.json["duplicates"]) == (0, 1)


def test_only_the_recorder_or_an_officer_declares_an_event_erroneous(
    client: FlaskClient, world: dict, app: Flask
) -> None:
    harvest = held(client, headers_of(world, "a"), world["a_event_id"])
    before = public_views(client, world, app)
    refused = declare(client, headers_of(world, "b"), harvest)
    assert refused.status_code == 403
    assert public_views(client, world, app) == before
    officer = declare(client, headers_of(world, "officer"), harvest)
    assert officer.status_code == 202 and officer.json["captured"] == 1


def test_a_declared_event_leaves_the_public_views_and_officers_see_why(
    client: FlaskClient, world: dict, app: Flask
) -> None:
    """Journey, passport, batch history and the portal's record drop the retracted event;
    the officer's batch page keeps it, with the reason in words."""
    before = public_views(client, world, app)
    assert world["a_event_id"] in before["passport"] and world["a_event_id"] in before["portal"]
    harvest = held(client, headers_of(world, "a"), world["a_event_id"])
    response = declare(client, headers_of(world, "a"), harvest)
    assert response.status_code == 202, response.get_data(as_text=True)
    after = public_views(client, world, app)
    for view in ("passport", "history", "portal", "portal_preloaded"):
        assert world["a_event_id"] not in after[view], view
    assert after["journey"] != before["journey"]

    login(client, world["users"]["officer"]["email"])
    page = client.get(f"/traceability/batches/{world['a_batch']}?lang=en").get_data(as_text=True)
    assert "retracted" in page and "the event&#39;s data were wrong" in page
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    login(client, world["users"]["a"]["email"])
    own = client.get(f"/traceability/batches/{world['a_batch']}?lang=vi").get_data(as_text=True)
    assert "retracted" not in own


def test_the_officer_reads_the_reason_in_vietnamese(
    client: FlaskClient, world: dict, app: Flask
) -> None:
    harvest = held(client, headers_of(world, "a"), world["a_event_id"])
    declare(client, headers_of(world, "a"), harvest)
    login(client, world["users"]["officer"]["email"])
    page = client.get(f"/traceability/batches/{world['a_batch']}?lang=vi").get_data(as_text=True)
    assert "dữ liệu của sự kiện bị sai" in page and "data were wrong" not in page


def test_the_sync_worker_sends_the_record_again_without_the_declared_event(
    client: FlaskClient, world: dict, app: Flask
) -> None:
    from sqlalchemy import select

    from integrations.models import OutboxRow

    harvest = held(client, headers_of(world, "a"), world["a_event_id"])
    declare(client, headers_of(world, "a"), harvest)
    with app.app_context():
        kinds = {
            (o.kind, o.record_id)
            for o in db.session.scalars(select(OutboxRow).where(OutboxRow.kind == "trace_record"))
        }
    assert ("trace_record", str(world["a_batch"])) in kinds


# --- one eventID, one event ---------------------------------------------------------------------


def two_with_one_id() -> list[dict[str, Any]]:
    events = copy.deepcopy(DOCUMENT["epcisBody"]["eventList"][:2])
    for event in events:
        event["eventID"] = "urn:uuid:0e1c7a52-9d0f-4a5e-8a3a-2b6f3c4d5e6f"
    return events


def test_two_different_events_with_one_event_id_are_refused(
    client: FlaskClient, officer: dict
) -> None:
    response = capture(client, officer, document(*two_with_one_id()))
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "/epcisBody/eventList/1/eventID"
    assert "one eventID names one event" in response.json["errors"][0]["message"]
    assert events_of(client.get("/epcis/events", headers=officer)) == []

    proceed = capture(
        client,
        officer,
        document(*two_with_one_id()),
        **{"GS1-Capture-Error-Behaviour": "proceed"},
    )
    assert proceed.status_code == 202
    assert (proceed.json["success"], proceed.json["captured"]) == (False, 1)
    assert proceed.json["errors"][0]["path"] == "/epcisBody/eventList/1/eventID"


def test_identical_repeats_in_one_document_are_duplicates(client: FlaskClient, coop: dict) -> None:
    one = DOCUMENT["epcisBody"]["eventList"][0]
    response = capture(client, coop, document(one, copy.deepcopy(one)))
    assert (response.json["captured"], response.json["duplicates"]) == (1, 1)


def test_post_events_answers_409_for_an_event_already_held(client: FlaskClient, coop: dict) -> None:
    event = {"@context": [epcis.EPCIS_CONTEXT], **DOCUMENT["epcisBody"]["eventList"][0]}
    body = json.dumps(event)
    assert (
        client.post("/epcis/events", data=body, content_type=JSONLD, headers=coop).status_code
        == 201
    )
    again = client.post("/epcis/events", data=body, content_type=JSONLD, headers=coop)
    assert again.status_code == 409
    assert again.json["title"] == "ResourceAlreadyExistsException"


def test_record_time_is_the_repositorys(client: FlaskClient, coop: dict) -> None:
    event = {**DOCUMENT["epcisBody"]["eventList"][0], "recordTime": "9999-01-01T00:00:00Z"}
    assert capture(client, coop, document(event)).status_code == 202
    (got,) = events_of(client.get("/epcis/events", headers=coop))
    assert got["recordTime"] != "9999-01-01T00:00:00Z"
    assert got["recordTime"] < "2100"
    future = events_of(client.get("/epcis/events?GE_recordTime=9000-01-01T00:00:00Z", headers=coop))
    assert future == []


# --- prefixes -----------------------------------------------------------------------------------


def with_prefix(namespace: str, value: str, hour: int) -> dict[str, Any]:
    doc = document(
        {
            **DOCUMENT["epcisBody"]["eventList"][0],
            "eventTime": f"2026-06-10T{hour:02d}:00:00+07:00",
            "ex:note": value,
        }
    )
    doc["@context"] = [epcis.EPCIS_CONTEXT, {"ex": namespace}]
    return doc


def test_a_prefix_bound_twice_stays_unambiguous_in_a_query_answer(
    client: FlaskClient, coop: dict
) -> None:
    capture(client, coop, with_prefix("https://hop-tac-xa-a.example.vn/ns/", "A", 6))
    capture(client, coop, with_prefix("https://hop-tac-xa-b.example.vn/ns/", "B", 7))
    answer = client.get("/epcis/events", headers=coop).json
    epcis.validate(answer)
    extra = [c for c in answer["@context"] if isinstance(c, dict)]
    assert len({k for c in extra for k in c}) == len([k for c in extra for k in c])  # unique
    bindings = {k: v for c in extra for k, v in c.items()}
    found = {}
    for event in answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]:
        (key,) = [k for k in event if k.startswith("ex")]
        prefix, _sep, local = key.partition(":")
        found[event[key]] = bindings[prefix] + local
    assert found == {
        "A": "https://hop-tac-xa-a.example.vn/ns/note",
        "B": "https://hop-tac-xa-b.example.vn/ns/note",
    }


def test_a_json_ld_reader_sees_each_cooperatives_field_in_its_namespace(
    client: FlaskClient, coop: dict
) -> None:
    capture(client, coop, with_prefix("https://hop-tac-xa-a.example.vn/ns/", "A", 6))
    capture(client, coop, with_prefix("https://hop-tac-xa-b.example.vn/ns/", "B", 7))
    answer = client.get("/epcis/events", headers=coop).json
    local = [c for c in answer["@context"] if isinstance(c, dict)]
    events = answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    merged: dict[str, str] = {}
    for item in local:
        merged.update(item)
    expanded = jsonld.expand(
        {"@context": merged, "@graph": [{k: v for k, v in e.items() if ":" in k} for e in events]}
    )
    seen = {
        key: value[0]["@value"]
        for node in expanded
        for key, value in node.items()
        if key.endswith("/note")
    }
    assert seen == {
        "https://hop-tac-xa-a.example.vn/ns/note": "A",
        "https://hop-tac-xa-b.example.vn/ns/note": "B",
    }
