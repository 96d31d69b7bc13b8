"""Guided events, lineage through transformations, CSV import of events, history export."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.traceability.test_epcis import DOCUMENT, capture, events_of
from traceability import epcis


@pytest.fixture
def lots(trace: dict, in_tx: Callable[..., Any]) -> dict[str, int]:
    """Five lots of the cooperative: A (fresh) -> B (dried) -> C (mix, also from E) -> D (box)."""
    from traceability import services

    def build() -> dict[str, int]:
        gtins = {
            "A": "8930000000019",
            "B": "8930000000026",
            "C": "8930000000033",
            "D": "8930000000040",
            "E": "8930000000057",
        }
        made = {}
        for name, gtin in gtins.items():
            product_id = (
                trace["product"]
                if name == "A"
                else services.save_product(
                    {"gtin": gtin, "name": f"Sản phẩm {name}", "producer_id": trace["coop"]}
                ).id
            )
            made[name] = services.save_batch(
                {
                    "product_id": product_id,
                    "lot": f"LOT-{name}",
                    "quantity": 100,
                    "production_date": dt.date(2026, 6, 10),
                    "area_ids": [trace["area"]] if name == "A" else [],
                }
            ).id
        return made

    return in_tx(build)


def record(client: FlaskClient, headers: dict, batch: int, **body: Any) -> Any:
    return client.post(
        f"/api/v1/traceability/batches/{batch}/events",
        json={"event_time": "2026-06-12T07:00:00+07:00", **body},
        headers=headers,
    )


def test_lineage_three_levels_both_ways(
    client: FlaskClient,
    coop_headers: dict,
    lots: dict,
) -> None:
    for source, target in [("A", "B"), ("B", "C"), ("E", "C"), ("C", "D")]:
        response = record(
            client, coop_headers, lots[source], step="process", output_batch_id=lots[target]
        )
        assert response.status_code == 201, response.json

    def lineage(name: str) -> dict[str, Any]:
        return client.get(
            f"/api/v1/traceability/batches/{lots[name]}/lineage", headers=coop_headers
        ).json

    down = lineage("A")["downstream"]
    assert [(n["lot"], n["depth"]) for n in down] == [("LOT-B", 1), ("LOT-C", 2), ("LOT-D", 3)]
    assert all(n["batch_id"] for n in down)
    up = lineage("D")["upstream"]
    assert sorted((n["lot"], n["depth"]) for n in up) == [
        ("LOT-A", 3),
        ("LOT-B", 2),
        ("LOT-C", 1),
        ("LOT-E", 2),
    ]
    middle = lineage("C")
    assert {n["lot"] for n in middle["upstream"]} == {"LOT-A", "LOT-B", "LOT-E"}
    assert [n["lot"] for n in middle["downstream"]] == ["LOT-D"]
    assert lineage("E")["upstream"] == []


def test_guided_steps_become_valid_epcis_events(
    client: FlaskClient,
    coop_headers: dict,
    lots: dict,
) -> None:
    for step, extra in [
        ("harvest", {}),
        ("pack", {}),
        ("ship", {"destination": "https://id.gs1.org/417/8930000000026"}),
        ("receive", {"source": "https://id.gs1.org/417/8930000000019"}),
    ]:
        assert record(client, coop_headers, lots["A"], step=step, **extra).status_code == 201
    again = record(client, coop_headers, lots["A"], step="pack")
    assert again.status_code == 201  # the same event again: stored once
    history = client.get(f"/api/v1/traceability/batches/{lots['A']}/epcis", headers=coop_headers)
    assert history.mimetype == "application/ld+json"
    document = history.json
    epcis.validate(document)
    steps = [e["bizStep"] for e in document["epcisBody"]["eventList"]]
    assert steps == ["commissioning", "packing", "shipping", "receiving"]
    harvest = document["epcisBody"]["eventList"][0]
    assert harvest["ilmd"]["cbvmda:lotNumber"] == "LOT-A"
    assert harvest["bizLocation"]["id"] == "urn:nguon:area:VN-BG-LN-0001"
    assert harvest["quantityList"][0]["epcClass"] == "https://id.gs1.org/01/08930000000019/10/LOT-A"
    process_without_output = record(client, coop_headers, lots["A"], step="process")
    assert process_without_output.status_code == 422


def test_capture_query_export_round_trip(
    client: FlaskClient,
    coop_headers: dict,
    trace: dict,
    in_tx: Callable[..., Any],
) -> None:
    """Events captured through /epcis/capture come back unchanged in the batch's export."""
    from traceability import services

    batch_id = in_tx(
        lambda: (
            services.save_batch(
                {
                    "product_id": trace["product"],
                    "lot": "LN2026-001",
                    "quantity": 1200,
                    "production_date": dt.date(2026, 6, 10),
                }
            ).id
        )
    )
    capture(client, coop_headers)
    exported = client.get(
        f"/api/v1/traceability/batches/{batch_id}/epcis", headers=coop_headers
    ).json
    epcis.validate(exported)
    sent = DOCUMENT["epcisBody"]["eventList"]
    got = exported["epcisBody"]["eventList"]
    # events 0, 1, 2 and 4 name lot LN2026-001 (as a class, an item or an input); event 4
    # is an error declaration (EPCIS 2.0): it retracts an event, and tells no step of the
    # batch's history
    assert [{k: v for k, v in e.items() if k not in ("eventID", "recordTime")} for e in got] == [
        sent[0],
        sent[1],
        sent[2],
    ]
    assert {"nguon": "https://nguon.example.vn/epcis/"} in exported["@context"]
    queried = events_of(client.get("/epcis/events?perPage=10", headers=coop_headers))
    assert [e["eventID"] for e in got] == [queried[i]["eventID"] for i in (0, 1, 2)]
    assert "errorDeclaration" in queried[4]  # the query interface returns it


def test_csv_import_of_events_with_dry_run(
    client: FlaskClient,
    coop_headers: dict,
    lots: dict,
) -> None:
    good = (
        "step,gtin,lot,event_time,quantity,destination\n"
        "harvest,8930000000019,LOT-A,2026-06-10T06:00:00+07:00,100,\n"
        "ship,8930000000019,LOT-A,2026-06-11T06:00:00+07:00,,https://id.gs1.org/417/8930000000026\n"
    )
    dry = client.post(
        "/api/v1/traceability/events/import?dry_run=true",
        data=good,
        content_type="text/csv",
        headers=coop_headers,
    )
    assert dry.status_code == 200
    assert (dry.json["valid_rows"], dry.json["recorded"]) == (2, 0)
    assert events_of(client.get("/epcis/events", headers=coop_headers)) == []
    bad = (
        good
        + "fly,8930000000019,LOT-A,2026-06-12T06:00:00+07:00,,\n"
        + "ship,8930000000019,LOT-Z,2026-06-12T06:00:00,,\n"
    )
    refused = client.post(
        "/api/v1/traceability/events/import",
        data=bad,
        content_type="text/csv",
        headers=coop_headers,
    )
    assert refused.status_code == 422
    rows = {r["row"]: r["errors"] for r in refused.json["rows_with_errors"]}
    assert rows[3][0]["field"] == "step"
    assert rows[4][0] == {"field": "lot", "message": "no batch LOT-Z of 08930000000019 of yours"}
    assert events_of(client.get("/epcis/events", headers=coop_headers)) == []
    real = client.post(
        "/api/v1/traceability/events/import",
        data=good,
        content_type="text/csv",
        headers=coop_headers,
    )
    assert real.json["recorded"] == 2
    assert len(events_of(client.get("/epcis/events", headers=coop_headers))) == 2
    assert json.loads(json.dumps(real.json))["rows_with_errors"] == []


def test_a_transformation_declared_erroneous_links_no_lots(
    client: FlaskClient, coop_headers: dict, lots: dict
) -> None:
    """EPCIS error declaration: the retracted transformation no longer ties A to B."""
    made = record(client, coop_headers, lots["A"], step="process", output_batch_id=lots["B"])
    assert made.status_code == 201, made.json
    url = f"/api/v1/traceability/batches/{lots['A']}/lineage"
    assert [n["lot"] for n in client.get(url, headers=coop_headers).json["downstream"]] == ["LOT-B"]
    (event,) = events_of(
        client.get("/epcis/events?eventType=TransformationEvent", headers=coop_headers)
    )
    event.pop("recordTime")
    event["errorDeclaration"] = {"declarationTime": "2026-06-13T08:00:00+07:00"}
    declared = client.post(
        "/epcis/capture",
        data=json.dumps({**DOCUMENT, "epcisBody": {"eventList": [event]}}),
        content_type="application/ld+json",
        headers=coop_headers,
    )
    assert declared.status_code == 202 and declared.json["captured"] == 1
    assert client.get(url, headers=coop_headers).json["downstream"] == []
    both = client.get(f"/epcis/events/{quote(event['eventID'], safe='')}", headers=coop_headers)
    assert ["errorDeclaration" in e for e in events_of(both)] == [False, True]
