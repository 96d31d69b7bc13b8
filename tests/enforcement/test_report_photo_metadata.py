"""Through the public report form, end to end: what is stored on disk and served to
officers (photo and thumbnail) carries no metadata block of any kind the reporter's file
had: EXIF (GPS), XMP, ICC profile (with its comment), JPEG COM, PNG tEXt/iTXt/zTXt/iCCP,
WebP EXIF/XMP/ICC (the issue found a JPEG comment surviving)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, PngImagePlugin
from sqlalchemy import select

from nguon.db import db
from registry import photos
from registry.enforcement.models import ReportPhoto
from registry.enforcement.services import photo_folder
from tests.enforcement.test_reports import form_token
from tests.registry.test_photos import (
    SECRET,
    XMP,
    _jpeg_markers,
    _png_chunks,
    exif_with_marker,
    icc_with_comment,
)


def _every_block(fmt: str) -> bytes:
    picture = Image.new("RGB", (320, 240), (30, 120, 200))
    params: dict[str, Any] = {"exif": exif_with_marker(), "icc_profile": icc_with_comment()}
    if fmt == "JPEG":
        params |= {"xmp": XMP, "comment": SECRET}
    elif fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", SECRET.decode())
        info.add_text("Description", SECRET.decode() * 20, zip=True)
        info.add_itxt("Ghi chú", SECRET.decode(), lang="vi", tkey="Ghi chú")
        params |= {"pnginfo": info}
    else:
        params |= {"xmp": XMP}
    out = io.BytesIO()
    picture.save(out, fmt, **params)
    return out.getvalue()


def _clean(data: bytes) -> None:
    assert SECRET not in data
    image = Image.open(io.BytesIO(data))
    assert not image.getexif()
    assert set(image.info) <= {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}
    if image.format == "JPEG":  # JFIF (APP0) alone: no APP1–APP15, no COM
        assert not [m for m in _jpeg_markers(data) if 0xE1 <= m <= 0xEF or m == 0xFE]
    else:
        assert _png_chunks(data) <= {b"IHDR", b"IDAT", b"IEND"}


def test_no_metadata_block_reaches_the_stored_photo_or_its_thumbnail(
    client: FlaskClient, app: Flask, logged_in: Callable[..., FlaskClient]
) -> None:
    originals = {fmt: _every_block(fmt) for fmt in ("JPEG", "PNG", "WEBP")}
    assert all(SECRET in content for content in originals.values())
    assert 0xFE in _jpeg_markers(originals["JPEG"])  # the COM is there
    response = client.post(
        "/report",
        data={
            "csrf_token": form_token(client),
            "category": "counterfeit",
            "description": "Hộp vải giả nhãn hiệu bày bán ở chợ",
            "photos": [
                (io.BytesIO(content), f"photo.{fmt.lower()}") for fmt, content in originals.items()
            ],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    with app.app_context():
        stored = db.session.scalars(select(ReportPhoto).order_by(ReportPhoto.id)).all()
        folder = Path(photo_folder())
    assert len(stored) == 3
    officer = logged_in("officer")
    for photo in stored:
        for thumbnail in (False, True):
            _clean(photos.stored_path(folder, photo.sha256, thumbnail).read_bytes())
        for suffix in ("", "/thumbnail"):
            served = officer.get(f"/registry/report-photos/{photo.id}{suffix}")
            assert served.status_code == 200
            _clean(served.data)
