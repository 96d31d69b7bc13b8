"""The resolver's routes: the request's story told in order, for Flask's path.

parse (:mod:`.request`) -> look up (:mod:`.lookup`) -> verdict (:mod:`.verdict`) ->
represent (:mod:`.page`, :mod:`.passport`, :mod:`.linkset`); place sharing in
:mod:`.places`. The fast path (:mod:`traceability.fastpath`) calls the same functions
and sends the same headers (:func:`scan_headers`).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Response, abort, current_app, g, render_template, request
from flask_babel import get_locale
from werkzeug.routing import BaseConverter

from nguon.auth import csrf_exempt
from nguon.db import utcnow
from nguon.errors import problem
from nguon.i18n import LANGUAGES, NEGOTIATING_BLUEPRINTS, _, language_cookie
from nguon.ratelimit import limiter, public_limit
from traceability import scans
from traceability.gs1 import DigitalLink
from traceability.resolver import linkset as linksets
from traceability.resolver import places
from traceability.resolver import request as requests_
from traceability.resolver.card import batch_card
from traceability.resolver.lookup import lookup
from traceability.resolver.page import consumer_page
from traceability.resolver.passport import canonical, passport_json, passport_static
from traceability.resolver.verdict import as_now, fingerprint, verdict_of

bp = Blueprint("resolver", __name__)
NEGOTIATING_BLUEPRINTS.add(bp.name)  # Accept-Language counts on the consumer's pages
METHODS = "GET, HEAD, OPTIONS"
CORS_HEADERS = [
    ("Access-Control-Allow-Origin", "*"),
    (
        "Access-Control-Expose-Headers",
        "Link, Location, Content-Language, Retry-After, X-Request-ID",
    ),
]
VARY = "Accept, Accept-Language, Cookie"


class CompressedLink(BaseConverter):
    """One path segment of base64url characters: perhaps a compressed Digital Link."""

    regex = r"[A-Za-z0-9_-]{8,160}"


@bp.record_once
def _converters(state: Any) -> None:
    state.app.url_map.converters["dlcompressed"] = CompressedLink


def scan_headers(
    link: DigitalLink,
    base: str,
    locale: str | None,
    asked_lang: str | None,
    *,
    secure: bool,
    same_as: str = "",
) -> list[tuple[str, str]]:
    """The headers of an answer about an issued code, the same on both paths: where its
    linkset is (and, for a compressed request, the long form it is the same as), CORS,
    what the answer varies on, its language, and the cookie keeping a language chosen."""
    link_header = linksets.linkset_link(link, base)
    if same_as:
        link_header += f', <{base}{same_as}>; rel="owl:sameAs"'
    headers = [
        ("Cache-Control", "no-store"),
        ("Vary", VARY),
        ("Link", link_header),
        *CORS_HEADERS,
    ]
    if locale:
        headers.append(("Content-Language", locale))
    if asked_lang in LANGUAGES:
        headers.append(("Set-Cookie", language_cookie(asked_lang, secure=secure)))  # type: ignore[arg-type]
    return headers


# --- routes ------------------------------------------------------------------------------------


@bp.route("/01/<path:rest>", methods=["GET", "OPTIONS"])
@bp.route("/<dlcompressed:compressed>", methods=["GET", "OPTIONS"])
@limiter.limit(public_limit, methods=["GET", "HEAD"])
def resolve(**_parts: str) -> Any:
    """A Digital Link: GET and HEAD answered alike (HEAD logs no scan), OPTIONS for CORS."""
    if request.method == "OPTIONS":
        return preflight()
    parsed = requests_.parse(
        requests_.raw_path(request.environ), request.query_string.decode("latin-1")
    )
    if parsed.outcome == "malformed":
        return refused(400, parsed.detail)
    if parsed.outcome == "not_a_link":
        abort(404)
    if parsed.outcome == "not_found":
        return not_issued(None, parsed.detail)
    link = parsed.link
    if link is None:  # resolve and redirect always carry the link
        abort(404)
    base = current_app.config["PUBLIC_URL"]
    if parsed.outcome == "redirect":
        response = current_app.redirect(parsed.location, 301)
        response.headers["Link"] = linksets.linkset_link(link, base)
        return response
    link_type = request.args.get("linkType")
    kind = "linkset" if link_type in ("linkset", "all") else negotiated_kind()
    if link_type not in (None, "linkset", "all"):
        return typed_link(link, link_type, parsed.same_as)
    label = lookup(link)
    if kind == "linkset":
        if label is None:
            return not_issued(link, _("This code was not issued by Nguồn."))
        return linkset_answer(link, batch_card(label.batch_id), parsed.same_as)
    head = request.method == "HEAD"  # a probe: answered alike, counted nowhere
    log = scans.scan_log()
    client = fingerprint()
    path, ref, now = canonical(link).path[:300], scans.new_ref(), utcnow()
    if label is None:
        if not head:
            log.record(scans.PendingScan(ref, None, now, path, "unknown", client))
            g.commit_despite_error = True  # the 404 still records the attempt
        return not_issued(link, _("This code was not issued by Nguồn."))
    label, verdict = as_now(label, log, client)
    if not head:
        log.record(scans.PendingScan(ref, label.id, now, path, verdict, client))
    card = batch_card(label.batch_id)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if kind == "json":
        body = passport_json(app, link, label, verdict, passport_static(app, card))  # type: ignore[arg-type]
        mimetype, locale = "application/json", None
    else:
        body = consumer_page(card, link, label, verdict, ref)  # type: ignore[arg-type]
        mimetype, locale = "text/html", str(get_locale())
    headers = scan_headers(
        link,
        base,
        locale,
        request.args.get("lang"),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        same_as=parsed.same_as,
    )
    return current_app.response_class(body, mimetype=mimetype, headers=headers)


def negotiated_kind() -> str:
    return requests_.accept_kind(request.headers.get("Accept", ""))


def preflight() -> Response:
    """A CORS preflight: any origin may read the resolver with GET, HEAD and OPTIONS."""
    response = current_app.response_class(status=204)
    response.headers["Allow"] = METHODS
    response.headers["Access-Control-Allow-Methods"] = METHODS
    asked = request.headers.get("Access-Control-Request-Headers", "")
    response.headers["Access-Control-Allow-Headers"] = asked[:200] or "Accept, Accept-Language"
    response.headers["Access-Control-Max-Age"] = "86400"
    if request.path.startswith("/01/"):  # where the code's linkset is, as on every answer
        link = requests_.parse(requests_.raw_path(request.environ)).link
        if link is not None:
            response.headers["Link"] = linksets.linkset_link(link, current_app.config["PUBLIC_URL"])
    return response


def linkset_answer(link: DigitalLink, card: dict[str, Any], same_as: str = "") -> Response:
    """The code's linkset, with the JSON-LD context and its own address in Link headers."""
    base = current_app.config["PUBLIC_URL"]
    body = linksets.linkset_body(link, card, base, list(LANGUAGES))
    response = current_app.response_class(current_app.json.dumps(body), mimetype=linksets.LINKSET)
    links = [linksets.linkset_link(link, base), linksets.context_link(base)]
    if same_as:
        links.append(f'<{base}{same_as}>; rel="owl:sameAs"')
    response.headers["Link"] = ", ".join(links)
    response.headers["Vary"] = VARY
    return response


def typed_link(link: DigitalLink, link_type: str, same_as: str) -> Response:
    """``?linkType=<type>``: 307 to the code's link of that type (the query passed on,
    less linkType), 300 when several fit equally, 404 when the code has none."""
    label = lookup(link)
    if label is None:
        return not_issued(link, _("This code was not issued by Nguồn."))
    base = current_app.config["PUBLIC_URL"]
    body = linksets.linkset_body(link, batch_card(label.batch_id), base, list(LANGUAGES))  # type: ignore[arg-type]
    term = linksets.link_type_name(link_type)
    found = (
        linksets.links_of_type(
            body, term, request.args.get("lang") or str(get_locale()), request.args.get("mediaType")
        )
        if term
        else []
    )
    if not found:
        return not_issued(
            link,
            _("This code has no link of type %(type)s.", type=link_type[:100]),
            title="No link of this type",
        )
    if len(found) > 1:
        response = current_app.response_class(
            current_app.json.dumps(
                {"linkset": [{**body["linkset"][0], **{linksets.VOC + term: found}}]}
            ),  # type: ignore[operator]
            status=300,
            mimetype=linksets.LINKSET,
        )
    else:
        target = found[0]["href"]
        passed_on = [
            (k, v) for k, v in parse_qsl(request.query_string.decode("latin-1")) if k != "linkType"
        ]
        if passed_on:
            target += ("&" if "?" in target else "?") + urlencode(passed_on)
        response = current_app.redirect(target, 307)
    links = [linksets.linkset_link(link, base)]
    if same_as:
        links.append(f'<{base}{same_as}>; rel="owl:sameAs"')
    response.headers["Link"] = ", ".join(links)
    return response


def refused(status: int, detail: str) -> Any:
    """A request that is not a valid Digital Link (400): in words, or as a problem."""
    if negotiated_kind() != "html" or request.args.get("linkType"):
        return problem(status, detail, title="Not a valid GS1 Digital Link")
    html = render_template(
        "public/not_issued.html", detail=detail, malformed=True, code=scanned_code()
    )
    return current_app.response_class(html, status=status, mimetype="text/html")


def not_issued(link: DigitalLink | None, detail: str, title: str = "Not issued here") -> Any:
    """A well-formed code this service never issued (404), naming what was asked."""
    if negotiated_kind() != "html" or request.args.get("linkType"):
        response = problem(404, detail, title=title)
        if link is not None:
            body = json.loads(response.get_data())
            body["identifiers"] = {
                "gtin": link.gtin,
                "cpv": link.cpv,
                "lot": link.lot,
                "serial": link.serial,
            }
            response.set_data(json.dumps(body, ensure_ascii=False))
        return response
    html = render_template(
        "public/not_issued.html", detail=detail, malformed=False, code=scanned_code()
    )
    return current_app.response_class(html, status=404, mimetype="text/html")


def scanned_code() -> str:
    """The code as the phone read it (its path still percent-encoded), for the report."""
    query = request.query_string.decode("latin-1")
    path = requests_.raw_path(request.environ)
    return current_app.config["PUBLIC_URL"] + path + (f"?{query}" if query else "")


@bp.after_request
def _cors(response: Response) -> Response:
    """Every answer a script may read (GET, HEAD), errors and redirects included."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        for name, value in CORS_HEADERS:
            response.headers.setdefault(name, value)
        if "Vary" not in response.headers:
            response.headers["Vary"] = VARY
    return response


@bp.route("/.well-known/gs1resolver", methods=["GET", "OPTIONS"])
def resolver_description() -> Response:
    if request.method == "OPTIONS":
        return preflight()
    base = current_app.config["PUBLIC_URL"]
    return current_app.response_class(
        current_app.json.dumps(
            {
                # The members of GS1's description-file schema (required: resolverRoot,
                # supportedPrimaryKeys), then this resolver's own (the schema allows more).
                "name": "Nguồn — provincial traceability resolver",
                "resolverRoot": base,
                "supportedPrimaryKeys": ["01"],
                "supportedLinkType": [
                    {
                        "namespace": linksets.VOC,
                        "prefix": "gs1:",
                        "profile": "https://gs1.org/voc/?show=linktypes",
                    },
                ],
                "linkTypeDefaultCanBeLinkset": False,
                "jsonLdContextLocation": base + linksets.CONTEXT_PATH,
                "contact": {"fn": "Sở Khoa học và Công nghệ"},
                "supportedQualifiers": {"01": list(requests_.KEY_QUALIFIERS)},
                "supportedLanguages": list(LANGUAGES),
                "supportsCompressedLinks": True,
            }
        ),
        mimetype="application/json",
    )


@bp.route(linksets.CONTEXT_PATH, methods=["GET", "OPTIONS"])
def linkset_context() -> Response:
    """The JSON-LD context that reads a linkset as linked data (GS1's, served from here)."""
    if request.method == "OPTIONS":
        return preflight()
    text = (resources.files("traceability") / "standards/linkset/linksetContext.jsonld").read_text()
    response = current_app.response_class(text, mimetype="application/ld+json")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.post("/scans/<ref>/place")
@limiter.limit(public_limit)
@csrf_exempt
def share_place(ref: str) -> Any:
    """The consumer chose to share a coarse place (a province) for their own scan."""
    scan = places.scan_by_ref(ref)
    if scan is None:
        abort(404, description="unknown scan")
    link = requests_.parse(scan.path).link
    label = lookup(link, in_session=True) if link is not None else None
    if label is None:
        abort(404, description="unknown scan")
    card = batch_card(label.batch_id)
    known = {code: (name, lat, lon) for code, name, lat, lon in places.provinces()}
    code = request.form.get("province", "")
    if code not in known:
        # Nothing is chosen for the buyer: the question again, with why, beside it.
        page = consumer_page(
            card,  # type: ignore[arg-type]
            link,  # type: ignore[arg-type]
            label,
            shown_verdict(scan.verdict, label),
            ref,
            share_error=_("Choose your province from the list, then press Share."),
        )
        return current_app.response_class(page, status=422, mimetype="text/html")
    name, lat, lon = known[code]
    if scan.place is None:
        places.record_place(scan, lat, lon, name)
    label = lookup(link, in_session=True)  # type: ignore[arg-type]  # the flag it may have set
    return consumer_page(
        card,  # type: ignore[arg-type]
        link,  # type: ignore[arg-type]
        label,
        shown_verdict(scan.verdict, label),
        ref,
        shared=name,
        ask_place=False,
    )


@bp.get("/scans/<ref>")
@limiter.limit(public_limit)
def scan_page(ref: str) -> Any:
    """A consumer's own scan shown again, in the language the page's switch asked for:
    the same scan, not another (nothing is logged, no count moves)."""
    scan = places.scan_by_ref(ref)
    link = requests_.parse(scan.path).link if scan is not None else None
    label = lookup(link, in_session=True) if link is not None else None
    if label is None or link is None or scan is None:
        abort(404, description="unknown scan")
    page = consumer_page(
        batch_card(label.batch_id),  # type: ignore[arg-type]
        link,
        label,
        shown_verdict(scan.verdict, label),
        ref,
        ask_place=scan.place is None,
    )
    headers = scan_headers(
        link,
        current_app.config["PUBLIC_URL"],
        str(get_locale()),
        request.args.get("lang"),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return current_app.response_class(page, mimetype="text/html", headers=headers)


def shown_verdict(seen: str, label: Any) -> str:
    """After a share, the verdict the buyer saw for their scan, unless the code was
    flagged or voided since: their own scan never warns them about itself."""
    now = verdict_of(label)
    if now in ("suspicious", "voided") or seen not in (
        "genuine",
        "scanned_by_you",
        "scanned_before",
    ):
        return now
    return seen
