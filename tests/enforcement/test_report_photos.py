"""Photos as phones send them, on the public report form: multi-picture JPEGs, five large
photos in one report, a refused photo named (the typed report kept), a too-large request
answered in the reporter's language, and a form that fits a 390 px phone."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from nguon.db import db
from registry.enforcement.models import Report, ReportPhoto
from registry.enforcement.services import photo_folder
from tests.conftest import make_test_app
from tests.enforcement.test_reports import form_token


def phone_photo(megapixels: int = 12, grain: int = 3, seed: int = 0) -> bytes:
    """A photo-like JPEG of about 7 MB at 12 megapixels (fine grain compresses poorly)."""
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(megapixels * 1e6) // width
    rng = numpy.random.default_rng(seed)
    small = rng.integers(0, 255, (height // grain + 1, width // grain + 1, 3), dtype=numpy.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def mpo() -> bytes:
    first, second = Image.new("RGB", (640, 480), (200, 30, 30)), Image.new("RGB", (640, 480))
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second])
    return out.getvalue()


def test_the_form_accepts_an_mpo_jpeg(client: FlaskClient, app: Flask) -> None:
    """What many phones and cameras write (a multi-picture JPEG) is accepted: before, it was
    refused as "not a JPEG"."""
    response = client.post(
        "/report",
        data={
            "csrf_token": form_token(client),
            "category": "counterfeit",
            "description": "Hộp vải giả nhãn hiệu bày bán ở chợ",
            "photos": (io.BytesIO(mpo()), "DSC_0001.JPG"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    with app.app_context():
        photo = db.session.scalars(select(ReportPhoto)).one()
        stored = Image.open(next(Path(photo_folder()).rglob(photo.sha256)))
        assert stored.format == "JPEG" and stored.size == (640, 480)


def test_a_refused_photo_is_named_and_the_typed_report_kept(
    client: FlaskClient, app: Flask
) -> None:
    """One photo of two is not an image: the answer names it and says why, in Vietnamese;
    every typed field is kept; the reporter is told to choose the photos again; nothing is
    stored."""
    good = phone_photo(1, 8)
    response = client.post(
        "/report",
        data={
            "csrf_token": form_token(client),
            "category": "labelling",
            "description": "Nhãn ghi sai địa chỉ sản xuất, nghi hàng giả",
            "shop_name": "Cửa hàng Hoa Quả Sạch",
            "contact_email": "nguoidan@example.vn",
            "contact_consent": "1",
            "photos": [
                (io.BytesIO(good), "IMG_2041.jpg"),
                (io.BytesIO(b"%PDF-1.7 a scanned invoice"), "hoa-don.jpg"),
            ],
        },
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "“hoa-don.jpg”: không phải ảnh mà Nguồn đọc được" in html
    assert "IMG_2041.jpg" not in html  # only the refused one is named
    assert "Nhãn ghi sai địa chỉ sản xuất, nghi hàng giả</textarea>" in html
    assert 'value="Cửa hàng Hoa Quả Sạch"' in html and 'value="nguoidan@example.vn"' in html
    assert 'id="photos-again"' in html  # "choose your photos again"
    with app.app_context():
        assert db.session.scalar(select(func.count(Report.id))) == 0


def test_a_too_large_request_is_answered_in_the_reporters_language(
    database_url: str, tmp_path: Path
) -> None:
    small = make_test_app(database_url, tmp_path, MAX_CONTENT_LENGTH=4 * 1024 * 1024)
    client = small.test_client()
    body = {"description": "x" * 10, "photos": (io.BytesIO(b"\xff" * 5 * 1024 * 1024), "a.jpg")}
    for lang, words in (("vi", "Dữ liệu bạn gửi là 5 MB; chỉ nhận tối đa 4 MB"),
                        ("en", "What you sent is 5 MB; at most 4 MB is accepted")):  # fmt: skip
        response = client.post(
            f"/report?lang={lang}", data=body, content_type="multipart/form-data"
        )
        assert response.status_code == 413
        assert words in response.get_data(as_text=True)
        body["photos"] = (io.BytesIO(b"\xff" * 5 * 1024 * 1024), "a.jpg")


def test_the_body_limit_fits_five_photos_at_their_limit(app: Flask) -> None:
    """NGUON_MAX_CONTENT_LENGTH's default carries five photos at the per-photo limit and the
    form's text; a smaller body limit lowers the per-photo limit the form announces."""
    from registry import photos
    from registry.enforcement.services import FORM_ROOM, MAX_PHOTOS, photo_limit

    with app.app_context():
        assert photo_limit() == photos.MAX_BYTES
        assert app.config["MAX_CONTENT_LENGTH"] >= MAX_PHOTOS * photos.MAX_BYTES + FORM_ROOM
        app.config["MAX_CONTENT_LENGTH"], saved = 16 * 1024 * 1024, app.config["MAX_CONTENT_LENGTH"]
        try:
            assert photo_limit() == 3 * 1024 * 1024
        finally:
            app.config["MAX_CONTENT_LENGTH"] = saved


def test_five_large_phone_photos_from_a_390px_phone(app: Flask) -> None:
    """Playwright + Chromium at 390×844: the form fits the screen (no sideways scroll);
    choosing six photos is flagged before sending; five 7 MB photos (35 MB, more than the
    old 16 MiB body limit) are accepted and stored scaled down."""
    from tests.browser import chromium, live_server

    folder = Path(tempfile.mkdtemp())
    paths = []
    for n in range(6):
        path = folder / f"IMG_{n:04d}.jpg"
        path.write_bytes(phone_photo(seed=n))
        paths.append(str(path))
    total = sum(Path(p).stat().st_size for p in paths[:5])
    assert total > 16 * 1024 * 1024
    with live_server(app) as base, chromium({"width": 390, "height": 844}) as page:
        page.goto(f"{base}/report")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.select_option("#category", "counterfeit")
        page.fill("#description", "Vải thiều dán nhãn chỉ dẫn địa lý nhưng không có mã truy xuất")
        page.set_input_files("#photos", paths)  # six: too many
        assert "chỉ nhận tối đa 5 ảnh" in page.locator("#photos-check").inner_text()
        page.set_input_files("#photos", paths[:5])
        assert page.locator("#photos-check").is_hidden()
        page.click("form.report button[type=submit]")
        assert page.locator(".secret-link a").count() == 1
    with app.app_context():
        stored: list[Any] = db.session.scalars(select(ReportPhoto)).all()
        assert len(stored) == 5 and all(max(p.width, p.height) == 2048 for p in stored)
