"""EPCIS query subscriptions: registered over the REST binding, delivered to a local
webhook through the outbox, signed, exactly once per event under injected failures."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from integrations import webhooks
from integrations.models import OutboxRow, OutboxState
from integrations.worker import SyncWorker
from nguon.db import db
from tests.integrations.conftest import FAST
from traceability import subscriptions as subs

DOCUMENT = json.loads(
    (Path(__file__).parents[1] / "traceability" / "data" / "every_event_type.json").read_text()
)
JSONLD = "application/ld+json"
TOKEN = "13df38d8275b13f05704629e5f1cf3d45d6132d5"


class Webhook:
    """A subscriber's endpoint on 127.0.0.1: answers from ``plan`` first (``500``,
    ``slow``, ``302``, ``ok``), then 200; keeps every request it received."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    hook.received.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    action = hook.plan.pop(0) if hook.plan else "ok"
                if action == "slow":
                    time.sleep(0.6)
                status = {"500": 500, "302": 302, "slow": 200, "ok": 200}[action]
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?src=nguon"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def deliveries(self) -> dict[str, dict[str, Any]]:
        """The distinct notifications (by Idempotency-Key), each signature checked."""
        found: dict[str, dict[str, Any]] = {}
        for request in self.received:
            headers, body = request["headers"], request["body"]
            expected = "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["GS1-Signature"], expected)
            key = headers["Idempotency-Key"]
            if key in found:  # a re-send carries exactly the same bytes
                assert found[key]["body"] == body
                continue
            found[key] = {"body": body, "document": json.loads(body), "headers": headers}
        return found

    def event_ids(self) -> list[str]:
        ids = []
        for delivery in self.deliveries().values():
            results = delivery["document"]["epcisBody"]["queryResults"]
            ids += [e["eventID"] for e in results["resultsBody"]["eventList"]]
        return ids


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def local(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhooks on 127.0.0.1 over http allowed (as NGUON_SUBSCRIPTION_ALLOW_* in tests)."""
    monkeypatch.setitem(app.config, "SUBSCRIPTION_ALLOW_HTTP", True)
    monkeypatch.setitem(app.config, "SUBSCRIPTION_ALLOW_PRIVATE", True)


def events(count: int, biz_step: str = "shipping", start: int = 0) -> list[dict[str, Any]]:
    template = DOCUMENT["epcisBody"]["eventList"][0]
    made = []
    for n in range(start, start + count):
        event = copy.deepcopy(template)
        event["bizStep"] = biz_step
        event["eventTime"] = (
            dt.datetime(2026, 6, 10, 6, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
        ).isoformat()
        made.append(event)
    return made


def foreign(event_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same events about another cooperative's place and product."""
    text = json.dumps(event_list).replace("414/8930000000019", "414/8931234000004")
    return json.loads(text.replace("01/08930000000019", "01/08931234000011"))


def capture(client: FlaskClient, headers: dict, event_list: list[dict[str, Any]]) -> None:
    document = {**DOCUMENT, "epcisBody": {"eventList": event_list}}
    response = client.post(
        "/epcis/capture", data=json.dumps(document), content_type=JSONLD, headers=headers
    )
    assert response.status_code == 202, response.get_data(as_text=True)


def subscribe(client: FlaskClient, headers: dict, **body: Any) -> Any:
    return client.post(
        "/epcis/queries/SimpleEventQuery/subscriptions",
        data=json.dumps({"signatureToken": TOKEN, **body}),
        content_type="application/json",
        headers=headers,
    )


def stored_ids(app: Flask, biz_step: str, organisation_id: int | None = None) -> set[str]:
    from traceability.models import EpcisEvent

    query = select(EpcisEvent.event_id).where(EpcisEvent.biz_step == biz_step)
    if organisation_id is not None:
        query = query.where(EpcisEvent.organisation_id == organisation_id)
    with app.app_context():
        return set(db.session.scalars(query))


def deliver(app: Flask, **client_options: Any) -> Any:
    client = webhooks.WebhookClient(allow_http=True, allow_private=True, **client_options)
    worker = SyncWorker(app, clients={"webhook": client}, settings=FAST)
    return worker.run(once=True, idle_sleep=0.005)


def outbox(app: Flask) -> list[OutboxRow]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                select(OutboxRow).where(OutboxRow.kind == webhooks.KIND).order_by(OutboxRow.id)
            )
        )
        db.session.expunge_all()
        return rows


def visible_ids(client: FlaskClient, headers: dict, biz_step: str) -> set[str]:
    """The eventIDs GET /events shows the caller for ``biz_step``."""
    body = client.get(f"/epcis/events?EQ_bizStep={biz_step}&perPage=1000", headers=headers).json
    return {e["eventID"] for e in body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]}


# --- the API --------------------------------------------------------------------------------


def test_subscribe_list_show_and_unsubscribe(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], local: None, webhook: Webhook
) -> None:
    coop = bearer("cooperative")
    response = subscribe(
        client, coop, dest=webhook.url, stream=True, query={"EQ_bizStep": ["shipping"]}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.json
    assert TOKEN not in response.get_data(as_text=True)  # the secret is never shown
    assert response.headers["Location"].endswith(created["subscriptionID"])
    assert created["stream"] is True and created["query"] == {"EQ_bizStep": ["shipping"]}
    listed = client.get("/epcis/queries/SimpleEventQuery/subscriptions", headers=coop).json
    assert [s["subscriptionID"] for s in listed] == [created["subscriptionID"]]
    assert client.get(response.headers["Location"], headers=coop).json["dest"] == webhook.url

    other = bearer("cooperative")  # another organisation sees and ends nothing of it
    assert client.get("/epcis/queries/SimpleEventQuery/subscriptions", headers=other).json == []
    assert client.get(response.headers["Location"], headers=other).status_code == 404
    assert client.delete(response.headers["Location"], headers=other).status_code == 404

    assert client.delete(response.headers["Location"], headers=coop).status_code == 204
    assert client.get(response.headers["Location"], headers=coop).status_code == 404
    assert client.get("/epcis/queries/SimpleEventQuery/subscriptions", headers=coop).json == []


@pytest.mark.parametrize(
    ("body", "problem_type", "field"),
    [
        ({"stream": True}, "SubscriptionControlsException", "dest"),
        ({"dest": "{hook}"}, "SubscriptionControlsException", "stream"),
        ({"dest": "{hook}", "stream": True, "schedule": {"hour": "1"}},
         "SubscriptionControlsException", "stream"),
        ({"dest": "{hook}", "schedule": {"hour": "25"}}, "SubscriptionControlsException",
         "schedule/hour"),
        ({"dest": "{hook}", "schedule": {"dayOfMonth": "30", "month": "2"}},
         "SubscriptionControlsException", "schedule"),
        ({"dest": "{hook}", "stream": "yes"}, "SubscriptionControlsException", "stream"),
        ({"dest": "{hook}", "stream": True, "signatureToken": "short"},
         "SubscriptionControlsException", "signatureToken"),
        ({"dest": "{hook}", "stream": True, "query": {"EQ_color": "red"}},
         "ValidationException", "EQ_color"),
        ({"dest": "{hook}", "stream": True, "query": {"perPage": 5}}, "ValidationException",
         "perPage"),
        ({"dest": "{hook}", "stream": True, "query": {"GE_eventTime": "yesterday"}},
         "ValidationException", "GE_eventTime"),
        ({"dest": "{hook}", "stream": True, "initialRecordTime": "2026-01-01"},
         "SubscriptionControlsException", "initialRecordTime"),
        ({"dest": "{hook}", "stream": True, "callback": "x"}, "SubscriptionControlsException",
         "callback"),
    ],
)  # fmt: skip
def test_bad_subscriptions_are_refused_and_store_nothing(
    app: Flask,
    client: FlaskClient,
    bearer: Callable[..., dict],
    local: None,
    webhook: Webhook,
    body: dict,
    problem_type: str,
    field: str,
) -> None:
    coop = bearer("cooperative")
    body = {k: (webhook.url if v == "{hook}" else v) for k, v in body.items()}
    response = client.post(
        "/epcis/queries/SimpleEventQuery/subscriptions",
        data=json.dumps({"signatureToken": TOKEN, **body}),
        content_type="application/json",
        headers=coop,
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["type"] == f"epcisException:{problem_type}"
    assert response.json["errors"][0]["field"] == field
    with app.app_context():
        assert db.session.scalar(select(func.count(subs.EpcisSubscription.id))) == 0


def test_only_signed_in_accounts_subscribe_to_known_queries(
    client: FlaskClient, bearer: Callable[..., dict], local: None, webhook: Webhook
) -> None:
    assert subscribe(client, {}, dest=webhook.url, stream=True).status_code == 401
    response = client.post(
        "/epcis/queries/NoSuchQuery/subscriptions",
        data=json.dumps({"dest": webhook.url, "stream": True, "signatureToken": TOKEN}),
        content_type="application/json",
        headers=bearer("cooperative"),
    )
    assert response.status_code == 404
    assert response.json["type"] == "epcisException:NoSuchNameException"
    for junk in (b"{oops", b"[1, 2]", b"\xff\xfe"):
        answer = client.post(
            "/epcis/queries/SimpleEventQuery/subscriptions",
            data=junk,
            content_type="application/json",
            headers=bearer("cooperative"),
        )
        assert answer.status_code == 400


# --- where a webhook may point ----------------------------------------------------------------


def resolver(*addresses: str) -> Callable[..., Any]:
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://hook.example.vn/x",  # not https
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://10.0.0.5/x",
        "https://192.168.1.20/x",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://[::ffff:127.0.0.1]/x",
        "https://0.0.0.0/x",
        "https://user:pw@hook.example.vn/x",
        "https://hook.example.vn/x#frag",
        "ftp://hook.example.vn/x",
        "https:///x",
        "not a url",
    ],
)
def test_refused_destinations(url: str) -> None:
    with pytest.raises(subs.DestinationRefused):
        subs.check_destination(
            url, allow_http=False, allow_private=False, resolve=resolver("203.0.113.9")
        )


def test_a_name_is_checked_by_every_address_it_resolves_to() -> None:
    ok = subs.check_destination(
        "https://hook.example.vn:8443/in?x=1", allow_http=False, allow_private=False,
        resolve=resolver("8.8.8.8"),
    )  # fmt: skip
    assert (ok.addresses, ok.port, ok.target, ok.host_header) == (
        ("8.8.8.8",), 8443, "/in?x=1", "hook.example.vn:8443",
    )  # fmt: skip
    with pytest.raises(subs.DestinationRefused, match="private"):
        subs.check_destination(
            "https://hook.example.vn/in", allow_http=False, allow_private=False,
            resolve=resolver("8.8.8.8", "10.1.2.3"),
        )  # fmt: skip
    # The settings for tests and local use allow loopback over http.
    local = subs.check_destination(
        "http://localhost:8080/in", allow_http=True, allow_private=True,
        resolve=resolver("127.0.0.1"),
    )  # fmt: skip
    assert local.addresses == ("127.0.0.1",)


def test_loopback_is_refused_at_subscription_unless_allowed(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], webhook: Webhook
) -> None:
    coop = bearer("cooperative")
    app.config["SUBSCRIPTION_ALLOW_HTTP"] = True
    try:
        response = subscribe(client, coop, dest=webhook.url, stream=True)
    finally:
        app.config["SUBSCRIPTION_ALLOW_HTTP"] = False
    assert response.status_code == 400
    assert "private, loopback or link-local" in response.json["detail"]
    assert subscribe(client, coop, dest=webhook.url, stream=True).status_code == 400  # http
    assert webhook.received == []


def test_the_address_is_checked_again_when_sending(webhook: Webhook) -> None:
    """DNS rebinding: a name that resolved to a public address when subscribing and
    to a private one now is not called; the connection goes to the checked address."""
    rebound = webhooks.WebhookClient(allow_http=True, resolve=resolver("127.0.0.1"))
    outcome = rebound.post("http://hook.example.vn/x", b"{}", {})
    assert outcome.kind == "invalid" and "private" in outcome.error
    assert webhook.received == []
    # Allowed, the request goes to the address checked, under the name given.
    port = webhook.server.server_port
    pinned = webhooks.WebhookClient(
        allow_http=True, allow_private=True, resolve=resolver("127.0.0.1")
    )
    assert pinned.post(f"http://hook.example.vn:{port}/x", b"{}", {}).kind == "ok"
    assert webhook.received[0]["headers"]["Host"] == f"hook.example.vn:{port}"


def test_redirects_are_not_followed(webhook: Webhook) -> None:
    webhook.plan = ["302"]
    client = webhooks.WebhookClient(allow_http=True, allow_private=True)
    outcome = client.post(webhook.url, b"{}", {})
    assert outcome.kind == "invalid" and "redirects are not followed" in outcome.error
    assert len(webhook.received) == 1


# --- delivery -------------------------------------------------------------------------------


def test_stream_delivers_each_matching_event_once_despite_failures(
    app: Flask,
    client: FlaskClient,
    bearer: Callable[..., dict],
    local: None,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """500s, a timeout and a worker that crashes between sending and recording: every
    matching event reaches the subscriber under exactly one Idempotency-Key, re-sends
    are byte-identical and signed; other organisations' events and other steps never."""
    coop, other = bearer("cooperative"), bearer("cooperative")
    created = subscribe(client, coop, dest=webhook.url, stream=True,
                        query={"EQ_bizStep": "shipping"})  # fmt: skip
    assert created.status_code == 201
    capture(client, coop, events(3) + events(2, "receiving", start=10))
    capture(client, other, foreign(events(4, start=20)))  # shipping, but not the subscriber's
    capture(client, coop, events(2, start=30))
    assert len(outbox(app)) == 2  # one notification per capture that matched

    # First send: the worker crashes after the subscriber took it, before recording it.
    real_record = SyncWorker._record
    crashed: list[int] = []

    def crash_once(self: SyncWorker, row: OutboxRow, outcome: Any, **kw: Any) -> None:
        if not crashed and outcome.kind == "ok":
            crashed.append(row.id)
            raise RuntimeError("killed between send and mark")
        real_record(self, row, outcome, **kw)

    monkeypatch.setattr(SyncWorker, "_record", crash_once)
    with pytest.raises(RuntimeError):
        deliver(app)
    assert len(webhook.received) == 1
    webhook.plan = ["500", "500", "slow", "500"]
    stats = deliver(app, read_timeout=0.3)
    assert stats.retried >= 4
    assert {r.state for r in outbox(app)} == {OutboxState.DONE}

    keys = [r["headers"]["Idempotency-Key"] for r in webhook.received]
    assert len(keys) > len(set(keys)) == 2  # re-sent, always under the row's own key
    expected = visible_ids(client, coop, "shipping")
    assert len(expected) == 5
    delivered = webhook.event_ids()
    assert sorted(delivered) == sorted(expected)  # each once; none of the other org's
    for delivery in webhook.deliveries().values():
        document = delivery["document"]
        results = document["epcisBody"]["queryResults"]
        assert results["subscriptionID"] == created.json["subscriptionID"]
        assert results["queryName"] == "SimpleEventQuery"
        assert delivery["headers"]["GS1-Subscription-ID"] == created.json["subscriptionID"]
        from traceability import epcis

        epcis.validate(document)
    assert webhook.received[0]["path"] == "/hook?src=nguon"
    shown = client.get(created.headers["Location"], headers=coop).json
    assert "lastNotifiedAt" in shown


def test_a_rolled_back_capture_notifies_nobody_and_unsubscribing_drops_waiting_rows(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], local: None, webhook: Webhook
) -> None:
    coop = bearer("cooperative")
    created = subscribe(client, coop, dest=webhook.url, stream=True)
    bad = events(2)
    bad[1]["eventTime"] = "not a time"
    response = client.post(
        "/epcis/capture",
        data=json.dumps({**DOCUMENT, "epcisBody": {"eventList": bad}}),
        content_type=JSONLD,
        headers=coop,
    )
    assert response.status_code == 400
    assert outbox(app) == []
    capture(client, coop, events(2))
    assert [r.state for r in outbox(app)] == [OutboxState.PENDING]
    assert client.delete(created.headers["Location"], headers=coop).status_code == 204
    assert [r.state for r in outbox(app)] == [OutboxState.SUPERSEDED]
    deliver(app)
    assert webhook.received == []


def test_initial_record_time_sends_what_was_captured_before(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], local: None, webhook: Webhook
) -> None:
    coop = bearer("cooperative")
    capture(client, coop, events(3))
    created = subscribe(client, coop, dest=webhook.url, stream=True,
                        initialRecordTime="2000-01-01T00:00:00Z")  # fmt: skip
    assert created.status_code == 201, created.get_data(as_text=True)
    deliver(app)
    assert sorted(webhook.event_ids()) == sorted(stored_ids(app, "shipping"))


def test_a_schedule_reports_what_it_collected(
    app: Flask,
    client: FlaskClient,
    bearer: Callable[..., dict],
    local: None,
    webhook: Webhook,
    in_tx: Callable[..., Any],
) -> None:
    coop = bearer("cooperative")
    daily = subscribe(client, coop, dest=webhook.url, schedule={"hour": "1", "minute": "5"},
                      query={"EQ_bizStep": ["shipping"]})  # fmt: skip
    assert daily.status_code == 201, daily.get_data(as_text=True)
    empty = subscribe(client, coop, dest=webhook.url, schedule={"hour": "1", "minute": "5"},
                      query={"EQ_bizStep": ["destroying"]}, reportIfEmpty=True)  # fmt: skip
    silent = subscribe(client, coop, dest=webhook.url, schedule={"hour": "1", "minute": "5"},
                       query={"EQ_bizStep": ["destroying"]})  # fmt: skip
    assert silent.status_code == 201
    next_run = dt.datetime.fromisoformat(daily.json["nextRunAt"])
    assert next_run.astimezone(subs.SCHEDULE_ZONE).time() == dt.time(1, 5)
    capture(client, coop, events(3) + events(1, "receiving", start=5))
    capture(client, coop, events(2, start=10))
    assert outbox(app) == []  # collected, not sent: the schedule has not fired

    assert in_tx(lambda: webhooks.run_schedule(next_run - dt.timedelta(seconds=1))) == 0
    assert in_tx(lambda: webhooks.run_schedule(next_run)) == 2  # the report and the empty one
    assert in_tx(lambda: webhooks.run_schedule(next_run)) == 0  # fired once
    deliver(app)
    by_subscription: dict[str, list[str]] = {}
    for delivery in webhook.deliveries().values():
        results = delivery["document"]["epcisBody"]["queryResults"]
        by_subscription[results["subscriptionID"]] = [
            e["eventID"] for e in results["resultsBody"]["eventList"]
        ]
    assert sorted(by_subscription[daily.json["subscriptionID"]]) == sorted(
        stored_ids(app, "shipping")
    )
    assert by_subscription[empty.json["subscriptionID"]] == []
    assert silent.json["subscriptionID"] not in by_subscription
    shown = client.get(daily.headers["Location"], headers=coop).json
    assert dt.datetime.fromisoformat(shown["nextRunAt"]) == next_run + dt.timedelta(days=1)


def test_the_commands_tick_and_deliver_without_a_portal(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], local: None, webhook: Webhook
) -> None:
    from nguon.cli import main

    result = app.test_cli_runner().invoke(main, ["epcis", "schedule"])
    assert result.exit_code == 0, result.output
    assert "notifications enqueued: 0" in result.output
    coop = bearer("cooperative")
    assert subscribe(client, coop, dest=webhook.url, stream=True).status_code == 201
    capture(client, coop, events(2))
    result = app.test_cli_runner().invoke(main, ["sync", "run", "--once"])
    assert result.exit_code == 0, result.output  # NGUON_PORTAL_URL is unset in tests
    assert len(webhook.event_ids()) == 2


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ({"hour": "1", "minute": "5"}, "2026-06-10T00:00:00+07:00", "2026-06-10T01:05:00+07:00"),
        ({"hour": "1", "minute": "5"}, "2026-06-10T01:05:00+07:00", "2026-06-11T01:05:00+07:00"),
        ({"second": "0/30"}, "2026-06-10T10:00:10+07:00", "2026-06-10T10:00:30+07:00"),
        ({"minute": "[0-10]/5"}, "2026-06-10T10:07:00+07:00", "2026-06-10T10:10:00+07:00"),
        ({"dayOfWeek": "1"}, "2026-06-10T10:00:00+07:00", "2026-06-15T00:00:00+07:00"),
        ({"dayOfMonth": "29", "month": "2"}, "2026-03-01T00:00:00+07:00",
         "2028-02-29T00:00:00+07:00"),
        ({"hour": "8,17"}, "2026-06-10T09:00:00+07:00", "2026-06-10T17:00:00+07:00"),
    ],
)  # fmt: skip
def test_schedules(schedule: dict, after: str, expected: str) -> None:
    fired = subs.next_run(schedule, dt.datetime.fromisoformat(after))
    assert fired == dt.datetime.fromisoformat(expected)


def test_subscribing_and_ending_are_audited_without_the_secret(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], local: None, webhook: Webhook
) -> None:
    from nguon.models import AuditEntry

    coop = bearer("cooperative")
    created = subscribe(client, coop, dest=webhook.url, stream=True)
    assert client.delete(created.headers["Location"], headers=coop).status_code == 204
    with app.app_context():
        entries = list(
            db.session.scalars(
                select(AuditEntry)
                .where(AuditEntry.record_table == "epcis_subscription")
                .order_by(AuditEntry.id)
            )
        )
        assert [e.action for e in entries] == ["insert", "delete"]
        assert all(TOKEN not in json.dumps(e.changes, default=str) for e in entries)
        assert webhook.url in json.dumps(entries[0].changes)


def test_one_failing_subscriber_never_holds_the_others(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], local: None, webhook: Webhook
) -> None:
    """A subscriber whose server is gone keeps failing until its rows give up
    (NGUON_SYNC_RETRY_FOR); the shared webhook circuit stays closed meanwhile and the
    subscriber that answers gets everything at once."""
    from dataclasses import replace

    from integrations.models import Circuit, SyncChannel
    from tests.net import free_port

    coop = bearer("cooperative")
    gone = subscribe(client, coop, dest=f"http://127.0.0.1:{free_port()}/gone", stream=True)
    assert gone.status_code == 201
    assert subscribe(client, coop, dest=webhook.url, stream=True).status_code == 201
    for start in (0, 10, 20, 30, 40, 50):
        capture(client, coop, events(1, start=start))
    settings = replace(FAST, retry_for=0.3, circuit_failures=2)
    worker = SyncWorker(
        app,
        clients={"webhook": webhooks.WebhookClient(allow_http=True, allow_private=True)},
        settings=settings,
    )
    stats = worker.run(once=True, idle_sleep=0.005)
    states = [r.state for r in outbox(app)]
    assert states.count(OutboxState.DONE) == 6 and states.count(OutboxState.PARKED) == 6
    assert stats.retried > 6 and stats.outages == 0
    assert len(webhook.event_ids()) == 6
    with app.app_context():
        channel = db.session.get(SyncChannel, "webhook")
        assert channel is None or channel.circuit == Circuit.CLOSED


def test_staff_see_every_organisation_and_a_deactivated_account_gets_nothing(
    app: Flask,
    client: FlaskClient,
    bearer: Callable[..., dict],
    local: None,
    webhook: Webhook,
    in_tx: Callable[..., Any],
) -> None:
    from nguon.models import User

    coop, other, officer = bearer("cooperative"), bearer("cooperative"), bearer("officer")
    assert subscribe(client, officer, dest=webhook.url, stream=True).status_code == 201
    leaving = subscribe(client, other, dest=webhook.url, stream=True)
    assert leaving.status_code == 201
    capture(client, coop, events(2))
    capture(client, other, foreign(events(1, start=5)))

    def deactivate() -> None:
        for user in db.session.scalars(select(User).where(User.organisation_id.is_not(None))):
            user.active = False

    in_tx(deactivate)  # every cooperative account, the subscriber "other" among them
    capture(client, officer, events(1, start=9))
    deliver(app)
    by_subscription: dict[str, int] = {}
    for delivery in webhook.deliveries().values():
        results = delivery["document"]["epcisBody"]["queryResults"]
        by_subscription[results["subscriptionID"]] = by_subscription.get(
            results["subscriptionID"], 0
        ) + len(results["resultsBody"]["eventList"])
    assert sum(by_subscription.values()) == 4 + 1  # officer: all 4; other: its 1, before
    assert by_subscription[leaving.json["subscriptionID"]] == 1


def with_quantity(event_list: list[dict[str, Any]], quantity: float) -> list[dict[str, Any]]:
    for event in event_list:
        event["quantityList"][0]["quantity"] = quantity
    return event_list


def test_a_named_query_with_conditions_sql_does_not_judge_is_subscribed_to(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict], local: None, webhook: Webhook
) -> None:
    """A subscription to a named query of ``/epcis/queries`` runs that query, including
    the conditions checked on each event's document (here a quantity); another
    organisation cannot subscribe to it."""
    coop, other = bearer("cooperative"), bearer("cooperative")
    made = client.post(
        "/epcis/queries",
        data=json.dumps(
            {"name": "big-shipments", "query": {"EQ_bizStep": ["shipping"], "GE_quantity": 1000}}
        ),
        content_type="application/json",
        headers=coop,
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    url = "/epcis/queries/big-shipments/subscriptions"
    body = json.dumps({"signatureToken": TOKEN, "dest": webhook.url, "stream": True})
    refused = client.post(url, data=body, content_type="application/json", headers=other)
    assert refused.status_code == 404
    created = client.post(url, data=body, content_type="application/json", headers=coop)
    assert created.status_code == 201, created.get_data(as_text=True)

    capture(
        client,
        coop,
        with_quantity(events(2), 1200.0)
        + with_quantity(events(3, start=5), 10.0)
        + with_quantity(events(1, "receiving", start=9), 5000.0),
    )
    deliver(app)
    big = {
        e["eventID"]
        for e in client.get("/epcis/queries/big-shipments/events", headers=coop).json["epcisBody"][
            "queryResults"
        ]["resultsBody"]["eventList"]
    }
    assert len(big) == 2
    assert sorted(webhook.event_ids()) == sorted(big)
