"""Photos sent with infringement reports: checked, normalised, stripped of every metadata
block, scaled down, thumbnailed, and searched for a QR code.

- Only real images (Pillow opens and verifies them; the extension and the declared type are
  not trusted): JPEG, the multi-picture JPEG many phones and cameras write (MPO: its first
  picture is kept), PNG, WebP, and HEIC/HEIF when pillow-heif is installed. Within a byte cap
  and a pixel cap; a decompression bomb is refused before it is decoded.
- Bounded cost: a JPEG is decoded at a reduced scale (libjpeg's DCT scaling, ``draft``) when
  it is larger than what is stored, so a 40-megapixel photo never lives in memory at full size.
- Every mode Pillow opens becomes 8-bit RGB (or RGBA when the photo has real transparency):
  16-bit and 32-bit grey scaled rather than clipped, CMYK and colour-managed photos (an
  embedded ICC profile, e.g. a phone's Display P3) converted to sRGB, palettes expanded.
- The stored photo and its thumbnail are built from the pixels alone (a fresh image with an
  empty ``info``), so no EXIF (GPS included), XMP, ICC profile, JPEG comment (COM) or PNG
  text chunk can ride along; the orientation is applied first so the picture stays upright.
- zxing-cpp looks for QR codes in the photo; their texts are returned so the caller can link
  the report to the code, its batch and its asset.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import zxingcpp
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from nguon.errors import DomainValidationError
from nguon.i18n import _

try:  # HEIC/HEIF, what iPhones send by default; optional (a maintained libheif binding)
    import pillow_heif

    pillow_heif.register_heif_opener(thumbnails=False)
    HEIF = True
except ImportError:  # pragma: no cover - the dependency is declared; a slim install may lack it
    HEIF = False

MAX_BYTES = 10 * 1024 * 1024  # per photo; the request body limit leaves room for five
MAX_PIXELS = 40_000_000  # 40 megapixels: any phone camera, far below a bomb
MAX_SIDE = 2048  # stored photos are scaled down to this
THUMB_SIDE = 320
FORMATS = {"JPEG", "MPO", "PNG", "WEBP"} | ({"HEIF"} if HEIF else set())
ACCEPT = "image/jpeg,image/png,image/webp" + (",image/heic,image/heif,.heic,.heif" if HEIF else "")
SRGB = ImageCms.createProfile("sRGB")


@dataclass
class CleanPhoto:
    data: bytes  # JPEG (or PNG when the original had transparency), without metadata
    media_type: str
    thumbnail: bytes  # JPEG, at most 320 px on its longer side
    width: int
    height: int
    sha256: str
    codes: list[str] = field(default_factory=list)  # QR codes found in the photo


def kinds() -> str:
    """The accepted kinds, for messages."""
    return "JPEG, PNG, WebP" + (", HEIC" if HEIF else "")


def clean_photo(
    content: bytes, field_name: str = "photos", max_bytes: int = MAX_BYTES
) -> CleanPhoto:
    """Check and clean one uploaded photo; DomainValidationError says what is wrong (in the
    request's language: the reporter reads it)."""
    if not content:
        raise DomainValidationError({field_name: _("the file is empty")})
    if len(content) > max_bytes:
        raise DomainValidationError(
            {
                field_name: _(
                    "the file is %(size)s MB; a photo may be at most %(limit)s MB",
                    size=megabytes(len(content)),
                    limit=megabytes(max_bytes),
                )
            }
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(content))
            if probe.format not in FORMATS:
                raise DomainValidationError(
                    {field_name: _("must be a photo (%(kinds)s)", kinds=kinds())}
                )
            width, height = probe.size
            if width * height > MAX_PIXELS:
                message = _(
                    "the image is %(width)d×%(height)d pixels; at most %(mp)d megapixels"
                    " are accepted",
                    width=width,
                    height=height,
                    mp=MAX_PIXELS // 1_000_000,
                )
                raise DomainValidationError({field_name: message})
            probe.verify()  # structure check; the image must be opened again to use it
            image = Image.open(io.BytesIO(content))
            if image.format in ("JPEG", "MPO"):
                image.draft(image.mode, (MAX_SIDE, MAX_SIDE))
            image.load()  # an MPO loads its first picture
            image = ImageOps.exif_transpose(image)  # keep it upright; the EXIF goes below
            image = _normalised(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise DomainValidationError(
            {field_name: _("not an image Nguồn can read (%(kinds)s)", kinds=kinds())}
        ) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DomainValidationError(
            {field_name: _("the image is too large to be safely decoded")}
        ) from None
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    image = _pixels_only(image)
    codes = [r.text for r in zxingcpp.read_barcodes(image.convert("RGB"), formats=zxingcpp.QRCode)]
    out = io.BytesIO()
    if image.mode == "RGBA":
        image.save(out, "PNG", optimize=True)
        media_type = "image/png"
    else:
        image.save(out, "JPEG", quality=85, optimize=True)
        media_type = "image/jpeg"
    thumb = _pixels_only(image.convert("RGB"))
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "JPEG", quality=80)
    data = out.getvalue()
    return CleanPhoto(
        data,
        media_type,
        thumb_out.getvalue(),
        image.width,
        image.height,
        hashlib.sha256(data).hexdigest(),
        codes,
    )


def megabytes(size: int) -> str:
    """Size in MB (of 1024² bytes) with one decimal, rounded up: 10 MiB + 1 byte is 10.1."""
    tenths = -(-size * 10 // (1024 * 1024))
    return f"{tenths / 10:.1f}".removesuffix(".0")


def _normalised(image: Image.Image) -> Image.Image:
    """8-bit RGB, or RGBA when there is real transparency, in sRGB."""
    icc = image.info.get("icc_profile")
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _eight_bit_grey(image)
        mode = "L"
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode == "LAB":
        image = image.convert("RGB")
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        image = _to_srgb(image, icc)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert("RGB")  # an alpha channel with nothing transparent
    return image


def _eight_bit_grey(image: Image.Image) -> Image.Image:
    """16/32-bit grey scaled to 0–255 (Pillow's own conversion clips at 255)."""
    import numpy

    pixels = numpy.asarray(image).astype(numpy.float64)
    if image.mode.startswith("I;16"):
        top = 65535.0
    else:
        top = float(pixels.max()) if pixels.size else 1.0
        top = 255.0 if top <= 255 else (65535.0 if top <= 65535 else top)
    scaled = numpy.clip(pixels * (255.0 / top), 0, 255).round().astype(numpy.uint8)
    return Image.fromarray(scaled, "L")


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """Convert from the embedded profile to sRGB; a broken profile is ignored."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, SRGB, outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    return converted if converted is not None else image


def _pixels_only(image: Image.Image) -> Image.Image:
    """A fresh image holding only the pixels: its ``info`` (EXIF, XMP, ICC, comments, text
    chunks, dpi) is empty, so no encoder can copy metadata into what is stored."""
    fresh = Image.new(image.mode, image.size)
    fresh.paste(image)
    return fresh


def write_once(path: Path, data: bytes) -> None:
    """Write a content-addressed file unless it is there already; atomically, so a reader
    never sees half a file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.replace(path)


def stored_path(folder: Path, sha256: str, thumbnail: bool = False) -> Path:
    """Where a cleaned photo (or its thumbnail) of this hash lives under ``folder``."""
    return folder / sha256[:2] / f"{sha256}{'.thumb' if thumbnail else ''}"


def store(photo: CleanPhoto, folder: Path) -> tuple[Path, Path]:
    """Write the photo and its thumbnail under ``folder`` by content hash."""
    paths = []
    for thumbnail, data in ((False, photo.data), (True, photo.thumbnail)):
        path = stored_path(folder, photo.sha256, thumbnail)
        write_once(path, data)
        paths.append(path)
    return paths[0], paths[1]
