"""The resolver's fast path answers scans exactly as the Flask view does, and leaves to
Flask whatever it is not sure of."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, select

from nguon.db import db
from tests.traceability.test_resolver import item, path_of, share  # noqa: F401
from traceability import scans
from traceability.fastpath import ResolverFastPath
from traceability.models import Scan

JSON = {"Accept": "application/json"}
# Headers whose values move between two requests (the limiter's counters are not undone).
VARIABLE_HEADERS = {"Date", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"}


def fast_path(app: Flask) -> ResolverFastPath:
    wsgi = app.wsgi_app
    while not isinstance(wsgi, ResolverFastPath):
        wsgi = getattr(wsgi, "wsgi_app", None) or wsgi.app  # ProxyFix keeps it as .app
    return wsgi


@contextmanager
def undone(connection: Connection) -> Iterator[None]:
    """Whatever the block writes is rolled back: two requests see the same database."""
    savepoint = connection.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()


def answer(client: FlaskClient, path: str, *, fast: bool, **kwargs: Any) -> tuple[Any, ...]:
    """Status, headers and body of a scan through one path (its writes undone), with the
    scan's random reference blanked."""
    app = client.application
    app.config["RESOLVER_FAST_PATH"] = fast
    before = fast_path(app).answered
    try:
        response = client.get(
            path, headers={"X-Request-ID": "same-id", **kwargs.pop("headers", {})}, **kwargs
        )
    finally:
        app.config["RESOLVER_FAST_PATH"] = True
    assert fast_path(app).answered == before + (1 if fast else 0)
    headers = sorted(
        (k, "" if k in VARIABLE_HEADERS else v) for k, v in response.headers.items() if k != "Date"
    )
    body = re.sub(r"/scans/[0-9a-f]{32}", "/scans/REF", response.get_data(as_text=True))
    return response.status_code, headers, body


def same_both_ways(client: FlaskClient, connection: Connection, path: str, **kwargs: Any) -> str:
    with undone(connection):
        client.get(path, **kwargs)  # through Flask the first time: renders what is kept
    with undone(connection):
        slow = answer(client, path, fast=False, **kwargs)
    with undone(connection):
        quick = answer(client, path, fast=True, **kwargs)
    assert quick == slow
    return quick[2]


def test_same_answers_both_ways(
    client: FlaskClient,
    item: dict,  # noqa: F811
    coop_headers: dict,
    in_tx: Callable[..., Any],
    _transaction: Connection,
) -> None:
    connection = _transaction
    first, second, third = (path_of(c["uri"]) for c in item["codes"])
    lot = path_of(item["lot"]["uri"])
    assert "Chính hãng" in same_both_ways(client, connection, first)  # genuine, Vietnamese
    assert "Genuine" in same_both_ways(client, connection, first, query_string={"lang": "en"})
    client.delete_cookie("lang")  # the choice is kept: back to the default language
    assert '"verdict": "genuine"' in same_both_ways(client, connection, first, headers=JSON)
    assert "Chính hãng" in same_both_ways(client, connection, lot)

    other = {"REMOTE_ADDR": "198.51.100.1"}  # another buyer scanned and shared first
    scanned = client.get(second, environ_base=other).get_data(as_text=True)
    share(client, scanned, "Thành phố Hà Nội", other)
    page = same_both_ways(client, connection, second, query_string={"lang": "en"})
    client.delete_cookie("lang")
    assert "already scanned 1 time(s)" in page and "in Thành phố Hà Nội" in page
    assert '"scan_count": 2' in same_both_ways(client, connection, second, headers=JSON)

    client.post(
        f"/api/v1/traceability/label-runs/{item['run']['id']}/void",
        json={"reason": "nhãn <rách>", "serials": [item["codes"][2]["serial"]]},
        headers=coop_headers,
    )
    assert "nhãn &lt;rách&gt;" in same_both_ways(client, connection, third)  # escaped

    label_id = in_tx(lambda: scans.flag(_label_id(first), "too_many_scans", "a & b"))
    del label_id
    assert "(a &amp; b)" in same_both_ways(client, connection, first)


def _label_id(path: str) -> int:
    from traceability.models import Label

    serial = path.rsplit("/", 1)[1]
    return db.session.scalar(select(Label.id).where(Label.serial == serial))


def test_fast_path_logs_the_scan(client: FlaskClient, item: dict, app: Flask) -> None:  # noqa: F811
    path = path_of(item["codes"][0]["uri"])
    client.get(path)  # Flask renders the batch's page
    before = fast_path(app).answered
    response = client.get(path, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert fast_path(app).answered == before + 1
    assert "đã được quét 1 lần" in response.get_data(as_text=True)
    ref = re.search(r"/scans/([0-9a-f]{32})/place", response.get_data(as_text=True)).group(1)
    with app.app_context():
        logged = db.session.scalar(select(Scan).where(Scan.ref == ref))
        assert logged is not None and logged.verdict == "scanned_before"
        assert logged.path == path and len(logged.fingerprint) == 32
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"headers": {"Accept": "application/linkset+json"}},
        {"query_string": {"linkType": "linkset"}},
        {"query_string": {"utm_source": "box"}},
        {"method": "HEAD"},
    ],
    ids=["linkset", "linkType", "other-query", "head"],
)
def test_left_to_flask(
    client: FlaskClient,
    item: dict,  # noqa: F811
    app: Flask,
    request_kwargs: dict,
) -> None:
    path = path_of(item["codes"][0]["uri"])
    client.get(path)
    before = fast_path(app).answered
    response = client.open(path, **{"method": "GET", **request_kwargs})
    assert response.status_code == 200
    assert fast_path(app).answered == before


def test_unknown_codes_signed_in_visitors_and_credentials_go_to_flask(
    client: FlaskClient,
    item: dict,  # noqa: F811
    app: Flask,
    logged_in: Callable[..., FlaskClient],
) -> None:
    path = path_of(item["codes"][0]["uri"])
    client.get(path)
    before = fast_path(app).answered
    assert client.get("/01/08930000000019/10/LN2026-001/21/AAAAAAAAAA").status_code == 404
    officer = logged_in("officer")  # a session cookie: Flask reads it
    assert officer.get(path).status_code == 200
    refused = client.get(path, headers={"Authorization": "Bearer ngn_not-a-token"})
    assert refused.status_code == 401  # credentials are Flask's to check
    assert fast_path(app).answered == before


def test_fast_path_counts_the_rate_limit(client: FlaskClient, app: Flask, item: dict) -> None:  # noqa: F811
    from nguon.ratelimit import limiter

    path = path_of(item["codes"][0]["uri"])
    client.get(path, headers=JSON)  # Flask serialises the batch's passport
    app.config["RATELIMIT_PUBLIC"] = "3 per minute"
    limiter.reset()
    try:
        before = fast_path(app).answered
        responses = [client.get(path, headers=JSON) for _ in range(4)]
    finally:
        app.config["RATELIMIT_PUBLIC"] = "100000 per minute"
        limiter.reset()
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert fast_path(app).answered == before + 3  # the fourth: Flask's 429
    assert [r.headers["X-RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "0"]
    assert responses[0].headers["X-RateLimit-Limit"] == "3"
    assert responses[3].mimetype == "application/problem+json"


def test_autocommit_read_agrees_with_the_sessions(own_app: Flask) -> None:
    """The reader's own read (libpq's prepared statement on PostgreSQL) gives the same
    label states as a read in a session, timestamps included."""
    from nguon.db import commit_boundary, utcnow
    from tests.factories import issued_batch
    from traceability import resolver
    from traceability.gs1 import DigitalLink
    from traceability.models import Batch, Label

    batch_id = issued_batch(own_app, items=3, lot=True, lot_prefix="AGREE-")
    with own_app.app_context(), commit_boundary():
        batch = db.session.get(Batch, batch_id)
        product = batch.product
        codes = db.session.scalars(
            select(Label).where(Label.batch_id == batch.id).order_by(Label.id)
        ).all()
        scanned, voided, fresh, lot = codes
        scanned.scan_count, scanned.first_scan_at = 2, utcnow().replace(microsecond=123456)
        scanned.first_scan_place = "Thành phố Hà Nội"
        voided.voided_at, voided.void_reason = utcnow(), "nhãn rách"
        links = [DigitalLink(product.gtin, lot="AGREE-00000", serial=c.serial) for c in codes[:3]]
        links += [
            DigitalLink(product.gtin, lot="AGREE-00000"),
            DigitalLink(product.gtin, serial=fresh.serial),  # without its lot
            DigitalLink(product.gtin, lot="OTHER", serial=fresh.serial),  # not its lot
            DigitalLink(product.gtin, lot="AGREE-00000", serial="NOSUCH"),
        ]
    with own_app.app_context():
        own = [resolver.lookup(link, app=own_app) for link in links]
        twice = [resolver.lookup(link, app=own_app) for link in links]  # prepared by now
        in_session = [resolver.lookup(link, in_session=True) for link in links]
    assert own == twice == in_session
    assert [state.id if state else None for state in own] == [
        scanned.id, voided.id, fresh.id, lot.id, fresh.id, None, None,
    ]  # fmt: skip
    assert own[0].first_scan_at.microsecond == 123456 and own[0].first_scan_at.tzinfo
    assert own[1].voided_at is not None and own[1].void_reason == "nhãn rách"


def test_label_read_after_a_migration_changed_a_column(own_app: Flask) -> None:
    """A migration that changes a column's type invalidates the kept prepared statement
    (PostgreSQL: "cached plan must not change result type"): it is prepared again."""
    from sqlalchemy import text

    from tests.factories import lot_code
    from traceability import resolver

    link = lot_code(own_app)
    with own_app.app_context():
        found = resolver.lookup(link, app=own_app)
        assert found is not None
        if db.engine(own_app).dialect.name == "postgresql":
            with db.engine(own_app).begin() as connection:
                connection.execute(
                    text("ALTER TABLE label ALTER COLUMN first_scan_place TYPE varchar(300)")
                )
        assert resolver.lookup(link, app=own_app) == found


def test_behind_a_trusted_proxy_each_consumer_is_their_own_client(
    own_app: Flask, tmp_path: Any
) -> None:
    """NGUON_PROXY_HOPS=1: the rate limit and the scan fingerprint follow the address the
    proxy forwards, on the fast path too; without it a forwarded address is ignored."""
    from tests.conftest import make_test_app
    from tests.factories import lot_code
    from traceability import resolver

    path = lot_code(own_app).path
    proxied = make_test_app(own_app.config["DATABASE_URL"], tmp_path / "proxied", PROXY_HOPS=1)
    try:
        client = proxied.test_client()
        client.get(path, headers=JSON)  # Flask renders the passport
        before = fast_path(proxied).answered

        def remaining(address: str) -> int:
            response = client.get(path, headers={**JSON, "X-Forwarded-For": address})
            assert response.status_code == 200
            return int(response.headers["X-RateLimit-Remaining"])

        first_a, second_a = remaining("203.0.113.9"), remaining("203.0.113.9")
        first_b = remaining("198.51.100.7")
        assert second_a == first_a - 1 and first_b == first_a  # a count per consumer
        assert fast_path(proxied).answered == before + 3
        with proxied.app_context():
            last = db.session.scalar(select(Scan).order_by(Scan.id.desc()))
            agent = "Werkzeug/" + importlib.metadata.version("werkzeug")
            assert last.fingerprint == resolver.client_fingerprint(
                proxied.config["SECRET_KEY"], "198.51.100.7", agent
            )
        direct = own_app.test_client()  # no trusted proxy: the header is only a claim
        direct.get(path, headers={**JSON, "X-Forwarded-For": "192.0.2.1"})
        with own_app.app_context():
            last = db.session.scalar(select(Scan).order_by(Scan.id.desc()))
            assert last.fingerprint == resolver.client_fingerprint(
                own_app.config["SECRET_KEY"], "127.0.0.1", agent
            )
    finally:
        db.dispose(proxied)


@pytest.mark.parametrize("serial", ['AB"C\\\\D', None, "Vải"], ids=["escaped", "lot", "unicode"])
def test_passport_members_are_written_as_the_json_provider_writes_them(
    app: Flask, serial: str | None
) -> None:
    from traceability.gs1 import DigitalLink
    from traceability.resolver import LabelState
    from traceability.resolver.passport import passport_json

    link = DigitalLink("08930000000019", lot="L/1", serial=serial)
    label = LabelState(1, 1, "item", None, None, None, None, 4, None, None)
    static = app.json.dumps({"gtin": "08930000000019", "lot": "L/1"})
    own = {
        "trace_code": link.uri(app.config["PUBLIC_URL"]),
        "serial": serial,
        "verdict": "scanned_before",
        "scan_count": 5,
    }
    expected = app.json.dumps({**own, "zz": 0})[: -len(', "zz": 0}')]  # sorted, as Flask writes
    body = passport_json(app, link, label, "scanned_before", static)
    assert body == f"{expected}, {static[1:]}"
