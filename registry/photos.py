"""Photos sent with infringement reports: checked, stripped of metadata, thumbnailed, and
searched for a QR code.

- Only real JPEG, PNG or WebP images (Pillow opens and verifies them; the extension and
  the declared type are not trusted), within a size cap and a pixel cap — a decompression
  bomb is refused before it is decoded.
- Each photo is re-encoded from its pixels, so EXIF (GPS included), XMP and comments are
  gone from what is stored; the orientation is applied first so the picture stays upright.
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
from PIL import Image, ImageOps, UnidentifiedImageError

from nguon.errors import DomainValidationError
from nguon.i18n import _

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # 40 megapixels: any phone camera, far below a bomb
MAX_SIDE = 2048  # stored photos are scaled down to this
THUMB_SIDE = 320
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass
class CleanPhoto:
    data: bytes  # JPEG (or PNG when the original had transparency), without metadata
    media_type: str
    thumbnail: bytes  # JPEG, at most 320 px on its longer side
    width: int
    height: int
    sha256: str
    codes: list[str] = field(default_factory=list)  # QR codes found in the photo


def clean_photo(content: bytes, field_name: str = "photos") -> CleanPhoto:
    """Check and clean one uploaded photo; DomainValidationError says what is wrong."""
    if not content:
        raise DomainValidationError({field_name: _("the file is empty")})
    if len(content) > MAX_BYTES:
        raise DomainValidationError(
            {
                field_name: _(
                    "a photo may be at most %(value)s MiB", value=MAX_BYTES // (1024 * 1024)
                )
            }
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(content))
            if probe.format not in FORMATS:
                raise DomainValidationError({field_name: _("must be a JPEG, PNG or WebP photo")})
            width, height = probe.size
            if width * height > MAX_PIXELS:
                message = (
                    f"the image is {width}×{height} pixels; at most {MAX_PIXELS:,} are accepted"
                )
                raise DomainValidationError({field_name: message})
            probe.verify()  # structure check; the image must be opened again to use it
            image = Image.open(io.BytesIO(content))
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise DomainValidationError(
            {field_name: _("not an image Nguồn can read (JPEG, PNG or WebP)")}
        ) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DomainValidationError(
            {field_name: _("the image is too large to be safely decoded")}
        ) from None
    image = ImageOps.exif_transpose(image)  # keep it upright, then forget the EXIF
    codes = [r.text for r in zxingcpp.read_barcodes(image.convert("RGB"), formats=zxingcpp.QRCode)]
    has_alpha = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    if has_alpha:
        image.save(out, "PNG", optimize=True)  # no exif/pnginfo passed: nothing but pixels
        media_type = "image/png"
    else:
        image.save(out, "JPEG", quality=85, optimize=True)
        media_type = "image/jpeg"
    thumb = image.convert("RGB")
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


def write_once(path: Path, data: bytes) -> None:
    """Write a content-addressed file unless it is there already; atomically, so a reader
    never sees half a file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.replace(path)


def store(photo: CleanPhoto, folder: Path) -> tuple[Path, Path]:
    """Write the photo and its thumbnail under ``folder`` by content hash."""
    paths = []
    for suffix, data in (("", photo.data), (".thumb", photo.thumbnail)):
        path = folder / photo.sha256[:2] / f"{photo.sha256}{suffix}"
        write_once(path, data)
        paths.append(path)
    return paths[0], paths[1]
