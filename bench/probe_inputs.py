"""A probe of hostile inputs: how many answers are 5xx, per surface.

Builds the app on a fresh database (SQLite in a temporary folder, or PostgreSQL with
``--database-url``), loads the demo, signs in as each demo role and sends a catalogue of
hostile inputs to every surface a client reaches:

- ``api``: every operation of ``/api/v1/openapi.json``: each body property in turn set to
  each hostile JSON value, raw bodies that are not strict JSON, ids and page numbers beyond
  any column's range in the path and the query;
- ``html forms``: every form page (GET with a form, then POST), each field in turn set to
  each hostile string (as an officer and as a cooperative member), the login form included;
- ``report form``: the public report form the same way, anonymously;
- ``epcis``: capture and single-event capture with hostile values in an EPCIS document,
  documents that are not strict JSON, and the query interface's arguments;
- ``resolver``: GS1 Digital Link paths and query strings with hostile keys and values;
- ``labels``: label images, sheets and previews with hostile sizes and layout arguments.

A 5xx (or an exception escaping the app) counts against the surface. The table shows inputs
tried and 5xx; ``--show`` lists the failing requests. It runs on any checkout of the
project (``--root``), so main's code can be probed with the same catalogue:

    .venv/bin/python bench/probe_inputs.py
    ../old-checkout/.venv/bin/python bench/probe_inputs.py --root ../old-checkout
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

HOSTILE_STRINGS: list[str | bytes] = [
    "x" * 5000,  # longer than any column
    "a\x00b",  # NUL
    "¹²³",  # superscript digits: str.isdigit() says yes, int() says no
    "-1",
    "0",
    "3000000000",  # beyond a 32-bit id
    "10000000000000000000",  # beyond 64 bits
    "9" * 40,
    "1e400",
    "NaN",
    "Infinity",
    "-0.000000001",
    "0001-01-01",
    "9999-12-31T23:59:60Z",
    "",
    " ",
    "<script>alert(1)</script>",
    "'; DROP TABLE asset; --",
    "%00",
    "../../etc/passwd",
    "http://127.0.0.1:1/",
    "١٢٣",  # Arabic-Indic digits
    b"\xff\xfe",  # not UTF-8
    b"\xed\xa0\x80",  # an encoded lone surrogate
]
HOSTILE_JSON: list[Any] = [
    "x" * 5000,
    "a\x00b",
    "\ud800",
    "¹²³",
    -1,
    3000000000,
    10**19,
    10**30,
    -(10**30),
    1.5,
    1e308,
    "NaN",
    True,
    None,
    [],
    {},
    [[[[[[["deep"]]]]]]],
    "0001-01-01T00:00:00+14:00",
    "2026-01-01t00:00:00z",
    "9" * 40,
]
RAW_BODIES: list[bytes] = [
    b'{"x": NaN}',
    b'{"x": Infinity}',
    b'{"x": -Infinity}',
    b'{"x": 1e400}',
    b'{"x": ' + b"9" * 5000 + b"}",
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 300 + b"1" + b"}" * 300,
    b'{"x": "\xff\xfe"}',
    b'{"x": "\\ud800"}',
    b'{"x": "\\u0000"}',
    b"\xef\xbb\xbf{}",
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
]
BIG_IDS = ["3000000000", "10000000000000000000", "99999999999999999999999999"]
PAGES = ["-1", "0", "3000000000", "10000000000000000000", "1e3", "¹", "NaN"]

Surface = str


class Probe:
    def __init__(self, app: Any, show: bool) -> None:
        self.app = app
        self.show = show
        self.tried: collections.Counter[Surface] = collections.Counter()
        self.errors: collections.Counter[Surface] = collections.Counter()
        self.failures: list[str] = []

    def send(
        self, surface: Surface, client: Any, method: str, url: str, note: str = "", **kwargs: Any
    ) -> Any:
        self.tried[surface] += 1
        try:
            response = client.open(url, method=method, **kwargs)
        except Exception as exc:  # an exception escaping the app: a 500 in production
            self.errors[surface] += 1
            self.failures.append(
                f"{surface}: {method} {url[:120]} {note} -> {type(exc).__name__}: {exc}"[:300]
            )
            return None
        if response.status_code >= 500:
            self.errors[surface] += 1
            self.failures.append(
                f"{surface}: {method} {url[:120]} {note} -> {response.status_code}"
            )
        return response


def _values(value: str | bytes) -> Any:
    return value.decode("latin-1") if isinstance(value, bytes) else value


FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
FIELD_RE = re.compile(r"<(input|select|textarea)\b([^>]*)>", re.I)
ATTR_RE = re.compile(r'(\w[\w-]*)="([^"]*)"')


def forms_of(html: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, action, {field: default}) of each form in ``html``."""
    found = []
    for attrs, body in FORM_RE.findall(html):
        a = dict(ATTR_RE.findall(attrs))
        fields: dict[str, str] = {}
        for _tag, field_attrs in FIELD_RE.findall(body):
            f = dict(ATTR_RE.findall(field_attrs))
            name = f.get("name")
            if not name or f.get("type") in ("submit", "file", "button"):
                continue
            if f.get("type") in ("checkbox", "radio") and "checked" not in field_attrs:
                fields.setdefault(name, "")
                continue
            fields[name] = f.get("value", "")
        if a.get("method", "get").lower() == "post":
            found.append(("POST", a.get("action", ""), fields))
    return found


def encode_form(fields: dict[str, str | bytes]) -> bytes:
    from urllib.parse import quote_from_bytes

    parts = []
    for key, value in fields.items():
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        parts.append(quote_from_bytes(key.encode()) + "=" + quote_from_bytes(raw))
    return "&".join(parts).encode()


def probe_form_page(probe: Probe, surface: str, client: Any, page: str) -> None:
    response = probe.send(surface, client, "GET", page)
    if response is None or response.status_code != 200:
        return
    for _method, action, fields in forms_of(response.get_data(as_text=True)):
        target = action or page
        if target.startswith(("/logout", "/lang")):
            continue
        for name in fields:
            if name == "csrf_token":
                continue
            for value in HOSTILE_STRINGS:
                data = {**fields, name: value}
                probe.send(
                    surface,
                    client,
                    "POST",
                    target,
                    note=f"{name}={value[:40]!r}",
                    data=encode_form(data),
                    content_type="application/x-www-form-urlencoded",
                )


def html_pages(app: Any, ids: dict[str, int]) -> list[str]:
    """Every GET rule of the HTML blueprints with its int arguments filled with real ids."""
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith(("/api/", "/epcis", "/static")):
            continue
        if "POST" not in rule.methods:
            continue
        url = rule.rule
        for name in re.findall(r"<int:(\w+)>", url):
            url = url.replace(f"<int:{name}>", str(ids.get(name, 1)))
        if "<" in url:
            continue
        pages.append(url)
    return sorted(pages)


def id_urls(app: Any) -> list[str]:
    """GET rules with ids beyond any column (and negative)."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or "<int:" not in rule.rule:
            continue
        for big in [*BIG_IDS, "-1"]:
            url = re.sub(r"<int:\w+>", big, rule.rule)
            url = re.sub(r"<any\(([^),]+)[^>]*>", lambda m: m.group(1).strip("'\" "), url)
            if "<" not in url:
                urls.append(url)
    return urls


def sample_from_schema(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> Any:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return sample_from_schema(spec["components"]["schemas"][name], spec, depth + 1)
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {
            k: sample_from_schema(v, spec, depth + 1)
            for k, v in schema.get("properties", {}).items()
            if not v.get("readOnly")
        }
    if kind == "array":
        return [sample_from_schema(schema.get("items", {}), spec, depth + 1)] if depth < 4 else []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if schema.get("format") == "date":
        return "2026-01-01"
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    return "x"


def probe_api(probe: Probe, client: Any, headers: dict[str, str]) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            base = re.sub(r"\{[^}]+\}", "1", path)
            for big in BIG_IDS:
                if "{" in path:
                    url = re.sub(r"\{[^}]+\}", big, path)
                    probe.send("api", client, method.upper(), url, headers=headers, json={})
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                for value in [*PAGES, *HOSTILE_STRINGS[:14]]:
                    query = f"{parameter['name']}={_quote(value)}"
                    probe.send("api", client, method.upper(), f"{base}?{query}", headers=headers)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if not body:
                continue
            # A PATCH changes only what it names: one hostile member reaches the database
            # alone; a POST carries a sample of every member.
            sample = {} if method == "patch" else sample_from_schema(body["schema"], spec)
            if method == "patch":
                schema = body["schema"]
                if "$ref" in schema:
                    schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
                keys = [k for k, v in schema.get("properties", {}).items() if not v.get("readOnly")]
                sample = dict.fromkeys(keys)
            if isinstance(sample, dict):
                for key in sample:
                    for value in HOSTILE_JSON:
                        base_body = {} if method == "patch" else sample
                        probe.send(
                            "api",
                            client,
                            method.upper(),
                            base,
                            note=f"{key}={str(value)[:40]!r}",
                            headers={**headers, "Content-Type": "application/json"},
                            data=json.dumps({**base_body, key: value}, allow_nan=True),
                        )
            for raw in RAW_BODIES:
                probe.send(
                    "api",
                    client,
                    method.upper(),
                    base,
                    note=repr(raw[:40]),
                    headers={**headers, "Content-Type": "application/json"},
                    data=raw,
                )


def _quote(value: str | bytes) -> str:
    from urllib.parse import quote_from_bytes

    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote_from_bytes(raw)


EPCIS_EVENT = {
    "type": "ObjectEvent",
    "eventTime": "2026-05-01T08:00:00+07:00",
    "eventTimeZoneOffset": "+07:00",
    "action": "OBSERVE",
    "epcList": [],
    "bizStep": "inspecting",
    "readPoint": {"id": "urn:epc:id:sgln:8930000.00001.0"},
}


def epcis_document(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-05-01T08:00:00+07:00",
        "epcisBody": {"eventList": [event]},
    }


def probe_epcis(probe: Probe, client: Any, headers: dict[str, str], epc: str) -> None:
    event = {**EPCIS_EVENT, "epcList": [epc]}
    json_headers = {**headers, "Content-Type": "application/ld+json"}
    for key in [*event, "quantityList", "bizTransactionList", "ilmd"]:
        for value in HOSTILE_JSON:
            for path in ("/epcis/capture", "/epcis/events"):
                body = (
                    epcis_document({**event, key: value})
                    if path.endswith("capture")
                    else {
                        **event,
                        key: value,
                    }
                )
                probe.send(
                    "epcis",
                    client,
                    "POST",
                    path,
                    note=f"{key}={str(value)[:40]!r}",
                    headers=json_headers,
                    data=json.dumps(body, allow_nan=True),
                )
    for raw in RAW_BODIES:
        for path in ("/epcis/capture", "/epcis/events"):
            probe.send(
                "epcis", client, "POST", path, note=repr(raw[:40]), headers=json_headers, data=raw
            )
    for name in ("perPage", "nextPageToken", "GE_eventTime", "EQ_bizStep", "MATCH_epc"):
        for value in [*PAGES, *HOSTILE_STRINGS[:14]]:
            probe.send(
                "epcis", client, "GET", f"/epcis/events?{name}={_quote(value)}", headers=headers
            )
    for big in BIG_IDS:
        probe.send("epcis", client, "GET", f"/epcis/capture/{big}", headers=headers)
        probe.send("epcis", client, "GET", f"/epcis/events/{big}", headers=headers)


def probe_resolver(probe: Probe, client: Any, gtin: str, lot: str, serial: str) -> None:
    bases = [f"/01/{gtin}/10/{lot}", f"/01/{gtin}/21/{serial}", f"/01/{gtin}"]
    for value in HOSTILE_STRINGS:
        q = _quote(value)
        for url in (
            f"/01/{q}",
            f"/01/{gtin}/10/{q}",
            f"/01/{gtin}/21/{q}",
            f"{bases[0]}?linkType={q}",
            f"{bases[1]}?lang={q}",
            f"{bases[1]}?17={q}",
            f"/scans/{q}",
        ):
            for accept in ("text/html", "application/json", "application/linkset+json"):
                probe.send("resolver", client, "GET", url, headers={"Accept": accept})


def probe_labels(probe: Probe, client: Any, label_id: int, run_id: int) -> None:
    values = [*PAGES, *HOSTILE_STRINGS[:14], "300", "100000"]
    for value in values:
        q = _quote(value)
        for url in (
            f"/traceability/labels/{label_id}.png?px={q}",
            f"/traceability/labels/{label_id}.svg?px={q}",
            f"/traceability/label-runs/{run_id}/preview.png?px={q}",
            f"/traceability/label-runs/{run_id}/sheet.pdf?margin_top={q}",
            f"/traceability/label-runs/{run_id}/sheet.pdf?columns={q}",
            f"/traceability/label-runs/{run_id}/sheet.pdf?size={q}",
            f"/traceability/codes/{label_id}?page={q}",
            f"/traceability/batches?page={q}",
            f"/traceability/products?page={q}",
            f"/registry/cases?page={q}",
        ):
            probe.send("labels", client, "GET", url)
    for big in BIG_IDS:
        probe.send("labels", client, "GET", f"/traceability/labels/{big}.png")


def setup(database_url: str | None) -> Any:
    from alembic import command

    from nguon import create_app
    from nguon.migrate import alembic_config

    folder = Path(tempfile.mkdtemp(prefix="probe-"))
    os.environ["NGUON_INSTANCE_PATH"] = str(folder)
    url = database_url or f"sqlite:///{folder / 'probe.db'}"
    if url.startswith("postgresql"):  # a fresh database of that name
        from tests.conftest import ensure_postgres_database

        ensure_postgres_database(url, fresh=True)
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "probe-secret-key-which-is-long-enough-0123456789",
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            "RATELIMIT_ENABLED": False,
            "RATELIMIT_PUBLIC": "1000000 per minute",
        }
    )
    command.upgrade(alembic_config(url), "head")
    from nguon import demo
    from nguon.db import commit_boundary

    with app.app_context(), commit_boundary():
        demo.load(None, lambda *a, **k: None)
    return app


def facts(app: Any) -> dict[str, Any]:
    from sqlalchemy import select

    from nguon.db import db
    from nguon.models import User
    from nguon.services import create_token

    out: dict[str, Any] = {"tokens": {}}
    with app.app_context():
        from traceability.models import Batch, Label, LabelRun, Product

        session = db.session
        for user in session.scalars(select(User)):
            out["tokens"][user.role] = create_token(user, "probe").token
        out["ids"] = {}
        for model, names in (
            ("registry.models:IPAsset", ["asset_id", "record_id"]),
            ("registry.models:Organisation", ["org_id"]),
            ("registry.models:ProductionArea", ["area_id"]),
            ("traceability.models:Batch", ["batch_id"]),
            ("traceability.models:Product", ["product_id"]),
            ("traceability.models:LabelRun", ["run_id"]),
            ("traceability.models:Label", ["label_id"]),
        ):
            module, cls = model.split(":")
            klass = getattr(__import__(module, fromlist=[cls]), cls)
            first = session.scalar(select(klass.id).order_by(klass.id))
            for name in names:
                out["ids"][name] = first or 1
        batch = session.scalar(select(Batch).order_by(Batch.id))
        product = session.get(Product, batch.product_id) if batch else None
        label = session.scalar(select(Label).order_by(Label.id))
        run = session.scalar(select(LabelRun).order_by(LabelRun.id))
        out["gtin"] = getattr(product, "gtin", "08930000000019")
        out["lot"] = getattr(batch, "lot", "LN2026-001")
        out["serial"] = getattr(label, "serial", "1")
        out["label_id"] = getattr(label, "id", 1)
        out["run_id"] = getattr(run, "id", 1)
        session.commit()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--show", action="store_true", help="list the failing requests")
    parser.add_argument("--only", default=None, help="one surface")
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    os.chdir(args.root)
    logging.disable(logging.NOTSET if args.show else logging.CRITICAL)
    app = setup(args.database_url)
    known = facts(app)
    probe = Probe(app, args.show)
    tokens = known["tokens"]
    only = args.only

    def wanted(surface: str) -> bool:
        return only is None or only == surface

    if wanted("api"):
        for role in ("admin", "cooperative"):
            probe_api(probe, app.test_client(), {"Authorization": f"Bearer {tokens[role]}"})
        for url in id_urls(app):
            if url.startswith("/api/"):
                probe.send(
                    "api",
                    app.test_client(),
                    "GET",
                    url,
                    headers={"Authorization": f"Bearer {tokens['admin']}"},
                )
    if wanted("html forms"):
        from nguon.demo import DEMO_USERS

        anonymous = app.test_client()
        probe_form_page(probe, "html forms", anonymous, "/login")
        for email, role, password, _name in DEMO_USERS:
            if role == "admin":
                continue
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
            client.post(
                "/login",
                data={
                    "email": email,
                    "password": password,
                    "csrf_token": token.group(1) if token else "",
                },
            )
            for url in html_pages(app, known["ids"]):
                if url.startswith(("/report", "/login", "/logout", "/lang", "/integrations")):
                    continue
                probe_form_page(probe, "html forms", client, url)
            for url in id_urls(app):
                if not url.startswith(("/api/", "/epcis")):
                    probe.send("html forms", client, "GET", url)
    if wanted("report form"):
        probe_form_page(probe, "report form", app.test_client(), "/report")
    if wanted("epcis"):
        probe_epcis(
            probe,
            app.test_client(),
            {"Authorization": f"Bearer {tokens['cooperative']}"},
            f"https://id.gs1.org/01/{known['gtin']}/21/{known['serial']}",
        )
    if wanted("resolver"):
        probe_resolver(probe, app.test_client(), known["gtin"], known["lot"], known["serial"])
    if wanted("labels"):
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        client.post(
            "/login",
            data={
                "email": "canbo@demo.nguon.vn",
                "password": "demo-officer-2026",
                "csrf_token": token.group(1) if token else "",
            },
        )
        probe_labels(probe, client, known["label_id"], known["run_id"])
    print(f"{'surface':<14} {'inputs':>7} {'5xx':>6}")
    for surface in probe.tried:
        print(f"{surface:<14} {probe.tried[surface]:>7} {probe.errors[surface]:>6}")
    print(f"{'total':<14} {sum(probe.tried.values()):>7} {sum(probe.errors.values()):>6}")
    if args.show:
        for line in probe.failures:
            print(line)


if __name__ == "__main__":
    main()
