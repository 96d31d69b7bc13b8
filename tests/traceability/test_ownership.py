"""Who may write what: an organisation records events only about what it owns or what a
recorded transfer brought to it; public views show only events that pass that rule; a
product shows only the marks and GIs the registry backs for its producer.

Two cooperatives: A (the Lục Ngạn GI's authorised user, with a product, a batch, labels,
a registered location and an organisation GLN) and B (a tea cooperative with its own
product, batch and area). Officers are not limited.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from biip.checksums import gs1_standard_check_digit
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from nguon.db import db
from tests.conftest import csrf_from, login
from tests.traceability.conftest import GTIN14, batch_body
from traceability import epcis, ownership, resolver

JSONLD = "application/ld+json"
A_LOT = f"https://id.gs1.org/01/{GTIN14}/10/LN2026-001"
B_GTIN14 = "08930000000330"
B_ITEM = f"https://id.gs1.org/01/{B_GTIN14}/10/CHE-001/21/X1"


def check_digit(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


A_GLN = check_digit("893000010001")
A_SITE_GLN = check_digit("893000010002")
B_GLN = check_digit("893000020001")
C_GLN = check_digit("893000030001")


def event(**fields: Any) -> dict[str, Any]:
    """An ObjectEvent (OBSERVE) on ``fields``: B's own lot unless told otherwise."""
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-06-12T08:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "epcList": [],
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "quantityList": [
            {"epcClass": f"https://id.gs1.org/01/{B_GTIN14}/10/CHE-001", "quantity": 5.0}
        ],
        **fields,
    }


def aggregation(parent: str, children: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "type": "AggregationEvent",
        "eventTime": "2026-06-12T08:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "parentID": parent,
        "childEPCs": children,
        "action": "ADD",
        "bizStep": "packing",
        **fields,
    }


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [epcis.EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-06-12T08:00:00+07:00",
        "epcisBody": {"eventList": list(events)},
    }


def capture(client: FlaskClient, headers: dict, *events: dict[str, Any], **extra: str) -> Any:
    return client.post(
        "/epcis/capture",
        data=json.dumps(document(*events)),
        content_type=JSONLD,
        headers={**headers, **extra},
    )


def post_event(client: FlaskClient, headers: dict, one: dict[str, Any]) -> Any:
    body = {"@context": [epcis.EPCIS_CONTEXT], **one}
    return client.post("/epcis/events", data=json.dumps(body), content_type=JSONLD, headers=headers)


def destroying(lot_class: str = A_LOT) -> dict[str, Any]:
    """The issue's first leak: B's ObjectEvent destroying A's lot."""
    return event(
        action="DELETE",
        bizStep="destroying",
        disposition="destroyed",
        quantityList=[{"epcClass": lot_class, "quantity": 1200.0, "uom": "KGM"}],
    )


def count_events(app: Flask) -> int:
    from traceability.models import EpcisEvent

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(EpcisEvent))


@pytest.fixture
def world(
    trace: dict, in_tx: Callable[..., Any], make_area: Callable[..., int], make_user: Callable
) -> dict[str, Any]:
    """A and B as above, with users (session and token) of each, an officer and an admin."""
    from nguon import services as accounts
    from nguon.models import User
    from registry.models import Organisation
    from traceability import labels, services
    from traceability.models import EpcisNamedQuery, Location

    b_area = make_area(trace["other"], code="VN-BG-BH-0001")

    def build() -> dict[str, Any]:
        db.session.get(Organisation, trace["coop"]).gln = A_GLN
        db.session.get(Organisation, trace["other"]).gln = B_GLN
        site = Location(organisation_id=trace["coop"], name="Kho Phượng Sơn", gln=A_SITE_GLN)
        db.session.add(site)
        batch = services.save_batch(
            {
                **batch_body(trace),
                "quantity": Decimal(50000),
                "production_date": dt.date(2026, 6, 10),
                "expiry_date": dt.date(2026, 6, 24),
                "claims": [{"kind": "geographical_indication", "asset_id": trace["gi"]}],
            }
        )
        lot_run = labels.issue_run(batch, "lot")
        item_run = labels.issue_run(batch, "item", 3, Decimal(10))
        harvest = services.guided_event(
            "harvest",
            batch,
            {
                "event_time": dt.datetime(
                    2026, 6, 10, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=7))
                )
            },
        )
        epcis.store_events([harvest], [], organisation_id=trace["coop"])
        tea = services.save_product(
            {"gtin": B_GTIN14, "name": "Chè Bố Hạ", "producer_id": trace["other"]}
        )
        tea_batch = services.save_batch(
            {
                "product_id": tea.id,
                "lot": "CHE-001",
                "quantity": Decimal(500),
                "production_date": dt.date(2026, 6, 1),
                "area_ids": [b_area],
            }
        )
        db.session.add(
            EpcisNamedQuery(
                name="a-query",
                parameters={"eventType": ["ObjectEvent"]},
                organisation_id=trace["coop"],
            )
        )
        db.session.flush()
        return {
            "a_batch": batch.id,
            "a_lot_run": lot_run.id,
            "a_item_run": item_run.id,
            "a_serials": [lb.serial for lb in labels.run_labels(item_run)],
            "a_site": site.id,
            "b_product": tea.id,
            "b_batch": tea_batch.id,
            "b_area": b_area,
            "a_event_id": harvest["eventID"],
            "a_lot_path": path_of(labels.run_labels(lot_run)[0]),
        }

    def path_of(label: Any) -> str:
        return f"/01/{label.gtin}/10/{quote(label.batch.lot, safe='')}"

    ids = in_tx(build)
    users = {}
    for name, role, org in (
        ("a", "cooperative", trace["coop"]),
        ("b", "cooperative", trace["other"]),
        ("officer", "officer", None),
        ("admin", "admin", None),
    ):
        user_id, email = make_user(role, org_id=org)
        token = in_tx(lambda u=user_id: accounts.create_token(db.session.get(User, u), "t"))
        users[name] = {
            "id": user_id,
            "email": email,
            "token_id": in_tx(lambda u=user_id: accounts.tokens_of(db.session.get(User, u))[0].id),
            "headers": {"Authorization": f"Bearer {token.secret}"},
        }

    def a_subscription() -> str:
        from traceability.subscriptions import EpcisSubscription

        found = EpcisSubscription(
            subscription_id="a0000000-0000-4000-8000-000000000001",
            query_name="SimpleEventQuery",
            parameters=[],
            dest="https://8.8.8.8/a",
            signature_token="a-secret-of-a-0123456789",
            stream=True,
            user_id=users["a"]["id"],
            organisation_id=trace["coop"],
        )
        db.session.add(found)
        return found.subscription_id

    ids["a_subscription"] = in_tx(a_subscription)
    resolver.clear_caches()
    return {**trace, **ids, "users": users, "A": trace["coop"], "B": trace["other"]}


def headers_of(world: dict, who: str) -> dict[str, str]:
    return world["users"][who]["headers"]


def public_views(
    client: FlaskClient, world: dict, app: Flask, *, consumer_only: bool = False
) -> dict[str, Any]:
    """What the public (and the portal) sees of A's batch: the consumer page, the
    passport's stages, the batch history (as A) and the portal's trace record."""
    from integrations import mapping

    resolver.clear_caches()
    page = client.get(world["a_lot_path"])
    assert page.status_code == 200
    passport = client.get(world["a_lot_path"], headers={"Accept": "application/json"}).json
    html = page.get_data(as_text=True)
    # The verdict moves with every scan (these views scan the lot code too): leave it out.
    html = re.sub(r'<section class="verdict.*?</section>', "", html, flags=re.S)
    html = re.sub(r"/scans/[0-9a-f]+/place", "", html)
    consumer = {
        "page_bytes": len(html.encode()),
        "journey": re.findall(r'<ol class="timeline">.*?</ol>', html, flags=re.S),
        "passport": [s["epcis_event_id"] for s in passport["traceability_stages"]],
    }
    if consumer_only:
        return consumer
    history = client.get(
        f"/api/v1/traceability/batches/{world['a_batch']}/epcis", headers=headers_of(world, "a")
    )
    assert history.status_code == 200
    with app.test_request_context():
        record = mapping.trace_record(str(world["a_batch"])).body
        mapping.preload("trace_record", [str(world["a_batch"])])
        preloaded = mapping.trace_record(str(world["a_batch"])).body
        db.session.info.clear()
    return {
        **consumer,
        "history": [e["eventID"] for e in history.json["epcisBody"]["eventList"]],
        "portal": [s["epcis_event_id"] for s in record["stages"]],
        "portal_preloaded": [s["epcis_event_id"] for s in preloaded["stages"]],
    }


# --- the two leaks of the issue -----------------------------------------------------------------


def test_a_stranger_cannot_destroy_a_lot_it_does_not_own(
    client: FlaskClient, world: dict, app: Flask
) -> None:
    """The issue's first leak: B's token captured an ObjectEvent destroying A's lot and it
    showed on A's page, passport, history and portal record. Now: 403 naming the class,
    nothing stored, A's views unchanged."""
    before = public_views(client, world, app)
    stored = count_events(app)
    response = capture(client, headers_of(world, "b"), destroying())
    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert A_LOT in response.json["detail"]
    assert response.json["errors"][0]["field"] == "/0/quantityList/0/epcClass"
    assert count_events(app) == stored
    single = post_event(client, headers_of(world, "b"), destroying())
    assert single.status_code == 403 and A_LOT in single.json["detail"]
    assert count_events(app) == stored
    assert public_views(client, world, app) == before
    assert len(before["passport"]) == 1  # A's own harvest is still there


def test_a_product_cannot_borrow_a_gi_its_producer_is_not_authorised_for(
    client: FlaskClient, world: dict, app: Flask
) -> None:
    """The issue's second leak: B's PATCH of its product's asset_ids with A's GI answered
    200. Now 422 naming the GI, for PATCH, POST and the HTML form alike."""
    from integrations import mapping

    b = headers_of(world, "b")
    url = f"/api/v1/traceability/products/{world['b_product']}"
    patched = client.patch(url, json={"asset_ids": [world["gi"]]}, headers=b)
    assert patched.status_code == 422, patched.get_data(as_text=True)
    assert patched.json["errors"][0]["field"] == "asset_ids"
    assert "Vải thiều Lục Ngạn" in patched.json["errors"][0]["message"]
    assert client.get(url, headers=b).json["assets"] == []
    created = client.post(
        "/api/v1/traceability/products",
        json={
            "gtin": check_digit("893000000034"),
            "name": "Vải giả",
            "producer_id": world["B"],
            "asset_ids": [world["gi"]],
        },
        headers=b,
    )
    assert created.status_code == 422 and created.json["errors"][0]["field"] == "asset_ids"
    # A, an active authorised user, may link it; the portal record lists it.
    a = headers_of(world, "a")
    assert (
        client.patch(
            f"/api/v1/traceability/products/{world['product']}",
            json={"asset_ids": [world["gi"]]},
            headers=a,
        ).status_code
        == 200
    )
    with app.test_request_context():
        body = mapping.product(str(world["product"])).body
    assert [c["number"] for c in body["certifications"]] == ["00017"]


def test_a_product_shows_only_an_ocop_rating_of_its_producer_in_force(
    client: FlaskClient, world: dict, in_tx: Callable[..., Any]
) -> None:
    """B's product may not show A's OCOP rating, nor B's own lapsed one; B's current one
    it may."""
    from registry import services as registry_services

    def rating(producer: int, decided: dt.date, name: str) -> int:
        return registry_services.save_ocop_product(
            {
                "name": name,
                "producer_id": producer,
                "product_group": "food",
                "criteria_version": "148/2023",
                "score": 75,
                "stars": 4,
                "rating_level": "provincial",
                "decision_number": f"{name}/QĐ",
                "decision_date": decided,
            }
        ).id

    today = dt.date.today()
    a_ocop = in_tx(lambda: rating(world["A"], today - dt.timedelta(days=100), "Vải sấy"))
    lapsed = in_tx(lambda: rating(world["B"], today - dt.timedelta(days=4 * 366), "Chè cũ"))
    current = in_tx(lambda: rating(world["B"], today - dt.timedelta(days=100), "Chè Bố Hạ"))
    url = f"/api/v1/traceability/products/{world['b_product']}"
    b = headers_of(world, "b")
    for refused in (a_ocop, lapsed):
        response = client.patch(url, json={"ocop_product_id": refused}, headers=b)
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.json["errors"][0]["field"] == "ocop_product_id"
    assert client.patch(url, json={"ocop_product_id": current}, headers=b).status_code == 200


def test_the_html_product_form_refuses_an_unbacked_gi(client: FlaskClient, world: dict) -> None:
    login(client, world["users"]["b"]["email"])
    page = client.get("/traceability/products/new")
    response = client.post(
        "/traceability/products/new",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "gtin": check_digit("893000000034"),
            "name": "Vải giả",
            "producer_id": str(world["B"]),
            "asset_ids": str(world["gi"]),
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "không phải chủ sở hữu" in html and "Vải thiều Lục Ngạn" in html
    assert "Vải giả" in html  # the typed values are kept


def test_the_portal_product_record_lists_only_backed_assets(
    world: dict, app: Flask, in_tx: Callable[..., Any]
) -> None:
    """A link made while the producer was authorised leaves the portal record once the
    authorisation is revoked."""
    from integrations import mapping
    from registry import services as registry_services
    from registry.models import AuthorisedUser

    in_tx(
        lambda: registry_services.change_authorised_user_status(
            db.session.get(AuthorisedUser, world["user"]), "revoked", "vi phạm quy chế"
        )
    )
    with app.test_request_context():
        assert mapping.product(str(world["product"])).body["certifications"] == []


# --- every spelling, every place in an event ----------------------------------------------------


def a_serial(world: dict) -> str:
    return world["a_serials"][0]


STRANGE = [
    # (what, event fields naming something of A's)
    ("lot class on GS1's host", lambda w: destroying()),
    (
        "lot class on another host",
        lambda w: destroying(f"https://example.com/shop/01/{GTIN14}/10/LN2026-001"),
    ),
    (
        "lot class on our host",
        lambda w: destroying(f"http://127.0.0.1:5000/01/{GTIN14}/10/LN2026-001"),
    ),
    ("lot class as LGTIN", lambda w: destroying("urn:epc:class:lgtin:8930000.000001.LN2026-001")),
    ("product pattern", lambda w: destroying("urn:epc:idpat:sgtin:8930000.000001.*")),
    ("company pattern", lambda w: destroying("urn:epc:idpat:sgtin:8930000.*.*")),
    ("a new lot of A's product", lambda w: destroying(f"https://id.gs1.org/01/{GTIN14}/10/X9")),
    (
        "serial as SGTIN",
        lambda w: event(epcList=[f"urn:epc:id:sgtin:8930000.000001.{a_serial(w)}"]),
    ),
    (
        "serial as Digital Link",
        lambda w: event(epcList=[f"https://id.gs1.org/01/{GTIN14}/21/{a_serial(w)}"]),
    ),
    (
        "parent",
        lambda w: aggregation(f"{A_LOT}/21/{a_serial(w)}", [B_ITEM]),
    ),
    (
        "child",
        lambda w: aggregation("urn:epc:id:sscc:8930000.2000000001", [f"{A_LOT}/21/{a_serial(w)}"]),
    ),
    (
        "transformation input",
        lambda w: {
            "type": "TransformationEvent",
            "eventTime": "2026-06-12T08:00:00+07:00",
            "eventTimeZoneOffset": "+07:00",
            "inputQuantityList": [{"epcClass": A_LOT, "quantity": 1.0}],
            "outputQuantityList": [
                {"epcClass": f"https://id.gs1.org/01/{B_GTIN14}/10/CHE-001", "quantity": 1.0}
            ],
        },
    ),
    (
        "transformation output",
        lambda w: {
            "type": "TransformationEvent",
            "eventTime": "2026-06-12T08:00:00+07:00",
            "eventTimeZoneOffset": "+07:00",
            "inputQuantityList": [
                {"epcClass": f"https://id.gs1.org/01/{B_GTIN14}/10/CHE-001", "quantity": 1.0}
            ],
            "outputEPCList": [f"{A_LOT}/21/{a_serial(w)}"],
        },
    ),
    (
        "read point: A's site",
        lambda w: event(readPoint={"id": f"https://id.gs1.org/414/{A_SITE_GLN}"}),
    ),
    (
        "business location: A's GLN as SGLN",
        lambda w: event(bizLocation={"id": "urn:epc:id:sgln:8930000.10001.0"}),
    ),
    (
        "business location: A's site by its URN",
        lambda w: event(bizLocation={"id": f"urn:nguon:location:{w['a_site']}"}),
    ),
    (
        "business location: A's area",
        lambda w: event(bizLocation={"id": "urn:nguon:area:VN-BG-LN-0001"}),
    ),
    ("an area that does not exist", lambda w: event(bizLocation={"id": "urn:nguon:area:NOPE"})),
    (
        "source and destination both strangers",
        lambda w: event(
            bizStep="shipping",
            sourceList=[{"type": "owning_party", "source": f"https://id.gs1.org/417/{A_GLN}"}],
            destinationList=[
                {"type": "owning_party", "destination": "urn:epc:id:sgln:8930000.10002.0"}
            ],
        ),
    ),
]


@pytest.mark.parametrize(("what", "make"), STRANGE, ids=[s[0] for s in STRANGE])
def test_naming_anything_of_a_stranger_is_refused(
    client: FlaskClient, world: dict, what: str, make: Callable[[dict], dict], app: Flask
) -> None:
    """Capture, single event and proceed alike: 403 problem+json naming the identifier;
    nothing stored."""
    b = headers_of(world, "b")
    stored = count_events(app)
    bad = make(world)
    for response in (
        capture(client, b, bad),
        capture(client, b, event(), bad, **{"GS1-Capture-Error-Behaviour": "proceed"}),
        post_event(client, b, bad),
    ):
        assert response.status_code == 403, (what, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        named = [i for _p, i, _k in ownership.named(bad)]
        assert any(i in response.json["detail"] for i in named)
    assert count_events(app) == stored
    # Officers are not limited; A may write about its own (the places in A's list are A's).
    assert capture(client, headers_of(world, "officer"), bad).status_code == 202


def test_own_lots_places_and_new_containers_are_accepted(client: FlaskClient, world: dict) -> None:
    b = headers_of(world, "b")
    mine = event(
        bizLocation={"id": "urn:nguon:area:VN-BG-BH-0001"},
        readPoint={"id": f"https://id.gs1.org/414/{B_GLN}"},
    )
    packed = aggregation(
        "urn:epc:id:sscc:8930000.1000000007",
        [],
        childQuantityList=[
            {"epcClass": f"https://id.gs1.org/01/{B_GTIN14}/10/CHE-001", "quantity": 5.0}
        ],
    )
    unknown_gtin = destroying(f"https://id.gs1.org/01/{check_digit('0614141000001')}/10/X")
    response = capture(client, b, mine, packed, unknown_gtin)
    assert response.status_code == 202, response.get_data(as_text=True)
    # B used the SSCC first: it is B's now, in every spelling.
    first = "urn:epc:id:sscc:8930000.1000000007"
    key = ownership.gs1_key(first)
    assert key is not None and key[0] == "00"
    link = f"https://example.org/00/{key[1]}"
    for spelling in (first, link):
        repack = {**packed, "parentID": spelling, "eventTime": "2026-06-13T08:00:00+07:00"}
        refused = capture(
            client,
            headers_of(world, "a"),
            {**repack, "childQuantityList": [{"epcClass": A_LOT, "quantity": 1.0}]},
        )
        assert refused.status_code == 403, spelling
        assert spelling in refused.json["detail"]
    # B may keep using it, in any spelling.
    again = {**packed, "parentID": link, "eventTime": "2026-06-14T08:00:00+07:00"}
    assert capture(client, b, again).status_code == 202


def test_a_recorded_shipment_brings_the_lot_to_its_receiver(
    client: FlaskClient, world: dict, make_org: Callable[..., int], make_user: Callable, app: Flask
) -> None:
    """A ships its lot to B (destination: B's GLN): B may then receive it and process it;
    C, to whom nothing was shipped, may not; B's receipt does not bring it to C; a
    receiving event B records on its own, naming A as source, brings B nothing."""
    a, b = headers_of(world, "a"), headers_of(world, "b")
    receive = event(
        bizStep="receiving",
        quantityList=[{"epcClass": A_LOT, "quantity": 100.0}],
        sourceList=[{"type": "owning_party", "source": f"https://id.gs1.org/417/{A_GLN}"}],
        destinationList=[
            {"type": "owning_party", "destination": f"https://id.gs1.org/417/{B_GLN}"}
        ],
    )
    assert capture(client, b, receive).status_code == 403  # nothing shipped yet
    ship = {**receive, "bizStep": "shipping", "eventTime": "2026-06-11T05:00:00+07:00"}
    ship["readPoint"] = {"id": f"https://id.gs1.org/414/{A_SITE_GLN}"}
    assert capture(client, a, ship).status_code == 202
    assert capture(client, b, receive).status_code == 202
    item = event(epcList=[f"{A_LOT}/21/{a_serial(world)}"], eventTime="2026-06-12T09:00:00+07:00")
    assert capture(client, b, item).status_code == 202
    process = {
        "type": "TransformationEvent",
        "eventTime": "2026-06-12T10:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "inputQuantityList": [{"epcClass": A_LOT, "quantity": 100.0}],
        "outputQuantityList": [
            {"epcClass": f"https://id.gs1.org/01/{B_GTIN14}/10/CHE-001", "quantity": 20.0}
        ],
    }
    assert capture(client, b, process).status_code == 202
    # B's events about A's lot are public on A's page: B holds the lot.
    views = public_views(client, world, app)
    assert len(views["passport"]) == 5

    c_org = make_org(name="HTX Lục Sơn", gln=C_GLN)
    c_user, _email = make_user("cooperative", org_id=c_org)
    c_token = {"Authorization": f"Bearer {in_app(app, lambda: token_for(c_user))}"}
    to_c = {
        **receive,
        "eventTime": "2026-06-13T05:00:00+07:00",
        "sourceList": [{"type": "owning_party", "source": f"https://id.gs1.org/417/{B_GLN}"}],
        "destinationList": [
            {"type": "owning_party", "destination": f"https://id.gs1.org/417/{C_GLN}"}
        ],
    }
    c_receives = {**to_c, "eventTime": "2026-06-13T09:00:00+07:00"}
    assert capture(client, c_token, c_receives).status_code == 403  # B's receipt is no shipment
    assert capture(client, b, {**to_c, "bizStep": "shipping"}).status_code == 202
    assert capture(client, c_token, c_receives).status_code == 202  # A -> B -> C


def test_a_shipped_container_is_the_receivers_to_name(client: FlaskClient, world: dict) -> None:
    """A packs onto a pallet it used first (its SSCC) and ships the pallet to B: B may then
    record the pallet's arrival (and unpack it), in another spelling of the same SSCC."""
    a, b = headers_of(world, "a"), headers_of(world, "b")
    pallet = "urn:epc:id:sscc:8930000.3000000001"
    packed = aggregation(pallet, [f"{A_LOT}/21/{a_serial(world)}"])
    arrived = event(
        epcList=[f"https://id.gs1.org/00/{ownership.gs1_key(pallet)[1]}"],
        bizStep="receiving",
        eventTime="2026-06-13T08:00:00+07:00",
    )
    del arrived["quantityList"]
    assert capture(client, a, packed).status_code == 202
    assert capture(client, b, arrived).status_code == 403
    shipped = event(
        epcList=[pallet],
        bizStep="shipping",
        destinationList=[
            {"type": "owning_party", "destination": f"https://id.gs1.org/417/{B_GLN}"}
        ],
    )
    del shipped["quantityList"]
    assert capture(client, a, shipped).status_code == 202
    assert capture(client, b, arrived).status_code == 202


def token_for(user_id: int) -> str:
    from nguon import services as accounts
    from nguon.models import User

    return accounts.create_token(db.session.get(User, user_id), "t").secret


def in_app(app: Flask, fn: Callable[[], Any]) -> Any:
    from nguon.db import commit_boundary

    with app.app_context(), commit_boundary():
        return fn()


# --- event IDs ----------------------------------------------------------------------------------


def test_an_existing_event_id_reveals_nothing(
    client: FlaskClient, world: dict, in_tx: Callable[..., Any]
) -> None:
    """B sends its own event with A's eventID, and with a made-up one: the same 400,
    word for word; a urn:uuid that A's officer-captured event carries answers like a fresh
    one. Only the event's own reference hash is accepted."""
    b = headers_of(world, "b")
    mine = event()
    answers = []
    for event_id in (world["a_event_id"], "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"):
        response = capture(client, b, {**mine, "eventID": event_id})
        single = post_event(client, b, {**mine, "eventID": event_id})
        answers.append(
            [
                (r.status_code, {k: v for k, v in r.json.items() if k != "instance"})
                for r in (response, single)
            ]
        )
    assert answers[0] == answers[1]
    assert answers[0][0][0] == 400
    assert answers[0][0][1]["errors"][0]["field"] == "/epcisBody/eventList/0/eventID"
    # an eventID of any other form, stored by someone else or not
    uuid = "urn:uuid:6c1a1d2e-3f4b-4c5d-8e9f-0a1b2c3d4e5f"
    in_tx(lambda: epcis.store_events([{**destroying(), "eventID": uuid}], [], organisation_id=None))
    taken = capture(client, b, {**mine, "eventID": uuid})
    fresh = capture(client, b, {**mine, "eventID": uuid.replace("6c1a", "7d2b")})
    strip = lambda r: {k: v for k, v in r.json.items() if k != "instance"}  # noqa: E731
    assert (taken.status_code, strip(taken)) == (fresh.status_code, strip(fresh))
    assert taken.status_code == 400
    # the right hash is accepted (and is the eventID it is stored under)
    (expected,) = epcis.event_hashes([mine], [])
    created = post_event(client, b, {**mine, "eventID": expected})
    assert created.status_code == 201 and created.json["eventID"] == expected
    # officers may name any eventID
    officer = capture(client, headers_of(world, "officer"), {**mine, "eventID": "urn:uuid:x-1"})
    assert officer.status_code == 202


# --- public views -------------------------------------------------------------------------------


def store_unchecked(
    monkeypatch: pytest.MonkeyPatch, in_tx: Callable, events: list, org: int
) -> None:
    """Store events as the code before the rule did (unchecked)."""
    with monkeypatch.context() as patched:
        patched.setattr(ownership, "check_events", lambda *a, **k: None)
        in_tx(lambda: epcis.store_events(events, [], organisation_id=org))


def test_events_stored_before_the_rule_leave_the_public_views(
    client: FlaskClient, world: dict, app: Flask, monkeypatch: pytest.MonkeyPatch, in_tx: Callable
) -> None:
    """B's destroying event stored before the rule is out of A's page, passport, history
    and portal record (single and preloaded); an officer sees it on the batch page, marked;
    A's own batch page does not show it."""
    before = public_views(client, world, app)
    made_into_tea = {
        "type": "TransformationEvent",
        "eventTime": "2026-06-13T08:00:00+07:00",
        "eventTimeZoneOffset": "+07:00",
        "inputQuantityList": [{"epcClass": A_LOT, "quantity": 1.0}],
        "outputQuantityList": [
            {"epcClass": f"https://id.gs1.org/01/{B_GTIN14}/10/CHE-001", "quantity": 1.0}
        ],
    }
    store_unchecked(monkeypatch, in_tx, [destroying(), made_into_tea], world["B"])
    assert public_views(client, world, app) == before
    for who, batch, direction in (("a", "a_batch", "downstream"), ("b", "b_batch", "upstream")):
        lineage = client.get(
            f"/api/v1/traceability/batches/{world[batch]}/lineage", headers=headers_of(world, who)
        ).json
        assert lineage[direction] == []

    login(client, world["users"]["officer"]["email"])
    officer_page = client.get(f"/traceability/batches/{world['a_batch']}").get_data(as_text=True)
    assert "untrusted" in officer_page and A_LOT in officer_page
    client.post("/logout", data={"csrf_token": csrf_from(officer_page)})
    login(client, world["users"]["a"]["email"])
    own_page = client.get(f"/traceability/batches/{world['a_batch']}").get_data(as_text=True)
    assert "untrusted" not in own_page and "destroying" not in own_page.lower()


def test_a_flood_of_ten_thousand_events_is_refused_and_changes_no_page(
    client: FlaskClient, world: dict, app: Flask, in_tx: Callable
) -> None:
    """The issue's 10,000-event document naming A's lot grew A's page to 1.2 MB. Refused
    whole now; and the same flood already stored (written straight to the tables, as the
    old code would have) leaves A's page the same size."""
    from traceability.models import EpcisEvent, EventEpc

    before = public_views(client, world, app)
    flood = [destroying() for _ in range(10_000)]
    for i, one in enumerate(flood):
        one["eventTime"] = f"2026-06-12T08:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i % 10}+07:00"
    response = capture(client, headers_of(world, "b"), *flood)
    assert response.status_code == 403
    assert public_views(client, world, app) == before

    def stored_flood() -> None:
        rows = [
            {
                "event_id": f"urn:uuid:flood-{i}",
                "event_type": "ObjectEvent",
                "event_time": dt.datetime(2026, 6, 12, 1, 0, tzinfo=dt.UTC),
                "action": "DELETE",
                "biz_step": "destroying",
                "disposition": "destroyed",
                "organisation_id": world["B"],
                "document": {**flood[i], "eventID": f"urn:uuid:flood-{i}"},
                "context": [],
            }
            for i in range(10_000)
        ]
        from sqlalchemy import insert

        pks = list(
            db.session.scalars(
                insert(EpcisEvent).returning(EpcisEvent.id, sort_by_parameter_order=True), rows
            )
        )
        db.session.execute(
            insert(EventEpc),
            [
                {
                    "event_pk": pk,
                    "role": "quantity",
                    "epc": A_LOT,
                    "gtin": GTIN14,
                    "lot": "LN2026-001",
                }
                for pk in pks
            ],
        )

    in_tx(stored_flood)
    after = public_views(client, world, app, consumer_only=True)
    assert after == {k: before[k] for k in after}


# --- the cross-tenant matrix: every write route, every role -------------------------------------


def csv_file(rows: str) -> dict[str, Any]:
    return {"file": (io.BytesIO(rows.encode()), "events.csv")}


A_CSV = f"step,gtin,lot,event_time\npack,{GTIN14},LN2026-001,2026-06-12T08:00:00+07:00\n"


def attacks(w: dict) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """For every write route: (URL, request arguments) of a request that would change or
    extend A's record (or the registry A's record rests on) if it were let through."""
    batch, run, product = w["a_batch"], w["a_item_run"], w["product"]
    area, gi, user = w["area"], w["gi"], w["user"]
    a_token = w["users"]["a"]["token_id"]
    lot_event = {"@context": [epcis.EPCIS_CONTEXT], **destroying()}
    epcis_json = {"content_type": JSONLD}
    return {
        # API: traceability
        ("POST", "/api/v1/traceability/batches"): (
            "/api/v1/traceability/batches",
            {"json": {**batch_body(w), "lot": "LN2026-999"}},
        ),
        ("POST", "/api/v1/traceability/batches/<int:batch_id>/events"): (
            f"/api/v1/traceability/batches/{batch}/events",
            {"json": {"step": "pack", "event_time": "2026-06-12T08:00:00+07:00"}},
        ),
        ("POST", "/api/v1/traceability/batches/<int:batch_id>/label-runs"): (
            f"/api/v1/traceability/batches/{batch}/label-runs",
            {"json": {"kind": "item", "count": 2, "item_quantity": "1"}},
        ),
        ("POST", "/api/v1/traceability/events/import"): (
            "/api/v1/traceability/events/import",
            {"data": csv_file(A_CSV), "content_type": "multipart/form-data"},
        ),
        ("POST", "/api/v1/traceability/label-runs/<int:run_id>/void"): (
            f"/api/v1/traceability/label-runs/{run}/void",
            {"json": {"reason": "hỏng"}},
        ),
        ("POST", "/api/v1/traceability/products"): (
            "/api/v1/traceability/products",
            {"json": {"gtin": check_digit("893000000035"), "name": "X", "producer_id": w["A"]}},
        ),
        ("PATCH", "/api/v1/traceability/products/<int:product_id>"): (
            f"/api/v1/traceability/products/{product}",
            {"json": {"name": "Vải giả"}},
        ),
        ("PUT", "/api/v1/traceability/products/<int:product_id>/image"): (
            f"/api/v1/traceability/products/{product}/image",
            {
                "data": {"image": (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"0" * 64), "x.png")},
                "content_type": "multipart/form-data",
            },
        ),
        # EPCIS query subscriptions: B may subscribe (its own subscription, scoped to its
        # own events), never end A's.
        ("POST", "/epcis/queries/<query_name>/subscriptions"): (
            "/epcis/queries/SimpleEventQuery/subscriptions",
            {
                "json": {
                    "dest": "https://8.8.8.8/hook",
                    "stream": True,
                    "signatureToken": "a-secret-of-b-0123456789",
                }
            },
        ),
        ("DELETE", "/epcis/queries/<query_name>/subscriptions/<subscription_id>"): (
            f"/epcis/queries/SimpleEventQuery/subscriptions/{w['a_subscription']}",
            {},
        ),
        # EPCIS
        ("POST", "/epcis/capture"): (
            "/epcis/capture",
            {"data": json.dumps(document(destroying())), **epcis_json},
        ),
        ("POST", "/epcis/events"): ("/epcis/events", {"data": json.dumps(lot_event), **epcis_json}),
        ("POST", "/epcis/queries"): (
            "/epcis/queries",
            {"data": json.dumps({"name": "a-query", "query": {}}), **epcis_json},
        ),
        ("DELETE", "/epcis/queries/<name>"): ("/epcis/queries/a-query", {}),
        # API: registry (the records A's claims rest on)
        ("POST", "/api/v1/registry/areas"): (
            "/api/v1/registry/areas",
            {
                "json": {
                    "code": "X-1",
                    "crop": "vải",
                    "owner_id": w["A"],
                    "hectares": "1",
                    "geometry": {"type": "Point", "coordinates": [106.7, 21.45]},
                }
            },
        ),
        ("PATCH", "/api/v1/registry/areas/<int:area_id>"): (
            f"/api/v1/registry/areas/{area}",
            {"json": {"hectares": "999"}},
        ),
        ("POST", "/api/v1/registry/areas/<int:area_id>/certificates"): (
            f"/api/v1/registry/areas/{area}/certificates",
            {
                "json": {
                    "scheme": "organic",
                    "number": "O-1",
                    "issuer": "X",
                    "valid_from": "2026-01-01",
                    "valid_to": "2027-01-01",
                }
            },
        ),
        ("POST", "/api/v1/registry/assets"): ("/api/v1/registry/assets", {"json": {"name": "X"}}),
        ("PATCH", "/api/v1/registry/assets/<int:asset_id>"): (
            f"/api/v1/registry/assets/{gi}",
            {"json": {"name": "Vải giả"}},
        ),
        ("POST", "/api/v1/registry/assets/<int:asset_id>/documents"): (
            f"/api/v1/registry/assets/{gi}/documents",
            {
                "data": {"kind": "other", "title": "x", "file": (io.BytesIO(b"%PDF-1.4"), "x.pdf")},
                "content_type": "multipart/form-data",
            },
        ),
        ("POST", "/api/v1/registry/assets/<int:asset_id>/foreign-protections"): (
            f"/api/v1/registry/assets/{gi}/foreign-protections",
            {"json": {"territory": "JP", "route": "national"}},
        ),
        ("POST", "/api/v1/registry/assets/<int:asset_id>/renewals"): (
            f"/api/v1/registry/assets/{gi}/renewals",
            {"json": {"on_date": "2026-06-01"}},
        ),
        ("POST", "/api/v1/registry/assets/<int:asset_id>/status"): (
            f"/api/v1/registry/assets/{gi}/status",
            {"json": {"status": "revoked", "reason": "x"}},
        ),
        ("POST", "/api/v1/registry/authorised-users"): (
            "/api/v1/registry/authorised-users",
            {
                "json": {
                    "asset_id": gi,
                    "organisation_id": w["B"],
                    "decision_number": "1",
                    "decision_date": "2026-01-01",
                    "valid_from": "2026-01-01",
                    "user_code": "X",
                }
            },
        ),
        ("PATCH", "/api/v1/registry/authorised-users/<int:user_id>"): (
            f"/api/v1/registry/authorised-users/{user}",
            {"json": {"yearly_ceiling": "1"}},
        ),
        ("POST", "/api/v1/registry/authorised-users/<int:user_id>/status"): (
            f"/api/v1/registry/authorised-users/{user}/status",
            {"json": {"status": "suspended", "reason": "x"}},
        ),
        ("POST", "/api/v1/registry/import/<any(assets, areas, 'authorised-users', ocop):entity>"): (
            "/api/v1/registry/import/areas",
            {
                "data": csv_file("code,crop,owner_id,hectares\nX-2,vải,1,1\n"),
                "content_type": "multipart/form-data",
            },
        ),
        ("POST", "/api/v1/registry/ocop"): (
            "/api/v1/registry/ocop",
            {"json": {"name": "X", "producer_id": w["A"]}},
        ),
        ("POST", "/api/v1/registry/ocop/<int:ocop_id>/rerate"): (
            "/api/v1/registry/ocop/1/rerate",
            {"json": {"stars": 5}},
        ),
        ("POST", "/api/v1/registry/organisations"): (
            "/api/v1/registry/organisations",
            {"json": {"name": "X", "kind": "cooperative"}},
        ),
        ("PATCH", "/api/v1/registry/organisations/<int:org_id>"): (
            f"/api/v1/registry/organisations/{w['A']}",
            {"json": {"name": "HTX giả"}},
        ),
        ("POST", "/api/v1/registry/targets"): ("/api/v1/registry/targets", {"json": {"name": "X"}}),
        ("PATCH", "/api/v1/registry/targets/<int:target_id>"): (
            "/api/v1/registry/targets/1",
            {"json": {"name": "X"}},
        ),
        # API: accounts
        ("POST", "/api/v1/tokens"): (
            "/api/v1/tokens",
            {"json": {"name": "x", "user_id": w["users"]["a"]["id"]}},
        ),
        ("DELETE", "/api/v1/tokens/<int:token_id>"): (f"/api/v1/tokens/{a_token}", {}),
        ("POST", "/api/v1/users"): (
            "/api/v1/users",
            {
                "json": {
                    "email": "x@a.vn",
                    "role": "cooperative",
                    "password": "long enough pw 1",
                    "organisation_id": w["A"],
                }
            },
        ),
        # HTML forms
        ("POST", "/account/tokens"): (
            "/account/tokens",
            {"data": {"name": "x", "user_id": str(w["users"]["a"]["id"])}},
        ),
        ("POST", "/account/tokens/<int:token_id>/revoke"): (
            f"/account/tokens/{a_token}/revoke",
            {"data": {}},
        ),
        ("POST", "/traceability/batches/<int:batch_id>"): (
            f"/traceability/batches/{batch}",
            {"data": {"step": "pack", "event_time": "2026-06-12T08:00+07:00"}},
        ),
        ("POST", "/traceability/batches/<int:batch_id>/label-runs"): (
            f"/traceability/batches/{batch}/label-runs",
            {"data": {"kind": "item", "count": "2", "item_quantity": "1"}},
        ),
        ("POST", "/traceability/batches/new"): (
            "/traceability/batches/new",
            {
                "data": {
                    "product_id": str(product),
                    "lot": "LN2026-998",
                    "quantity": "10",
                    "unit": "KGM",
                    "production_date": "2026-06-10",
                }
            },
        ),
        ("POST", "/traceability/events/import"): (
            "/traceability/events/import",
            {"data": csv_file(A_CSV), "content_type": "multipart/form-data"},
        ),
        ("POST", "/traceability/label-runs/<int:run_id>/void"): (
            f"/traceability/label-runs/{run}/void",
            {"data": {"reason": "hỏng"}},
        ),
        ("POST", "/traceability/label-runs/<int:run_id>/reprint"): (
            f"/traceability/label-runs/{run}/reprint",
            {"data": {"preset": "a4-40"}},
        ),
        ("POST", "/traceability/products/<int:product_id>/edit"): (
            f"/traceability/products/{product}/edit",
            {"data": {"gtin": GTIN14, "name": "HTX giả", "producer_id": str(w["A"])}},
        ),
        ("POST", "/traceability/batches/<int:batch_id>/edit"): (
            f"/traceability/batches/{batch}/edit",
            {"data": {"quantity": "1", "unit": "KGM", "production_date": "2026-06-10"}},
        ),
        ("POST", "/traceability/batches/import"): (
            "/traceability/batches/import",
            {
                "data": csv_file(
                    f"gtin,lot,quantity,production_date\n{GTIN14},LN-X,1,2026-06-10\n"
                ),
                "content_type": "multipart/form-data",
            },
        ),
        ("POST", "/traceability/products/new"): (
            "/traceability/products/new",
            {
                "data": {
                    "gtin": check_digit("893000000036"),
                    "name": "X",
                    "producer_id": str(w["A"]),
                }
            },
        ),
        ("POST", "/integrations/sync/<int:row_id>/<any(retry, resend):action>"): (
            "/integrations/sync/1/resend",
            {"data": {}},
        ),
        ("POST", "/integrations/sync/retry-parked"): (
            "/integrations/sync/retry-parked",
            {"data": {}},
        ),
        ("POST", "/registry/cases/<int:case_id>"): (
            "/registry/cases/1",
            {"data": {"status": "closed"}},
        ),
        ("POST", "/registry/cases/<int:case_id>/attachments"): (
            "/registry/cases/1/attachments",
            {"data": {}},
        ),
        ("POST", "/registry/cases/<int:case_id>/merge"): (
            "/registry/cases/1/merge",
            {"data": {"into": "2"}},
        ),
        ("POST", "/registry/fine-bands"): ("/registry/fine-bands", {"data": {}}),
        ("POST", "/registry/manage/<any(areas, assets):kind>/<int:record_id>/confirm"): (
            f"/registry/manage/areas/{area}/confirm",
            {"data": {"decision_number": "1/QĐ", "decision_date": "2026-06-01"}},
        ),
        ("POST", "/registry/manage/measure"): (
            "/registry/manage/measure",
            {"json": {"geometry": {"type": "Point", "coordinates": [106.6, 21.37]}}},
        ),
        ("POST", "/traceability/alarms/<int:alarm_id>/<any(dismiss, void, merge):action>"): (
            "/traceability/alarms/1/void",
            {"data": {"reason": "x"}},
        ),
        ("POST", "/registry/manage/areas/<int:area_id>"): (
            f"/registry/manage/areas/{area}",
            {"data": {"hectares": "999"}},
        ),
        ("POST", "/registry/manage/areas/<int:area_id>/certificates"): (
            f"/registry/manage/areas/{area}/certificates",
            {"data": {"scheme": "organic"}},
        ),
        ("POST", "/registry/manage/areas/new"): (
            "/registry/manage/areas/new",
            {"data": {"code": "X-3", "owner_id": str(w["A"])}},
        ),
        ("POST", "/registry/manage/assets/<int:asset_id>"): (
            f"/registry/manage/assets/{gi}",
            {"data": {"status": "revoked"}},
        ),
        ("POST", "/registry/manage/assets/<int:asset_id>/edit"): (
            f"/registry/manage/assets/{gi}/edit",
            {"data": {"name": "X"}},
        ),
        ("POST", "/registry/manage/assets/new"): (
            "/registry/manage/assets/new",
            {"data": {"name": "X"}},
        ),
        ("POST", "/registry/manage/authorised-users/<int:user_id>"): (
            f"/registry/manage/authorised-users/{user}",
            {"data": {"status": "revoked"}},
        ),
        ("POST", "/registry/manage/authorised-users/new"): (
            "/registry/manage/authorised-users/new",
            {"data": {"asset_id": str(gi), "organisation_id": str(w["B"])}},
        ),
        ("POST", "/registry/manage/import"): ("/registry/manage/import", {"data": {}}),
        ("POST", "/registry/manage/ocop/<int:ocop_id>/rerate"): (
            "/registry/manage/ocop/1/rerate",
            {"data": {}},
        ),
        ("POST", "/registry/manage/ocop/new"): (
            "/registry/manage/ocop/new",
            {"data": {"producer_id": str(w["A"])}},
        ),
        ("POST", "/registry/manage/organisations/<int:org_id>"): (
            f"/registry/manage/organisations/{w['A']}",
            {"data": {"name": "HTX giả"}},
        ),
        ("POST", "/registry/manage/organisations/new"): (
            "/registry/manage/organisations/new",
            {"data": {"name": "X"}},
        ),
        ("POST", "/registry/manage/targets/<int:target_id>"): (
            "/registry/manage/targets/1",
            {"data": {}},
        ),
        ("POST", "/registry/manage/targets/new"): ("/registry/manage/targets/new", {"data": {}}),
    }


# Write routes that touch no organisation's record, and why.
# Write routes that act only on the caller's own account (a 2xx is fine; A's record must
# still be untouched).
OWN_ACCOUNT = {
    ("POST", "/account/tokens"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/epcis/queries/<query_name>/subscriptions"),  # scoped to the caller's events
}

EXEMPT = {
    ("POST", "/login"): "signs the caller in",
    ("POST", "/logout"): "signs the caller out",
    ("POST", "/account"): "changes the caller's own password (the current one is asked)",
    ("POST", "/account/sign-out-everywhere"): "ends the caller's own sessions",
    ("POST", "/report"): "anyone files a report; it opens a case for officers and changes no "
    "organisation's record",
    ("POST", "/scans/<ref>/place"): "a consumer shares the place of their own scan, by the "
    "secret reference their page was given",
}


def write_routes(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            found.add((method, rule.rule))
    return found


def test_every_write_route_is_in_the_matrix(app: Flask, world: dict) -> None:
    """A new write route fails here until it says how a stranger is kept out of it."""
    listed = set(attacks(world)) | set(EXEMPT)
    assert write_routes(app) - listed == set()
    assert listed - write_routes(app) == set()


def snapshot(org_id: int, gi: int) -> str:
    """A's whole record, and the GI it shows, as text."""
    from nguon.models import ApiToken, User
    from registry.models import AuthorisedUser, IPAsset, OcopProduct, Organisation, ProductionArea
    from traceability.models import (
        Batch,
        EpcisEvent,
        EpcisNamedQuery,
        EventEpc,
        Label,
        LabelRun,
        Location,
        Product,
    )
    from traceability.subscriptions import EpcisSubscription

    def rows(query: Any) -> list[Any]:
        return [tuple(r) for r in db.session.execute(query)]

    org = db.session.get(Organisation, org_id)
    batches = db.session.scalars(
        select(Batch).where(Batch.producer_id == org_id).order_by(Batch.id)
    ).all()
    asset = db.session.get(IPAsset, gi)
    state = {
        "org": (org.name, org.gln, org.address, org.tax_code),
        "products": [
            (p.id, p.gtin, p.name, p.brand, p.image_sha256, [a.id for a in p.assets])
            for p in db.session.scalars(
                select(Product).where(Product.producer_id == org_id).order_by(Product.id)
            )
        ],
        "batches": [
            (
                b.id,
                b.lot,
                str(b.quantity),
                [(c.kind, c.asset_id, c.status) for c in b.claims],
                [a.id for a in b.areas],
            )
            for b in batches
        ],
        "events": rows(
            select(EventEpc.lot, EpcisEvent.event_id)
            .join(EpcisEvent, EpcisEvent.id == EventEpc.event_pk)
            .join(Product, Product.gtin == EventEpc.gtin)
            .where(Product.producer_id == org_id)
            .order_by(EpcisEvent.id)
        ),
        "runs": rows(
            select(LabelRun.id, LabelRun.count, LabelRun.voided_at)
            .join(Batch)
            .where(Batch.producer_id == org_id)
            .order_by(LabelRun.id)
        ),
        "labels": rows(
            select(Label.id, Label.voided_at)
            .join(Batch)
            .where(Batch.producer_id == org_id)
            .order_by(Label.id)
        ),
        "areas": rows(
            select(ProductionArea.id, ProductionArea.code, ProductionArea.hectares).where(
                ProductionArea.owner_id == org_id
            )
        ),
        "authorisations": rows(
            select(
                AuthorisedUser.id, AuthorisedUser.status, AuthorisedUser.yearly_ceiling
            ).order_by(AuthorisedUser.id)
        ),
        "locations": rows(
            select(Location.id, Location.gln, Location.name).where(
                Location.organisation_id == org_id
            )
        ),
        "users": rows(
            select(User.id, User.email, User.role)
            .where(User.organisation_id == org_id)
            .order_by(User.id)
        ),
        "tokens": rows(
            select(ApiToken.id, ApiToken.revoked_at)
            .join(User)
            .where(User.organisation_id == org_id)
            .order_by(ApiToken.id)
        ),
        "ocop": rows(
            select(OcopProduct.id, OcopProduct.stars).where(OcopProduct.producer_id == org_id)
        ),
        "gi": (asset.name, asset.status, asset.certificate_number),
        "subscriptions": rows(
            select(EpcisSubscription.subscription_id, EpcisSubscription.dest).where(
                EpcisSubscription.organisation_id == org_id
            )
        ),
        "named_queries": [
            (q.name, json.dumps(q.parameters, sort_keys=True))
            for q in db.session.scalars(
                select(EpcisNamedQuery)
                .where(EpcisNamedQuery.organisation_id == org_id)
                .order_by(EpcisNamedQuery.id)
            )
        ],
    }
    return repr(state)


def send(
    client: FlaskClient, method: str, url: str, args: dict, headers: dict, token: str | None
) -> Any:
    args = copy.deepcopy({k: v for k, v in args.items() if k != "data"}) | (
        {"data": args["data"]} if "data" in args else {}
    )
    if token and isinstance(args.get("data"), dict):
        args["data"] = {**args["data"], "csrf_token": token}
    elif token:  # JSON bodies carry the session's CSRF token in the header
        headers = {**headers, "X-CSRFToken": token}
    return client.open(url, method=method, headers=headers, **args)


@pytest.mark.parametrize("role", ["anonymous", "cooperative B (token)", "cooperative B (session)"])
def test_no_write_route_lets_a_stranger_change_a_record(app: Flask, world: dict, role: str) -> None:
    """For every write route: as an anonymous visitor or as cooperative B (by token and by
    signed-in session), the request that would change or extend A's record is refused
    (4xx, or a redirect to the sign-in page) and A's record is exactly as before."""
    client = app.test_client()
    headers: dict[str, str] = {}
    token = None
    if role == "cooperative B (token)":
        headers = headers_of(world, "b")
    else:
        if role == "cooperative B (session)":
            login(client, world["users"]["b"]["email"])
        token = csrf_from(
            client.get("/login" if role == "anonymous" else "/account/tokens").get_data(
                as_text=True
            )
        )
    leaks = []
    for (method, _rule), (url, args) in sorted(attacks(world).items()):
        with app.app_context():
            before = snapshot(world["A"], world["gi"])
        response = send(client, method, url, args, headers, token)
        with app.app_context():
            after = snapshot(world["A"], world["gi"])
        refused = response.status_code in (400, 401, 403, 404, 405, 409, 413, 415, 422) or (
            response.status_code in (302, 303) and "/login" in response.headers.get("Location", "")
        )
        if (not refused and (method, _rule) not in OWN_ACCOUNT) or after != before:
            leaks.append((method, url, response.status_code, after == before))
    assert leaks == []


def test_staff_are_not_limited(client: FlaskClient, world: dict) -> None:
    """Officers and admins record events about any organisation's lots and places."""
    for who in ("officer", "admin"):
        bad = {
            **destroying(),
            "eventTime": f"2026-06-1{3 if who == 'officer' else 4}T08:00:00+07:00",
        }
        assert capture(client, headers_of(world, who), bad).status_code == 202
        guided = client.post(
            f"/api/v1/traceability/batches/{world['a_batch']}/events",
            json={
                "step": "pack",
                "event_time": "2026-06-12T08:00:00+07:00",
                "location": f"https://id.gs1.org/414/{A_SITE_GLN}",
            },
            headers=headers_of(world, who),
        )
        assert guided.status_code in (200, 201), guided.get_data(as_text=True)


def test_guided_events_and_imports_name_the_field(
    client: FlaskClient, world: dict, app: Flask
) -> None:
    """B's own batch, with A's site as the place: refused naming the form's field; the CSV
    import names the row and the field; nothing is stored."""
    b = headers_of(world, "b")
    stored = count_events(app)
    guided = client.post(
        f"/api/v1/traceability/batches/{world['b_batch']}/events",
        json={
            "step": "receive",
            "event_time": "2026-06-12T08:00:00+07:00",
            "location": f"https://id.gs1.org/414/{A_SITE_GLN}",
        },
        headers=b,
    )
    assert guided.status_code == 403
    assert guided.json["errors"][0]["field"] == "location"
    assert A_SITE_GLN in guided.json["errors"][0]["message"]
    rows = (
        "step,gtin,lot,event_time,location\n"
        f"pack,{B_GTIN14},CHE-001,2026-06-12T08:00:00+07:00,urn:nguon:area:VN-BG-LN-0001\n"
    )
    imported = client.post(
        "/api/v1/traceability/events/import",
        data=csv_file(rows),
        content_type="multipart/form-data",
        headers=b,
    )
    assert imported.status_code == 422
    (row,) = imported.json["rows_with_errors"]
    assert row["row"] == 1 and row["errors"][0]["field"] == "location"
    assert "VN-BG-LN-0001" in row["errors"][0]["message"]
    # shipping to A (a counterpart) is fine
    ship = client.post(
        f"/api/v1/traceability/batches/{world['b_batch']}/events",
        json={
            "step": "ship",
            "event_time": "2026-06-12T08:00:00+07:00",
            "destination": f"https://id.gs1.org/417/{A_GLN}",
        },
        headers=b,
    )
    assert ship.status_code == 201, ship.get_data(as_text=True)
    assert count_events(app) == stored + 1


def test_a_stranger_in_the_browser_gets_a_clear_vietnamese_refusal(
    app: Flask, world: dict, tmp_path: Any
) -> None:
    """Cooperative B, signed in on a phone, opens A's batch (not found, in Vietnamese), then
    on its own batch records a receipt at A's warehouse: the form comes back with the
    refusal next to the place, in Vietnamese, naming A's GLN; nothing is stored."""
    from tests.browser import chromium, live_server
    from tests.conftest import TEST_PASSWORD

    stored = count_events(app)
    with live_server(app) as base, chromium({"width": 390, "height": 844}) as page:
        page.goto(f"{base}/login")
        page.fill("#email", world["users"]["b"]["email"])
        page.fill("#password", TEST_PASSWORD)
        page.click("main button[type=submit]")

        answer = page.goto(f"{base}/traceability/batches/{world['a_batch']}")
        assert answer is not None and answer.status == 404
        assert "Không tìm thấy trang" in page.locator("h1").inner_text()
        assert "Vải thiều" not in page.content()  # nothing of A's batch is shown

        page.goto(f"{base}/traceability/batches/{world['b_batch']}")
        page.select_option("#step", "receive")
        page.click("text=Địa điểm khác")  # another place: A's warehouse, by its GLN
        page.fill("#place_gln", A_SITE_GLN)
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click("text=Ghi nhận công đoạn")
        assert posted.value.status == 403
        refusal = page.locator(".field-error").inner_text()
        assert A_SITE_GLN in refusal
        assert "không thuộc về bạn" in refusal
        assert "chỉ được ghi sự kiện về lô hàng" in refusal
        assert page.locator("#place_gln").input_value() == A_SITE_GLN  # kept as typed
        page.screenshot(path=str(tmp_path / "refusal.png"), full_page=True)
    assert count_events(app) == stored


# --- identifiers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identifier",
    [
        f"https://id.gs1.org/01/{GTIN14}/10/LN2026-001",
        f"https://example.com/01/{GTIN14}/10/LN2026-001/21/A7Q2KX9P",
        f"http://127.0.0.1:5000/01/{GTIN14}/21/A7Q2KX9P",
        f"https://id.gs1.org/01/{GTIN14}",
        "https://id.gs1.org/01/08930000000018/10/X",  # wrong check digit
        f"https://id.gs1.org/01/{GTIN14}/10/A%2FB",  # an encoded lot
        f"https://example.com/shop/01/{GTIN14}/10/X",  # a path before the key
        "urn:epc:class:lgtin:8930000.000001.LN2026-001",
        "urn:epc:id:sgtin:8930000.000001.A7Q2KX9P",
    ],
)
def test_trade_items_read_as_gs1_reads_them(identifier: str) -> None:
    """The quick reading of plain Digital Links gives what biip (gs1.product_key) gives."""
    from traceability.gs1 import product_key

    assert ownership.trade_item(identifier) == product_key(identifier)


@pytest.mark.parametrize(
    "identifier",
    [
        "urn:epc:id:sscc:8930000.1000000007",
        "urn:epc:id:sgln:8930000.10001.0",
        "urn:epc:id:sgln:8930000.10001.12",
        "urn:epc:id:pgln:8930000.10001",
        "urn:epc:id:grai:8930000.00001.C1",
        "urn:epc:id:giai:8930000.T1",
        "urn:epc:id:gsrn:8930000.0000000001",
    ],
)
def test_every_spelling_of_a_key_is_the_same_key(app: Flask, identifier: str) -> None:
    """Each URN and Digital Link spelling of a GS1 key reads back as that key, so a first
    use or a transfer in one spelling counts for all."""
    key = ownership.gs1_key(identifier)
    assert key is not None
    with app.app_context():
        names = ownership.spellings(*key)
    assert identifier in names and len(names) >= 3
    for name in names:
        assert ownership.gs1_key(name) == key, name


# --- received lots in the guided forms -------------------------------------------------------


def test_the_guided_form_offers_a_lot_shipped_to_the_cooperative(
    client: FlaskClient, world: dict, make_org: Callable[..., int], make_user: Callable, app: Flask
) -> None:
    """Before A ships its lot to B, B's batches page does not list it and its page is not
    found; once a shipment to B is recorded, B's batches page lists it as received and its
    page offers the step form (no harvest, no editing, no labels): B records a packing as
    itself, a harvest is refused and stores nothing; C, to whom nothing was shipped, still
    finds nothing."""
    from tests.conftest import TEST_PASSWORD
    from traceability.models import EpcisEvent

    a_page = f"/traceability/batches/{world['a_batch']}"
    login(client, world["users"]["b"]["email"])
    assert "LN2026-001" not in client.get("/traceability/batches").get_data(as_text=True)
    assert client.get(a_page).status_code == 404

    ship = event(
        bizStep="shipping",
        eventTime="2026-06-11T05:00:00+07:00",
        quantityList=[{"epcClass": A_LOT, "quantity": 100.0}],
        sourceList=[{"type": "owning_party", "source": f"https://id.gs1.org/417/{A_GLN}"}],
        destinationList=[
            {"type": "owning_party", "destination": f"https://id.gs1.org/417/{B_GLN}"}
        ],
    )
    assert capture(client, headers_of(world, "a"), ship).status_code == 202

    listed = client.get("/traceability/batches").get_data(as_text=True)
    received = listed[listed.index('id="received"') :]
    assert f'href="{a_page}"' in received and "LN2026-001" in received
    page = client.get(a_page)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="harvest"' not in html and 'value="pack"' in html
    assert "/edit" not in html and "issue_labels" not in html and 'id="labels"' not in html

    stored = count_events(app)
    form = {"csrf_token": csrf_from(html), "event_date": "2026-06-12", "event_clock": "08:00"}
    refused = client.post(a_page, data={**form, "step": "harvest"})
    assert refused.status_code == 422 and count_events(app) == stored
    packed = client.post(a_page, data={**form, "step": "pack", "confirm": "1"})
    assert packed.status_code == 302, packed.get_data(as_text=True)
    assert count_events(app) == stored + 1

    def last_event() -> tuple[str | None, int | None]:
        row = db.session.scalars(select(EpcisEvent).order_by(EpcisEvent.id.desc())).first()
        return row.biz_step, row.organisation_id

    assert in_app(app, last_event) == ("packing", world["B"])

    c_org = make_org(name="HTX Lục Sơn", gln=C_GLN)
    _c_user, c_email = make_user("cooperative", org_id=c_org)
    stranger = app.test_client()
    login(stranger, c_email, TEST_PASSWORD)
    assert stranger.get(a_page).status_code == 404
    assert "LN2026-001" not in stranger.get("/traceability/batches").get_data(as_text=True)
