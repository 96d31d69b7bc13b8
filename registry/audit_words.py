"""What the audit log calls the registry's and enforcement's records and fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from nguon.audit_words import TableWords, register_table
from nguon.db import db
from nguon.i18n import _l
from registry.enforcement.models import Case, FineBand
from registry.models import AuthorisedUser, IPAsset, OcopProduct, Organisation, ProductionArea

ORG_REFS = {
    "organisation_id": "organisation",
    "owner_id": "organisation",
    "producer_id": "organisation",
    "holder_id": "organisation",
    "managing_organisation_id": "organisation",
    "asset_id": "ip_asset",
    "area_id": "production_area",
    "case_id": "infringement_case",
    "assignee_id": "user_account",
    "confirmed_by_id": "user_account",
    "fine_band_id": "fine_band",
    "previous_id": "ocop_product",
}


def _titles(column: Any, key: Any) -> Any:
    def find(ids: Iterable[int]) -> dict[int, str]:
        rows = db.session.execute(select(key, column).where(key.in_(list(ids))))
        return {row[0]: str(row[1]) for row in rows}

    return find


def register() -> None:
    register_table(
        "organisation",
        TableWords(
            _l("Organisation"),
            "registry.edit_organisation",
            "org_id",
            {"tax_code": _l("Tax code")},
            values={"kind": "org_kind"},
            titles=_titles(Organisation.name, Organisation.id),
        ),
    )
    register_table(
        "ip_asset",
        TableWords(
            _l("Mark or GI"),
            "registry.manage_asset",
            "asset_id",
            {
                "nice_classes": _l("Nice classes"),
                "district_name": _l("District or area named in the dossier"),
                "application_number": _l("Application number"),
                "filing_date": _l("Filing date"),
                "certificate_number": _l("Certificate number"),
                "grant_decision": _l("Grant decision"),
                "grant_date": _l("Grant date"),
                "product_specification": _l("Product specification"),
                "demo_fields": _l("Demo fields"),
            },
            ORG_REFS,
            {"kind": "asset_kind", "status": "asset_status"},
            _titles(IPAsset.name, IPAsset.id),
        ),
    )
    register_table(
        "asset_status_change",
        TableWords(
            _l("Status change"),
            refs=ORG_REFS,
            values={"status": "asset_status"},
            fields={"recorded_at": _l("Recorded")},
        ),
    )
    register_table(
        "asset_renewal",
        TableWords(
            _l("Renewal"),
            refs=ORG_REFS,
            fields={
                "renewed_on": _l("Renewed on"),
                "decision": _l("Decision"),
                "new_expiry": _l("New expiry date"),
            },
        ),
    )
    register_table(
        "foreign_protection",
        TableWords(
            _l("Protection abroad"),
            refs=ORG_REFS,
            values={"route": "route"},
            fields={"territory": _l("Territory")},
        ),
    )
    register_table(
        "document",
        TableWords(
            _l("Document"),
            refs=ORG_REFS,
            values={"kind": "doc_kind"},
            fields={
                "filename": _l("File name"),
                "media_type": _l("File type"),
                "size": _l("Size (bytes)"),
                "sha256": _l("SHA-256"),
                "uploaded_at": _l("Uploaded"),
            },
        ),
    )
    register_table(
        "authorised_user",
        TableWords(
            _l("Authorised user"),
            "registry.edit_authorised_user",
            "user_id",
            {
                "user_code": _l("User code"),
                "yearly_ceiling": _l("Yearly ceiling"),
                "ceiling_unit": _l("Unit"),
                "status_reason": _l("Reason"),
                "status_changed_on": _l("Status changed on"),
            },
            ORG_REFS,
            {"status": "user_status"},
            _titles(AuthorisedUser.user_code, AuthorisedUser.id),
        ),
    )
    register_table(
        "production_area",
        TableWords(
            _l("Production area"),
            "registry.edit_area",
            "area_id",
            {
                "crop": _l("Crop or livestock"),
                "expected_yield_kg_per_ha": _l("Expected yield (kg/ha)"),
                "code": _l("Area code"),
            },
            ORG_REFS,
            titles=_titles(ProductionArea.code, ProductionArea.id),
        ),
    )
    register_table(
        "area_certificate",
        TableWords(
            _l("Area certificate"),
            refs=ORG_REFS,
            values={"scheme": "scheme"},
            fields={"issuer": _l("Issued by"), "number": _l("Certificate number")},
        ),
    )
    register_table(
        "zone_confirmation",
        TableWords(
            _l("Zone confirmation"),
            refs=ORG_REFS,
            fields={"geometry_sha256": _l("Shape confirmed (hash)")},
        ),
    )
    register_table(
        "ocop_product",
        TableWords(
            _l("OCOP rating"),
            "registry.rerate_ocop",
            "ocop_id",
            {
                "product_group": _l("Group"),
                "criteria_version": _l("Criteria"),
                "procedure_version": _l("Procedure"),
                "score": _l("Score"),
                "stars": _l("Stars"),
                "rating_level": _l("Rating level"),
                "gtins": _l("GTINs"),
                "previous_id": _l("Replaces"),
            },
            ORG_REFS,
            {"product_group": "ocop_group", "rating_level": "ocop_level", "status": "ocop_status"},
            _titles(OcopProduct.name, OcopProduct.id),
        ),
    )
    register_table(
        "target",
        TableWords(
            _l("Target"),
            "registry.edit_target",
            "target_id",
            {"metric": _l("Metric"), "by_year": _l("By year")},
            values={"metric": "metric"},
        ),
    )
    register_table(
        "report",
        TableWords(
            _l("Report"),
            fields={
                "receipt": _l("Receipt"),
                "category": _l("What is wrong?"),
                "place": _l("Place"),
                "shop_name": _l("Shop or market"),
                "shop_address": _l("Address"),
                "product": _l("Product"),
                "code": _l("Scanned code or address"),
                "linked_label_id": _l("Code"),
                "linked_batch_id": _l("Batch"),
                "contact_name": _l("Contact name"),
                "contact_phone": _l("Contact phone"),
                "contact_email": _l("Contact email"),
                "contact_consent": _l("Agreed to be contacted"),
            },
            refs=ORG_REFS,
            values={"category": "report_category"},
        ),
    )
    case_fields = {
        "deadline": _l("Deadline"),
        "inspection_decision_number": _l("Inspection decision number"),
        "inspection_decision_date": _l("Inspection decision date"),
        "infringer": _l("Infringer"),
        "violation_record": _l("Record of violation"),
        "goods": _l("Goods"),
        "goods_value_vnd": _l("Value of the goods (VND)"),
        "sanction_decision_number": _l("Sanction decision number"),
        "legal_basis": _l("Legal basis (decree, article)"),
        "fine_vnd": _l("Fine (VND)"),
        "fine_band_id": _l("Fine band"),
        "measures": _l("Remedial measures"),
        "payment": _l("Payment"),
        "public_note": _l("Public note (shown to the reporter)"),
        "violation_article": _l("Violation (article of Decree 99/2013/NĐ-CP)"),
        "violation_date": _l("Date of the violation"),
        "infringer_kind": _l("Committed by"),
        "closed_on": _l("Closed on"),
        "evidence": _l("Evidence"),
        "linked_label_id": _l("Code"),
        "linked_batch_id": _l("Batch"),
    }
    register_table(
        "infringement_case",
        TableWords(
            _l("Case"),
            "reports.case_page",
            "case_id",
            case_fields,
            ORG_REFS,
            {"state": "case_state", "source": "case_source", "infringer_kind": "infringer_kind"},
            _titles(Case.number, Case.id),
        ),
    )
    register_table(
        "fine_band",
        TableWords(
            _l("Fine band"),
            None,
            fields={
                "decree": _l("Decree"),
                "amended_by": _l("Amended by"),
                "article": _l("Article"),
                "clause": _l("Clause"),
                "min_vnd": _l("Minimum fine (VND)"),
                "max_vnd": _l("Maximum fine (VND)"),
                "effective_from": _l("In force from"),
                "effective_to": _l("In force until"),
                "goods_value_above_vnd": _l("Goods worth more than (VND)"),
                "goods_value_up_to_vnd": _l("Goods worth up to (VND)"),
                "value_undeterminable": _l("When the value cannot be determined"),
                "warning_possible": _l("A warning is possible"),
                "origin": _l("Entered from"),
                "description": _l("Violation"),
            },
            values={"origin": "band_origin"},
            titles=_titles(FineBand.article, FineBand.id),
        ),
    )
    register_table(
        "user_account",
        TableWords(
            _l("User account"),
            fields={
                "role": _l("Role"),
                "active": _l("Active"),
                "failed_logins": _l("Failed sign-ins"),
                "locked_until": _l("Locked until"),
                "last_login_at": _l("Last sign-in"),
            },
            refs=ORG_REFS,
            values={"role": "role"},
        ),
    )
    register_table(
        "api_token",
        TableWords(
            _l("API token"),
            fields={
                "key_id": _l("Key"),
                "last_used_at": _l("Last used"),
                "revoked_at": _l("Revoked"),
            },
            refs=ORG_REFS,
        ),
    )
