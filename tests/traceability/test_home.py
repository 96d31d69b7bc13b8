"""A cooperative's home page: what waits for it today."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from tests.traceability.test_pages import sign_in_member


def test_home_shows_what_waits_for_the_cooperative(
    client: FlaskClient, trace: dict, in_tx: Callable[..., Any]
) -> None:
    """Batches without labels, flagged codes, certificates and authorisations that expire
    within 90 days, and where its records are with the portal; signing in lands here."""
    from nguon.db import db, utcnow
    from nguon.formatting import local_now
    from registry.models import AreaCertificate, AuthorisedUser
    from traceability import labels, services
    from traceability.models import Label

    def build() -> None:
        soon = local_now().date() + dt.timedelta(days=30)
        db.session.get(AuthorisedUser, trace["user"]).valid_to = soon
        db.session.query(AreaCertificate).update({"valid_to": soon})
        waiting = services.save_batch(
            {"product_id": trace["product"], "lot": "CHO-TEM", "quantity": 10,
             "production_date": dt.date(2026, 6, 1)}
        )  # fmt: skip
        labelled = services.save_batch(
            {"product_id": trace["product"], "lot": "CO-TEM", "quantity": 10,
             "production_date": dt.date(2026, 6, 1)}
        )  # fmt: skip
        run = labels.issue_run(labelled, "item", 2, 1)
        code = db.session.query(Label).filter(Label.run_id == run.id).first()
        code.flagged_at, code.flag_reason, code.serial = utcnow(), "too_many_scans", "ABCDEFGHJK"
        assert waiting.id

    in_tx(build)
    sign_in_member(client, trace, in_tx)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Lô hàng chờ in tem" in page
    awaiting = page.split("Lô hàng chờ in tem")[1].split("</section>")[0]
    assert "CHO-TEM" in awaiting and "CO-TEM" not in awaiting
    assert "ABCDEFGHJK" in page.split("Mã đáng ngờ")[1].split("</section>")[0]
    expiring = page.split("Sắp hết hạn trong 90 ngày")[1].split("</section>")[0]
    assert "VG-24-001" in expiring and "Quyền sử dụng Vải thiều Lục Ngạn (LN-001)" in expiring
    assert "Cổng quốc gia" in page and "đang chờ" in page
    scans = client.get("/traceability/scans.xlsx")
    assert scans.status_code == 200 and scans.data.startswith(b"PK")  # the scans list as Excel
