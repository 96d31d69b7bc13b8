"""EPCIS capture never touches the network, and takes every time the schema accepts.

Issue 14: the server fetched any JSON-LD ``@context`` URL a client named (a listener on
127.0.0.1 received the request), the published EPCIS context URLs gave 500, GS1's own
example with object term definitions gave 500, and RFC 3339 times the schema accepts
(lower-case ``t``/``z``, second 60, year 0000, ``0001-01-01T00:00:00+14:00``) gave 500.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pyld import jsonld as pyld
from pyld.jsonld import JsonLdError
from sqlalchemy import func, select

from nguon.db import db
from traceability import epcis, jsonld
from traceability.models import EpcisEvent

DATA = Path(__file__).parent / "data"
JSONLD = "application/ld+json"
EVENT = {
    "type": "ObjectEvent",
    "eventTime": "2026-06-10T06:30:00+07:00",
    "eventTimeZoneOffset": "+07:00",
    "epcList": ["https://id.gs1.org/01/09506000134352/21/offline1"],
    "action": "OBSERVE",
    "bizStep": "shipping",
    "disposition": "in_transit",
}


def document(*events: dict[str, Any], context: list[Any] | None = None) -> dict[str, Any]:
    return {
        "@context": context if context is not None else [epcis.EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-06-12T08:00:00+07:00",
        "epcisBody": {"eventList": list(events) or [copy.deepcopy(EVENT)]},
    }


def post(client: FlaskClient, headers: dict, body: Any, path: str = "/epcis/capture") -> Any:
    return client.post(path, data=json.dumps(body), content_type=JSONLD, headers=headers)


@pytest.fixture
def stored(app: Flask) -> Callable[[], int]:
    def count() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(EpcisEvent))

    return count


@pytest.fixture
def officer(bearer: Callable[..., dict]) -> dict:
    return bearer("officer")


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that serves a valid context and records every request."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = json.dumps({"@context": {"ex": "https://example.org/"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/ld+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_no_capture_connects_anywhere(
    client: FlaskClient, officer: dict, listener: tuple[str, list[str]], stored: Callable
) -> None:
    base, seen = listener
    url = f"{base}/context.jsonld"
    event_with_context = {**EVENT, "@context": [url]}
    attempts = [
        ("/epcis/capture", document(context=[epcis.EPCIS_CONTEXT, url]), "/@context/1"),
        ("/epcis/capture", document(context=url), "/@context/0"),
        (
            "/epcis/capture",
            document(context=[epcis.EPCIS_CONTEXT, {"ex": {"@id": "https://e/", "@context": url}}]),
            "/@context/1/ex/@context",
        ),
        ("/epcis/capture", document(context=[epcis.EPCIS_CONTEXT, {"@import": url}]), None),
        ("/epcis/capture", document(event_with_context), "/epcisBody/eventList/0/@context/0"),
        ("/epcis/events", {**EVENT, "@context": [epcis.EPCIS_CONTEXT, url]}, "/@context/1"),
    ]
    for path, body, field in attempts:
        response = post(client, officer, body, path)
        assert response.status_code == 400, (path, body, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        assert url in response.json["detail"]
        if field:
            assert response.json["errors"][0]["field"] == field
    assert stored() == 0
    # PyLD itself, whatever calls it, loads offline only.
    with pytest.raises(JsonLdError):
        pyld.expand({"@context": url, "ex:a": 1})
    assert seen == []


@pytest.mark.parametrize("url", sorted(jsonld.EPCIS_CONTEXT_URLS))
def test_every_published_spelling_of_the_epcis_context(
    client: FlaskClient, officer: dict, url: str, app: Flask
) -> None:
    canonical = epcis.event_hashes([EVENT], [])
    response = post(client, officer, document(context=[url, {"ex": "https://example.org/"}]))
    assert response.status_code == 202, response.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(select(EpcisEvent))
    assert row.event_id == canonical[0]  # the same event whatever the spelling
    assert row.context == [{"ex": "https://example.org/"}]


def test_gs1_sub_contexts_resolve_offline() -> None:
    """GS1's context as published names its CBV sub-contexts by URL: all bundled."""
    official = json.loads((epcis.STANDARDS / "epcis-context.jsonld").read_text("utf-8"))
    expanded = pyld.expand(
        {"@context": official["@context"], "bizStep": "shipping", "disposition": "active"}
    )
    assert expanded[0]["https://ref.gs1.org/epcis/bizStep"] == [
        {"@id": "https://ref.gs1.org/cbv/BizStep-shipping"}
    ]


def test_gs1_example_with_object_term_definitions_captures(
    client: FlaskClient, officer: dict
) -> None:
    path = DATA / "gs1_epcis_examples/JSON/Example-TransactionEvents-2020_07_03y.jsonld"
    response = post(client, officer, json.loads(path.read_text("utf-8")))
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.json["captured"] == 2


# --- times ------------------------------------------------------------------------------------

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-06-10T06:30:00+07:00", dt.datetime(2026, 6, 9, 23, 30, tzinfo=UTC)),
        ("2026-06-10t06:30:00z", dt.datetime(2026, 6, 10, 6, 30, tzinfo=UTC)),
        ("2026-06-10T06:30:00.5Z", dt.datetime(2026, 6, 10, 6, 30, 0, 500000, tzinfo=UTC)),
        (
            "2026-06-10T06:30:00.123456789012Z",
            dt.datetime(2026, 6, 10, 6, 30, 0, 123456, tzinfo=UTC),
        ),
        ("2026-06-10T06:30:00.9999999Z", dt.datetime(2026, 6, 10, 6, 30, 0, 999999, tzinfo=UTC)),
        ("2026-06-10T06:30:00-0530", dt.datetime(2026, 6, 10, 12, 0, tzinfo=UTC)),
        ("2026-06-10T06:30:00+23:59", dt.datetime(2026, 6, 9, 6, 31, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", dt.datetime(2017, 1, 1, tzinfo=UTC)),
        ("2016-12-31T23:59:60.25Z", dt.datetime(2017, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", dt.datetime(2024, 2, 29, tzinfo=UTC)),
        ("0001-01-01T00:00:00-01:00", dt.datetime(1, 1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59+01:00", dt.datetime(9999, 12, 31, 22, 59, 59, tzinfo=UTC)),
    ],
)
def test_times_the_schema_accepts_are_parsed(text: str, instant: dt.datetime) -> None:
    assert epcis.is_valid(document({**EVENT, "eventTime": text}))
    assert epcis.parse_time(text) == instant


@pytest.mark.parametrize(
    "text",
    [
        "0000-06-10T06:30:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-01:00",
        "2026-06-10T06:30:00",
        "2026-02-30T06:30:00Z",
        "2026-06-10 06:30:00Z",
        "2026-06-10T24:00:00Z",
        "２０２６-06-10T06:30:00Z",
    ],
)
def test_times_that_cannot_be_taken_are_refused(text: str) -> None:
    with pytest.raises(epcis.EpcisError):
        epcis.parse_time(text)


def test_capture_takes_every_schema_time_or_refuses_it_naming_the_field(
    client: FlaskClient, officer: dict, stored: Callable
) -> None:
    forms = [
        "2026-06-10t06:30:00.123456789z",
        "2016-12-31T23:59:60Z",
        "2026-06-10T06:30:00.5-0530",
        "0001-01-01T00:00:00-01:00",
    ]
    events = [
        {**EVENT, "eventTime": t, "epcList": [f"https://id.gs1.org/01/09506000134352/21/t{i}"]}
        for i, t in enumerate(forms)
    ]
    response = post(client, officer, document(*events))
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.json["captured"] == len(forms)
    for text in ("0000-06-10T06:30:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00"):
        before = stored()
        bad = document(
            events[0] | {"eventTime": "2026-06-10T06:30:00Z"}, {**EVENT, "eventTime": text}
        )
        response = post(client, officer, bad)
        assert response.status_code == 400, (text, response.get_data(as_text=True))
        assert response.json["errors"][0]["field"] == "/epcisBody/eventList/1/eventTime"
        assert stored() == before
    query = client.get("/epcis/events?GE_eventTime=2026-06-10t00:00:00z", headers=officer)
    assert query.status_code == 200
    query = client.get("/epcis/events?GE_eventTime=0001-01-01T00:00:00%2B14:00", headers=officer)
    assert query.status_code == 400


def test_a_recapture_finds_its_events_without_hashing_them(
    client: FlaskClient, officer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from traceability import epcis_hash

    events = [
        {**EVENT, "epcList": [f"https://id.gs1.org/01/09506000134352/21/r{n}"]} for n in range(4)
    ]
    first = post(client, officer, document(*events))
    assert first.json["captured"] == 4
    hashed: list[int] = []
    real = epcis_hash.event_hashes

    def counting(events: Any, *args: Any) -> list[str]:
        hashed.append(len(events))
        return real(events, *args)

    monkeypatch.setattr(epcis_hash, "event_hashes", counting)
    again = post(client, officer, document(*events))
    assert (again.json["captured"], again.json["duplicates"]) == (0, 4)
    assert hashed == []
    # The same event in a document of other vocabulary: its hash may differ (the
    # reference library reads bare words against the whole document), so it is hashed.
    other = {**EVENT, "bizStep": "receiving", "disposition": "active"}
    mixed = post(client, officer, document(events[0], other))
    assert (mixed.json["captured"], mixed.json["duplicates"]) == (1, 1)
    assert hashed == [2]
