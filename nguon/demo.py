"""The demo data set: the province's real asset list, and clearly-marked demo records.

Facts (names, kinds, districts) come from the asset list; everything the sources do
not give (tax codes, people, passwords) is invented, flagged ``is_demo`` and labelled
"(demo)" wherever it is shown. Loading twice changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from nguon.app import PROJECT_ROOT
from nguon.db import db
from nguon.models import Role, User
from nguon.services import create_user
from nguon.text import nfc
from registry.models import Organisation

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "bacgiang-ip-assets.json"
BUNDLED_DATA = PROJECT_ROOT / "nguon" / "data" / "bacgiang-ip-assets.json"
DEMO_SUFFIX = " (demo)"

# Demo accounts. The passwords are public (README): never load the demo in production.
DEMO_USERS = (
    ("admin@demo.nguon.vn", Role.ADMIN, "demo-admin-2026", "Quản trị viên (demo)"),
    ("canbo@demo.nguon.vn", Role.OFFICER, "demo-officer-2026", "Cán bộ Sở KH&CN (demo)"),
    ("htx@demo.nguon.vn", Role.COOPERATIVE, "demo-htx-2026", "Thành viên HTX (demo)"),
)


def asset_data_path(explicit: str | None, echo: Callable[..., Any]) -> Path:
    """The asset list to read: ``--data``, else shared/ beside the checkout, else our copy."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"--data: no such file {path}")
        return path
    if SHARED_DATA.is_file():
        echo(f"asset list: {SHARED_DATA}", err=True)
        return SHARED_DATA
    echo(
        f"asset list: {SHARED_DATA} is not present; using the project's own copy "
        f"({BUNDLED_DATA.relative_to(PROJECT_ROOT)})",
        err=True,
    )
    return BUNDLED_DATA


def read_asset_data(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data.get("assets"), list) or not data["assets"]:
        raise ValueError(f"{path}: no 'assets' list")
    return data


def _organisation(name: str, kind: str, **fields: Any) -> tuple[Organisation, bool]:
    name = nfc(name)
    found = db.session.scalar(select(Organisation).where(Organisation.name == name))
    if found is not None:
        return found, False
    org = Organisation(name=name, kind=kind, is_demo=True, **fields)
    db.session.add(org)
    db.session.flush()
    return org, True


def demo_organisations(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The Department, and one demo cooperative per GI or certification mark."""
    province = data.get("province", "Bắc Giang")
    rows: list[tuple[str, str, dict[str, Any]]] = [
        (
            f"Sở Khoa học và Công nghệ tỉnh {province}{DEMO_SUFFIX}",
            "agency",
            {"address": f"tỉnh {province}"},
        )
    ]
    for number, asset in enumerate(data["assets"], start=1):
        if asset.get("kind") not in ("geographical_indication", "certification_mark"):
            continue
        rows.append(
            (
                f"Hợp tác xã {asset['name']}{DEMO_SUFFIX}",
                "cooperative",
                {
                    "address": f"huyện {asset['district']}, tỉnh {province}",
                    # Invented, 10 digits, starting 24 (Bắc Giang's tax-office prefix).
                    "tax_code": f"24{number:08d}",
                },
            )
        )
    return rows


def load(data_path: str | None, echo: Callable[..., Any]) -> None:
    """Load (or top up) the demo; prints what it created and the demo sign-ins."""
    data = read_asset_data(asset_data_path(data_path, echo))
    created = 0
    first_cooperative: Organisation | None = None
    for name, kind, fields in demo_organisations(data):
        org, new = _organisation(name, kind, **fields)
        created += new
        if kind == "cooperative" and first_cooperative is None:
            first_cooperative = org
    echo(f"organisations: {created} created", err=True)
    for email, role, password, display in DEMO_USERS:
        if db.session.scalar(select(User.id).where(User.email == email)) is None:
            org_id = (
                first_cooperative.id if role == Role.COOPERATIVE and first_cooperative else None
            )
            create_user(email, role, password=password, organisation_id=org_id, name=display)
        echo(f"demo sign-in ({role}): {email} / {password}")
    from registry import demo as registry_demo

    registry_demo.load(data, echo)
    from traceability import demo as traceability_demo

    traceability_demo.load(echo)
