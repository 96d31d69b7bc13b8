"""Editing products and batches. Free while nothing depends on them; once labels are
printed or the record has been sent to the portal, a change must say why: it is kept as
a :class:`Correction` (beside the audit log's entry) and the record is sent again (the
outbox notices the changed row). What labels carry (GTIN, lot) cannot change then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from blinker import Namespace
from sqlalchemy import func, select

from nguon.audit import _plain
from nguon.db import db
from nguon.errors import DomainValidationError
from nguon.formatting import format_decimal
from nguon.i18n import _, label
from registry.models import ProductionArea
from traceability import services
from traceability.gs1 import IdentifierError, parse_gtin
from traceability.labels import _issued_quantity
from traceability.models import Batch, Correction, LabelRun, Product

# Answered by the outbox (integrations): has this record been sent? (kind, record_id)
record_sent = Namespace().signal("record-sent")

PRODUCT_EDITABLE = (*services.PRODUCT_FIELDS, "asset_ids")
BATCH_EDITABLE = ("quantity", "unit", "production_date", "expiry_date", "best_before", "notes")


def was_sent(kind: str, record_id: int) -> bool:
    return any(
        answer for _receiver, answer in record_sent.send(None, kind=kind, record_id=str(record_id))
    )


def batch_has_labels(batch_id: int) -> bool:
    return bool(
        db.session.scalar(select(func.count(LabelRun.id)).where(LabelRun.batch_id == batch_id))
    )


def batch_is_published(batch: Batch) -> bool:
    """Labels printed, or the trace record sent: a change is then a correction."""
    return batch_has_labels(batch.id) or was_sent("trace_record", batch.id)


def product_is_published(product: Product) -> bool:
    labelled = db.session.scalar(
        select(func.count(LabelRun.id))
        .join(Batch, Batch.id == LabelRun.batch_id)
        .where(Batch.product_id == product.id)
    )
    return bool(labelled) or was_sent("product", product.id)


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {
        key: [_plain(before.get(key)), _plain(after.get(key))]
        for key in after
        if _plain(before.get(key)) != _plain(after.get(key))
    }


def _product_values(product: Product) -> dict[str, Any]:
    values = {key: getattr(product, key) for key in services.PRODUCT_FIELDS}
    values["gtin"] = product.gtin
    values["asset_ids"] = sorted(a.id for a in product.assets)
    return values


def _record(
    kind: str,
    record_id: int,
    organisation_id: int,
    reason: str,
    changes: dict[str, Any],
    user_id: int | None,
) -> None:
    db.session.add(
        Correction(
            record_table=kind,
            record_id=record_id,
            organisation_id=organisation_id,
            reason=reason,
            changes=changes,
            created_by_id=user_id,
        )
    )


def _reason(reason: str, published: bool, changes: dict[str, Any]) -> str:
    reason = (reason or "").strip()
    if published and changes and not reason:
        raise DomainValidationError(
            {"reason": _("labels are printed or the record was sent: say why it is corrected")}
        )
    if len(reason) > 1000:
        raise DomainValidationError({"reason": _("at most %(n)d characters", n=1000)})
    if not all(ch.isprintable() or ch in "\n\r\t" for ch in reason):
        raise DomainValidationError({"reason": _("letters, digits and punctuation only")})
    return reason


def update_product(
    product: Product, data: Mapping[str, Any], reason: str = "", user_id: int | None = None
) -> Product:
    """Change a product (``save_product``'s rules). Once published the GTIN stays and the
    change is kept as a correction with its reason. Raises DomainValidationError."""
    published = product_is_published(product)
    before = _product_values(product)
    wanted = {k: v for k, v in data.items() if k in (*PRODUCT_EDITABLE, "gtin")}
    if "gtin" in wanted:
        try:
            same = parse_gtin(str(wanted["gtin"])) == product.gtin
        except IdentifierError:
            same = False
        has_batches = db.session.scalar(
            select(func.count(Batch.id)).where(Batch.product_id == product.id)
        )
        if same:
            wanted.pop("gtin")
        elif has_batches:
            raise DomainValidationError(
                {"gtin": _("the product has batches: its GTIN is printed on their records")}
            )
    after = {**before, **{k: v for k, v in wanted.items()}}
    after["asset_ids"] = sorted(after.get("asset_ids") or [])
    changes = _diff(before, after)
    reason = _reason(reason, published, changes)
    services.save_product(wanted, product)
    if published and changes:
        _record("product", product.id, product.producer_id, reason, changes, user_id)
        db.session.flush()
    return product


def _batch_values(batch: Batch) -> dict[str, Any]:
    values = {key: getattr(batch, key) for key in BATCH_EDITABLE}
    values["area_ids"] = sorted(a.id for a in batch.areas)
    return values


def update_batch(
    batch: Batch, data: Mapping[str, Any], reason: str = "", user_id: int | None = None
) -> Batch:
    """Change a batch's quantity, unit, dates, notes or areas. Its claims are checked
    again on the new facts (a claim the registry no longer backs refuses the change); the
    quantity cannot fall below what its labels already cover; once published the change
    is a correction with its reason. Raises DomainValidationError."""
    published = batch_is_published(batch)
    before = _batch_values(batch)
    wanted = {k: v for k, v in data.items() if k in (*BATCH_EDITABLE, "area_ids")}
    after = {**before, **wanted}
    after["area_ids"] = sorted(after.get("area_ids") or [])
    changes = _diff(before, after)
    reason = _reason(reason, published, changes)
    if not changes:
        return batch
    problems = services.Problems()
    quantity = Decimal(after["quantity"]) if after.get("quantity") is not None else None
    if quantity is None or quantity <= 0:
        problems.add("quantity", _("must be more than 0"))
    else:
        labelled = _issued_quantity(batch.id)
        if quantity < labelled:
            problems.add(
                "quantity",
                _(
                    "labels already cover %(n)s %(unit)s",
                    n=format_decimal(labelled),
                    unit=label("unit", batch.unit),
                ),
            )
    if "unit" in changes and batch_has_labels(batch.id):
        problems.add("unit", _("labels are printed with this unit"))
    day: dt.date | None = after.get("production_date")
    expiry: dt.date | None = after.get("expiry_date")
    if day is None:
        problems.add("production_date", _("is required"))
    elif expiry is not None and expiry < day:
        problems.add("expiry_date", _("cannot be before the production date"))
    areas = [db.session.get(ProductionArea, i) for i in after["area_ids"]]
    if any(a is None or a.owner_id != batch.producer_id for a in areas):
        problems.add("area_ids", _("the areas must belong to the producer"))
    problems.raise_if_any()
    for key in BATCH_EDITABLE:
        if key in wanted:
            setattr(batch, key, wanted[key])
    batch.areas = areas  # type: ignore[assignment]
    requests = [
        {
            "kind": c.kind,
            "asset_id": c.asset_id,
            "ocop_product_id": c.ocop_product_id,
            "scheme": c.scheme,
        }
        for c in batch.claims
    ]
    with db.session.no_autoflush:
        checks = [services.evaluate_claim(batch, r) for r in requests]
    refused = {f"claims.{i}": c.failure for i, c in enumerate(checks) if not c.accepted}
    if refused:
        raise DomainValidationError({k: v for k, v in refused.items() if v})
    for claim, check in zip(batch.claims, checks, strict=True):
        claim.evidence = check.evidence
    if published:
        _record("batch", batch.id, batch.producer_id, reason, changes, user_id)
    db.session.flush()
    return batch


def corrections_of(kind: str, record_id: int) -> list[Correction]:
    return list(
        db.session.scalars(
            select(Correction)
            .where(Correction.record_table == kind, Correction.record_id == record_id)
            .order_by(Correction.id.desc())
        )
    )
