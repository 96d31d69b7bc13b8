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
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy
import zxingcpp
from flask import current_app
from fpdf import FPDF
from PIL import Image
from sqlalchemy import extract, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from nguon.db import db, utcnow
from nguon.errors import DomainValidationError
from registry import services as registry
from traceability.gs1 import DigitalLink
from traceability.models import Batch, Claim, ClaimStatus, Label, LabelKind, LabelRun, Product
from traceability.services import _in_kg

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
                f"labels for {claim.asset.name} would reach {used + wanted:.0f} kg in {year}; "
                f"the authorisation's yearly ceiling leaves {remaining:.0f} kg"
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
        raise DomainValidationError({"kind": "must be lot or item"})
    if kind == LabelKind.LOT:
        existing = db.session.scalar(
            select(LabelRun).where(
                LabelRun.batch_id == batch.id,
                LabelRun.kind == LabelKind.LOT,
                LabelRun.voided_at.is_(None),
            )
        )
        if existing is not None:
            raise DomainValidationError({"kind": "this lot already has its lot-level code"})
        count, item_quantity = 1, Decimal(batch.quantity)
    else:
        item_quantity = Decimal(item_quantity if item_quantity is not None else 1)
        if not 1 <= count <= MAX_RUN:
            raise DomainValidationError({"count": f"must be between 1 and {MAX_RUN}"})
        if item_quantity <= 0:
            raise DomainValidationError({"item_quantity": "must be more than 0"})
        issued = _issued_quantity(batch.id)
        wanted = item_quantity * count
        if issued + wanted > Decimal(batch.quantity):
            left = Decimal(batch.quantity) - issued
            raise DomainValidationError(
                {
                    "count": f"{count} × {item_quantity} {batch.unit} exceeds the batch: "
                    f"{left:.3f} {batch.unit} of {Decimal(batch.quantity):.3f} are still unlabelled"
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
        raise DomainValidationError({"reason": "say why the labels are voided"})
    query = select(Label).where(Label.run_id == run.id, Label.voided_at.is_(None))
    if serials is not None:
        unknown = set(serials) - set(
            db.session.scalars(
                select(Label.serial).where(Label.run_id == run.id, Label.serial.in_(list(serials)))
            )
        )
        if unknown:
            raise DomainValidationError(
                {"serials": f"not in this run: {', '.join(sorted(unknown)[:5])}"}
            )
        query = query.where(Label.serial.in_(list(serials)))
    now = utcnow()
    labels = list(db.session.scalars(query))
    for label in labels:
        label.voided_at, label.void_reason = now, reason
    if serials is None:
        run.voided_at, run.void_reason = now, reason
    db.session.flush()
    return len(labels)


def run_labels(run: LabelRun) -> list[Label]:
    return list(db.session.scalars(select(Label).where(Label.run_id == run.id).order_by(Label.id)))


# --- rendering -------------------------------------------------------------------------------


def qr_matrix(uri: str) -> Image.Image:
    """The symbol, one pixel per module, quiet zone included (mode L)."""
    barcode = zxingcpp.create_barcode(uri, zxingcpp.QRCode, ec_level="M")
    return Image.fromarray(numpy.asarray(barcode.to_image(scale=1, add_quiet_zones=True)))


def png(uri: str, module_px: int = 8) -> bytes:
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


@dataclass(frozen=True)
class SheetLayout:
    """A4 label stock: rows × columns of cells between margins (mm)."""

    rows: int = 8
    columns: int = 4
    margin_top: float = 10
    margin_left: float = 8
    margin_right: float = 8
    margin_bottom: float = 10
    gap: float = 2

    def check(self) -> None:
        if not (1 <= self.rows <= 30 and 1 <= self.columns <= 12):
            raise DomainValidationError({"rows": "rows 1–30 and columns 1–12"})
        if min(self.margin_top, self.margin_left, self.margin_right, self.margin_bottom) < 0:
            raise DomainValidationError({"margin_top": "margins cannot be negative"})
        if self.cell_width < 20 or self.cell_height < 25:
            raise DomainValidationError({"rows": "cells would be smaller than 20 × 25 mm"})

    @property
    def cell_width(self) -> float:
        return (
            210 - self.margin_left - self.margin_right - self.gap * (self.columns - 1)
        ) / self.columns

    @property
    def cell_height(self) -> float:
        return (297 - self.margin_top - self.margin_bottom - self.gap * (self.rows - 1)) / self.rows


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
    """Printable A4 sheets: each cell a QR code with the product, lot, serial and sign
    under it, in DejaVu Sans (shipped) so Vietnamese diacritics print."""
    layout.check()
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.set_font("DejaVu", size=6.5)
    per_page = layout.rows * layout.columns
    text_lines = 4
    line_h = 2.8
    fits: dict[str, tuple[str, float]] = {}
    for index, item in enumerate(items):
        slot = index % per_page
        if slot == 0:
            pdf.add_page()
        row, column = divmod(slot, layout.columns)
        x = layout.margin_left + column * (layout.cell_width + layout.gap)
        y = layout.margin_top + row * (layout.cell_height + layout.gap)
        size = min(layout.cell_width, layout.cell_height - text_lines * line_h - 1)
        matrix = qr_matrix(item.uri)
        pdf.image(matrix, x=x + (layout.cell_width - size) / 2, y=y, w=size, h=size)
        baseline = y + size + 0.5 + line_h * 0.75
        for line in (
            item.product,
            f"Lô/Lot {item.lot}",
            f"Số/Serial {item.serial}" if item.serial else "",
            item.sign,
        ):
            if line:
                # Lines repeat across a run (product, lot, sign): fit and measure them once.
                fitted = fits.get(line)
                if fitted is None:
                    text = _fit(pdf, line, layout.cell_width)
                    fitted = fits[line] = (text, pdf.get_string_width(text))
                pdf.text(x + (layout.cell_width - fitted[1]) / 2, baseline, fitted[0])
                baseline += line_h
        if progress:
            progress(1)
    return bytes(pdf.output())


def _fit(pdf: FPDF, text: str, width: float) -> str:
    if pdf.get_string_width(text) <= width - 1:
        return text
    while text and pdf.get_string_width(text + "…") > width - 1:
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
