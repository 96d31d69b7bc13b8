"""How the registry's stored values read in the interface (through the catalogue)."""

from __future__ import annotations

from nguon.i18n import LABELS, _l

REGISTRY_LABELS = {
    "asset_kind": {
        "collective_mark": _l("collective mark"),
        "certification_mark": _l("certification mark"),
        "geographical_indication": _l("geographical indication"),
        "mark": _l("mark"),
    },
    "asset_status": {
        "preparing": _l("preparing"),
        "filed": _l("filed"),
        "examining": _l("under examination"),
        "granted": _l("granted"),
        "expired": _l("expired"),
        "revoked": _l("revoked"),
        "refused": _l("refused"),
        "abandoned": _l("abandoned"),
    },
    "org_kind": {
        "cooperative": _l("cooperative"),
        "association": _l("association"),
        "enterprise": _l("enterprise"),
        "household": _l("household"),
        "agency": _l("state agency"),
    },
    "user_status": {
        "active": _l("active"),
        "suspended": _l("suspended"),
        "revoked": _l("revoked"),
    },
    "user_action": {
        "active": _l("Reinstate"),
        "suspended": _l("Suspend"),
        "revoked": _l("Revoke"),
    },
    "ocop_status": {"active": _l("valid"), "rerated": _l("re-rated"), "revoked": _l("revoked")},
    "ocop_group": {
        "food": _l("food"),
        "beverages": _l("beverages"),
        "herbs": _l("medicinal herbs"),
        "handicrafts": _l("handicrafts"),
        "ornamental": _l("ornamental plants and animals"),
        "tourism": _l("community and eco-tourism services"),
    },
    "ocop_level": {"provincial": _l("provincial"), "national": _l("national")},
    "scheme": {
        "vietgap": "VietGAP",
        "globalgap": "GlobalG.A.P.",
        "organic": _l("organic"),
        "other": _l("other"),
    },
    "route": {
        "national": _l("national filing"),
        "madrid": _l("Madrid system"),
        "gi_japan": _l("GI registration in Japan"),
    },
    "metric": {
        "geographical_indication": _l("geographical indications"),
        "certification_mark": _l("certification marks"),
        "collective_mark": _l("collective marks"),
        "mark": _l("marks"),
        "applications_growth": _l("yearly growth of applications"),
    },
    "entity": {
        "assets": _l("marks and GIs"),
        "areas": _l("production areas"),
        "authorised-users": _l("authorised users"),
        "ocop": _l("OCOP products"),
    },
    "claim_kind": {
        "geographical_indication": _l("geographical indication"),
        "collective_mark": _l("collective mark"),
        "certification_mark": _l("certification mark"),
        "ocop": "OCOP",
        "gap": _l("GAP certificate"),
    },
    "claim_status": {"accepted": _l("backed by the registry"), "refused": _l("refused")},
    "step": {
        "harvest": _l("harvest"),
        "pack": _l("pack"),
        "ship": _l("ship"),
        "receive": _l("receive"),
        "process": _l("process into another lot"),
    },
    "biz_step": {
        "commissioning": _l("harvested or made"),
        "packing": _l("packed"),
        "shipping": _l("shipped"),
        "receiving": _l("received"),
        "inspecting": _l("inspected"),
        "creating_class_instance": _l("made"),
    },
    "label_kind": {"lot": _l("one code for the lot"), "item": _l("one code per unit")},
    "clone_rule": {
        "far_apart": _l("scanned far apart"),
        "too_many_scans": _l("too many scans"),
        "lot_over_units": _l("lot code scanned more than units made"),
    },
    "outbox_state": {
        "pending": _l("waiting"),
        "sent": _l("sent, awaiting the portal"),
        "done": _l("accepted by the portal"),
        "rejected": _l("rejected by the portal"),
        "parked": _l("parked for an officer"),
        "superseded": _l("replaced by a later update"),
    },
    "report_category": {
        "counterfeit": _l("counterfeit product"),
        "unauthorised_use": _l("unauthorised use of a GI or mark name"),
        "fake_code": _l("fake or copied QR code"),
        "labelling": _l("labelling violation"),
        "other": _l("other"),
    },
    "report_state": {
        "received": _l("received, waiting for an officer"),
        "accepted": _l("accepted"),
        "transferred": _l("transferred to the competent authority"),
        "rejected": _l("not taken up"),
        "investigating": _l("under investigation"),
        "expert_assessment": _l("expert assessment"),
        "violation_recorded": _l("violation recorded"),
        "no_violation": _l("no violation found"),
        "referred_to_police": _l("referred to the police"),
        "sanction_decided": _l("sanction decided"),
        "enforced": _l("sanction enforced"),
        "closed": _l("closed"),
    },
    "band_field": {
        "decree": _l("Decree"),
        "amended_by": _l("Amended by"),
        "article": _l("Article"),
        "description": _l("Violation"),
        "min_vnd": _l("Minimum fine (VND)"),
        "max_vnd": _l("Maximum fine (VND)"),
        "effective_from": _l("In force from"),
        "effective_to": _l("In force until"),
    },
    "case_field": {
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
        "measures": _l("Remedial measures"),
        "payment": _l("Payment"),
        "public_note": _l("Public note (shown to the reporter)"),
    },
    "verdict": {
        "genuine": _l("Genuine"),
        "scanned_before": _l("Genuine, scanned before"),
        "suspicious": _l("Suspicious"),
        "voided": _l("Voided"),
        "unknown": _l("Unknown"),
    },
    "doc_kind": {
        "regulation": _l("regulation on use"),
        "certificate": _l("certificate"),
        "logo": _l("logo"),
        "map": _l("map"),
        "other": _l("other"),
    },
}


REGISTRY_LABELS["case_state"] = REGISTRY_LABELS["report_state"]


def register_labels() -> None:
    for kind, labels in REGISTRY_LABELS.items():
        LABELS.setdefault(kind, {}).update(labels)
