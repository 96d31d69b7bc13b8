"""A portal simulator implementing ``integrations/PORTAL_CONTRACT.md`` (the shared
contract and its amendments), with faults on demand.

Auth with expiring tokens, idempotency keys, validation with problem+json, a rate limit
per client with 429 and Retry-After, asynchronous accept/reject of trace records, updates
of a record by revision, and injected failures: 5xx before commit, answers dropped after
commit, latency. It counts what it stored so tests can check that every record arrived
exactly once (and every update was applied once).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request


@dataclass
class Faults:
    error_rate: float = 0.0  # 500/502/503 before anything is stored
    throttle_rate: float = 0.0  # random 429s
    drop_after_commit: float = 0.0  # stored, then the answer is lost (503)
    latency_ms: int = 0
    rate_limit: int = 20  # requests per second per client
    token_ttl: float = 300.0
    reject_rate: float = 0.0  # trace records later rejected
    accept_after: float = 0.05  # seconds before a record's fate is known
    down: bool = False  # answer 503 to everything


@dataclass
class State:
    tokens: dict[str, tuple[float, str]] = field(default_factory=dict)  # expiry, client
    idempotency: dict[str, tuple[str, int, Any]] = field(default_factory=dict)
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    creations: dict[str, int] = field(default_factory=dict)  # how often each key stored something
    key_hits: dict[str, int] = field(default_factory=dict)  # requests seen per Idempotency-Key
    window: dict[str, list[float]] = field(default_factory=dict)
    requests: int = 0
    throttled: int = 0  # 429s answered
    serial: int = 0  # the last record id given
    updates: int = 0  # revisions applied by PUT


def canonical_digest(body: Any) -> str:
    """The same JSON, however it was spaced or ordered, has the same digest."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


TAX = re.compile(r"^\d{10}(-\d{3})?$")
GTIN = re.compile(r"^\d{14}$")


def problem(
    status: int, title: str, detail: str = "", errors: list | None = None, **headers: str
) -> Response:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors or [],
    }
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json"
    )
    for key, value in headers.items():
        response.headers[key.replace("_", "-")] = value
    return response


def create_simulator(
    faults: Faults | None = None,
    seed: int | None = None,
    client_id: str = "nguon",
    client_secret: str = "secret",  # noqa: S107 - the simulator's documented test credential
) -> Flask:
    app = Flask("portal-sim")
    app.faults = faults or Faults()  # type: ignore[attr-defined]
    app.state = State()  # type: ignore[attr-defined]
    lock = threading.Lock()
    rng = random.Random(seed)  # noqa: S311 - fault injection, not security

    def f() -> Faults:
        return app.faults  # type: ignore[attr-defined]

    def st() -> State:
        return app.state  # type: ignore[attr-defined]

    @app.before_request
    def _faults_and_auth() -> Response | None:
        with lock:
            st().requests += 1
        if f().latency_ms:
            time.sleep(f().latency_ms / 1000)
        if request.path.startswith("/__sim"):
            return None
        if f().down:
            return problem(503, "Service Unavailable", "the portal is down")
        if request.path == "/oauth/token":
            return None
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with lock:
            expiry, client = st().tokens.get(token, (0.0, ""))
            if expiry < time.monotonic():
                return problem(401, "Unauthorized", "token missing or expired")
            # The limit is the client's, however many tokens (workers) it holds.
            now = time.monotonic()
            window = [t for t in st().window.get(client, []) if now - t < 1.0]
            if len(window) >= f().rate_limit or rng.random() < f().throttle_rate:
                st().window[client] = window
                st().throttled += 1
                return problem(429, "Too Many Requests", "slow down", Retry_After="1")
            window.append(now)
            st().window[client] = window
            if rng.random() < f().error_rate:
                return problem(rng.choice([500, 502, 503]), "Server Error", "injected failure")
        return None

    @app.post("/oauth/token")
    def token() -> Any:
        form = request.form
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != client_id
            or (form.get("client_secret") != client_secret)
        ):
            return problem(401, "Unauthorized", "bad client credentials")
        value = secrets.token_urlsafe(24)
        with lock:
            st().tokens[value] = (time.monotonic() + f().token_ttl, client_id)
        return jsonify(access_token=value, token_type="Bearer", expires_in=f().token_ttl)  # noqa: S106

    def idempotent(store: Any) -> Response:
        """Run ``store`` once per Idempotency-Key; the same key and body replays the answer."""
        key = request.headers.get("Idempotency-Key")
        if not key:
            return problem(
                400,
                "Bad Request",
                "Idempotency-Key is required",
                [{"field": "Idempotency-Key", "code": "required", "message": "missing"}],
            )
        digest = canonical_digest(request.get_json(silent=True))
        with lock:
            st().key_hits[key] = st().key_hits.get(key, 0) + 1
            seen = st().idempotency.get(key)
            if seen is not None:
                if seen[0] != digest:
                    return problem(
                        422,
                        "Unprocessable Entity",
                        "idempotency_key_reused",
                        [
                            {
                                "field": "Idempotency-Key",
                                "code": "idempotency_key_reused",
                                "message": "the key was used with another body",
                            }
                        ],
                    )
                return Response(json.dumps(seen[2]), status=seen[1], mimetype="application/json")
            status, body = store()
            if status < 300:
                st().idempotency[key] = (digest, status, body)
                st().creations[key] = st().creations.get(key, 0) + 1
        if status == 409:
            response = problem(409, "Conflict", "revision_conflict",
                               [{"field": "revision", "code": "revision_conflict",
                                 "message": "not the next revision"}])  # fmt: skip
            response.set_data(json.dumps({**json.loads(response.get_data()), **body}))
            return response
        if status == 404:
            return problem(404, "Not Found", "no such record", body)
        if status >= 400:
            return problem(status, "Unprocessable Entity", "validation failed", body)
        if rng.random() < f().drop_after_commit:
            return problem(503, "Service Unavailable", "answer lost after commit")
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def validate(body: Any, rules: dict[str, Any]) -> list[dict[str, str]]:
        errors = []
        if not isinstance(body, dict):
            return [{"field": "", "code": "type", "message": "expected a JSON object"}]
        for name, check in rules.items():
            message = check(body.get(name))
            if message:
                errors.append({"field": name, "code": "invalid", "message": message})
        return errors

    def required(value: Any) -> str | None:
        return None if value not in (None, "", []) else "is required"

    @app.put("/api/v1/organizations/<tax_code>")
    def put_organization(tax_code: str) -> Response:
        body = request.get_json(silent=True)

        def store() -> tuple[int, Any]:
            errors = validate(body, {"name": required})
            if not TAX.match(tax_code):
                errors.append(
                    {"field": "tax_code", "code": "format", "message": "10 digits or 10-3"}
                )
            if errors:
                return 422, errors
            created = tax_code not in st().organizations
            st().organizations[tax_code] = body
            return (201 if created else 200), {"tax_code": tax_code}

        return idempotent(store)

    @app.put("/api/v1/locations/<code>")
    def put_location(code: str) -> Response:
        body = request.get_json(silent=True)

        def store() -> tuple[int, Any]:
            errors = validate(body, {"name": required})
            if errors:
                return 422, errors
            created = code not in st().locations
            st().locations[code] = body
            return (201 if created else 200), {"location_code": code}

        return idempotent(store)

    @app.put("/api/v1/products/<gtin>")
    def put_product(gtin: str) -> Response:
        body = request.get_json(silent=True)

        def store() -> tuple[int, Any]:
            errors = validate(body, {"name": required, "producer_tax_code": required})
            if not GTIN.match(gtin):
                errors.append({"field": "gtin", "code": "format", "message": "14 digits"})
            elif body and body.get("producer_tax_code") not in st().organizations:
                errors.append(
                    {
                        "field": "producer_tax_code",
                        "code": "unknown",
                        "message": "send the organisation first",
                    }
                )
            if errors:
                return 422, errors
            created = gtin not in st().products
            st().products[gtin] = body
            return (201 if created else 200), {"gtin": gtin}

        return idempotent(store)

    def record_errors(body: Any) -> list[dict[str, str]]:
        errors = validate(
            body,
            {
                "trace_code": required,
                "gtin": required,
                "lot": required,
                "producer_tax_code": required,
                "production_date": required,
            },
        )
        if isinstance(body, dict) and body.get("gtin") not in st().products:
            errors.append({"field": "gtin", "code": "unknown", "message": "send the product first"})
        return errors

    def store_record(body: Any) -> tuple[int, Any]:
        errors = record_errors(body)
        if errors:
            return 422, errors
        st().serial += 1
        record_id = f"TR-{st().serial:07d}"
        fate = "rejected" if rng.random() < f().reject_rate else "accepted"
        st().records[record_id] = {
            "body": body,
            "fate": fate,
            "due": time.monotonic() + f().accept_after,
            "revision": 1,
            "history": [body],
        }
        return 202, {"record_id": record_id, "status": "pending"}

    def update_record(record_id: str, body: Any) -> tuple[int, Any]:
        """The next revision of a record: the whole record as it now stands."""
        record = st().records.get(record_id)
        if record is None:
            return 404, [{"field": "record_id", "code": "unknown", "message": record_id}]
        revision = body.get("revision") if isinstance(body, dict) else None
        if not isinstance(revision, int) or isinstance(revision, bool):
            return 422, [{"field": "revision", "code": "required", "message": "an integer"}]
        if revision != record["revision"] + 1:
            return 409, {"code": "revision_conflict", "current_revision": record["revision"]}
        fields = {k: v for k, v in body.items() if k != "revision"}
        errors = record_errors(fields)
        if fields.get("trace_code") != record["body"]["trace_code"]:
            errors.append({"field": "trace_code", "code": "immutable",
                           "message": "a record keeps its trace code"})  # fmt: skip
        if errors:
            return 422, errors
        record.update(
            body=fields,
            revision=revision,
            fate="rejected" if rng.random() < f().reject_rate else "accepted",
            due=time.monotonic() + f().accept_after,
        )
        record["history"].append(fields)
        st().updates += 1
        return 200, {"record_id": record_id, "revision": revision, "status": "pending"}

    @app.post("/api/v1/trace-records")
    def post_record() -> Response:
        body = request.get_json(silent=True)
        return idempotent(lambda: store_record(body))

    @app.put("/api/v1/trace-records/<record_id>")
    def put_record(record_id: str) -> Response:
        body = request.get_json(silent=True)
        return idempotent(lambda: update_record(record_id, body))

    @app.post("/api/v1/trace-records:batch")
    def post_records() -> Response:
        """Up to 100 records; each carries its own idempotency_key (the same keys as the
        single endpoint's header), so a record is stored once however it is retried."""
        body = request.get_json(silent=True)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not 1 <= len(records) <= 100:
            return problem(
                422,
                "Unprocessable Entity",
                "records: 1 to 100 records",
                [{"field": "records", "code": "size", "message": "1 to 100 records"}],
            )
        results = []
        with lock:
            for index, record in enumerate(records):
                record = dict(record)
                key = record.pop("idempotency_key", None)
                if not key:
                    results.append(
                        {
                            "index": index,
                            "status": "error",
                            "error": {
                                "field": "idempotency_key",
                                "code": "required",
                                "message": "missing",
                            },
                        }
                    )
                    continue
                st().key_hits[key] = st().key_hits.get(key, 0) + 1
                digest = canonical_digest(record)
                seen = st().idempotency.get(key)
                if seen is not None:
                    if seen[0] != digest:
                        results.append(
                            {
                                "index": index,
                                "status": "error",
                                "error": {
                                    "field": "idempotency_key",
                                    "code": "idempotency_key_reused",
                                    "message": "the key was used with another body",
                                },
                            }
                        )
                    else:
                        results.append({"index": index, "status": "pending", **seen[2]})
                    continue
                status, answer = store_record(record)
                if status >= 400:
                    results.append({"index": index, "status": "error", "errors": answer})
                    continue
                st().idempotency[key] = (digest, status, answer)
                st().creations[key] = st().creations.get(key, 0) + 1
                results.append(
                    {"index": index, "status": "pending", "record_id": answer["record_id"]}
                )
        if rng.random() < f().drop_after_commit:
            return problem(503, "Service Unavailable", "answer lost after commit")
        return Response(json.dumps({"results": results}), status=207, mimetype="application/json")

    @app.get("/api/v1/trace-records/<record_id>")
    def get_record(record_id: str) -> Any:
        with lock:
            record = st().records.get(record_id)
        if record is None:
            return problem(404, "Not Found", f"no record {record_id}")
        status = "pending" if time.monotonic() < record["due"] else record["fate"]
        reasons = ["stage list incomplete (simulated rejection)"] if status == "rejected" else []
        return jsonify(
            record_id=record_id, revision=record["revision"], status=status, reasons=reasons
        )

    @app.get("/api/v1/trace-records")
    def find_records() -> Any:
        code = request.args.get("trace_code")
        with lock:
            found = [
                {"record_id": rid, "trace_code": r["body"]["trace_code"], "lot": r["body"]["lot"]}
                for rid, r in st().records.items()
                if code is None or r["body"]["trace_code"] == code
            ]
        return jsonify(found)

    @app.get("/__sim/stats")
    def stats() -> Any:
        with lock:
            codes: dict[str, int] = {}
            for record in st().records.values():
                codes[record["body"]["trace_code"]] = codes.get(record["body"]["trace_code"], 0) + 1
            return jsonify(
                organizations=len(st().organizations),
                products=len(st().products),
                records=len(st().records),
                duplicate_creations=sum(1 for n in st().creations.values() if n > 1),
                records_per_trace_code_max=max(codes.values(), default=0),
                requests=st().requests,
                throttled=st().throttled,
                updates=st().updates,
            )

    return app
