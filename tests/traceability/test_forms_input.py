"""What people type goes through the forms: "20/06/2026 06:30" in the cooperative's time
zone, "5,5" and "20.000", a GLN with its check digit, a new place and a partner by tax
code; what looks wrong is asked about before it is recorded; errors stay next to their
field, in Vietnamese, with the values kept. Editing after labels is a correction."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import csrf_from
from tests.traceability.test_pages import sign_in_member

GLN_OK = "8930000000019"  # check digit 9
GLN_BAD = "8930000000018"


@pytest.fixture
def member(client: FlaskClient, trace: dict, in_tx: Callable[..., Any]) -> FlaskClient:
    sign_in_member(client, trace, in_tx)
    return client


@pytest.fixture
def batch_id(trace: dict, in_tx: Callable[..., Any]) -> int:
    from traceability import services

    return in_tx(
        lambda: (
            services.save_batch(
                {
                    "product_id": trace["product"],
                    "lot": "LN2026-020",
                    "quantity": Decimal(20000),
                    "production_date": dt.date(2026, 6, 20),
                    "area_ids": [trace["area"]],
                    "claims": [{"kind": "geographical_indication", "asset_id": trace["gi"]}],
                }
            ).id
        )
    )


def post_step(client: FlaskClient, batch_id: int, **fields: str) -> Any:
    url = f"/traceability/batches/{batch_id}"
    token = csrf_from(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **fields})


def events_of(app: Flask, lot: str) -> list[Any]:
    from nguon.db import db
    from traceability.models import EpcisEvent, EventEpc

    with app.app_context():
        pks = select(EventEpc.event_pk).where(EventEpc.lot == lot)
        return list(
            db.session.scalars(
                select(EpcisEvent).where(EpcisEvent.id.in_(pks)).order_by(EpcisEvent.event_time)
            )
        )


def field_errors(html: str) -> list[str]:
    return re.findall(r'class="field-error">([^<]+)<', html)


def test_a_typed_local_time_and_decimal_comma_are_recorded_as_meant(
    app: Flask, member: FlaskClient, batch_id: int
) -> None:
    """ "20/06/2026 06:30" is 06:30 in Hà Nội (23:30 UTC the day before), never the server's
    clock; "5,5" is five and a half."""
    done = post_step(
        member, batch_id, step="harvest", event_date="20/06/2026 06:30", quantity="5,5"
    )
    assert done.status_code == 302, field_errors(done.get_data(as_text=True))
    (event,) = events_of(app, "LN2026-020")
    assert event.event_time.replace(tzinfo=None) == dt.datetime(2026, 6, 19, 23, 30)
    assert event.document["eventTime"] == "2026-06-20T06:30:00+07:00"
    assert event.document["eventTimeZoneOffset"] == "+07:00"
    assert event.document["quantityList"][0]["quantity"] == 5.5
    page = member.get(f"/traceability/batches/{batch_id}").get_data(as_text=True)
    assert "20/06/2026 06:30" in page and "5,5 kg" in page


def test_the_form_starts_at_now_in_the_cooperatives_time_zone(
    member: FlaskClient, batch_id: int
) -> None:
    from zoneinfo import ZoneInfo

    page = member.get(f"/traceability/batches/{batch_id}").get_data(as_text=True)
    today = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    assert f'name="event_date" type="date" value="{today}"' in page
    assert "+07:00" not in page.split('id="record"')[1]  # no literal offset glued on


def test_bad_input_stays_next_to_its_field_in_vietnamese(
    app: Flask, member: FlaskClient, batch_id: int
) -> None:
    refused = post_step(
        member,
        batch_id,
        step="harvest",
        event_date="31/02/2026",
        quantity="năm",
        place_gln=GLN_BAD,
        place_name="Kho HTX",
    )
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert field_errors(html) == ["ngày giờ dạng 20/06/2026 06:30", "số dạng 5,5"]
    assert 'value="năm"' in html and 'value="31/02/2026"' in html  # kept as typed
    gln = post_step(member, batch_id, step="harvest", event_date="20/06/2026", place_gln=GLN_BAD)
    assert field_errors(gln.get_data(as_text=True)) == [
        f"GLN {GLN_BAD}: số kiểm tra phải là 9 (đang là 8)"
    ]
    assert events_of(app, "LN2026-020") == []


def test_a_gln_and_a_new_place_are_kept_for_next_time(
    app: Flask, member: FlaskClient, batch_id: int, trace: dict
) -> None:
    from nguon.db import db
    from traceability.models import Location, Partner

    assert (
        post_step(member, batch_id, step="harvest", event_date="20/06/2026 06:00").status_code
        == 302
    )
    packed = post_step(
        member,
        batch_id,
        step="pack",
        event_date="20/06/2026",
        event_clock="10:00",
        place_gln=GLN_OK,
    )
    assert packed.status_code == 302
    shipped = post_step(
        member,
        batch_id,
        step="ship",
        event_date="21/06/2026 05:00",
        place_name="Kho HTX Phượng Sơn",
        partner_name="Công ty TNHH Nông sản Bắc Giang",
        partner_tax_code="2400999999",
    )
    assert shipped.status_code == 302, field_errors(shipped.get_data(as_text=True))
    harvest, pack, ship = events_of(app, "LN2026-020")
    assert harvest.document["bizLocation"]["id"] == "urn:nguon:area:VN-BG-LN-0001"
    assert pack.document["bizLocation"]["id"] == f"https://id.gs1.org/414/{GLN_OK}"
    assert ship.document["destinationList"] == [
        {"type": "owning_party", "destination": "urn:nguon:party:2400999999"}
    ]
    with app.app_context():
        places = {loc.name: loc for loc in db.session.scalars(select(Location))}
        assert set(places) == {f"GLN {GLN_OK}", "Kho HTX Phượng Sơn"}
        assert (
            ship.document["bizLocation"]["id"]
            == f"urn:nguon:location:{places['Kho HTX Phượng Sơn'].id}"
        )
        assert db.session.scalar(select(Partner.name)) == "Công ty TNHH Nông sản Bắc Giang"
    page = member.get(f"/traceability/batches/{batch_id}").get_data(as_text=True)
    assert "Công ty TNHH Nông sản Bắc Giang (MST 2400999999)" in page  # in the journey
    assert f'value="location:{places["Kho HTX Phượng Sơn"].id}"' in page  # offered next time
    assert 'value="partner:' in page


def test_odd_facts_are_asked_about_before_anything_is_recorded(
    app: Flask, member: FlaskClient, batch_id: int
) -> None:
    """A harvest five months after the batch's date, a shipment before the harvest."""
    late = post_step(member, batch_id, step="harvest", event_date="20/11/2026 06:00")
    assert late.status_code == 422
    html = late.get_data(as_text=True)
    assert "ngoài mùa vụ của lô" in html and 'name="confirm"' in html
    assert events_of(app, "LN2026-020") == []
    kept = post_step(member, batch_id, step="harvest", event_date="20/11/2026 06:00", confirm="1")
    assert kept.status_code == 302
    early = post_step(member, batch_id, step="ship", event_date="19/06/2026 06:00")
    assert early.status_code == 422
    assert "trước lần thu hoạch đã ghi nhận lúc 20/11/2026 06:00" in early.get_data(as_text=True)
    assert len(events_of(app, "LN2026-020")) == 1


def test_registry_forms_take_a_decimal_comma(
    client: FlaskClient, logged_in: Callable[..., FlaskClient], registry: dict
) -> None:
    """An officer types "5,5" hectares (refused before: "Not a valid number.")."""
    officer = logged_in("officer")
    token = csrf_from(officer.get("/registry/manage/areas/new").get_data(as_text=True))
    saved = officer.post(
        "/registry/manage/areas/new",
        data={
            "csrf_token": token,
            "code": "VN-BG-LN-0099",
            "crop": "vải thiều",
            "owner_id": str(registry["coop"]),
            "hectares": "5,5",
            "expected_yield_kg_per_ha": "8.000",
            "geometry": '{"type": "Point", "coordinates": [106.55, 21.38]}',
        },
    )
    assert saved.status_code == 302, field_errors(saved.get_data(as_text=True))
    from nguon.db import db
    from registry.models import ProductionArea

    with officer.application.app_context():
        area = db.session.scalar(
            select(ProductionArea).where(ProductionArea.code == "VN-BG-LN-0099")
        )
        assert (area.hectares, area.expected_yield_kg_per_ha) == (Decimal("5.5"), Decimal(8000))


def test_editing_a_batch_with_labels_is_a_correction_sent_again(
    app: Flask, member: FlaskClient, batch_id: int, coop_headers: dict, trace: dict
) -> None:
    """Free before labels; after them a change needs its reason, is kept as a correction
    (in the audit log too) and the record is queued to be sent again."""
    from integrations.models import OutboxRow
    from nguon.db import db
    from nguon.models import AuditEntry
    from traceability.models import Correction

    url = f"/traceability/batches/{batch_id}/edit"
    form = {"unit": "KGM", "production_date": "20/06/2026", "area_ids": str(trace["area"]),
            "notes": "cân lại"}  # fmt: skip
    token = csrf_from(member.get(url).get_data(as_text=True))
    free = member.post(url, data={"csrf_token": token, **form, "quantity": "19.500"})
    assert free.status_code == 302, field_errors(free.get_data(as_text=True))
    no_areas = member.post(
        url, data={"csrf_token": token, **form, "quantity": "19500", "area_ids": ""}
    )
    assert "lô hàng không ghi vùng sản xuất nào" in no_areas.get_data(
        as_text=True
    )  # claim re-checked
    issued = member.post(
        f"/api/v1/traceability/batches/{batch_id}/label-runs",
        json={"kind": "item", "count": 10, "item_quantity": "100"},
        headers=coop_headers,
    )
    assert issued.status_code == 201
    assert "được ghi thành một lần đính chính" in member.get(url).get_data(as_text=True)
    no_reason = member.post(url, data={"csrf_token": token, **form, "quantity": "19000"})
    assert no_reason.status_code == 422
    assert "hãy ghi lý do đính chính" in no_reason.get_data(as_text=True)
    too_little = member.post(
        url, data={"csrf_token": token, **form, "quantity": "500", "reason": "cân lại"}
    )
    assert "tem đã cấp cho 1.000 kg" in too_little.get_data(as_text=True)
    with app.app_context():
        db.session.execute(OutboxRow.__table__.delete())  # as if everything had been sent
    done = member.post(
        url, data={"csrf_token": token, **form, "quantity": "19000", "reason": "cân lại tại kho"}
    )
    assert done.status_code == 302
    with app.app_context():
        (correction,) = db.session.scalars(select(Correction)).all()
        assert (correction.reason, correction.changes["quantity"]) == (
            "cân lại tại kho",
            ["19500.000", "19000"],
        )
        logged = select(func.count(AuditEntry.id)).where(AuditEntry.record_table == "correction")
        assert db.session.scalar(logged) == 1
        again = select(OutboxRow.id).where(
            OutboxRow.kind == "trace_record", OutboxRow.record_id == str(batch_id)
        )
        assert db.session.scalar(again) is not None


def test_editing_a_product_its_image_and_a_correction_after_labels(
    app: Flask, member: FlaskClient, batch_id: int, trace: dict, coop_headers: dict
) -> None:
    """Name, standards, warnings, marks and image change through the form; once the
    product's labels are printed a change needs its reason and the GTIN stays."""
    import io

    from PIL import Image

    from nguon.db import db
    from traceability.models import Correction, Product

    url = f"/traceability/products/{trace['product']}/edit"
    page = member.get(url).get_data(as_text=True)
    assert 'value="Vải thiều Lục Ngạn tươi, thùng 10 kg"' in page
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(png, "PNG")
    form = {
        "csrf_token": csrf_from(page),
        "gtin": "8930000000019",
        "name": "Vải thiều Lục Ngạn loại 1",
        "producer_id": str(trace["coop"]),
        "standards": "TCVN 12850:2019; VietGAP; QCVN 8-2:2011/BYT",
        "asset_ids": str(trace["gi"]),
        "safety_warnings": "Bảo quản 2–8 °C",
    }
    saved = member.post(
        url,
        data={**form, "image": (io.BytesIO(png.getvalue()), "anh.png")},
        content_type="multipart/form-data",
    )
    assert saved.status_code == 302, field_errors(saved.get_data(as_text=True))
    with app.app_context():
        product = db.session.get(Product, trace["product"])
        assert product.name == "Vải thiều Lục Ngạn loại 1"
        assert product.standards[-1] == "QCVN 8-2:2011/BYT" and product.image_type == "image/png"
    assert member.get(f"/traceability/images/{product.image_sha256}").data == png.getvalue()
    moved = member.post(url, data={**form, "gtin": "8930000000026"})
    assert "sản phẩm đã có lô hàng: GTIN đã ghi trên hồ sơ các lô" in moved.get_data(as_text=True)
    member.post(
        f"/api/v1/traceability/batches/{batch_id}/label-runs",
        json={"kind": "lot"},
        headers=coop_headers,
    )
    unexplained = member.post(url, data={**form, "name": "Vải thiều loại 2"})
    assert "hãy ghi lý do đính chính" in unexplained.get_data(as_text=True)
    assert 'value="Vải thiều loại 2"' in unexplained.get_data(as_text=True)  # kept
    explained = member.post(url, data={**form, "name": "Vải thiều loại 2", "reason": "sai tên"})
    assert explained.status_code == 302
    with app.app_context():
        (correction,) = db.session.scalars(select(Correction)).all()
        assert correction.record_table == "product" and list(correction.changes) == ["name"]
    listed = member.get("/traceability/products").get_data(as_text=True)
    assert "Vải thiều loại 2" in listed and "chỉ dẫn địa lý số 00017" in listed
    exported = member.get("/traceability/products.xlsx")
    assert exported.status_code == 200 and exported.data.startswith(b"PK")


def test_hostile_input_is_refused_in_words(
    app: Flask, member: FlaskClient, batch_id: int, coop_headers: dict
) -> None:
    """Far years, control characters in a place's name, too many chosen codes: refused, never
    a 500, nothing stored."""
    from nguon.db import db
    from traceability.models import Location

    for typed in ("01/01/0001 00:00", "31/12/9999 23:59", "2026-13-01", "20/06/2026 25:00"):
        refused = post_step(member, batch_id, step="harvest", event_date=typed)
        assert refused.status_code == 422, typed
        assert field_errors(refused.get_data(as_text=True)) == ["ngày giờ dạng 20/06/2026 06:30"]
    nul = post_step(member, batch_id, step="pack", event_date="20/06/2026", place_name="Kho\x00A")
    assert field_errors(nul.get_data(as_text=True)) == ["chỉ chữ, số và dấu câu"]
    with app.app_context():
        assert db.session.scalar(select(func.count(Location.id))) == 0
    run = member.post(
        f"/api/v1/traceability/batches/{batch_id}/label-runs",
        json={"kind": "item", "count": 2, "item_quantity": "1"},
        headers=coop_headers,
    ).json
    token = csrf_from(member.get(f"/traceability/label-runs/{run['id']}").get_data(as_text=True))
    many = member.post(
        f"/traceability/label-runs/{run['id']}/void",
        data={"csrf_token": token, "reason": "x", "serials": " ".join(["A"] * 1001)},
        follow_redirects=True,
    )
    assert "tối đa 1000 mã mỗi lần" in many.get_data(as_text=True)
