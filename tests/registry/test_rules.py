"""Each legal rule, with a case that breaks it and one that keeps it."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nguon.text import search_key, search_terms
from registry import rules

D = dt.date


@pytest.mark.parametrize(
    ("number", "kind", "filed", "message"),
    [
        ("4-2025-20619", "collective_mark", D(2025, 4, 2), None),
        ("6-2007-00001", "geographical_indication", D(2007, 3, 1), None),
        ("4-2025-2061", "mark", None, "must look like 4-2025-20619"),
        ("VN-2025-20619", "mark", None, "must look like 4-2025-20619"),
        ("6-2025-20619", "mark", None, "applications for marks start with 4-"),
        ("4-2025-20619", "geographical_indication", None, "start with 6-"),
        ("4-2024-20619", "mark", D(2025, 1, 3), "must be the filing year (2025)"),
    ],
)
def test_application_number(number: str, kind: str, filed, message) -> None:
    result = rules.check_application_number(number, kind, filed)
    assert (result is None) if message is None else (message in result)


@pytest.mark.parametrize(
    ("number", "kind", "ok"),
    [
        ("00096", "geographical_indication", True),
        ("96", "geographical_indication", False),
        ("000961", "geographical_indication", False),
        ("265432", "collective_mark", True),
        ("26-5432", "collective_mark", False),
        ("12345678", "mark", False),
    ],
)
def test_certificate_number(number: str, kind: str, ok: bool) -> None:
    assert (rules.check_certificate_number(number, kind) is None) == ok


def test_nice_classes() -> None:
    assert rules.check_nice_classes([29, 31], "collective_mark") is None
    assert "1 to 45 (got 0, 46)" in rules.check_nice_classes([0, 46], "mark")
    assert "at least one Nice class" in rules.check_nice_classes([], "mark")
    assert rules.check_nice_classes([], "geographical_indication") is None
    assert "twice" in rules.check_nice_classes([31, 31], "mark")


def test_date_order() -> None:
    assert rules.check_date_order(D(2020, 1, 1), D(2021, 1, 1), D(2030, 1, 1)) is None
    assert "grant date cannot be before the filing" in rules.check_date_order(
        D(2020, 1, 1), D(2019, 1, 1), None
    )
    assert "expiry date cannot be before the grant" in rules.check_date_order(
        None, D(2021, 1, 1), D(2020, 1, 1)
    )


def test_mark_expiry_and_renewals() -> None:
    assert rules.mark_expiry(D(2015, 6, 1)) == D(2025, 6, 1)
    assert rules.mark_expiry(D(2015, 6, 1), renewals=1) == D(2035, 6, 1)
    assert rules.mark_expiry(D(2016, 2, 29)) == D(2026, 2, 28)


def test_renewal_window() -> None:
    expiry = D(2025, 6, 1)
    assert rules.renewal_window(expiry) == (D(2024, 12, 1), D(2025, 12, 1))
    assert "opens on 2024-12-01" in rules.check_renewal_date(expiry, D(2024, 11, 30))
    assert rules.check_renewal_date(expiry, D(2024, 12, 1)) is None
    assert rules.check_renewal_date(expiry, D(2025, 12, 1)) is None  # last day of grace
    assert "grace period ended on 2025-12-01" in rules.check_renewal_date(expiry, D(2025, 12, 2))


@pytest.mark.parametrize(
    ("score", "stars", "ok"),
    [
        (50, 3, True),
        (69, 3, True),
        (70, 3, False),
        (70, 4, True),
        (89, 4, True),
        (90, 5, True),
        (100, 5, True),
        (89, 5, False),
        (49, 3, False),
    ],
)
def test_stars_follow_the_score(score: int, stars: int, ok: bool) -> None:
    assert (rules.check_stars(score, stars) is None) == ok


def test_star_message_says_what_the_score_gives() -> None:
    assert rules.check_stars(72, 3) == "a score of 72 gives 4 stars, not 3 (3 stars need 50–69)"
    assert "earns no star rating" in rules.check_stars(40, 3)


def test_ocop_level_and_expiry() -> None:
    assert rules.check_ocop_level(5, "national") is None
    assert rules.check_ocop_level(5, "provincial") == "5-star products are rated at national level"
    assert rules.check_ocop_level(4, "provincial") is None
    assert rules.ocop_expiry(D(2023, 8, 31)) == D(2026, 8, 31)
    assert rules.ocop_expiry(D(2024, 2, 29)) == D(2027, 2, 28)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Vải thiều Lục Ngạn", "vai thieu luc ngan"),
        ("  VẢI   THIỀU  lục ngạn ", "vai thieu luc ngan"),
        ("Rau an toàn Đa Mai", "rau an toan da mai"),
        ("Ổi Tân Yên", "oi tan yen"),
        ("Hoà / Hòa", "hoa hoa"),
    ],
)
def test_search_key(text: str, key: str) -> None:
    assert search_key(text) == key


@given(st.text())
def test_search_key_is_idempotent_and_ascii(text: str) -> None:
    key = search_key(text)
    assert search_key(key) == key
    assert all(ch.isascii() for ch in key)


def test_decomposed_input_matches_composed() -> None:
    """Text typed as NFD (a Mac keyboard) searches like NFC."""
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Lục Ngạn")
    assert search_terms(nfd) == ["luc", "ngan"]
