"""Report photos: real images only, no metadata kept, bombs refused, QR codes found."""

from __future__ import annotations

import io
from pathlib import Path

import numpy
import pytest
import zxingcpp
from PIL import Image

from nguon.errors import DomainValidationError
from registry.photos import MAX_PIXELS, clean_photo, store

URI = "https://nguon.example.vn/01/08930000000019/10/LN2026-001/21/A7Q2KX9PZ3"
GPS_IFD = 0x8825


def photo_with_qr_and_gps(fmt: str = "JPEG", uri: str = URI) -> bytes:
    """A 'photo' of a label: a QR code on a grey background, with EXIF GPS in the file."""
    qr = Image.fromarray(
        numpy.asarray(
            zxingcpp.create_barcode(uri, zxingcpp.QRCode, ec_level="M").to_image(
                scale=8, add_quiet_zones=True
            )
        )
    ).convert("RGB")
    canvas = Image.new("RGB", (qr.width + 200, qr.height + 200), (200, 200, 200))
    canvas.paste(qr, (100, 100))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (21.0, 26.0, 0.0), 3: "E", 4: (106.0, 40.0, 0.0)})
    out = io.BytesIO()
    canvas.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def test_gps_is_gone_and_the_code_is_found(tmp_path: Path) -> None:
    original = photo_with_qr_and_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)  # it was there
    clean = clean_photo(original)
    assert clean.codes == [URI]
    stored, thumb = store(clean, tmp_path)
    reread = Image.open(stored)
    assert reread.format == "JPEG"
    assert not reread.getexif() and not reread.getexif().get_ifd(GPS_IFD)
    assert b"PhoneMaker" not in stored.read_bytes() and b"Exif" not in stored.read_bytes()
    assert max(Image.open(thumb).size) <= 320


def test_webp_and_png_are_accepted(tmp_path: Path) -> None:
    assert clean_photo(photo_with_qr_and_gps("WEBP")).codes == [URI]
    transparent = Image.new("RGBA", (50, 40), (255, 0, 0, 128))
    out = io.BytesIO()
    transparent.save(out, "PNG")
    clean = clean_photo(out.getvalue())
    assert clean.media_type == "image/png" and clean.codes == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"%PDF-1.7 not a photo", "not an image Nguồn can read"),
        (b"GIF89a" + b"\x00" * 100, "not an image Nguồn can read"),
    ],
)
def test_non_images_are_refused(content: bytes, message: str) -> None:
    with pytest.raises(DomainValidationError) as caught:
        clean_photo(content)
    assert message in caught.value.errors["photos"][0]


def test_a_decompression_bomb_is_refused() -> None:
    """A small file that would decode to 100 megapixels."""
    bomb = Image.new("1", (10_000, 10_000))
    out = io.BytesIO()
    bomb.save(out, "PNG", optimize=True)
    assert len(out.getvalue()) < 200_000 and MAX_PIXELS < 10_000 * 10_000
    with pytest.raises(DomainValidationError) as caught:
        clean_photo(out.getvalue())
    assert (
        "pixels" in caught.value.errors["photos"][0]
        or "too large" in caught.value.errors["photos"][0]
    )


def test_oversized_file_is_refused() -> None:
    with pytest.raises(DomainValidationError, match="at most 10 MiB"):
        clean_photo(b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024 + 1))


def test_orientation_is_applied_before_metadata_is_dropped() -> None:
    tall = Image.new("RGB", (40, 80), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    out = io.BytesIO()
    tall.save(out, "JPEG", exif=exif.tobytes())
    clean = clean_photo(out.getvalue())
    assert (clean.width, clean.height) == (80, 40)
