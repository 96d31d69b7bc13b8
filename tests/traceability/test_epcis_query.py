"""The whole EPCIS 2.0 query interface (§8.2.7): every parameter family, the resource
endpoints and named queries."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.traceability.test_epcis import DOCUMENT, capture, events_of
from traceability import epcis

JSONLD = "application/ld+json"
SHED = "https://id.gs1.org/414/8930000000019/254/shed-2"
ITEM = "https://id.gs1.org/01/08930000000019/21/B8R3LY0Q"
LOT = "https://id.gs1.org/01/08930000000019/10/LN2026-001"
NESTED = {
    "type": "ObjectEvent",
    "eventTime": "2026-06-13T08:00:00+07:00",
    "eventTimeZoneOffset": "+07:00",
    "epcList": ["https://id.gs1.org/01/08930000000019/21/Z9"],
    "action": "ADD",
    "bizStep": "storing",
    "bizLocation": {"id": SHED},
    "readPoint": {"id": "urn:epc:id:sgln:8930000.00001.shed-2"},
    "nguon:shipment": {"nguon:truck": "29C-12345", "nguon:weight": 812.5},
    "nguon:crates": 40,
    "ilmd": {"nguon:grade": "loại 1"},
}


@pytest.fixture
def coop(bearer: Callable[..., dict]) -> dict:
    return bearer("cooperative")


@pytest.fixture
def stored(client: FlaskClient, coop: dict) -> dict:
    document = copy.deepcopy(DOCUMENT)
    document["epcisBody"]["eventList"].append(NESTED)
    response = capture(client, coop, document)
    assert response.status_code == 202, response.get_data(as_text=True)
    return coop


def types_of(client: FlaskClient, headers: dict, query: str) -> list[str]:
    response = client.get(f"/epcis/events?{query}&perPage=100", headers=headers)
    assert response.status_code == 200, (query, response.get_data(as_text=True))
    return [e["type"] for e in events_of(response)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # EPC patterns, and one item in either spelling
        (
            "MATCH_epc=urn:epc:idpat:sgtin:8930000.000001.*",
            ["ObjectEvent", "AggregationEvent", "ObjectEvent"],
        ),
        (
            "MATCH_epc=urn:epc:idpat:sgtin:8930000.*.*",
            ["ObjectEvent", "AggregationEvent", "ObjectEvent"],
        ),
        (
            "MATCH_anyEPC=urn:epc:idpat:sgtin:8930000.000001.*",
            ["ObjectEvent", "AggregationEvent", "ObjectEvent"],
        ),
        ("MATCH_epc=urn:epc:idpat:sgtin:8930001.000001.*", []),
        (
            "MATCH_epc=urn:epc:id:sgtin:8930000.000001.A7Q2KX9P",
            ["ObjectEvent", "AggregationEvent"],
        ),
        ("MATCH_epc=https://id.gs1.org/01/08930000000019/21/B8R3LY0Q", ["ObjectEvent"]),
        ("MATCH_epc=https://example.vn/01/08930000000019/21/Z9", ["ObjectEvent"]),
        (
            "MATCH_parentID=https://id.gs1.org/00/089300000000000013",
            ["AggregationEvent", "TransactionEvent"],
        ),
        ("MATCH_parentID=https://id.gs1.org/00/089300000000000020", []),
        (
            "MATCH_parentID=urn:epc:id:sscc:8930000.0000000001",
            ["AggregationEvent", "TransactionEvent"],
        ),
        ("MATCH_parentID=urn:epc:idpat:grai:8930000.*.*", ["AssociationEvent"]),
        (
            "MATCH_epcClass=urn:epc:class:lgtin:8930000.000001.LN2026-001",
            ["ObjectEvent", "AggregationEvent"],
        ),
        (
            "MATCH_anyEPCClass=https://id.gs1.org/01/08930000000019/10/LN2026-001",
            ["ObjectEvent", "AggregationEvent", "TransformationEvent"],
        ),
        (
            "MATCH_inputEPCClass=https://id.gs1.org/01/08930000000019/10/LN2026-001",
            ["TransformationEvent"],
        ),
        (
            "MATCH_outputEPCClass=https://id.gs1.org/01/08930000000026/10/SK2026-001",
            ["TransformationEvent"],
        ),
        # places by hierarchy
        (
            "WD_bizLocation=https://id.gs1.org/414/8930000000019",
            ["ObjectEvent", "AggregationEvent", "ObjectEvent"],
        ),
        (
            "EQ_bizLocation=https://id.gs1.org/414/8930000000019",
            ["ObjectEvent", "AggregationEvent"],
        ),
        (
            "WD_readPoint=urn:epc:id:sgln:8930000.00001.0",
            ["ObjectEvent", "ObjectEvent", "AssociationEvent", "ObjectEvent"],
        ),
        ("EQ_readPoint=urn:epc:id:sgln:8930000.00001.shed-2", ["ObjectEvent"]),
        ("WD_bizLocation=https://id.gs1.org/414/8930000000026", []),
        # quantities
        ("GE_quantity=1000", ["ObjectEvent"]),
        ("LT_quantity=25", ["AggregationEvent"]),
        ("EQ_quantity=300", ["TransformationEvent"]),
        ("GT_quantity=60&LE_quantity=300", ["TransformationEvent"]),
        # sensor reports: every condition met by one report
        ("EQ_type=Temperature&GE_value=6", ["ObjectEvent"]),
        ("EQ_type=gs1:Temperature&LT_value=6", []),
        ("EQ_type=Temperature&EQ_uom=A93", []),
        ("EQ_uom=A93&GE_value=80", ["ObjectEvent"]),
        ("EQ_deviceID=urn:epc:id:giai:8930000.T1", ["ObjectEvent"]),
        (
            "GE_time=2026-06-10T08:00:00%2B07:00&LT_time=2026-06-10T10:00:00%2B07:00",
            ["ObjectEvent"],
        ),
        # transactions, sources, destinations, persistent dispositions
        (
            "EQ_bizTransaction_po=urn:epcglobal:cbv:bt:8930000000019:PO-2026-77",
            ["TransactionEvent"],
        ),
        ("EQ_bizTransaction_inv=urn:epcglobal:cbv:bt:8930000000019:PO-2026-77", []),
        ("EQ_source_owning_party=https://id.gs1.org/417/8930000000019", ["TransactionEvent"]),
        ("EQ_destination_owning_party=https://id.gs1.org/417/8930000000026", ["TransactionEvent"]),
        ("EQ_persistentDisposition_set=completeness_verified", ["ObjectEvent"]),
        # user extension fields: by prefix, by namespace, nested, in the ILMD
        ("EQ_nguon:crates=40", ["ObjectEvent"]),
        ("GT_nguon:crates=39&LT_nguon:crates=41", ["ObjectEvent"]),
        ("EQ_https://nguon.example.vn/epcis%23crates=40", ["ObjectEvent"]),
        ("EXISTS_nguon:harvestTeam", ["ObjectEvent"]),
        ("EQ_INNER_nguon:truck=29C-12345", ["ObjectEvent"]),
        ("GE_INNER_nguon:weight=800", ["ObjectEvent"]),
        ("EQ_ILMD_nguon:grade=loại 1", ["ObjectEvent"]),
        ("EXISTS_ILMD_nguon:grade", ["ObjectEvent"]),
        ("EQ_nguon:truck=29C-12345", []),
        # error declarations
        ("EXISTS_errorDeclaration", ["TransformationEvent"]),
        ("EQ_errorReason=incorrect_data", ["TransformationEvent"]),
        (
            "EQ_correctiveEventID=urn:uuid:404d95fc-9457-4a51-bd6a-0bba133845a8",
            ["TransformationEvent"],
        ),
    ],
)
def test_parameter_families(client: FlaskClient, stored: dict, query: str, expected: list) -> None:
    assert types_of(client, stored, query) == expected


def test_order_and_limits(client: FlaskClient, stored: dict) -> None:
    ascending = [
        e["eventTime"] for e in events_of(client.get("/epcis/events?perPage=100", headers=stored))
    ]
    descending = events_of(
        client.get(
            "/epcis/events?orderBy=eventTime&orderDirection=DESC&perPage=100", headers=stored
        )
    )
    assert [e["eventTime"] for e in descending] == ascending[::-1]
    first_two = events_of(
        client.get("/epcis/events?orderBy=eventTime&eventCountLimit=2&perPage=100", headers=stored)
    )
    assert [e["eventTime"] for e in first_two] == ascending[:2]
    by_record = client.get("/epcis/events?orderBy=recordTime&orderDirection=DESC", headers=stored)
    assert len(events_of(by_record)) == 7
    too_many = client.get("/epcis/events?maxEventCount=3", headers=stored)
    assert too_many.status_code == 413
    assert too_many.json["type"] == "epcisException:QueryTooLargeException"
    assert len(events_of(client.get("/epcis/events?maxEventCount=7", headers=stored))) == 7


def test_event_count_limit_holds_across_pages(client: FlaskClient, stored: dict) -> None:
    seen: list[str] = []
    url = "/epcis/events?orderBy=eventTime&orderDirection=DESC&eventCountLimit=5&perPage=2"
    while url:
        response = client.get(url, headers=stored)
        seen += [e["eventTime"] for e in events_of(response)]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)


def test_document_conditions_page_through_every_match(client: FlaskClient, stored: dict) -> None:
    seen: list[str] = []
    url = "/epcis/events?GE_quantity=1&perPage=1"
    while url:
        response = client.get(url, headers=stored)
        seen += [e["type"] for e in events_of(response)]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == ["ObjectEvent", "AggregationEvent", "TransformationEvent"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("EQ_colour=red", "EQ_colour"),
        ("GE_value=warm", "GE_value"),
        ("orderBy=nguon:crates", "orderBy"),
        ("orderDirection=UP", "orderDirection"),
        ("eventCountLimit=2", "eventCountLimit"),
        ("orderBy=eventTime&eventCountLimit=2&maxEventCount=3", "maxEventCount"),
        ("maxEventCount=0", "maxEventCount"),
        ("MATCH_epc=urn:epc:idpat:sgtin:8930000.000001.5", "urn:epc:idpat:sgtin:8930000.000001.5"),
        ("GE_errorDeclarationTime=soon", "GE_errorDeclarationTime"),
        ("GE_time=soon", "GE_time"),
        ("EQ_quantity=", "EQ_quantity"),
    ],
)
def test_a_parameter_it_cannot_run_is_a_query_parameter_exception(
    client: FlaskClient, stored: dict, query: str, field: str
) -> None:
    response = client.get(f"/epcis/events?{query}", headers=stored)
    assert response.status_code == 400, query
    assert response.json["type"] == "epcisException:QueryParameterException"
    assert response.json["errors"][0]["field"] == field


# --- resource endpoints --------------------------------------------------------------------------


def members(client: FlaskClient, headers: dict, url: str) -> list[str]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.get_data(as_text=True))
    assert response.json["type"] == "Collection"
    return response.json["member"]


def test_resource_endpoints(client: FlaskClient, stored: dict, bearer: Callable) -> None:
    assert members(client, stored, "/epcis/eventTypes") == list(epcis.EVENT_TYPES)
    assert members(client, stored, "/epcis/eventTypes/ObjectEvent") == ["events"]
    assert client.get("/epcis/eventTypes/Nothing/events", headers=stored).status_code == 404
    assert set(members(client, stored, "/epcis/bizSteps")) >= {"shipping", "packing", "storing"}
    assert "in_transit" in members(client, stored, "/epcis/dispositions")
    assert SHED in members(client, stored, "/epcis/bizLocations")
    assert "urn:epc:id:sgln:8930000.00001.shed-2" in members(client, stored, "/epcis/readPoints")
    assert "urn:epc:id:sscc:8930000.0000000001" in members(client, stored, "/epcis/epcs")
    for url, expected in (
        ("/epcis/eventTypes/TransactionEvent/events", ["TransactionEvent"]),
        ("/epcis/bizSteps/shipping/events", ["TransactionEvent"]),
        (
            "/epcis/bizSteps/https%3A%2F%2Fref.gs1.org%2Fcbv%2FBizStep-packing/events",
            ["AggregationEvent"],
        ),
        ("/epcis/dispositions/in_transit/events", ["TransactionEvent"]),
        (f"/epcis/bizLocations/{quote(SHED, safe='')}/events", ["ObjectEvent"]),
        ("/epcis/readPoints/urn:epc:id:sgln:8930000.00001.shed-2/events", ["ObjectEvent"]),
        (
            "/epcis/epcs/urn:epc:id:sscc:8930000.0000000001/events",
            ["AggregationEvent", "TransactionEvent"],
        ),
        (
            f"/epcis/epcs/{quote(ITEM, safe='')}/events",
            ["ObjectEvent"],
        ),
        (
            f"/epcis/epcs/{quote(LOT, safe='')}/events",
            ["ObjectEvent", "AggregationEvent", "TransformationEvent"],
        ),
        ("/epcis/bizSteps/shipping/events?EQ_disposition=active", []),
    ):
        response = client.get(url, headers=stored)
        assert response.status_code == 200, (url, response.get_data(as_text=True))
        assert [e["type"] for e in events_of(response)] == expected, url
    for nothing in (
        "/epcis/epcs//events",
        "/epcis/epcs/%7C/events",
        "/epcis/epcs/a%7Cb/events",
        "/epcis/bizSteps/%7C/events",
    ):
        assert client.get(nothing, headers=stored).status_code == 404, nothing
    clash = client.get("/epcis/bizSteps/shipping/events?EQ_bizStep=packing", headers=stored)
    assert clash.status_code == 400
    stranger = bearer("cooperative")
    assert members(client, stranger, "/epcis/bizSteps") == []
    assert events_of(client.get("/epcis/bizSteps/shipping/events", headers=stranger)) == []


# --- named queries -------------------------------------------------------------------------------


def create(client: FlaskClient, headers: dict, body: Any) -> Any:
    return client.post(
        "/epcis/queries", data=json.dumps(body), content_type=JSONLD, headers=headers
    )


def test_named_queries(client: FlaskClient, stored: dict, bearer: Callable) -> None:
    body = {
        "name": "shipped",
        "query": {"EQ_bizStep": ["shipping", "packing"], "eventType": "AggregationEvent"},
    }
    created = create(client, stored, body)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.headers["Location"].endswith("/epcis/queries/shipped")
    assert create(client, stored, body).status_code == 409
    listed = client.get("/epcis/queries", headers=stored).json
    assert listed == [
        {
            "name": "shipped",
            "query": {"EQ_bizStep": ["shipping", "packing"], "eventType": ["AggregationEvent"]},
        }
    ]
    assert client.get("/epcis/queries/shipped", headers=stored).json["name"] == "shipped"
    answer = client.get("/epcis/queries/shipped/events", headers=stored)
    assert [e["type"] for e in events_of(answer)] == ["AggregationEvent"]
    assert answer.json["epcisBody"]["queryResults"]["queryName"] == "shipped"
    assert (
        client.get("/epcis/queries/shipped/events?EQ_action=ADD", headers=stored).status_code == 400
    )

    stranger = bearer("cooperative")
    assert client.get("/epcis/queries/shipped", headers=stranger).status_code == 404
    assert client.get("/epcis/queries/shipped/events", headers=stranger).status_code == 404
    assert client.delete("/epcis/queries/shipped", headers=stranger).status_code == 404
    assert client.get("/epcis/queries", headers=stranger).json == []

    assert client.delete("/epcis/queries/shipped", headers=stored).status_code == 204
    assert client.get("/epcis/queries/shipped", headers=stored).status_code == 404


def test_named_query_pages(client: FlaskClient, stored: dict) -> None:
    create(client, stored, {"name": "all-of-it", "query": {"GE_eventTime": "2026-01-01T00:00:00Z"}})
    seen: list[str] = []
    url = "/epcis/queries/all-of-it/events?perPage=3"
    while url:
        response = client.get(url, headers=stored)
        seen += [e["eventID"] for e in events_of(response)]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"query": {}},
        {"name": "bad name!", "query": {}},
        {"name": "x", "query": {"EQ_colour": ["red"]}},
        {"name": "x", "query": {"EQ_bizStep": [{"nested": 1}]}},
        {"name": "x", "query": {"perPage": 5}},
        {"name": "x", "query": []},
        [],
    ],
)
def test_a_bad_named_query_is_refused_and_not_kept(
    client: FlaskClient, stored: dict, body: Any
) -> None:
    response = create(client, stored, body)
    assert response.status_code == 400, body
    assert client.get("/epcis/queries", headers=stored).json == []
