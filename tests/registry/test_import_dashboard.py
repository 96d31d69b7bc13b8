"""Import (all or nothing, with a dry run), export round trips, and the dashboard figures."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from nguon.db import db


@pytest.fixture
def staff(bearer: Callable[..., dict]) -> dict:
    return bearer("officer")


def asset_rows(holder: int) -> list[dict[str, Any]]:
    base = {
        "kind": "collective_mark",
        "products": ["rau"],
        "nice_classes": [31],
        "holder_id": holder,
        "status": "preparing",
    }
    return [
        {**base, "name": "Rau an toàn Đa Mai"},
        {**base, "name": "Hành tía Tân Yên", "products": ["hành tía"]},
        {**base, "name": "Ổi Tân Yên", "products": ["ổi"]},
    ]


def count_assets(client: FlaskClient) -> int:
    return len(client.get("/api/v1/registry/assets?page_size=100").json)


def test_import_with_a_bad_row_imports_nothing(
    client: FlaskClient, staff: dict, make_org: Callable[..., int]
) -> None:
    holder = make_org(kind="association")
    rows = asset_rows(holder)
    rows[1]["nice_classes"] = [99]
    rows[2]["kind"] = "trademark"
    response = client.post("/api/v1/registry/import/assets", json=rows, headers=staff)
    assert response.status_code == 422
    report = response.json
    assert report["imported"] is False
    assert [r["row"] for r in report["rows_with_errors"]] == [2, 3]
    assert report["rows_with_errors"][0]["errors"] == [
        {"field": "nice_classes", "message": "Nice classes are 1 to 45 (got 99)"}
    ]
    assert report["rows_with_errors"][1]["errors"][0]["field"] == "kind"
    assert count_assets(client) == 0


def test_dry_run_checks_but_keeps_nothing_then_real_import(
    client: FlaskClient, staff: dict, make_org: Callable[..., int]
) -> None:
    rows = asset_rows(make_org(kind="association"))
    dry = client.post("/api/v1/registry/import/assets?dry_run=true", json=rows, headers=staff)
    assert dry.status_code == 200
    assert dry.json == {
        "entity": "assets",
        "dry_run": True,
        "total": 3,
        "created": 3,
        "updated": 0,
        "imported": False,
        "rows_with_errors": [],
    }
    assert count_assets(client) == 0
    real = client.post("/api/v1/registry/import/assets", json=rows, headers=staff)
    assert real.json["imported"] is True and real.json["created"] == 3
    assert count_assets(client) == 3
    again = client.post("/api/v1/registry/import/assets", json=rows, headers=staff)
    assert again.json["updated"] == 3 and again.json["created"] == 0
    assert count_assets(client) == 3


def test_csv_export_then_import_round_trips(
    client: FlaskClient, staff: dict, registry: dict, make_area: Callable[..., int]
) -> None:
    make_area(registry["coop"])
    exported = client.get("/api/v1/registry/export/areas?format=csv", headers=staff)
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    text = exported.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["code"] == "VN-BG-LN-0001"
    assert json.loads(rows[0]["geometry"])["type"] == "Polygon"
    reimport = client.post(
        "/api/v1/registry/import/areas?format=csv",
        data=text.encode(),
        content_type="text/csv",
        headers=staff,
    )
    assert reimport.status_code == 200, reimport.json
    assert reimport.json["updated"] == 1


def test_unreadable_file_is_a_problem(client: FlaskClient, staff: dict) -> None:
    response = client.post(
        "/api/v1/registry/import/ocop?format=json",
        data=b"{nope",
        content_type="application/json",
        headers=staff,
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "file"
    csv_bad = client.post(
        "/api/v1/registry/import/ocop?format=csv",
        data=b"name,colour\nx,y\n",
        content_type="text/csv",
        headers=staff,
    )
    assert "unknown CSV columns: colour" in csv_bad.json["detail"]


def test_import_page_in_the_browser_flow(
    logged_in: Callable[..., FlaskClient], make_org: Callable[..., int]
) -> None:
    from tests.conftest import csrf_from

    client = logged_in("officer")
    token = csrf_from(client.get("/registry/manage/import").get_data(as_text=True))
    rows = asset_rows(make_org(kind="association"))
    rows[0]["nice_classes"] = [0]
    response = client.post(
        "/registry/manage/import",
        data={
            "csrf_token": token,
            "entity": "assets",
            "dry_run": "1",
            "file": (io.BytesIO(json.dumps(rows).encode()), "assets.json"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "Nice classes are 1 to 45 (got 0)" in response.get_data(as_text=True)


# --- dashboard ----------------------------------------------------------------------------

TODAY = dt.date(2026, 1, 15)


@pytest.fixture
def known_registry(in_tx: Callable[..., Any], make_org: Callable[..., int]) -> dict[str, int]:
    """A fixture with known figures: 2 granted GIs, 1 filed GI, 3 granted collective marks
    (one expiring soon, one with its window open), OCOP in two groups, and targets."""
    from registry import services

    holder = make_org(kind="association")
    agency = make_org(kind="agency")

    def build() -> dict[str, int]:
        def gi(name: str, filed: dt.date, status: str = "granted", serial: int = 1) -> Any:
            data = {
                "kind": "geographical_indication",
                "name": name,
                "products": ["quả"],
                "managing_organisation_id": agency,
                "status": status,
                "application_number": f"6-{filed.year}-{serial:05d}",
                "filing_date": filed,
            }
            if status == "granted":
                data |= {
                    "certificate_number": f"{serial:05d}",
                    "grant_date": filed + dt.timedelta(days=300),
                }
            return services.save_asset(data)

        def mark(name: str, filed: dt.date, serial: int) -> Any:
            return services.save_asset(
                {
                    "kind": "collective_mark",
                    "name": name,
                    "products": ["rau"],
                    "nice_classes": [31],
                    "holder_id": holder,
                    "status": "granted",
                    "certificate_number": str(serial),
                    "application_number": f"4-{filed.year}-{serial:05d}",
                    "filing_date": filed,
                    "grant_date": filed + dt.timedelta(days=200),
                }
            )

        gi("GI một", dt.date(2022, 3, 1), serial=1)
        gi("GI hai", dt.date(2023, 3, 1), serial=2)
        gi("GI ba", dt.date(2024, 3, 1), status="filed", serial=3)
        soon = mark("Nhãn sắp hết hạn", dt.date(2016, 5, 1), 11)  # expires 2026-05-01
        mark("Nhãn còn xa", dt.date(2023, 5, 1), 12)
        mark("Nhãn khác", dt.date(2024, 5, 1), 13)
        for metric, value in [("geographical_indication", 4), ("collective_mark", 80)]:
            services.save_target({"metric": metric, "value": value, "by_year": 2025})
            services.save_target({"metric": metric, "value": value + 1, "by_year": 2030})
        services.save_target({"metric": "applications_growth", "value": "0.05", "by_year": 2025})
        for name, group, score, stars, decided in [
            ("A", "food", 75, 4, dt.date(2023, 3, 1)),  # expires 2026-03-01: within 90 days
            ("B", "food", 60, 3, dt.date(2024, 1, 1)),
            ("C", "beverages", 95, 5, dt.date(2025, 1, 1)),
        ]:
            services.save_ocop_product(
                {
                    "name": name,
                    "producer_id": holder,
                    "product_group": group,
                    "criteria_version": "148/2023",
                    "score": score,
                    "stars": stars,
                    "rating_level": "national" if stars == 5 else "provincial",
                    "decision_number": f"{name}/QĐ",
                    "decision_date": decided,
                }
            )
        return {"soon": soon.id}

    return in_tx(build)


def test_dashboard_figures(client: FlaskClient, staff: dict, known_registry: dict) -> None:
    body = client.get(f"/api/v1/registry/dashboard?on={TODAY}", headers=staff).json
    targets = {t["metric"]: (t["granted"], t["target"], t["by_year"]) for t in body["targets"]}
    # 2026 is past 2025: the 2030 target is the one still ahead.
    assert targets == {"geographical_indication": (2, 5, 2030), "collective_mark": (3, 81, 2030)}
    apps = {a["year"]: (a["applications"], a["growth"], a["met"]) for a in body["applications"]}
    # Every year from the first filing to this one; a year without filings counts as 0 and
    # no growth is computed from a year of 0 (it was computed across the gap before).
    assert apps == {
        2016: (1, None, None),
        2017: (0, -1.0, False),
        **{year: (0, None, None) for year in range(2018, 2022)},
        2022: (1, None, None),
        2023: (2, 1.0, True),
        2024: (2, 0.0, False),
        2025: (0, -1.0, False),
        2026: (0, None, None),
    }
    assert [(r["name"], r["window_open"], r["days_left"]) for r in body["renewals_due"]] == [
        ("Nhãn sắp hết hạn", True, 106)
    ]
    assert [o["name"] for o in body["ocop_expiring"]] == ["A"]
    assets_rows = {row[0]: row for row in body["charts"]["assets"]["rows"]}
    columns = body["charts"]["assets"]["columns"]
    assert assets_rows["geographical_indication"][columns.index("granted")] == 2
    assert assets_rows["geographical_indication"][columns.index("filed")] == 1
    assert body["charts"]["ocop"]["rows"] == [["beverages", 0, 0, 1], ["food", 1, 1, 0]]


def test_targets_per_plan_period(
    in_tx: Callable[..., Any], logged_in: Callable[..., FlaskClient], known_registry: dict
) -> None:
    """Targets belong to five-year plan periods: in 2026 the 2026–2030 ones are current and
    2021–2025's are shown as an outcome (what was granted by the end of 2025); a period
    without targets shows none rather than an old period's."""
    from registry import dashboard

    assert dashboard.plan_period(2026) == (2026, 2030)
    assert dashboard.plan_period(2025) == (2021, 2025)
    outcome = in_tx(lambda: dashboard.period_outcome(2021, 2025))
    assert {t["metric"]: (t["granted"], t["target"]) for t in outcome} == {
        "geographical_indication": (2, 4),
        "collective_mark": (3, 80),
    }
    html = logged_in("officer").get(f"/registry/dashboard?on={TODAY}").get_data(as_text=True)
    assert "2026–2030" in html and 'id="previous-period"' in html
    assert in_tx(lambda: dashboard.targets_progress(dt.date(2031, 6, 1), {})) == []


def test_dashboard_page_and_csv(
    logged_in: Callable[..., FlaskClient], known_registry: dict
) -> None:
    client = logged_in("officer")
    page = client.get(f"/registry/dashboard?on={TODAY}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('<svg class="chart"') == 4
    assert html.count('<ul class="legend"') == 4
    assert "Nhãn sắp hết hạn" in html
    csv_text = client.get(f"/registry/dashboard/ocop.csv?on={TODAY}").get_data(as_text=True)
    assert csv_text.splitlines() == [
        "group,3 stars,4 stars,5 stars",
        "beverages,0,0,1",
        "food,1,1,0",
    ]


def test_expire_lapsed_marks(app: Any, known_registry: dict) -> None:
    from registry.models import IPAsset
    from registry.services import expire_lapsed_marks

    with app.app_context():
        assert expire_lapsed_marks(dt.date(2026, 11, 1)) == []  # still within grace
        lapsed = expire_lapsed_marks(dt.date(2026, 11, 2))
        assert [a.name for a in lapsed] == ["Nhãn sắp hết hạn"]
        db.session.rollback()
        assert db.session.get(IPAsset, known_registry["soon"]).status == "granted"
