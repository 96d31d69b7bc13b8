"""EPCIS 2.0 capture and query: schema-checked, idempotent, faithful, paged, private."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from traceability import epcis

DOCUMENT = json.loads((Path(__file__).parent / "data" / "every_event_type.json").read_text())
JSONLD = "application/ld+json"


def capture(client: FlaskClient, headers: dict, document: dict | None = None, **extra: str) -> Any:
    return client.post(
        "/epcis/capture",
        data=json.dumps(document or DOCUMENT),
        content_type=JSONLD,
        headers={**headers, **extra},
    )


def events_of(response: Any) -> list[dict[str, Any]]:
    body = response.json
    epcis.validate(body)  # every document we emit is valid
    return body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


@pytest.fixture
def coop(bearer: Callable[..., dict]) -> dict:
    return bearer("cooperative")


def test_capture_then_query_returns_every_event_unchanged(client: FlaskClient, coop: dict) -> None:
    response = capture(client, coop)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.headers["GS1-EPCIS-Capture-Limit"] == str(epcis.CAPTURE_LIMIT)
    job = client.get(response.headers["Location"], headers=coop).json
    assert (job["running"], job["success"], job["captured"]) == (False, True, 6)

    returned = events_of(client.get("/epcis/events?perPage=100", headers=coop))
    assert len(returned) == 6
    for sent, got in zip(DOCUMENT["epcisBody"]["eventList"], returned, strict=True):
        assert got["eventID"].startswith("ni:///sha-256;") and got["eventID"].endswith(
            "?ver=CBV2.0"
        )
        assert "recordTime" in got
        assert {k: v for k, v in got.items() if k not in ("eventID", "recordTime")} == sent
    body = client.get("/epcis/events", headers=coop).json
    assert {"nguon": "https://nguon.example.vn/epcis/"} in body["@context"]


def test_recapture_stores_nothing_new(client: FlaskClient, coop: dict) -> None:
    capture(client, coop)
    again = capture(client, coop)
    assert again.status_code == 202
    assert (again.json["captured"], again.json["duplicates"]) == (0, 6)
    # bare words and CBV URIs are the same event
    variant = copy.deepcopy(DOCUMENT)
    variant["epcisBody"]["eventList"][2]["bizStep"] = "https://ref.gs1.org/cbv/BizStep-packing"
    variant["epcisBody"]["eventList"] = variant["epcisBody"]["eventList"][2:3]
    third = capture(client, coop, variant)
    assert (third.json["captured"], third.json["duplicates"]) == (0, 1)
    assert len(events_of(client.get("/epcis/events?perPage=100", headers=coop))) == 6


def test_bad_document_is_refused_naming_the_path(client: FlaskClient, coop: dict) -> None:
    bad = copy.deepcopy(DOCUMENT)
    bad["epcisBody"]["eventList"][1]["action"] = "LOOK"
    response = capture(client, coop, bad)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["field"] == "/epcisBody/eventList/1/action"
    assert "'LOOK' is not one of" in response.json["errors"][0]["message"]
    assert events_of(client.get("/epcis/events", headers=coop)) == []  # rollback: nothing kept


def test_proceed_keeps_the_valid_events(client: FlaskClient, coop: dict) -> None:
    bad = copy.deepcopy(DOCUMENT)
    del bad["epcisBody"]["eventList"][1]["eventTimeZoneOffset"]
    response = capture(client, coop, bad, **{"GS1-Capture-Error-Behaviour": "proceed"})
    assert response.status_code == 202
    job = response.json
    assert (job["success"], job["captured"]) == (False, 5)
    assert job["errors"][0]["path"] == "/epcisBody/eventList/1"
    assert "eventTimeZoneOffset" in job["errors"][0]["message"]


@pytest.mark.parametrize(
    ("query", "expected_types"),
    [
        (
            "eventType=AggregationEvent|TransformationEvent",
            ["AggregationEvent", "TransformationEvent"],
        ),
        ("EQ_bizStep=shipping", ["TransactionEvent"]),
        ("EQ_bizStep=https://ref.gs1.org/cbv/BizStep-packing", ["AggregationEvent"]),
        ("EQ_bizStep=inspecting", ["ObjectEvent"]),
        ("EQ_disposition=in_transit", ["TransactionEvent"]),
        (
            "EQ_bizLocation=https://id.gs1.org/414/8930000000019",
            ["ObjectEvent", "AggregationEvent"],
        ),
        (
            "EQ_readPoint=https://id.gs1.org/414/8930000000019",
            ["ObjectEvent", "ObjectEvent", "AssociationEvent"],
        ),
        (
            "GE_eventTime=2026-06-11T00:00:00%2B07:00&LT_eventTime=2026-06-12T07:30:00%2B07:00",
            ["TransactionEvent", "TransformationEvent"],
        ),
        ("MATCH_epc=urn:epc:id:sgtin:8930000.000001.B8R3LY0Q", ["ObjectEvent"]),
        (
            "MATCH_epc=https://id.gs1.org/01/08930000000019/10/LN2026-001/21/*",
            ["ObjectEvent", "AggregationEvent"],
        ),
        (
            "MATCH_anyEPC=urn:epc:id:sscc:8930000.0000000001",
            ["AggregationEvent", "TransactionEvent"],
        ),
        (
            "MATCH_epcClass=https://id.gs1.org/01/08930000000019/10/LN2026-001",
            ["ObjectEvent", "AggregationEvent"],
        ),
        ("MATCH_inputEPC=https://id.gs1.org/01/08930000000019/10/LN2026-001", []),
    ],
)
def test_query_parameters(
    client: FlaskClient, coop: dict, query: str, expected_types: list
) -> None:
    capture(client, coop)
    got = events_of(client.get(f"/epcis/events?{query}&perPage=100", headers=coop))
    assert [e["type"] for e in got] == expected_types


def test_eq_event_id_and_single_event(client: FlaskClient, coop: dict) -> None:
    capture(client, coop)
    first = events_of(client.get("/epcis/events?perPage=1", headers=coop))[0]
    by_id = events_of(
        client.get("/epcis/events", query_string={"EQ_eventID": first["eventID"]}, headers=coop)
    )
    assert by_id == [first]
    single = client.get(f"/epcis/events/{quote(first['eventID'], safe='')}", headers=coop)
    assert single.status_code == 200
    assert events_of(single) == [first]


def test_paging_with_next_page_token(client: FlaskClient, coop: dict) -> None:
    capture(client, coop)
    seen: list[str] = []
    url = "/epcis/events?perPage=4"
    while url:
        response = client.get(url, headers=coop)
        seen += [e["eventID"] for e in events_of(response)]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert len(seen) == len(set(seen)) == 6
    token_of_other_query = client.get("/epcis/events?perPage=1&EQ_bizStep=packing", headers=coop)
    assert "Link" not in token_of_other_query.headers
    page = client.get("/epcis/events?perPage=2", headers=coop).headers["Link"]
    token = page.split("nextPageToken=")[1].split(">")[0]
    misuse = client.get(
        f"/epcis/events?perPage=2&EQ_bizStep=shipping&nextPageToken={token}", headers=coop
    )
    assert misuse.status_code == 400
    assert misuse.json["errors"][0]["field"] == "nextPageToken"


def test_unknown_parameter_and_bad_values(client: FlaskClient, coop: dict) -> None:
    for query, field in [
        ("EQ_colour=red", "EQ_colour"),
        ("perPage=0", "perPage"),
        ("GE_eventTime=yesterday", "GE_eventTime"),
        ("eventType=Foo", "eventType"),
    ]:
        response = client.get(f"/epcis/events?{query}", headers=coop)
        assert response.status_code == 400, query
        assert response.json["errors"][0]["field"] == field


def test_single_event_post(client: FlaskClient, coop: dict) -> None:
    event = {"@context": [epcis.EPCIS_CONTEXT], **DOCUMENT["epcisBody"]["eventList"][3]}
    created = client.post(
        "/epcis/events", data=json.dumps(event), content_type=JSONLD, headers=coop
    )
    assert created.status_code == 201
    again = client.post("/epcis/events", data=json.dumps(event), content_type=JSONLD, headers=coop)
    # The REST binding: an event already held is a 409 ResourceAlreadyExistsException.
    assert again.status_code == 409
    assert again.json["type"] == "epcisException:ResourceAlreadyExistsException"
    assert again.headers["Location"] == created.headers["Location"]
    no_context = client.post(
        "/epcis/events",
        data=json.dumps(DOCUMENT["epcisBody"]["eventList"][3]),
        content_type=JSONLD,
        headers=coop,
    )
    assert no_context.status_code == 400
    assert "'@context' is a required property" in no_context.json["detail"]


def test_events_are_private_to_their_organisation(
    client: FlaskClient, coop: dict, bearer: Callable[..., dict]
) -> None:
    capture(client, coop)
    other = bearer("cooperative")
    assert events_of(client.get("/epcis/events", headers=other)) == []
    officer = bearer("officer")
    assert len(events_of(client.get("/epcis/events?perPage=100", headers=officer))) == 6
    assert client.get("/epcis/events").status_code == 401
    job_url = capture(client, other, {**DOCUMENT, "epcisBody": {"eventList": []}}).headers[
        "Location"
    ]
    assert client.get(job_url, headers=coop).status_code == 404


def test_not_json_and_wrong_type(client: FlaskClient, coop: dict) -> None:
    response = client.post("/epcis/capture", data="{oops", content_type=JSONLD, headers=coop)
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "/"
    wrong = client.post("/epcis/capture", data="hello", content_type="text/plain", headers=coop)
    assert wrong.status_code == 415


BROKEN = [
    (["epcisBody", "eventList", 0, "eventTime"], "yesterday"),
    (["epcisBody", "eventList", 1, "action"], "LOOK"),
    (["epcisBody", "eventList", 2, "childEPCs"], "not-a-list"),
    (["epcisBody", "eventList", 4, "errorDeclaration", "reason"], 12),
    (["schemaVersion"], 2),
]


@pytest.mark.parametrize(("path", "value"), BROKEN)
def test_fast_and_reference_validators_agree(path: list, value: Any) -> None:
    """The compiled schema (fast path) refuses exactly what the reference validator does."""
    assert epcis.is_valid(DOCUMENT) and epcis.schema_errors(DOCUMENT) == []
    broken = copy.deepcopy(DOCUMENT)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not epcis.is_valid(broken)
    errors = epcis.schema_errors(broken)
    assert errors
    with pytest.raises(epcis.EpcisError) as caught:
        epcis.validate(broken)
    assert caught.value.path.startswith("/" + "/".join(map(str, path[:-1])))


def test_capture_trusts_a_refusal_the_reference_validator_cannot_explain(
    client: FlaskClient, coop: dict, monkeypatch: pytest.MonkeyPatch, in_tx: Callable[..., Any]
) -> None:
    """Should jsonschema find nothing where the compiled schema refuses, capture refuses
    too (as POST /events does), naming fastjsonschema's path; nothing is stored."""
    from sqlalchemy import func, select

    from nguon.db import db
    from traceability.models import EpcisEvent

    broken = copy.deepcopy(DOCUMENT)
    broken["epcisBody"]["eventList"][0]["eventTime"] = "not a time"
    monkeypatch.setattr(epcis, "schema_errors", lambda _document: [])
    response = capture(client, coop, broken)
    assert response.status_code == 400
    assert response.json["errors"][0]["field"].startswith("/epcisBody/eventList/0")
    stored = in_tx(lambda: db.session.scalar(select(func.count()).select_from(EpcisEvent)))
    assert stored == 0
