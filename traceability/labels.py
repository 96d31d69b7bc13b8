"""Label runs: issuing codes within the batch and the authorisation's limits, rendering
them (PNG, SVG, PDF sheets) and voiding them.

QR symbols are encoded with zxing-cpp (error correction M, quiet zone of 4 modules):
it is the encoder that meets the issuing target (about 5,000 symbols/s per core here,
against 1,000–2,000/s for ``qrcode`` with a fixed mask), and it is the decoder the
tests use, so every symbol is made and checked by one library.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy
import pypdfium2
import zxingcpp
from flask import current_app
from fpdf import FPDF
from PIL import Image
from sqlalchemy import extract, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from nguon.db import db, utcnow
from nguon.errors import DomainValidationError
from nguon.formatting import format_decimal
from nguon.i18n import _, _l, label
from registry import services as registry
from traceability.gs1 import DigitalLink
from traceability.models import Batch, Claim, ClaimStatus, Label, LabelKind, LabelRun, Product
from traceability.services import Problems, _in_kg

# 32 symbols of GS1's set with no look-alikes (no 0/O, 1/I): 10 symbols = 50 random bits.
SERIAL_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
SERIAL_LENGTH = 10
MAX_RUN = 100_000
FONT = Path(__file__).resolve().parent.parent / "static" / "fonts" / "DejaVuSans.ttf"


def random_serials(count: int) -> list[str]:
    """``count`` distinct random serials (50 bits each, from a CSPRNG)."""
    serials: set[str] = set()
    while len(serials) < count:
        raw = secrets.token_bytes(8 * (count - len(serials)))
        for start in range(0, len(raw), 8):
            value = int.from_bytes(raw[start : start + 8], "big") >> 14  # 50 bits
            serials.add(
                "".join(SERIAL_ALPHABET[(value >> (5 * i)) & 31] for i in range(SERIAL_LENGTH))
            )
    return list(serials)[:count]


def label_uri(gtin: str, lot: str, serial: str | None, base_url: str | None = None) -> str:
    base = base_url or current_app.config["PUBLIC_URL"]
    return DigitalLink(gtin, lot=lot, serial=serial).uri(base)


def _issued_quantity(batch_id: int) -> Decimal:
    total = db.session.scalar(
        select(func.coalesce(func.sum(LabelRun.count * LabelRun.item_quantity), 0)).where(
            LabelRun.batch_id == batch_id, LabelRun.kind == LabelKind.ITEM
        )
    )
    voided = db.session.scalar(
        select(func.coalesce(func.sum(LabelRun.item_quantity), 0))
        .select_from(Label)
        .join(LabelRun, LabelRun.id == Label.run_id)
        .where(
            Label.batch_id == batch_id, Label.kind == LabelKind.ITEM, Label.voided_at.isnot(None)
        )
    )
    return Decimal(total or 0) - Decimal(voided or 0)


def _ceiling_problems(batch: Batch, new_quantity: Decimal) -> list[str]:
    """Labels for a GI/mark claim must stay within the user's remaining yearly ceiling."""
    problems = []
    year = batch.production_date.year
    for claim in batch.claims:
        if claim.status != ClaimStatus.ACCEPTED or claim.asset_id is None:
            continue
        user = registry.active_authorisation(
            batch.producer_id, claim.asset_id, batch.production_date
        )
        if user is None or user.yearly_ceiling is None:
            continue
        ceiling = _in_kg(user.yearly_ceiling, user.ceiling_unit) or Decimal(user.yearly_ceiling)
        rows = db.session.execute(
            select(Batch.id, Batch.unit)
            .join(Claim, Claim.batch_id == Batch.id)
            .where(
                Claim.asset_id == claim.asset_id,
                Claim.status == ClaimStatus.ACCEPTED,
                Batch.producer_id == batch.producer_id,
                extract("year", Batch.production_date) == year,
            )
        ).all()
        used = sum(
            ((_in_kg(_issued_quantity(bid), unit) or Decimal(0)) for bid, unit in rows), Decimal(0)
        )
        wanted = _in_kg(new_quantity, batch.unit)
        if wanted is not None and used + wanted > ceiling:
            remaining = max(ceiling - used, Decimal(0))
            problems.append(
                _(
                    "labels for %(asset)s would reach %(total)s kg in %(year)s; the "
                    "authorisation's yearly ceiling leaves %(left)s kg",
                    asset=claim.asset.name,
                    total=format_decimal(used + wanted, "#,##0"),
                    year=year,
                    left=format_decimal(remaining, "#,##0"),
                )
            )
    return problems


def issue_run(
    batch: Batch,
    kind: str,
    count: int = 1,
    item_quantity: Decimal | None = None,
    created_by_id: int | None = None,
) -> LabelRun:
    """Issue a run. ``item`` runs: ``count`` codes of ``item_quantity`` each (batch unit);
    the total may not exceed what the batch still has unlabelled, nor the remaining yearly
    ceiling of any GI/mark the batch claims. ``lot``: the lot's single code."""
    if kind not in (LabelKind.LOT, LabelKind.ITEM):
        raise DomainValidationError({"kind": _("must be lot or item")})
    if kind == LabelKind.LOT:
        existing = db.session.scalar(
            select(LabelRun).where(
                LabelRun.batch_id == batch.id,
                LabelRun.kind == LabelKind.LOT,
                LabelRun.voided_at.is_(None),
            )
        )
        if existing is not None:
            raise DomainValidationError({"kind": _("this lot already has its lot-level code")})
        count, item_quantity = 1, Decimal(batch.quantity)
    else:
        item_quantity = Decimal(item_quantity if item_quantity is not None else 1)
        if not 1 <= count <= MAX_RUN:
            raise DomainValidationError(
                {"count": _("must be between 1 and %(max)s", max=format_decimal(MAX_RUN))}
            )
        if item_quantity <= 0:
            raise DomainValidationError({"item_quantity": _("must be more than 0")})
        issued = _issued_quantity(batch.id)
        wanted = item_quantity * count
        if issued + wanted > Decimal(batch.quantity):
            left = Decimal(batch.quantity) - issued
            raise DomainValidationError(
                {
                    "count": _(
                        "%(count)s × %(each)s %(unit)s exceeds the batch: %(left)s %(unit)s "
                        "of %(total)s are still unlabelled",
                        count=format_decimal(count),
                        each=format_decimal(item_quantity),
                        unit=label("unit", batch.unit),
                        left=format_decimal(left),
                        total=format_decimal(batch.quantity),
                    )
                }
            )
        problems = _ceiling_problems(batch, wanted)
        if problems:
            raise DomainValidationError({"count": problems})
    run = LabelRun(
        batch_id=batch.id,
        kind=kind,
        count=count,
        item_quantity=item_quantity,
        created_by_id=created_by_id,
    )
    db.session.add(run)
    db.session.flush()
    gtin = batch.product.gtin
    missing = count
    # Insert and let the unique (gtin, serial) index refuse the rare duplicate, then draw
    # again for those: no pre-check query (a 50-bit collision is a once-in-billions event).
    while missing:
        serials: list[str | None] = [None] if kind == LabelKind.LOT else [*random_serials(missing)]
        _insert_new(
            [
                {"run_id": run.id, "batch_id": batch.id, "kind": kind, "gtin": gtin, "serial": s}
                for s in serials
            ]
        )
        made = db.session.scalar(select(func.count(Label.id)).where(Label.run_id == run.id))
        missing = count - made
    return run


def _insert_new(rows: list[dict[str, Any]]) -> None:
    """Insert labels, skipping any whose (gtin, serial) exists."""
    dialect = db.session.get_bind().dialect.name
    insert_of = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_of(Label.__table__).on_conflict_do_nothing(index_elements=["gtin", "serial"])
    connection = db.session.connection()
    for start in range(0, len(rows), 5000):
        connection.execute(statement, rows[start : start + 5000])


def void_labels(run: LabelRun, reason: str, serials: Sequence[str] | None = None) -> int:
    """Void a whole run, or the listed serials of it (damaged labels); returns how many."""
    reason = reason.strip()
    if not reason:
        raise DomainValidationError({"reason": _("say why the labels are voided")})
    query = select(Label).where(Label.run_id == run.id, Label.voided_at.is_(None))
    if serials is not None:
        unknown = set(serials) - set(
            db.session.scalars(
                select(Label.serial).where(Label.run_id == run.id, Label.serial.in_(list(serials)))
            )
        )
        if unknown:
            raise DomainValidationError(
                {
                    "serials": _(
                        "not in this run: %(serials)s", serials=", ".join(sorted(unknown)[:5])
                    )
                }
            )
        query = query.where(Label.serial.in_(list(serials)))
    now = utcnow()
    chosen = list(db.session.scalars(query))
    for code in chosen:
        code.voided_at, code.void_reason = now, reason
    if serials is None:
        run.voided_at, run.void_reason = now, reason
    db.session.flush()
    return len(chosen)


def run_labels(run: LabelRun) -> list[Label]:
    return list(db.session.scalars(select(Label).where(Label.run_id == run.id).order_by(Label.id)))


# --- rendering -------------------------------------------------------------------------------


def qr_matrix(uri: str) -> Image.Image:
    """The symbol, one pixel per module, quiet zone included (mode L)."""
    barcode = zxingcpp.create_barcode(uri, zxingcpp.QRCode, ec_level="M")
    return Image.fromarray(numpy.asarray(barcode.to_image(scale=1, add_quiet_zones=True)))


def png(uri: str, module_px: int = 8) -> bytes:
    if module_px not in PNG_MODULE_PX:
        raise DomainValidationError(
            {
                "px": _named(
                    "px",
                    _("between %(low)d and %(high)d", low=PNG_MODULE_PX[0], high=PNG_MODULE_PX[-1]),
                )
            }
        )
    image = qr_matrix(uri)
    image = image.resize(
        (image.width * module_px, image.height * module_px), Image.Resampling.NEAREST
    )
    out = io.BytesIO()
    image.convert("1").save(out, "PNG", optimize=True)
    return out.getvalue()


def svg(uri: str) -> str:
    """A compact SVG: one path of unit squares on a viewBox in modules."""
    image = qr_matrix(uri)
    width, height = image.size
    pixels = image.load()
    parts = []
    for y in range(height):
        x = 0
        while x < width:
            if pixels[x, y] < 128:
                start = x
                while x < width and pixels[x, y] < 128:
                    x += 1
                parts.append(f"M{start} {y}h{x - start}v1h{start - x}z")
            else:
                x += 1
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'shape-rendering="crispEdges"><title>{uri}</title>'
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<path d="{"".join(parts)}" fill="#000"/></svg>'
    )


def etag(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:32]


# Module sizes a label image may be asked for: the cost grows with the square of it.
PNG_MODULE_PX = range(1, 17)
A4 = (210.0, 297.0)
MIN_QR_MM = 12.0  # smaller symbols stop scanning reliably from a phone


@dataclass(frozen=True)
class SheetLayout:
    """Label stock: a page (A4, or one label of a roll) of rows × columns of cells
    between margins, with gaps between columns and rows (all in mm)."""

    rows: int = 8
    columns: int = 4
    margin_top: float = 10
    margin_left: float = 8
    margin_right: float = 8
    margin_bottom: float = 10
    gap_x: float = 2
    gap_y: float = 2
    page_width: float = A4[0]
    page_height: float = A4[1]

    def check(self) -> None:
        """Refuse a layout that is not finite, leaves the page or makes cells too small to
        hold a scannable code (each problem names its field, in the user's language)."""
        problems = Problems()
        if not (1 <= self.rows <= 30):
            problems.add("rows", _named("rows", _("between 1 and 30")))
        if not (1 <= self.columns <= 12):
            problems.add("columns", _named("columns", _("between 1 and 12")))
        for name in (
            "margin_top",
            "margin_left",
            "margin_right",
            "margin_bottom",
            "gap_x",
            "gap_y",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 100):
                problems.add(name, _named(name, _("between 0 and 100 mm")))
        problems.raise_if_any()
        if self.margin_left + self.margin_right >= self.page_width:
            problems.add(
                "margin_left", _named("margin_left", _("the margins leave no room on the page"))
            )
        if self.margin_top + self.margin_bottom >= self.page_height:
            problems.add(
                "margin_top", _named("margin_top", _("the margins leave no room on the page"))
            )
        problems.raise_if_any()
        if self.cell_width <= 0 or self.cell_height <= 0 or self.qr_size() < MIN_QR_MM:
            problems.add(
                "rows",
                _(
                    "cells of %(width)s × %(height)s mm are too small for a code of "
                    "at least %(min)s mm (choose fewer rows or columns, or smaller margins)",
                    width=format_decimal(round(self.cell_width, 1)),
                    height=format_decimal(round(self.cell_height, 1)),
                    min=format_decimal(MIN_QR_MM),
                ),
            )
        problems.raise_if_any()

    @property
    def per_page(self) -> int:
        return self.rows * self.columns

    @property
    def cell_width(self) -> float:
        usable = self.page_width - self.margin_left - self.margin_right
        return (usable - self.gap_x * (self.columns - 1)) / self.columns

    @property
    def cell_height(self) -> float:
        usable = self.page_height - self.margin_top - self.margin_bottom
        return (usable - self.gap_y * (self.rows - 1)) / self.rows

    def cell_box(self, slot: int) -> tuple[float, float, float, float]:
        """(left, top, width, height) of the ``slot``-th cell of a page, row by row."""
        row, column = divmod(slot, self.columns)
        return (
            self.margin_left + column * (self.cell_width + self.gap_x),
            self.margin_top + row * (self.cell_height + self.gap_y),
            self.cell_width,
            self.cell_height,
        )

    @property
    def side_by_side(self) -> bool:
        """Text beside the code (wide, low cells) rather than under it."""
        return self._beside() > self._under()

    def _under(self) -> float:
        return min(self.cell_width - 2 * PAD, self.cell_height - 2 * PAD - TEXT_LINES * LINE_H)

    def _beside(self) -> float:
        return min(self.cell_height - 2 * PAD, self.cell_width - 3 * PAD - MIN_TEXT_WIDTH)

    def qr_size(self) -> float:
        return max(self._under(), self._beside())


PAD = 1.0
LINE_H = 2.8
TEXT_LINES = 4
MIN_TEXT_WIDTH = 14.0


@dataclass(frozen=True)
class Preset:
    """A label stock sold in Vietnam: A4 decal sheets (Tomy, Decal A4 and their Avery-size
    equivalents) or a thermal roll (one label per PDF page, at the label's size)."""

    key: str
    label: Any
    layout: SheetLayout


def _sheet(
    rows: int,
    columns: int,
    width: float,
    height: float,
    top: float,
    side: float,
    gap_x: float,
    gap_y: float = 0,
) -> SheetLayout:
    bottom = A4[1] - top - rows * height - (rows - 1) * gap_y
    right = A4[0] - side - columns * width - (columns - 1) * gap_x
    return SheetLayout(rows, columns, top, side, round(right, 2), round(bottom, 2), gap_x, gap_y)


def _roll(width: float, height: float) -> SheetLayout:
    return SheetLayout(1, 1, 1.5, 1.5, 1.5, 1.5, 0, 0, width, height)


PRESETS = {
    p.key: p
    for p in (
        Preset(
            "a4-65",
            _l("A4 decal, 65 labels (5 × 13, 38.1 × 21.2 mm)"),
            _sheet(13, 5, 38.1, 21.2, 10.7, 4.7, 2.5),
        ),
        Preset(
            "a4-40",
            _l("A4 decal, 40 labels (4 × 10, 45.7 × 25.4 mm)"),
            _sheet(10, 4, 45.7, 25.4, 21.5, 9.7, 2.6),
        ),
        Preset(
            "a4-24",
            _l("A4 decal, 24 labels (3 × 8, 63.5 × 33.9 mm)"),
            _sheet(8, 3, 63.5, 33.9, 12.9, 7.2, 2.5),
        ),
        Preset(
            "a4-21",
            _l("A4 decal, 21 labels (3 × 7, 63.5 × 38.1 mm)"),
            _sheet(7, 3, 63.5, 38.1, 15.15, 7.2, 2.5),
        ),
        Preset("a4-32", _l("A4 paper, 32 labels (4 × 8)"), SheetLayout()),
        Preset("roll-50x30", _l("Thermal roll, 50 × 30 mm labels"), _roll(50, 30)),
        Preset("roll-40x30", _l("Thermal roll, 40 × 30 mm labels"), _roll(40, 30)),
        Preset("roll-60x40", _l("Thermal roll, 60 × 40 mm labels"), _roll(60, 40)),
    )
}
CUSTOM = "custom"
_NUMBER = re.compile(r"^\d{1,3}(?:[.,]\d{1,2})?$", re.ASCII)  # ASCII: "١" is a digit to \d
_COUNT = re.compile(r"^\d{1,2}$", re.ASCII)
LAYOUT_FIELDS = {
    "rows": _l("Rows"),
    "columns": _l("Columns"),
    "margin_top": _l("Top margin"),
    "margin_left": _l("Left margin"),
    "margin_right": _l("Right margin"),
    "margin_bottom": _l("Bottom margin"),
    "gap_x": _l("Gap between columns"),
    "gap_y": _l("Gap between rows"),
    "preset": _l("Label stock"),
    "px": _l("Image size"),
}


def _named(field: str, message: str) -> str:
    return _("%(field)s: %(problem)s", field=LAYOUT_FIELDS.get(field, field), problem=message)


def layout_from(args: Mapping[str, str]) -> SheetLayout:
    """The layout a request asks for: ``preset=<key>``, or ``custom`` (A4) with rows,
    columns, margins and gaps as plain decimal numbers (a decimal comma is fine). Anything
    else (NaN, infinities, exponents, negative or huge values) is refused naming its field.
    ``gap`` sets both gaps (the older parameter)."""
    preset = args.get("preset") or CUSTOM
    if preset != CUSTOM:
        if preset not in PRESETS:
            raise DomainValidationError(
                {"preset": _named("preset", _("choose one of the listed label stocks"))}
            )
        return PRESETS[preset].layout
    base = SheetLayout()
    values: dict[str, Any] = {}
    problems = Problems()
    given = dict(args)
    if given.get("gap") not in (None, ""):
        given.setdefault("gap_x", given["gap"])
        given.setdefault("gap_y", given["gap"])
    for name in LAYOUT_FIELDS:
        if name in ("preset", "px"):  # named here for messages; not layout dimensions
            continue
        raw = (given.get(name) or "").strip()
        if raw == "":
            continue
        if name in ("rows", "columns"):
            if _COUNT.match(raw):
                values[name] = int(raw)
            else:
                problems.add(name, _named(name, _("a whole number")))
        elif _NUMBER.match(raw):
            values[name] = float(raw.replace(",", "."))
        else:
            problems.add(name, _named(name, _("a number of millimetres, e.g. 8 or 7,5")))
    problems.raise_if_any()
    layout = replace(base, **values)
    layout.check()
    return layout


@dataclass(frozen=True)
class LabelText:
    uri: str
    product: str
    lot: str
    serial: str | None
    sign: str  # the GI/mark name (and user code) printed under the code


def sheet_pdf(
    items: Iterable[LabelText], layout: SheetLayout, progress: Callable[[int], None] | None = None
) -> bytes:
    """Printable pages: each cell a QR code with the product, lot, serial and sign under
    it (or beside it, in wide low cells), in DejaVu Sans (shipped) so Vietnamese
    diacritics print. A roll preset makes one page per label, at the label's size."""
    layout.check()
    pdf = FPDF(orientation="P", unit="mm", format=(layout.page_width, layout.page_height))
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.set_font("DejaVu", size=6.5)
    size = layout.qr_size()
    beside = layout.side_by_side
    fits: dict[tuple[str, float], tuple[str, float]] = {}
    wrapped: dict[tuple[str, float], list[str]] = {}
    for index, item in enumerate(items):
        slot = index % layout.per_page
        if slot == 0:
            pdf.add_page()
        x, y, width, height = layout.cell_box(slot)
        if beside:
            qr_x, qr_y = x + PAD, y + (height - size) / 2
            text_x, text_w = qr_x + size + PAD, width - size - 3 * PAD
            baseline = y + max(PAD, (height - TEXT_LINES * LINE_H) / 2) + LINE_H * 0.75
        else:
            qr_x, qr_y = x + (width - size) / 2, y + PAD
            text_x, text_w = x + PAD, width - 2 * PAD
            baseline = qr_y + size + 0.5 + LINE_H * 0.75
        pdf.image(qr_matrix(item.uri), x=qr_x, y=qr_y, w=size, h=size)
        lines = [
            item.product,
            f"Lô/Lot {item.lot}",
            f"Số/Serial {item.serial}" if item.serial else "",
            item.sign,
        ]
        if beside:  # a tall text column: long lines wrap instead of being cut
            room = int((height - 2 * PAD) // LINE_H)
            lines = _wrap_all(pdf, [line for line in lines if line], text_w, room, wrapped)
            baseline = y + max(PAD, (height - len(lines) * LINE_H) / 2) + LINE_H * 0.75
        for line in lines:
            if line:
                # Lines repeat across a run (product, lot, sign): fit and measure them once.
                fitted = fits.get((line, text_w))
                if fitted is None:
                    text = _fit(pdf, line, text_w)
                    fitted = fits[(line, text_w)] = (text, pdf.get_string_width(text))
                left = text_x if beside else text_x + (text_w - fitted[1]) / 2
                pdf.text(left, baseline, fitted[0])
                baseline += LINE_H
        if progress:
            progress(1)
    return bytes(pdf.output())


_PDFIUM = threading.Lock()


def preview_png(items: Sequence[LabelText], layout: SheetLayout, width_px: int = 640) -> bytes:
    """The first page as it will print (the PDF itself, rendered by PDFium), to check
    a label stock before printing."""
    pdf = sheet_pdf(items[: layout.per_page], layout)
    with _PDFIUM:  # PDFium is not thread-safe (a threaded server may preview twice at once)
        document = pypdfium2.PdfDocument(pdf)
        try:
            dpi = min(300.0, width_px / (layout.page_width / 25.4))
            image = document[0].render(scale=dpi / 72).to_pil()
        finally:
            document.close()
    out = io.BytesIO()
    image.convert("L").save(out, "PNG")  # optimize=True costs ten times more for 1 %
    return out.getvalue()


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and pdf.get_string_width(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def _wrap_all(
    pdf: FPDF, texts: list[str], width: float, room: int, cache: dict[tuple[str, float], list[str]]
) -> list[str]:
    """Each text wrapped to the width (cached), the product's name shortened first when
    everything does not fit in ``room`` lines."""
    parts = []
    for text in texts:
        if (text, width) not in cache:
            cache[(text, width)] = _wrap(pdf, text, width)
        parts.append(cache[(text, width)])
    while sum(map(len, parts)) > room and len(parts[0]) > 1:
        parts[0] = [*parts[0][:-2], parts[0][-2] + " " + parts[0][-1]]  # cut by _fit
    return [line for part in parts for line in part][:room]


def _fit(pdf: FPDF, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def label_texts(run: LabelRun, labels: Sequence[Label] | None = None) -> list[LabelText]:
    batch = run.batch
    product: Product = batch.product
    signs = []
    for claim in batch.claims:
        if claim.asset is not None:
            user = registry.active_authorisation(
                batch.producer_id, claim.asset_id, batch.production_date
            )
            signs.append(f"{claim.asset.name}{' · ' + user.user_code if user else ''}")
    sign = "; ".join(signs)
    base = current_app.config["PUBLIC_URL"]
    return [
        LabelText(
            label_uri(label.gtin, batch.lot, label.serial, base),
            product.name,
            batch.lot,
            label.serial,
            sign,
        )
        for label in (labels if labels is not None else run_labels(run))
        if label.voided_at is None
    ]
