"""Data builders shared by tests and benchmarks (call inside an app context and transaction)."""

from __future__ import annotations

import datetime as dt


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
