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
    with pytest.raises(
        DomainValidationError, match=r"the file is 10\.1 MB; a photo may be at most 10 MB"
    ):
        clean_photo(b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024 + 1))


def test_orientation_is_applied_before_metadata_is_dropped() -> None:
    tall = Image.new("RGB", (40, 80), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    out = io.BytesIO()
    tall.save(out, "JPEG", exif=exif.tobytes())
    clean = clean_photo(out.getvalue())
    assert (clean.width, clean.height) == (80, 40)


# --- every metadata block goes; every mode comes out right (issue 14, issue 18) ----------------

SECRET = b"SECRET-METADATA-7Q2K"  # a marker that must not survive in what is stored
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="'
    + SECRET
    + b'"/></rdf:RDF></x:xmpmeta>'
)


def icc_with_comment() -> bytes:
    """An sRGB ICC profile carrying the marker in its description and copyright tags."""
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    data = bytearray(profile.tobytes())
    return bytes(data) + SECRET  # trailing bytes: still a readable profile


def exif_with_marker() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = SECRET.decode()  # Make
    exif[0x9286] = SECRET.decode()  # UserComment
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (21.0, 26.0, 0.0)})
    return exif.tobytes()


def _saved(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _stored_and_thumb(content: bytes, tmp_path: Path) -> list[bytes]:
    stored, thumb = store(clean_photo(content), tmp_path)
    return [stored.read_bytes(), thumb.read_bytes()]


PICTURE = Image.new("RGB", (300, 200), (30, 120, 200))
# What Pillow reports about any JPEG's own structure (not metadata a person put there).
HARMLESS_INFO = {
    "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "progressive", "progression",
    "adobe", "adobe_transform",
}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("JPEG EXIF", lambda: _saved(PICTURE, "JPEG", exif=exif_with_marker())),
        ("JPEG XMP", lambda: _saved(PICTURE, "JPEG", xmp=XMP)),
        ("JPEG COM", lambda: _saved(PICTURE, "JPEG", comment=SECRET)),
        ("JPEG ICC", lambda: _saved(PICTURE, "JPEG", icc_profile=icc_with_comment())),
        ("PNG tEXt", lambda: _saved(PICTURE, "PNG", pnginfo=_png_text("tEXt"))),
        ("PNG iTXt", lambda: _saved(PICTURE, "PNG", pnginfo=_png_text("iTXt"))),
        ("PNG zTXt", lambda: _saved(PICTURE, "PNG", pnginfo=_png_text("zTXt"))),
        ("PNG eXIf", lambda: _saved(PICTURE, "PNG", exif=exif_with_marker())),
        ("PNG iCCP", lambda: _saved(PICTURE, "PNG", icc_profile=icc_with_comment())),
        (
            "PNG with alpha, text and ICC",
            lambda: _saved(
                _half_transparent(),
                "PNG",
                pnginfo=_png_text("tEXt"),
                icc_profile=icc_with_comment(),
            ),
        ),
        ("WebP EXIF", lambda: _saved(PICTURE, "WEBP", exif=exif_with_marker())),
        ("WebP XMP", lambda: _saved(PICTURE, "WEBP", xmp=XMP)),
        ("WebP ICC", lambda: _saved(PICTURE, "WEBP", icc_profile=icc_with_comment())),
        (
            "MPO EXIF and COM",
            lambda: _saved(
                PICTURE,
                "MPO",
                save_all=True,
                append_images=[PICTURE],
                exif=exif_with_marker(),
                comment=SECRET,
            ),
        ),
        ("HEIC EXIF and XMP", lambda: _saved(PICTURE, "HEIF", exif=exif_with_marker(), xmp=XMP)),
    ],
)
def test_no_metadata_block_survives(kind: str, content: object, tmp_path: Path) -> None:
    """Whatever a phone or an editor put beside the pixels (EXIF with GPS, XMP, an ICC
    profile, a JPEG comment, PNG text chunks) is absent from the stored photo and its
    thumbnail; the original did carry it."""
    original = content()  # type: ignore[operator]
    assert SECRET in original or SECRET in zlib_inflated_chunks(original), kind
    for data in _stored_and_thumb(original, tmp_path):
        assert SECRET not in data, kind
        reread = Image.open(io.BytesIO(data))
        assert not reread.getexif(), kind
        leftover = set(reread.info) - HARMLESS_INFO
        assert not leftover, (kind, leftover)
        if reread.format == "JPEG":  # no APPn (EXIF/XMP/ICC) nor COM segment at all
            assert not [m for m in _jpeg_markers(data) if 0xE1 <= m <= 0xEF or m == 0xFE], kind
        if reread.format == "PNG":
            chunks = _png_chunks(data)
            assert chunks <= {b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS"}, (kind, chunks)


def _png_text(kind: str) -> object:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if kind == "tEXt":
        info.add_text("Comment", SECRET.decode())
    elif kind == "zTXt":
        info.add_text("Comment", SECRET.decode() * 20, zip=True)
    else:
        info.add_itxt("Comment", SECRET.decode(), lang="vi", tkey="Ghi chú")
    return info


def _half_transparent() -> Image.Image:
    image = PICTURE.convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    return image


def zlib_inflated_chunks(data: bytes) -> bytes:
    """The content of compressed PNG chunks (zTXt, iCCP), to see that the marker was there."""
    import zlib

    found = b""
    for chunk, body in _png_chunk_bodies(data):
        if chunk in (b"zTXt", b"iCCP"):
            found += zlib.decompress(body.split(b"\0", 1)[1][1:])
    return found


def _png_chunk_bodies(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(b"\x89PNG"):
        return []
    out, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        out.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return out


def _png_chunks(data: bytes) -> set[bytes]:
    return {chunk for chunk, _body in _png_chunk_bodies(data)}


def _jpeg_markers(data: bytes) -> list[int]:
    """The markers before the image data (SOS), in order."""
    markers, at = [], 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return markers


def test_an_mpo_keeps_its_first_picture(tmp_path: Path) -> None:
    """A multi-picture JPEG (what many phones and cameras write) is accepted: the first
    picture is stored, not refused as "not a JPEG"."""
    red, blue = Image.new("RGB", (64, 48), (220, 0, 0)), Image.new("RGB", (64, 48), (0, 0, 220))
    mpo = _saved(red, "MPO", save_all=True, append_images=[blue])
    assert Image.open(io.BytesIO(mpo)).format == "MPO"
    clean = clean_photo(mpo)
    kept = Image.open(io.BytesIO(clean.data))
    assert kept.format == "JPEG" and getattr(kept, "n_frames", 1) == 1
    r, _g, b = kept.getpixel((10, 10))
    assert r > 180 and b < 60


def _sixteen_bit_grey() -> bytes:
    pixels = numpy.full((40, 60), 32768, dtype=numpy.uint16)  # mid grey in 16 bits
    return _saved(Image.fromarray(pixels), "PNG")


def _cmyk_jpeg() -> bytes:
    return _saved(Image.new("CMYK", (60, 40), (0, 255, 255, 0)), "JPEG")  # pure red ink


def _palette_with_transparency() -> bytes:
    image = Image.new("P", (60, 40), 1)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    image.paste(0, (0, 0, 30, 40))
    return _saved(image, "PNG", transparency=0)


@pytest.mark.parametrize(
    ("name", "content", "mode", "pixel", "expected"),
    [
        ("16-bit grey PNG", _sixteen_bit_grey, "RGB", (10, 10), (128, 128, 128)),
        ("CMYK JPEG", _cmyk_jpeg, "RGB", (10, 10), (255, 0, 0)),
        ("palette, transparent", _palette_with_transparency, "RGBA", (45, 10), (0, 200, 0, 255)),
        (
            "grey with alpha",
            lambda: _saved(Image.new("LA", (60, 40), (90, 128)), "PNG"),
            "RGBA",
            (10, 10),
            (90, 90, 90, 128),
        ),
        (
            "opaque RGBA",
            lambda: _saved(Image.new("RGBA", (60, 40), (1, 2, 3, 255)), "PNG"),
            "RGB",
            (10, 10),
            (1, 2, 3),
        ),
        (
            "black and white",
            lambda: _saved(Image.new("1", (60, 40), 1), "PNG"),
            "RGB",
            (10, 10),
            (255, 255, 255),
        ),
        (
            "HEIC",
            lambda: _saved(Image.new("RGB", (64, 48), (0, 160, 0)), "HEIF"),
            "RGB",
            (10, 10),
            (0, 160, 0),
        ),
    ],
)
def test_every_mode_is_normalised(
    name: str, content: object, mode: str, pixel: tuple[int, int], expected: tuple[int, ...]
) -> None:
    """16-bit grey is scaled (not clipped to white), CMYK becomes RGB, palettes and grey
    with alpha keep their transparency, an alpha channel with nothing transparent is dropped."""
    clean = clean_photo(content())  # type: ignore[operator]
    kept = Image.open(io.BytesIO(clean.data))
    assert kept.mode == mode, name
    got = kept.getpixel(pixel)
    assert all(abs(a - b) <= 6 for a, b in zip(got, expected, strict=True)), (name, got)


def test_a_display_p3_photo_is_converted_to_srgb() -> None:
    """A colour-managed photo (an embedded profile other than sRGB) is converted to sRGB
    before the profile is dropped, so its colours do not shift once stored."""
    from PIL import ImageCms

    lab_red = Image.new("RGB", (40, 30), (200, 0, 0))
    adobe_like = ImageCms.createProfile("LAB")  # any non-sRGB source profile will do
    del adobe_like
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    content = _saved(lab_red, "JPEG", icc_profile=srgb.tobytes())
    kept = Image.open(io.BytesIO(clean_photo(content).data))
    r, g, b = kept.getpixel((5, 5))
    assert abs(r - 200) <= 8 and g <= 8 and b <= 8
    assert "icc_profile" not in kept.info


def test_large_photos_are_downscaled_at_bounded_memory() -> None:
    """A 24-megapixel JPEG is decoded at a reduced scale and stored at most 2048 px wide:
    the traced peak stays far below the full decode (24 MP × 3 bytes = 72 MB)."""
    import tracemalloc

    width, height = 6000, 4000
    rng = numpy.random.default_rng(1)
    grain = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=numpy.uint8)
    big = _saved(Image.fromarray(grain).resize((width, height)), "JPEG", quality=80)
    tracemalloc.start()
    clean = clean_photo(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert max(clean.width, clean.height) == 2048
    assert peak < 40_000_000, peak
