"""Every one of GS1's published EPCIS 2.0 example documents (gs1/EPCIS `JSON/`, vendored
with GS1's licence) is captured, and each of its events comes back from a query with its
fields unchanged (issue 16). The repository adds ``recordTime`` (its own) and, where the
document gave none, the reference ``eventID``; nothing else may differ."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from traceability import epcis

EXAMPLES = sorted((Path(__file__).parent / "data" / "gs1_epcis_examples").rglob("*.jsonld"))
JSONLD = "application/ld+json"
# Documents that are not captures, with what the repository answers instead.
NOT_CAPTURES = {
    "EPCISQueryDocument.jsonld": "a query answer, not a document to capture",
}


def events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document["epcisBody"]
    return body["eventList"] if "eventList" in body else [body["event"]]


def held(client: FlaskClient, headers: dict, event_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/epcis/events/{quote(event_id, safe='')}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.json["epcisBody"]
    if "queryResults" in body:
        return body["queryResults"]["resultsBody"]["eventList"]
    return events_of(response.json)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_captures_and_comes_back_unchanged(
    path: Path, client: FlaskClient, bearer: Callable[..., dict]
) -> None:
    if path.name in NOT_CAPTURES:
        pytest.skip(NOT_CAPTURES[path.name])
    officer = bearer("officer")  # officers are not limited by the ownership rule
    text = path.read_text("utf-8")
    document = json.loads(text)
    response = client.post("/epcis/capture", data=text, content_type=JSONLD, headers=officer)
    assert response.status_code == 202, response.get_data(as_text=True)
    job = client.get(response.headers["Location"], headers=officer).json
    assert job["success"] is True, job
    sent = events_of(document)
    missing = [e for e in sent if not e.get("eventID")]
    computed = iter(epcis.event_hashes(missing, epcis.extra_context(document.get("@context"))))
    for event in sent:
        event_id = event.get("eventID") or next(computed)
        declared = event.get("errorDeclaration") is not None
        candidates = [
            e for e in held(client, officer, event_id)
            if (e.get("errorDeclaration") is not None) == declared
        ]  # fmt: skip
        assert candidates, f"{event_id} not found"
        got = {k: v for k, v in candidates[0].items() if k != "recordTime"}
        expected = {k: v for k, v in event.items() if k != "recordTime"}
        expected.setdefault("eventID", event_id)
        assert got == expected
