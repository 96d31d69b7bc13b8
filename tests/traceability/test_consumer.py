"""The consumer page tells the truth: language, local times, the share flow, repeat
views, expiry, the record the law asks for, addresses across the 2025 reorganisation,
and a map a person can read."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from nguon.db import db
from tests.traceability.test_fastpath import fast_path, undone
from tests.traceability.test_resolver import (
    item,  # noqa: F401
    path_of,
    share,
)

JSON = {"Accept": "application/json"}
OTHER = {"REMOTE_ADDR": "198.51.100.23"}  # another buyer's phone


@pytest.fixture(params=["flask", "fast-path"])
def paths(request: pytest.FixtureRequest, app: Flask) -> Iterator[bool]:
    fast = request.param == "fast-path"
    app.config["RESOLVER_FAST_PATH"] = fast
    yield fast
    app.config["RESOLVER_FAST_PATH"] = True


def primed(client: FlaskClient, connection: Any, path: str) -> None:
    """Render the batch's page and passport once (writes undone): the fast path, when on,
    then answers."""
    with undone(connection):
        for lang in ("vi", "en"):
            client.get(path, query_string={"lang": lang})
        client.get(path, headers=JSON)
    client.delete_cookie("lang")


def verdict_class(html: str) -> str:
    return re.search(r'class="verdict (verdict-\w+)"', html).group(1)


# --- language -----------------------------------------------------------------------------------


def test_language_from_query_then_cookie_then_accept_language(
    client: FlaskClient,
    item: dict,  # noqa: F811
    app: Flask,
    paths: bool,
    _transaction: Any,
) -> None:
    """?lang=, then the cookie a ?lang= leaves, then Accept-Language, then Vietnamese; the
    same on the fast path as on Flask's (which answers each when it is on)."""
    path = path_of(item["codes"][0]["uri"])
    primed(client, _transaction, path)
    before = fast_path(app).answered

    def page(**kwargs: Any) -> Any:
        response = client.get(path, **kwargs)
        assert response.status_code == 200
        return response

    english = page(headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Genuine" in english.get_data(as_text=True)
    assert english.headers["Content-Language"] == "en"
    assert "Vary" in english.headers and "Accept-Language" in english.headers["Vary"]
    assert "Chính hãng" in page(headers={"Accept-Language": "vi-VN,vi"}).get_data(as_text=True)
    assert "Chính hãng" in page(headers={"Accept-Language": "fr-FR"}).get_data(as_text=True)
    chosen = page(query_string={"lang": "en"}, headers={"Accept-Language": "vi"})
    assert (
        "lang=en;" in chosen.headers["Set-Cookie"]
        and 'lang="en"' not in chosen.headers["Set-Cookie"]
    )
    kept = page(headers={"Accept-Language": "vi"})  # the cookie beats the browser's header
    assert "Genuine" in kept.get_data(as_text=True) and "Set-Cookie" not in kept.headers
    back = page(query_string={"lang": "vi"})
    assert "Chính hãng" in back.get_data(as_text=True)
    assert "Chính hãng" in page(headers={"Accept-Language": "en"}).get_data(as_text=True)
    passport = page(headers={**JSON, "Accept-Language": "en"})
    assert passport.json["verdict"] in ("scanned_by_you", "genuine")
    assert fast_path(app).answered == before + (8 if paths else 0)


def test_switching_language_shows_the_same_scan(
    client: FlaskClient,
    item: dict,  # noqa: F811
    app: Flask,
) -> None:
    """The page's language switch shows the buyer's scan again in the other language and
    keeps the choice: it logs no scan and moves no count (the verdict stays "genuine")."""
    from traceability.models import Label, Scan

    path = path_of(item["codes"][0]["uri"])
    html = client.get(path).get_data(as_text=True)
    switch = re.search(r'<a lang="en" href="([^"]+)"', html).group(1)
    assert re.fullmatch(r"/scans/[0-9a-f]{32}\?lang=en", switch)
    english = client.get(switch)
    assert english.status_code == 200 and "lang=en;" in english.headers["Set-Cookie"]
    body = english.get_data(as_text=True)
    assert verdict_class(body) == "verdict-genuine" and ">Genuine<" in body
    assert 'action="/scans/' in body  # the place question is still open for this scan
    with app.app_context():
        assert len(db.session.scalars(select(Scan)).all()) == 1
        assert (
            db.session.scalar(
                select(Label.scan_count).where(Label.serial == path.rsplit("/", 1)[1])
            )
            == 1
        )
    assert client.get("/scans/" + "f" * 32).status_code == 404


def test_language_choice_reaches_the_report_form(client: FlaskClient, item: dict) -> None:  # noqa: F811
    """English chosen on a consumer page stays on the next page and in "report a fake"."""
    path = path_of(item["codes"][0]["uri"])
    html = client.get(path, query_string={"lang": "en"}).get_data(as_text=True)
    report = re.search(r'href="(/report\?code=[^"]+)"', html).group(1).replace("&amp;", "&")
    assert report.endswith("&lang=en")
    form = client.get(report).get_data(as_text=True)
    assert '<html lang="en"' in form
    assert '<html lang="en"' in client.get("/report").get_data(as_text=True)  # the cookie alone
    unknown = client.get("/01/08930000000019/10/NOPE").get_data(as_text=True)
    assert '<html lang="en"' in unknown and "lang=en" in unknown


# --- times, dates --------------------------------------------------------------------------------


def capture(client: FlaskClient, headers: dict, when: str, offset: str) -> None:
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-06-16T01:00:00Z",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": when,
                    "eventTimeZoneOffset": offset,
                    "action": "OBSERVE",
                    "bizStep": "shipping",
                    "epcList": [],
                    "quantityList": [
                        {
                            "epcClass": "https://id.gs1.org/01/08930000000019/10/LN2026-001",
                            "quantity": 100.0,
                            "uom": "KGM",
                        }
                    ],
                }
            ]
        },
    }
    response = client.post(
        "/epcis/capture",
        data=json.dumps(document),
        content_type="application/ld+json",
        headers=headers,
    )
    assert response.status_code in (200, 201, 202), response.get_data(as_text=True)


def test_event_times_are_shown_where_they_happened(
    client: FlaskClient,
    item: dict,  # noqa: F811
    coop_headers: dict,
) -> None:
    """eventTime 2026-06-16T00:30:00Z with eventTimeZoneOffset +07:00 is 07:30 on the
    16th (it showed 00:30): each event in its own offset, Vietnamese dd/mm/yyyy 24 h."""
    from traceability import resolver

    capture(client, coop_headers, "2026-06-16T00:30:00Z", "+07:00")
    capture(client, coop_headers, "2026-06-17T18:05:00Z", "-05:00")  # sold on in Houston
    resolver.clear_caches()
    path = path_of(item["codes"][0]["uri"])
    html = client.get(path).get_data(as_text=True)
    assert "16/06/2026 07:30" in html and "00:30" not in html
    assert "17/06/2026 13:05" in html and "UTC-05:00" in html
    assert '<time datetime="2026-06-16T07:30:00+07:00">' in html
    assert "10/06/2026" in html and "24/06/2026" in html  # production and expiry dates
    english = client.get(path, query_string={"lang": "en"}).get_data(as_text=True)
    assert "16 Jun 2026, 07:30" in english
    stages = client.get(path, headers=JSON).json["traceability_stages"]
    assert stages[-2]["local_time"] == "2026-06-16T07:30:00+07:00"


# --- the share flow, repeat views ---------------------------------------------------------------


def test_the_place_question_has_nothing_chosen(client: FlaskClient, item: dict, app: Flask) -> None:  # noqa: F811
    """No province is preselected; a share without a choice is refused beside the list
    (422, the question again) and records nothing."""
    from traceability.models import Scan

    html = client.get(path_of(item["codes"][0]["uri"])).get_data(as_text=True)
    select_html = re.search(r"<select[^>]*>.*?</select>", html, re.S).group(0)
    assert "required" in select_html
    assert re.search(r'<option value="" selected disabled>', select_html)
    assert select_html.count("selected") == 1
    action = re.search(r'action="(/scans/[^"]+/place)"', html).group(1)
    refused = client.post(action, data={})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "Hãy chọn tỉnh, thành phố của bạn trong danh sách" in body and action in body
    assert client.post(action, data={"province": "P99"}).status_code == 422
    with app.app_context():
        assert db.session.scalars(select(Scan.place)).all() == [None]


def test_a_buyer_s_own_shares_never_flag_or_warn_them(client: FlaskClient, item: dict) -> None:  # noqa: F811
    """A buyer scans, shares Hà Nội, moves, scans and shares Hồ Chí Minh City: their own
    page stays green (never amber about their own scan), the code is never flagged."""
    path = path_of(item["codes"][0]["uri"])
    first = client.get(path).get_data(as_text=True)
    assert verdict_class(first) == "verdict-genuine"
    after_share = share(client, first, "Thành phố Hà Nội").get_data(as_text=True)
    assert verdict_class(after_share) == "verdict-genuine"  # not "already scanned"
    again = client.get(path).get_data(as_text=True)
    assert verdict_class(again) == "verdict-scanned_by_you"
    assert "Bạn đã quét mã này trước đây" in again and "cẩn thận" not in again
    shared_again = share(client, again, "Thành phố Hồ Chí Minh").get_data(as_text=True)
    assert verdict_class(shared_again) == "verdict-scanned_by_you"
    assert client.get(path, headers=JSON).json["verdict"] == "scanned_by_you"


def test_another_buyer_after_a_far_share_is_warned_then_not_again(
    client: FlaskClient,
    item: dict,  # noqa: F811
) -> None:
    """Buyer A shares Hà Nội; buyer B scans: amber, already scanned; B scans again with
    nobody else in between: "you scanned this before"; A after B: amber again."""
    path = path_of(item["codes"][0]["uri"])
    share(client, client.get(path).get_data(as_text=True), "Thành phố Hà Nội")
    warned = client.get(path, environ_base=OTHER).get_data(as_text=True)
    assert verdict_class(warned) == "verdict-scanned_before"
    assert "đã được quét 1 lần" in warned and "Thành phố Hà Nội" in warned
    again = client.get(path, environ_base=OTHER).get_data(as_text=True)
    assert verdict_class(again) == "verdict-scanned_by_you"
    assert verdict_class(client.get(path).get_data(as_text=True)) == "verdict-scanned_before"


# --- expiry ------------------------------------------------------------------------------------


def test_an_expired_lot_says_so(
    client: FlaskClient,
    item: dict,  # noqa: F811
    trace: dict,
    in_tx: Callable[..., Any],
    coop_headers: dict,
) -> None:
    """A lot whose expiry date has passed keeps its verdict and says it has expired, on the
    page (a notice) and in the passport; a lot within its date says nothing of the kind."""
    from tests.traceability.test_labels import codes, issue
    from traceability import resolver, services

    path = path_of(item["codes"][0]["uri"])  # expiry 24/06/2026, past by the time tests run
    html = client.get(path).get_data(as_text=True)
    assert 'class="notice notice-expired" role="alert"' in html
    assert "Lô này đã quá hạn sử dụng (24/06/2026)" in html
    assert client.get(path, headers=JSON).json["expired"] is True
    fresh = in_tx(
        lambda: (
            services.save_batch(
                {
                    "product_id": trace["product"],
                    "lot": "LN-FRESH",
                    "quantity": 10,
                    "production_date": dt.date.today() - dt.timedelta(days=1),
                    "expiry_date": dt.date.today() + dt.timedelta(days=30),
                }
            ).id
        )
    )
    resolver.clear_caches()
    run = issue(client, coop_headers, fresh, kind="lot").json
    fresh_path = path_of(codes(client, coop_headers, run["id"])[0]["uri"])
    assert "notice-expired" not in client.get(fresh_path).get_data(as_text=True)
    assert client.get(fresh_path, headers=JSON).json["expired"] is False


# --- the record the law asks for ----------------------------------------------------------------


def test_decree_37_items_on_the_page_and_in_the_passport(
    client: FlaskClient,
    item: dict,  # noqa: F811
    trace: dict,
    in_tx: Callable[..., Any],
) -> None:
    """Art. 23(7) on the page: (a) name, (b) image, (c) producer, (d) its address,
    (đ) origin, the brand with the lot and serial, the expiry date; Art. 23(5)(e) the key
    events with their times, (i) standards. Art. 32(1) in the passport: name and GTIN,
    producer's name, address and identifier (tax code or GLN), origin, traceability
    information, certifications, production and expiry dates, safety warnings."""
    from registry.models import Organisation
    from traceability import resolver, services
    from traceability.models import Product

    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )

    def enrich() -> None:
        producer = db.session.get(Organisation, trace["coop"])
        producer.tax_code, producer.gln = "2400123456", "8930000000026"
        producer.address = "xã Phượng Sơn, huyện Lục Ngạn, tỉnh Bắc Giang"
        services.set_product_image(db.session.get(Product, trace["product"]), png)

    in_tx(enrich)
    resolver.clear_caches()
    code = item["codes"][0]
    path = path_of(code["uri"])
    html = client.get(path).get_data(as_text=True)
    for shown in (
        "<h1>Vải thiều Lục Ngạn tươi, thùng 10 kg</h1>",  # (a)
        '<img src="/traceability/images/',  # (b)
        "HTX Vải thiều Phượng Sơn",  # (c)
        "xã Phượng Sơn, huyện Lục Ngạn, tỉnh Bắc Giang",  # (d)
        "VN-BG-LN-0001",  # (đ) origin: the area...
        "tỉnh Bắc Ninh",  # ...its commune and province today
        "<dt>Thương hiệu</dt><dd>Phượng Sơn</dd>",  # brand
        '<dd class="lot">LN2026-001</dd>',  # with the lot
        f"<strong>{code['serial']}</strong>",  # and the serial
        '<dd class="expiry">24/06/2026',  # expiry
        "TCVN 12850:2019",  # standards applied
        "2400123456",  # the producer's tax code
    ):
        assert shown in html, shown
    passport = client.get(path, headers=JSON).json
    assert passport["product"]["name"] == "Vải thiều Lục Ngạn tươi, thùng 10 kg"
    assert passport["gtin"] == "08930000000019"
    assert passport["producer"]["name"] == "HTX Vải thiều Phượng Sơn"
    assert passport["producer"]["address"].startswith("xã Phượng Sơn")
    assert passport["producer"]["tax_code"] == "2400123456"
    assert passport["producer"]["gln"] == "8930000000026"
    assert passport["origin"]["areas"][0]["code"] == "VN-BG-LN-0001"
    assert passport["origin"]["province"] == "Tỉnh Bắc Ninh"
    assert passport["traceability_events"].endswith(
        "MATCH_epcClass=" + "https%3A%2F%2Fid.gs1.org%2F01%2F08930000000019%2F10%2FLN2026-001"
    )
    assert isinstance(passport["traceability_stages"], list)
    assert passport["certifications"][0]["number"] == "00017"
    assert (passport["production_date"], passport["expiry_date"]) == ("2026-06-10", "2026-06-24")
    assert passport["safety_warnings"] == "Bảo quản 2–8 °C"
    assert passport["standards"] == ["TCVN 12850:2019", "VietGAP"]
    assert passport["legal_basis"].startswith("Decree 37/2026")


def test_an_old_address_shows_the_unit_it_is_now_part_of(
    client: FlaskClient,
    item: dict,  # noqa: F811
    trace: dict,
    in_tx: Callable[..., Any],
) -> None:
    """An address recorded under the pre-2025 units shows today's unit beside it; an
    address already in today's units shows none."""
    from registry.models import Organisation
    from traceability import resolver

    def address(text: str) -> None:
        in_tx(lambda: setattr(db.session.get(Organisation, trace["coop"]), "address", text))
        resolver.clear_caches()

    path = path_of(item["codes"][0]["uri"])
    address("huyện Lục Ngạn, tỉnh Bắc Giang")
    html = client.get(path).get_data(as_text=True)
    assert (
        'huyện Lục Ngạn, tỉnh Bắc Giang</span> <span class="now-part-of">'
        "— nay thuộc tỉnh Bắc Ninh</span>" in html
    )
    assert client.get(path, headers=JSON).json["producer"]["address_now_part_of"] == "tỉnh Bắc Ninh"
    english = client.get(path, query_string={"lang": "en"}).get_data(as_text=True)
    assert "— now part of tỉnh Bắc Ninh" in english
    address("xã Nam Dương, tỉnh Bắc Ninh")
    assert "now-part-of" not in client.get(path).get_data(as_text=True)


# --- the origin map ------------------------------------------------------------------------------


def test_the_origin_map_reads_without_script(client: FlaskClient, item: dict) -> None:  # noqa: F811
    """The area drawn with the names of the communes around it and of the province
    written on the map, a scale bar, a legend, and a caption in words; no hover-only
    titles, no script."""
    html = client.get(path_of(item["codes"][0]["uri"])).get_data(as_text=True)
    svg = re.search(r"<svg class=\"map\".*?</svg>", html, re.S).group(0)
    communes = re.findall(r'<text class="commune"[^>]*>([^<]+)</text>', svg)
    assert len(communes) >= 2 and all(
        re.match(r"(Xã|Phường|Thị trấn|Đặc khu) ", c) for c in communes
    )
    assert re.search(r'<text class="province"[^>]*>Tỉnh Bắc Ninh</text>', svg)
    assert re.search(r'<g class="scale"><path d="[^"]+"/><text[^>]*>\d+(\.\d+)? km</text>', svg)
    assert '<path class="zone"' in svg and '<path class="plot"' in svg
    assert ">VN-BG-LN-0001</text>" in svg  # the legend names the area
    assert "<title>" not in svg and "<script" not in html
    caption = re.search(r'<figcaption id="origin-caption">(.*?)</figcaption>', html, re.S).group(1)
    assert caption.startswith("Vùng trồng VN-BG-LN-0001, ") and "tỉnh Bắc Ninh" in caption
    assert 'aria-labelledby="origin-caption"' in svg


def test_report_a_fake_carries_the_code_as_scanned(client: FlaskClient, item: dict) -> None:  # noqa: F811
    """The report link of a code not issued here names it as the phone read it (a lot's
    %2F stays encoded), so the report form links it to what it claims to be."""
    from urllib.parse import parse_qs, urlsplit

    html = client.get("/01/08930000000019/10/NO%2FPE?17=261231").get_data(as_text=True)
    href = re.search(r'href="(/report\?[^"]+)"', html).group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(href).query)
    assert query["code"] == ["http://127.0.0.1:5000/01/08930000000019/10/NO%2FPE?17=261231"]
    assert query["lang"] == ["vi"]


def test_the_journey_keeps_a_short_story_as_it_is() -> None:
    """A few steps stay one line each, in their order, even a step that comes back;
    only events in a row of one step at one place become one line."""
    from traceability.resolver.card import journey

    def stage(step: str, minute: int, place: str = "p1") -> dict:
        at = f"2026-06-20T06:{minute:02d}:00+07:00"
        return {"stage": step, "location_trace_code": place, "local_time": at, "event_time": at}

    story = [stage("harvesting", 1), stage("shipping", 2), stage("receiving", 3, "p2")]
    story += [stage("shipping", 4, "p2"), stage("shipping", 5, "p2"), stage("retail_selling", 6)]
    lines, more = journey(story)
    assert [(s["stage"], s["count"]) for s in lines] == [
        ("harvesting", 1),
        ("shipping", 1),
        ("receiving", 1),
        ("shipping", 2),
        ("retail_selling", 1),
    ]
    assert (lines[3]["local_time"], lines[3]["last_local_time"]) == (
        "2026-06-20T06:04:00+07:00",
        "2026-06-20T06:05:00+07:00",
    )
    assert more == 0

    # Interleaved at 30 places: by step and place would be 90 lines; by step, 3.
    many = [stage(("a", "b", "c")[n % 3], n % 60, f"p{n % 30}") for n in range(900)]
    lines, more = journey(many, limit=24)
    assert [(s["stage"], s["count"]) for s in lines] == [("a", 300), ("b", 300), ("c", 300)]
    assert more == 0
    # Steps past the limit are counted, not shown.
    lines, more = journey([stage(f"s{n}", n % 60) for n in range(30)], limit=24)
    assert (len(lines), more) == (24, 6)
