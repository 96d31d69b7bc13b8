"""GS1's resolver conformance checks, one test each, on both paths.

Each test is named after the check of GS1's resolver test suite
(gs1/GS1DL-resolver-testsuite, GS1DigitalLinkResolverTestSuite.js) or the clause of the
GS1-Conformant Resolver standard / GS1 Digital Link 1.2 it turns into a test, and runs
once with the fast path off (Flask answers) and once with it on (the fast path answers
what it takes, Flask the rest): the answers must be the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from nguon.db import db
from tests.traceability.test_fastpath import undone
from tests.traceability.test_resolver import (
    item,  # noqa: F401
    path_of,
)

LINKSET = "application/linkset+json"
ORIGIN = {"Origin": "https://ref.gs1.org"}


@pytest.fixture(params=["flask", "fast-path"])
def paths(request: pytest.FixtureRequest, app: Flask) -> Iterator[bool]:
    """Run the test through Flask alone, then with the fast path on."""
    fast = request.param == "fast-path"
    app.config["RESOLVER_FAST_PATH"] = fast
    yield fast
    app.config["RESOLVER_FAST_PATH"] = True


@pytest.fixture
def dl(item: dict, client: FlaskClient, _transaction: Any) -> str:  # noqa: F811
    """The Digital Link under test (an issued item code), its page already rendered once
    (writes undone) so the fast path, when on, takes what it can."""
    path = path_of(item["codes"][0]["uri"])
    with undone(_transaction):
        client.get(path)
        client.get(path, headers={"Accept": "application/json"})
    return path


def linkset_schema() -> dict[str, Any]:
    text = (
        resources.files("traceability") / "standards/linkset/gs1-linkset-schema.json"
    ).read_text()
    return json.loads(text)


def scans_of(app: Flask) -> int:
    from traceability.models import Label, Scan

    with app.app_context():
        return db.session.scalar(select(func.count(Scan.id))) or 0, db.session.scalar(
            select(func.sum(Label.scan_count))
        ) or 0


# --- the test suite's checks, in its order -----------------------------------------------------


def test_validDL_plausibleDL_isHttps(item: dict, app: Flask) -> None:  # noqa: F811
    """validDL / plausibleDL: a printed code is a GS1 Digital Link URI with its GTIN in 14
    digits (uncompressed, no convenience alphas). isHttps: on PUBLIC_URL's scheme (https
    in production; the tests serve http://127.0.0.1)."""
    from biip.gs1_digital_link_uris import GS1DigitalLinkURI

    uri = item["codes"][0]["uri"]
    parsed = GS1DigitalLinkURI.parse(uri)
    assert parsed.element_strings[0].ai.ai == "01"
    assert "/01/08930000000019/10/LN2026-001/21/" in uri
    assert uri.startswith(app.config["PUBLIC_URL"])


def test_rdFile(client: FlaskClient, paths: bool) -> None:
    """rdFile: a resolver description file at /.well-known/gs1resolver, listing the
    supported primary keys, the resolver root and the JSON-LD context; CORS-readable."""
    response = client.get(
        "/.well-known/gs1resolver", headers={"Accept": "application/json", **ORIGIN}
    )
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.json
    # GS1's description-file schema: these two required; a prefix is a CURIE prefix; the
    # default link type is a boolean; the contact a vCard.
    assert body["supportedPrimaryKeys"] == ["01"]
    assert body["resolverRoot"] == "http://127.0.0.1:5000"
    assert all(t["prefix"].endswith(":") for t in body["supportedLinkType"])
    assert body["linkTypeDefaultCanBeLinkset"] is False  # the default is the page
    assert body["contact"]["fn"]
    assert body["supportedQualifiers"] == {"01": ["22", "10", "21"]}
    assert body["jsonLdContextLocation"].endswith("/contexts/linkset.jsonld")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    context = client.get("/contexts/linkset.jsonld")
    assert context.mimetype == "application/ld+json" and "@context" in context.json


def test_corsCheck_methodsCheck_linkOnRedirect(
    client: FlaskClient, dl: str, paths: bool, app: Flask
) -> None:
    """corsCheck, methodsCheck: an OPTIONS preflight (as the suite sends it) allows any
    origin and GET, HEAD and OPTIONS; linkOnRedirect: it names the linkset in a Link
    header; legacyLinkHeaders: no gs1: links in it. It logs no scan."""
    before = scans_of(app)
    response = client.options(
        dl, headers={**ORIGIN, "Access-Control-Request-Method": "GET,HEAD,OPTIONS"}
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    methods = response.headers["Access-Control-Allow-Methods"]
    assert all(m in methods for m in ("GET", "HEAD", "OPTIONS"))
    assert 'rel="linkset"' in response.headers["Link"]
    assert 'rel="gs1:' not in response.headers["Link"]
    assert scans_of(app) == before


def test_cors_on_get_and_head(client: FlaskClient, dl: str, paths: bool) -> None:
    """SHALL support CORS: a script on another origin can read the page, the passport, the
    linkset, a redirect and an error (Access-Control-Allow-Origin: *), and the Link header."""
    for path, headers in (
        (dl, {}),
        (dl, {"Accept": "application/json"}),
        (dl, {"Accept": LINKSET}),
        ("/01/8930000000019/10/LN2026-001", {}),  # 301
        ("/01/08930000000019/10/NOPE", {}),  # 404
        ("/01/08930000000018/10/NOPE", {}),  # 400
    ):
        for method in ("GET", "HEAD"):
            response = client.open(path, method=method, headers={**ORIGIN, **headers})
            assert response.headers.get("Access-Control-Allow-Origin") == "*", (path, method)
            assert "Link" in response.headers.get("Access-Control-Expose-Headers", ""), path


def test_reportWith400_noErrorWith200(client: FlaskClient, dl: str, paths: bool) -> None:
    """reportWith400, noErrorWith200: the DL with /foo appended is reported with 400
    (SHALL extract and syntactically validate the URI), in words or as a problem."""
    response = client.get(dl + "/foo")
    assert response.status_code == 400
    problem = client.get(dl + "/foo", headers={"Accept": "application/json"})
    assert problem.status_code == 400 and problem.mimetype == "application/problem+json"
    assert "extra segment" in problem.json["detail"]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/01/08930000000018/10/LN2026-001", "check digit should be 9"),  # wrong check digit
        ("/01/08930000000019/10/LN2026-001?17=ABC", "17"),  # an expiry date that is not a date
        ("/01/8930000000019/10/LN2026-001?17=ABC", "17"),  # the same on a non-canonical form
        ("/01/08930000000019/10/LN2026-001?17=261399", "17"),  # month 13
        ("/01/08930000000019/10/ABCDEFGHIJKLMNOPQRSTU", "at most 20"),  # lot too long
        ("/01/08930000000019/10/V%E1%BA%A3i", "not in the GS1 set"),  # not in the 82 set
        ("/01/08930000000019/10/A%ZZ", "two hex digits"),  # a bare %
        ("/01/08930000000019/10/%FF", "UTF-8"),
        ("/01/08930000000019/99/X", "not a key qualifier"),
        ("/01/08930000000019/10/A/10/B", "twice"),
        ("/01/08930000000019//10/A", "empty"),
        ("/01/089300000000190/10/A", "GTIN"),
        ("/01/08930000000019/10/LN2026-001?10=OTHER", "path"),
    ],
)
def test_malformed_links_are_400(client: FlaskClient, paths: bool, path: str, why: str) -> None:
    """400 for a malformed Digital Link (syntax, check digit, an AI value out of its
    format) on every form of the path; never 200 or 404."""
    response = client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 400, (path, response.get_data(as_text=True))
    assert why in response.json["detail"], response.json


def test_404_only_for_well_formed_codes_never_issued(
    client: FlaskClient,
    item: dict,  # noqa: F811
    paths: bool,
) -> None:
    """A well-formed code this service never issued is 404 (and the attempt is logged);
    another primary key than a GTIN is well formed but not served here: 404 too."""
    for path in (
        "/01/08930000000019/10/LN2026-001/21/ZZZZZZZZZZ",
        "/01/08930000000019/10/NOPE",
        "/01/08930000000019/22/2A/10/LN2026-001",  # a variant: no printed code carries one
        "/414/8930000000002",  # a GLN
    ):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 404, path


def test_trailingSlash(client: FlaskClient, dl: str, paths: bool) -> None:
    """trailingSlash: the same answer with and without a trailing slash (status and
    Location), for an issued code, a redirect and a refusal."""
    for path in (dl, "/01/8930000000019/10/LN2026-001", "/01/08930000000018/10/X"):
        plain, slash = client.get(path), client.get(path + "/")
        assert plain.status_code == slash.status_code, path
        assert plain.headers.get("Location") == slash.headers.get("Location"), path


def test_key_qualifiers_never_redirect_to_themselves(
    client: FlaskClient,
    item: dict,  # noqa: F811
    paths: bool,
) -> None:
    """Every key qualifier the description advertises (22, 10, 21), alone and together,
    in order or not: answered, or redirected to another URL, never to the same one."""
    serial = item["codes"][0]["serial"]
    for path in (
        "/01/08930000000019/22/2A/10/LN2026-001",
        "/01/08930000000019/22/2A",
        "/01/08930000000019/22/2A/21/" + serial,
        "/01/08930000000019/10/LN2026-001/22/2A",
        f"/01/08930000000019/21/{serial}/10/LN2026-001",
        f"/01/08930000000019/21/{serial}",
        "/01/08930000000019/10/LN2026-001",
        "/01/08930000000019/22/%2F%25",
    ):
        response = client.get(path)
        if response.status_code in (301, 302, 303, 307, 308):
            target = response.headers["Location"]
            assert target != path, path
            assert client.get(target).status_code not in (301, 302, 303, 307, 308), path
        else:
            assert response.status_code in (200, 404), (path, response.status_code)


def test_qsPassedOn(client: FlaskClient, item: dict, paths: bool) -> None:  # noqa: F811
    """qsPassedOn: a redirect passes on every key=value pair of the query (a canonical
    code is answered in place, so the non-canonical form and linkType are checked)."""
    moved = client.get("/01/8930000000019/10/LN2026-001?foo=bar&17=261231")
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/01/08930000000019/10/LN2026-001?foo=bar&17=261231"
    typed = client.get(path_of(item["codes"][0]["uri"]) + "?linkType=gs1:traceability&foo=bar")
    assert typed.status_code == 307 and typed.headers["Location"].endswith("&foo=bar")


def test_ltLinksetNoRedirect_ltAllNoRedirect_ltAcceptHeader(
    client: FlaskClient, dl: str, paths: bool
) -> None:
    """ltLinksetNoRedirect, ltAllNoRedirect, ltAcceptHeader: linkType=linkset, the
    deprecated linkType=all and Accept: application/linkset+json each return the linkset
    (200, no redirect), declared as application/linkset+json (declaredContentType)."""
    for response in (
        client.get(dl + "?linkType=linkset"),
        client.get(dl + "?linkType=all"),
        client.get(dl, headers={"Accept": LINKSET}),
        client.get(dl + "?linkType=all", headers={"Accept": LINKSET}),
    ):
        assert response.status_code == 200
        assert response.mimetype == LINKSET


def test_validLinkset_linksetJsonldCheck(client: FlaskClient, item: dict, paths: bool) -> None:  # noqa: F811
    """validLinkset: the linkset validates against GS1's linkset schema (anchor and
    itemDescription required, each link with href and title); linksetJsonldCheck: the
    answer links its JSON-LD context (rel json-ld#context, type application/ld+json);
    the anchor is the code's uncompressed URI; links carry a media type and languages."""
    schema = linkset_schema()
    for code in (item["codes"][0], item["lot"]):
        response = client.get(path_of(code["uri"]), headers={"Accept": LINKSET})
        body = response.json
        jsonschema.Draft7Validator(schema).validate(body)
        (entry,) = body["linkset"]
        assert entry["anchor"] == code["uri"]
        assert entry["itemDescription"].startswith(
            "Vải thiều Lục Ngạn tươi, thùng 10 kg, lô LN2026-001"
        )
        link_header = response.headers["Link"]
        assert (
            'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"' in link_header
        )
        assert f'<{code["uri"]}?linkType=linkset>; rel="linkset"' in link_header
        for link_type, links in entry.items():
            if link_type.startswith("https://gs1.org/voc/") and not link_type.endswith(
                "defaultLink"
            ):
                assert all(link["type"] and link["title"] for link in links), link_type


def test_defaultLinkExists_singleDefaultLink(client: FlaskClient, dl: str, paths: bool) -> None:
    """defaultLinkExists, singleDefaulLink: exactly one gs1:defaultLink, with a title and
    no other attribute, also described by a descriptive link type (gs1:pip)."""
    (entry,) = client.get(dl + "?linkType=linkset").json["linkset"]
    (default,) = entry["https://gs1.org/voc/defaultLink"]
    assert set(default) == {"href", "title"}
    assert entry["https://gs1.org/voc/pip"][0]["href"] == default["href"]


def test_loFor_each_link_type(client: FlaskClient, dl: str, paths: bool, app: Flask) -> None:
    """loFor<linkType>: for each link type in the linkset, ?linkType=<type> (as the CURIE
    or the full URI) redirects (307) to that link, and logs no scan."""
    (entry,) = client.get(dl + "?linkType=linkset").json["linkset"]
    before = scans_of(app)
    for link_type, links in entry.items():
        if not link_type.startswith("https://gs1.org/voc/"):
            continue
        curie = "gs1:" + link_type.rsplit("/", 1)[1]
        for asked in (curie, link_type):
            response = client.get(dl, query_string={"linkType": asked})
            assert response.status_code == 307, (asked, response.status_code)
            assert response.headers["Location"] == links[0]["href"], asked
            assert response.headers["Location"] != dl
    assert scans_of(app) == before


def test_specificLinkTypeNotFound(client: FlaskClient, dl: str, paths: bool) -> None:
    """specificLinkTypeNotFound: a link type the code has no link of is 404, not the page."""
    for asked in ("gs1:nosuchlt", "gs1:recipeInfo", "https://gs1.org/voc/allergenInfo", "nonsense"):
        response = client.get(dl, query_string={"linkType": asked})
        assert response.status_code == 404, asked
        assert response.mimetype == "application/problem+json"


def test_head_answers_like_get_and_counts_nothing(
    client: FlaskClient, dl: str, paths: bool, app: Flask
) -> None:
    """SHALL support HEAD: the same status and headers as GET, no body, and no scan logged
    nor any count moved (two `curl -I` used to raise an item's count by two)."""
    before = scans_of(app)
    for _ in range(2):
        head = client.head(dl)
        assert head.status_code == 200 and head.get_data() == b""
        assert 'rel="linkset"' in head.headers["Link"]
    assert client.head("/01/08930000000019/10/NOPE").status_code == 404
    assert scans_of(app) == before
    page = client.get(dl, headers={"Accept": "application/json"})
    assert page.json["verdict"] == "genuine"  # nobody scanned it before: HEAD counted nowhere


def test_compression(client: FlaskClient, item: dict, paths: bool) -> None:  # noqa: F811
    """Compression: a compressed Digital Link is decompressed and answered as its long
    form, not redirected to it on this resolver, with the uncompressed URI in a
    Link: rel="owl:sameAs" header; GS1's example (/ARA-WvSoJiDUWbtpt19ppq, the demo lot)."""
    compressed = client.get("/ARA-WvSoJiDUWbtpt19ppq", headers={"Accept": "application/json"})
    assert compressed.status_code == 200, compressed.get_data(as_text=True)
    assert compressed.json["lot"] == "LN2026-001" and compressed.json["verdict"] == "genuine"
    assert compressed.json["trace_code"] == item["lot"]["uri"]
    assert f'<{item["lot"]["uri"]}>; rel="owl:sameAs"' in compressed.headers["Link"]
    linkset = client.get("/ARA-WvSoJiDUWbtpt19ppq?linkType=linkset").json
    assert linkset["linkset"][0]["anchor"] == item["lot"]["uri"]  # the uncompressed subject
    assert client.get("/ARA-WvSoJiDUWbtpt19ppq").status_code == 200  # the page, in place
    # GS1's own example decompresses too (a GTIN not issued here: 404, not a parse error).
    assert client.get("/ARFKk4XB0CDKWcnpq", headers={"Accept": "application/json"}).json[
        "identifiers"
    ] == {"gtin": "09506000134376", "cpv": None, "lot": "LOT01", "serial": None}
    assert client.get("/not-a-compressed-link").status_code == 404


def test_decompression_matches_gs1_s_examples() -> None:
    """GS1's compression examples (the resolver CE's test, the library's README)."""
    from traceability.resolver.request import parse

    assert parse("/ARFKk4XB0CDKWcnpq").same_as == "/01/09506000134376/10/LOT01"
    assert parse("/ARHKVAdpQg").same_as == "/01/09780345418913"
    assert parse("/ARA-WvSoJiDUWbtpt19ppq").same_as == "/01/08930000000019/10/LN2026-001"
