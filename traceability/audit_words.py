"""What the audit log calls traceability's records and fields."""

from __future__ import annotations

from nguon.audit_words import TableWords, register_table
from nguon.i18n import _l
from registry.audit_words import ORG_REFS, _titles
from traceability.models import Batch, Product

REFS = {**ORG_REFS, "batch_id": "batch", "product_id": "product", "created_by_id": "user_account"}


def register() -> None:
    register_table(
        "product",
        TableWords(
            _l("Product"),
            None,
            fields={
                "brand": _l("Brand"),
                "standards": _l("Standards applied"),
                "safety_warnings": _l("Safety warnings"),
                "ocop_product_id": _l("OCOP rating"),
                "image_sha256": _l("Image"),
                "image_type": _l("Image type"),
            },
            refs={**REFS, "ocop_product_id": "ocop_product"},
            titles=_titles(Product.name, Product.id),
        ),
    )
    register_table(
        "batch",
        TableWords(
            _l("Batch"),
            "traceability.batch",
            "batch_id",
            {
                "lot": _l("Lot"),
                "quantity": _l("Quantity"),
                "unit": _l("Unit"),
                "production_date": _l("Production or harvest date"),
                "best_before": _l("Best before (rather than use by)"),
            },
            REFS,
            values={"unit": "unit"},
            titles=_titles(Batch.lot, Batch.id),
        ),
    )
    register_table(
        "label_run",
        TableWords(
            _l("Label run"),
            fields={
                "count": _l("Codes"),
                "item_quantity": _l("Quantity per code"),
                "voided_at": _l("Voided"),
                "void_reason": _l("Reason for voiding"),
            },
            refs=REFS,
            values={"kind": "label_kind"},
        ),
    )
    register_table(
        "claim",
        TableWords(
            _l("Claim"),
            fields={"evidence": _l("Evidence"), "checked_at": _l("Checked")},
            refs={**REFS, "ocop_product_id": "ocop_product"},
            values={"kind": "claim_kind", "status": "claim_status", "scheme": "scheme"},
        ),
    )
    register_table(
        "location",
        TableWords(
            _l("Location"),
            fields={"latitude": _l("Latitude"), "longitude": _l("Longitude")},
            refs=REFS,
        ),
    )
    register_table(
        "partner",
        TableWords(_l("Partner"), fields={"tax_code": _l("Tax code")}, refs=REFS),
    )
    register_table(
        "correction",
        TableWords(
            _l("Correction"),
            fields={
                "record_table": _l("Record"),
                "record_id": _l("Number"),
                "reason": _l("Reason"),
                "changes": _l("Changes"),
            },
            refs=REFS,
            values={"record_table": "table"},
        ),
    )
    register_table(
        "epcis_subscription",
        TableWords(
            _l("EPCIS subscription"),
            fields={
                "subscription_id": _l("Subscription ID"),
                "query_name": _l("Query"),
                "parameters": _l("Query parameters"),
                "dest": _l("Webhook address"),
                "stream": _l("Sent as events are captured"),
                "schedule": _l("Schedule"),
                "report_if_empty": _l("Report even when empty"),
                "initial_record_time": _l("Events recorded since"),
                "user_id": _l("Account"),
            },
            refs={**REFS, "user_id": "user_account"},
        ),
    )
