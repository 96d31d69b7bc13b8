"""Label runs: limits, voiding, and every rendered code decoding to exactly its URI."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pypdfium2
import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.browser import chromium
from tests.registry.test_assets import errors_of
from traceability import labels


@pytest.fixture
def batch_id(trace: dict, in_tx: Callable[..., Any]) -> int:
    """A 50 t lychee batch claiming the GI (the authorisation's ceiling is 150 t a year)."""
    from traceability import services

    return in_tx(
        lambda: (
            services.save_batch(
                {
                    "product_id": trace["product"],
                    "lot": "LN2026-001",
                    "quantity": 50000,
                    "production_date": dt.date(2026, 6, 10),
                    "area_ids": [trace["area"]],
                    "claims": [{"kind": "geographical_indication", "asset_id": trace["gi"]}],
                }
            ).id
        )
    )


def issue(client: FlaskClient, headers: dict, batch_id: int, **body: Any) -> Any:
    return client.post(
        f"/api/v1/traceability/batches/{batch_id}/label-runs", json=body, headers=headers
    )


def codes(client: FlaskClient, headers: dict, run_id: int) -> list[dict[str, Any]]:
    return client.get(
        f"/api/v1/traceability/label-runs/{run_id}/codes?page_size=1000", headers=headers
    ).json


def decode(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.QRCode)]


def test_serials_are_random_unique_and_from_the_gs1_set() -> None:
    serials = labels.random_serials(20_000)
    assert len(set(serials)) == 20_000
    assert all(len(s) == 10 and set(s) <= set(labels.SERIAL_ALPHABET) for s in serials)
    assert len(labels.SERIAL_ALPHABET) ** labels.SERIAL_LENGTH >= 2**40
    ordered = sorted(serials)
    assert serials != ordered  # not issued in sequence


def test_a_run_of_250_codes_decodes_exactly(
    app: Flask, client: FlaskClient, coop_headers: dict, batch_id: int
) -> None:
    """Every PNG, every SVG (rasterised by Chromium) and every code cut from the PDF
    pages decodes with zxing-cpp to exactly its URI."""
    run = issue(client, coop_headers, batch_id, kind="item", count=250, item_quantity="10")
    assert run.status_code == 201, run.json
    issued = codes(client, coop_headers, run.json["id"])
    uris = [c["uri"] for c in issued]
    assert len(set(uris)) == 250
    assert all(
        u.startswith("http://127.0.0.1:5000/01/08930000000019/10/LN2026-001/21/") for u in uris
    )

    for code in issued:
        response = client.get(code["png"], headers=coop_headers)
        assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
        assert decode(Image.open(io.BytesIO(response.data))) == [code["uri"]]
    again = client.get(
        issued[0]["png"], headers={**coop_headers, "If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code in (200, 304)

    svgs = [client.get(c["svg"], headers=coop_headers).get_data(as_text=True) for c in issued]
    cell = 180
    sized = [s.replace("<svg ", '<svg width="100%" height="100%" ', 1) for s in svgs]
    html = (
        "<html><body style='margin:0;background:#fff'>"
        + "".join(
            f"<div style='position:absolute;left:{(i % 10) * cell}px;top:{(i // 10) * cell}px;"
            f"width:{cell - 20}px;height:{cell - 20}px'>{s}</div>"
            for i, s in enumerate(sized)
        )
        + "</body></html>"
    )
    with chromium({"width": 10 * cell, "height": 25 * cell}) as page:
        page.set_content(html)
        shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L")
    for i, uri in enumerate(uris):
        x, y = (i % 10) * cell, (i // 10) * cell
        assert decode(shot.crop((x, y, x + cell - 20, y + cell - 20))) == [uri], i

    layout = {"rows": 8, "columns": 4}
    pdf = client.get(
        f"/traceability/label-runs/{run.json['id']}/sheet.pdf",
        query_string=layout,
        headers=coop_headers,
    )
    assert pdf.mimetype == "application/pdf"
    sheet = labels.SheetLayout(**layout)
    document = pypdfium2.PdfDocument(pdf.data)
    assert len(document) == 8  # 250 codes, 32 a page
    scale = 300 / 25.4  # px per mm at 300 dpi
    found = []
    for page_index in range(len(document)):
        image = document[page_index].render(scale=300 / 72).to_pil().convert("L")
        for slot in range(32):
            if len(found) == 250:
                break
            left, top, width, height = sheet.cell_box(slot)
            box = (
                int(left * scale),
                int(top * scale),
                int((left + width) * scale),
                int((top + height) * scale),
            )
            found += decode(image.crop(box))
    assert found == uris


def test_run_limits_batch_quantity_and_yearly_ceiling(
    client: FlaskClient, coop_headers: dict, batch_id: int, trace: dict, bearer: Callable[..., dict]
) -> None:
    too_many = issue(client, coop_headers, batch_id, kind="item", count=5001, item_quantity="10")
    assert (
        "exceeds the batch: 50,000 kg of 50,000 are still unlabelled"
        in errors_of(too_many)["count"]
    )
    assert (
        issue(
            client, coop_headers, batch_id, kind="item", count=4000, item_quantity="10"
        ).status_code
        == 201
    )
    rest = issue(client, coop_headers, batch_id, kind="item", count=1001, item_quantity="10")
    assert "10,000 kg of 50,000 are still unlabelled" in errors_of(rest)["count"]

    # The officer lowers the authorisation's yearly ceiling to 45 t: labels must stay within it.
    officer = bearer("officer")
    lowered = client.patch(
        f"/api/v1/registry/authorised-users/{trace['user']}",
        json={"yearly_ceiling": "45000"},
        headers=officer,
    )
    assert lowered.status_code == 200, lowered.json
    over = issue(client, coop_headers, batch_id, kind="item", count=1000, item_quantity="10")
    assert errors_of(over)["count"] == (
        "labels for Vải thiều Lục Ngạn would reach 50,000 kg in 2026; the "
        "authorisation's yearly ceiling leaves 5,000 kg"
    )
    assert (
        issue(
            client, coop_headers, batch_id, kind="item", count=500, item_quantity="10"
        ).status_code
        == 201
    )


def test_lot_code_once_and_voiding(client: FlaskClient, coop_headers: dict, batch_id: int) -> None:
    lot = issue(client, coop_headers, batch_id, kind="lot")
    assert lot.status_code == 201 and lot.json["count"] == 1
    assert (
        "already has its lot-level code"
        in errors_of(issue(client, coop_headers, batch_id, kind="lot"))["kind"]
    )
    run = issue(client, coop_headers, batch_id, kind="item", count=3, item_quantity="10").json
    serials = [c["serial"] for c in codes(client, coop_headers, run["id"])]
    url = f"/api/v1/traceability/label-runs/{run['id']}/void"
    no_reason = client.post(url, json={"reason": " ", "serials": serials[:1]}, headers=coop_headers)
    assert errors_of(no_reason) == {"reason": "say why the labels are voided"}
    assert (
        client.post(
            url, json={"reason": "in hỏng", "serials": ["NOTMINE"]}, headers=coop_headers
        ).status_code
        == 422
    )
    voided = client.post(
        url, json={"reason": "in hỏng", "serials": serials[:1]}, headers=coop_headers
    )
    assert voided.json == {"voided": 1}
    states = {
        c["serial"]: c["voided_at"] is not None for c in codes(client, coop_headers, run["id"])
    }
    assert states == {serials[0]: True, serials[1]: False, serials[2]: False}
    # A voided code frees its quantity for a new label.
    assert (
        issue(
            client, coop_headers, batch_id, kind="item", count=4998, item_quantity="10"
        ).status_code
        == 201
    )
    whole = client.post(url, json={"reason": "lô hủy"}, headers=coop_headers)
    assert whole.json == {"voided": 2}


def test_other_cooperatives_cannot_issue_or_see(
    client: FlaskClient, coop_headers: dict, batch_id: int, bearer: Callable[..., dict]
) -> None:
    stranger = bearer("cooperative")
    assert issue(client, stranger, batch_id, kind="lot").status_code == 404
    run = issue(client, coop_headers, batch_id, kind="item", count=1, item_quantity="1").json
    code = codes(client, coop_headers, run["id"])[0]
    assert client.get(code["png"], headers=stranger).status_code == 404


def test_cli_prints_a_sheet(app: Flask, batch_id: int, tmp_path: Any) -> None:
    from nguon.cli import main

    out = tmp_path / "labels.pdf"
    result = app.test_cli_runner().invoke(
        main,
        [
            "labels",
            "print",
            str(batch_id),
            "--count",
            "40",
            "--item-quantity",
            "10",
            "--rows",
            "5",
            "--columns",
            "4",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "40 labels on 2 page(s)" in result.output
    assert len(pypdfium2.PdfDocument(out.read_bytes())) == 2
    bad = app.test_cli_runner().invoke(main, ["labels", "print", str(batch_id), "--out", str(out)])
    assert bad.exit_code == 1 and "--count N or --lot-code" in bad.output


def test_label_image_size_comes_from_a_small_fixed_range(
    client: FlaskClient, coop_headers: dict, batch_id: int
) -> None:
    """``px`` is 1–16 pixels per module: -1, 0, 17, 300 or words are refused (422, never
    a 500), and the largest image stays under a million pixels (px=300 made 250 MB)."""
    run = issue(client, coop_headers, batch_id, kind="item", count=1, item_quantity="1").json
    code = codes(client, coop_headers, run["id"])[0]
    as_json = {**coop_headers, "Accept": "application/json"}
    for px in ("-1", "0", "17", "300", "8.5", "tám", "１６"):
        refused = client.get(f"{code['png']}?px={px}", headers=as_json)
        assert refused.status_code == 422, (px, refused.status_code)
        assert "px" in {e["field"] for e in refused.json["errors"]}
    largest = client.get(f"{code['png']}?px=16", headers=coop_headers)
    image = Image.open(io.BytesIO(largest.data))
    assert image.width * image.height < 1_000_000
    assert decode(image) == [code["uri"]]


@pytest.mark.parametrize(
    "query",
    [
        "margin_top=nan",
        "margin_top=inf",
        "margin_left=-1",
        "margin_left=1e1",
        "margin_top=%D9%A1",  # an Arabic-Indic one: a digit to \d, not a number here
        "margin_top=99999999999999999999",
        "gap_x=1000",
        "rows=0",
        "rows=31",
        "columns=13",
        "rows=abc",
        "margin_left=105&margin_right=105",
        "rows=30&columns=12",
        "preset=../../etc",
    ],
)
def test_sheet_layout_must_be_finite_and_within_the_page(
    client: FlaskClient, coop_headers: dict, batch_id: int, query: str
) -> None:
    """NaN, infinities, exponents, negative or page-sized margins, too many rows or
    columns, an unknown stock: refused naming the field (``margin_top=nan`` was accepted)."""
    run = issue(client, coop_headers, batch_id, kind="item", count=2, item_quantity="1").json
    for path in ("sheet.pdf", "preview.png"):
        response = client.get(
            f"/traceability/label-runs/{run['id']}/{path}?{query}",
            headers={**coop_headers, "Accept": "application/json"},
        )
        assert response.status_code == 422, (query, path, response.status_code)
        assert response.mimetype == "application/problem+json"
    page = client.get(
        f"/traceability/label-runs/{run['id']}/sheet.pdf?{query}", headers=coop_headers
    )
    assert page.status_code == 422 and page.mimetype == "text/html"  # a person reads a page
    assert "Dữ liệu không hợp lệ" in page.get_data(as_text=True)


@pytest.mark.parametrize("query", ["px=0", "px=300", "preset=custom", "px=8&rows=2"])
def test_sheet_arguments_that_are_not_dimensions_are_ignored(
    client: FlaskClient, coop_headers: dict, batch_id: int, query: str
) -> None:
    """``px`` (an image argument) and ``preset`` are not layout dimensions: a preview or
    sheet given them is drawn, not a 500 (``px`` was passed to the layout: TypeError)."""
    run = issue(client, coop_headers, batch_id, kind="item", count=2, item_quantity="1").json
    for path in ("sheet.pdf", "preview.png"):
        response = client.get(
            f"/traceability/label-runs/{run['id']}/{path}?{query}", headers=coop_headers
        )
        assert response.status_code == 200, (query, path, response.status_code)


def test_every_preset_and_a_custom_sheet_print(
    client: FlaskClient, coop_headers: dict, batch_id: int
) -> None:
    """Each label stock prints every code so that it decodes; a roll has one label a page
    at the label's size; a custom sheet takes margins with a decimal comma."""
    run = issue(client, coop_headers, batch_id, kind="item", count=3, item_quantity="1").json
    uris = sorted(c["uri"] for c in codes(client, coop_headers, run["id"]))
    sheets = [f"preset={key}" for key in labels.PRESETS]
    for query in [*sheets, "rows=5&columns=3&margin_top=7,5&gap_x=3"]:
        pdf = client.get(
            f"/traceability/label-runs/{run['id']}/sheet.pdf?{query}", headers=coop_headers
        )
        assert pdf.status_code == 200, (query, pdf.get_data(as_text=True))
        document = pypdfium2.PdfDocument(pdf.data)
        found = []
        for index in range(len(document)):
            found += decode(document[index].render(scale=300 / 72).to_pil().convert("L"))
        assert sorted(found) == uris, query
        if query.startswith("preset=roll-"):
            width, height = map(int, query.removeprefix("preset=roll-").split("x"))
            assert len(document) == 3
            assert round(document[0].get_width() * 25.4 / 72) == width
            assert round(document[0].get_height() * 25.4 / 72) == height


def test_cli_prints_on_a_roll_preset(app: Flask, batch_id: int, tmp_path: Any) -> None:
    from nguon.cli import main

    out = tmp_path / "roll.pdf"
    args = ["labels", "print", str(batch_id), "--count", "3", "--item-quantity", "1"]
    result = app.test_cli_runner().invoke(
        main, [*args, "--preset", "roll-40x30", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "3 labels on 3 page(s)" in result.output
    document = pypdfium2.PdfDocument(out.read_bytes())
    assert round(document[0].get_width() * 25.4 / 72) == 40
