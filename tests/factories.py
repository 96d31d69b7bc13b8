"""Data builders shared by tests and benchmarks (call inside an app context and transaction)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any


def lychee_batches(producer_id: int, count: int, lot_prefix: str = "L") -> list[int]:
    """One lychee product of ``producer_id`` and ``count`` batches of it; the batch ids."""
    from traceability import services

    product = services.save_product(
        {"gtin": "8930000000019", "name": "Vải thiều", "producer_id": producer_id}
    )
    return [
        services.save_batch(
            {
                "product_id": product.id,
                "lot": f"{lot_prefix}{n:05d}",
                "quantity": 10,
                "production_date": dt.date(2026, 6, 10),
            }
        ).id
        for n in range(count)
    ]


def issued_batch(app: Any, *, items: int = 0, lot: bool = False, lot_prefix: str = "L") -> int:
    """A cooperative's lychee batch with ``items`` item codes and, if ``lot``, its lot code,
    committed on ``app``'s database in its own app context; the batch id."""
    from nguon.db import commit_boundary, db
    from registry.services import save_organisation
    from traceability import labels
    from traceability.models import Batch

    with app.app_context(), commit_boundary():
        org = save_organisation({"name": "HTX Phượng Sơn", "kind": "cooperative"})
        (batch_id,) = lychee_batches(org.id, 1, lot_prefix)
        batch = db.session.get(Batch, batch_id)
        if items:
            labels.issue_run(batch, "item", items, Decimal(1))
        if lot:
            labels.issue_run(batch, "lot")
    return batch_id


def lot_code(app: Any) -> Any:
    """The DigitalLink of a committed batch's lot code (see :func:`issued_batch`)."""
    from nguon.db import db
    from traceability.gs1 import DigitalLink
    from traceability.models import Batch

    batch_id = issued_batch(app, lot=True)
    with app.app_context():
        batch = db.session.get(Batch, batch_id)
        return DigitalLink(batch.product.gtin, lot=batch.lot)
