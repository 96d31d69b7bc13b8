"""Vietnamese first, English on request, and a complete Vietnamese catalogue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "nguon" / "translations" / "vi" / "LC_MESSAGES" / "messages.po"


def test_vietnamese_by_default(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert "Đăng nhập" in html
    assert "Mật khẩu" in html


def test_language_switch_to_english_and_back(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/lang/en?next=/login"' in page  # the switch is on the page
    switched = client.get("/lang/en?next=/login")
    assert switched.status_code == 302
    assert switched.headers["Location"] == "/login"
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Password" in html and "Mật khẩu" not in html
    client.get("/lang/vi")
    assert "Mật khẩu" in client.get("/login").get_data(as_text=True)


def test_language_switch_is_on_every_page(client: FlaskClient) -> None:
    for path in ("/", "/login", "/missing-page"):
        html = client.get(path).get_data(as_text=True)
        assert "/lang/en" in html, path


def test_unknown_language_and_foreign_next(client: FlaskClient) -> None:
    assert client.get("/lang/fr").status_code == 404
    response = client.get("/lang/en?next=//evil.example/")
    assert response.headers["Location"] == "/"


def test_vietnamese_catalogue_is_complete(tmp_path: Path) -> None:
    """Every message in the code and templates has a Vietnamese translation."""
    pot = tmp_path / "messages.pot"
    subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
            "-k", "_l", "-o", str(pot), "--no-location", ".",
        ],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as handle:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="vi")
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalogue
        if m.id and m.string and all(m.string) and not m.fuzzy
    }
    assert sorted(wanted - translated) == []
