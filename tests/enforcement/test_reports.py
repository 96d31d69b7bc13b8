"""The public report form: no account, photos cleaned, the code linked, a private status."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.registry.test_photos import GPS_IFD, photo_with_qr_and_gps

URI_PATTERN = re.compile(r"/report/(BC\d{4}-\d{6})/([A-Za-z0-9_-]+)")


def form_token(client: FlaskClient, path: str = "/report") -> str:
    from tests.conftest import csrf_from

    return csrf_from(client.get(path).get_data(as_text=True))


def test_report_with_a_photo_of_a_code(client: FlaskClient, item: dict, app: Flask) -> None:
    """A photo with a QR code (and GPS in its EXIF) links the report to that code, its batch
    and its asset; the stored photo has no location; the status page shows only the state."""
    code_uri = item["codes"][0]["uri"]
    photo = photo_with_qr_and_gps(uri=code_uri)  # a photo of the label, GPS in its EXIF
    response = client.post(
        "/report",
        data={
            "csrf_token": form_token(client),
            "category": "fake_code",
            "description": "Hộp vải bán ở chợ, mã QR giống hệt nhau trên nhiều hộp",
            "shop_name": "Sạp 12, chợ Long Biên",
            "contact_email": "nguoi.mua@example.vn",
            "contact_consent": "1",
            "photos": (io.BytesIO(photo), "anh.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    receipt, secret = URI_PATTERN.search(html).groups()
    from sqlalchemy import select

    from nguon.db import db
    from registry.enforcement.models import Report
    from registry.enforcement.services import photo_folder

    with app.app_context():
        report = db.session.scalar(select(Report).where(Report.receipt == receipt))
        assert report.code == code_uri
        assert report.linked_label_id == item["codes"][0]["id"]
        assert report.linked_batch_id == item["batch"]
        assert report.asset_id is not None  # the GI the batch claims
        stored = next(Path(photo_folder()).rglob(report.photos[0].sha256))
        kept = Image.open(stored)
        assert not kept.getexif().get_ifd(GPS_IFD)
        assert b"PhoneMaker" not in stored.read_bytes()
    status = client.get(f"/report/{receipt}/{secret}").get_data(as_text=True)
    assert receipt in status and "nguoi.mua@example.vn" not in status and "Sạp 12" not in status
    assert client.get(f"/report/{receipt}/wrong-secret").status_code == 404


def test_consumer_page_button_prefills_the_code(client: FlaskClient, item: dict) -> None:
    page = client.get("/report", query_string={"code": item["codes"][1]["uri"]}).get_data(
        as_text=True
    )
    assert f'value="{item["codes"][1]["uri"]}"' in page


def test_bad_reports_are_refused_and_store_nothing(client: FlaskClient, app: Flask) -> None:
    from sqlalchemy import func, select

    from nguon.db import db
    from registry.enforcement.models import Report

    token = form_token(client)
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"category": "gossip", "description": "something odd here"},
            "choose one of the listed kinds",
        ),
        ({"category": "counterfeit", "description": "short"}, "at least 10 characters"),
        (
            {"category": "counterfeit", "description": "long enough text", "contact_phone": "0912"},
            "tick the consent box",
        ),
        (
            {
                "category": "counterfeit",
                "description": "long enough text",
                "photos": (io.BytesIO(b"%PDF-1.4 not a photo"), "x.jpg"),
            },
            "not an image",
        ),
    ]
    for data, message in cases:
        response = client.post(
            "/report?lang=en",
            data={"csrf_token": token, **data},
            content_type="multipart/form-data",
        )
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True), message
    too_many = {
        "csrf_token": token,
        "category": "other",
        "description": "six photos attached",
        "photos": [(io.BytesIO(photo_with_qr_and_gps()), f"{n}.jpg") for n in range(6)],
    }
    response = client.post("/report?lang=en", data=too_many, content_type="multipart/form-data")
    assert response.status_code == 422 and "at most 5 photos" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Report.id))) == 0
