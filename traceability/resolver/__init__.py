"""The GS1 Digital Link resolver, the consumer page and the digital product passport.

A request for a code is told in the order it is answered, one module each:

1. :mod:`.request` — parse and canonicalise the path as it arrived (percent-encoded),
   decode each value once, decide: resolve, redirect (301), malformed (400), or not
   served (404); negotiate what is asked for (page, passport, linkset).
2. :mod:`.lookup` — the label the link names, in one indexed read.
3. :mod:`.verdict` — genuine, scanned by you, scanned before, suspicious, voided.
4. :mod:`.card` — the batch's card (product, producer, origin, journey), cached; and
   :mod:`.origin_map`, its map.
5. Represent: :mod:`.page` (HTML), :mod:`.passport` (JSON), :mod:`.linkset` (GS1
   linkset, linkType).
6. :mod:`.places` — a consumer sharing their province for their scan.

:mod:`.views` holds the Flask routes; :mod:`traceability.fastpath` answers the busiest
case (a GET of an issued code) below Flask with the very same functions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from nguon.db import db
from traceability import scans
from traceability.models import Batch
from traceability.resolver import page, places
from traceability.resolver.card import batch_card, cards
from traceability.resolver.lookup import LabelState, lookup
from traceability.resolver.request import accept_kind, parse, raw_path
from traceability.resolver.verdict import as_now, client_fingerprint, verdict_of
from traceability.resolver.views import bp

__all__ = [
    "LabelState",
    "accept_kind",
    "as_now",
    "batch_card",
    "bp",
    "cards",
    "clear_caches",
    "client_fingerprint",
    "code_for_report",
    "lookup",
    "parse",
    "raw_path",
    "verdict_of",
]


@bp.record_once
def _link_reports_to_codes(state: Any) -> None:
    from registry.enforcement.services import register_code_resolver

    register_code_resolver(code_for_report)
    scans.init_app(state.app)


def code_for_report(code: str) -> dict[str, Any] | None:
    """What a reported code belongs to: its label, batch and the marks the batch claims."""
    parts = urlsplit(code) if "://" in code else urlsplit("https://x" + code)
    if not parts.path.startswith("/"):
        return None
    link = parse(parts.path, parts.query).link
    if link is None:
        return None
    label = lookup(link, in_session=True)
    if label is None:
        return None
    batch = db.session.get(Batch, label.batch_id)
    assets = [c.asset_id for c in batch.claims if c.asset_id] if batch else []
    return {"label_id": label.id, "batch_id": label.batch_id, "asset_ids": assets}


def clear_caches() -> None:
    cards.clear()
    places.clear()
    page.clear()
