"""The registry's legal rules as pure functions: formats, dates, validity, OCOP stars.

Each check returns ``None`` when the rule holds and a message naming the rule when it
does not, so services can collect every broken rule of a record at once.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from registry.models import AssetKind, OcopLevel

MARK_TERM_YEARS = 10  # Law on IP, art. 93(6): 10 years from filing, renewable by 10
RENEWAL_WINDOW_MONTHS = 6  # renewal may be asked 6 months before expiry...
RENEWAL_GRACE_MONTHS = 6  # ...or within 6 months after it
OCOP_VALIDITY_MONTHS = 36

# Application numbers: <type>-<year>-<5 digits>; type 4 = marks, 6 = GIs.
APPLICATION_NUMBER = re.compile(r"^(?P<type>[1-6])-(?P<year>\d{4})-(?P<serial>\d{5})$")
MARK_CERTIFICATE = re.compile(r"^\d{1,7}$")
GI_CERTIFICATE = re.compile(r"^\d{5}$")
# Stars by score, OCOP criteria (Decision 148/QĐ-TTg): 3★ 50–69, 4★ 70–89, 5★ 90–100.
STAR_BANDS = {3: (50, 69), 4: (70, 89), 5: (90, 100)}


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months (31 Aug + 6 months = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_years(day: dt.date, years: int) -> dt.date:
    return add_months(day, 12 * years)


def check_application_number(number: str, kind: str, filing_date: dt.date | None) -> str | None:
    match = APPLICATION_NUMBER.match(number)
    if not match:
        return "must look like 4-2025-20619 (type-year-five digits)"
    expected = "6" if kind == AssetKind.GEOGRAPHICAL_INDICATION else "4"
    if match["type"] != expected:
        what = "geographical indications" if expected == "6" else "marks"
        return f"applications for {what} start with {expected}- (got {match['type']}-)"
    if filing_date is not None and int(match["year"]) != filing_date.year:
        return (
            f"the year in the number ({match['year']}) must be the filing year ({filing_date.year})"
        )
    return None


def check_certificate_number(number: str, kind: str) -> str | None:
    if kind == AssetKind.GEOGRAPHICAL_INDICATION:
        if not GI_CERTIFICATE.match(number):
            return "a GI certificate number has exactly 5 digits, e.g. 00096"
    elif not MARK_CERTIFICATE.match(number):
        return "a mark certificate number is 1 to 7 digits"
    return None


def check_nice_classes(classes: list[int], kind: str) -> str | None:
    bad = [c for c in classes if not 1 <= c <= 45]
    if bad:
        return f"Nice classes are 1 to 45 (got {', '.join(map(str, bad))})"
    if len(set(classes)) != len(classes):
        return "a Nice class is listed twice"
    if kind != AssetKind.GEOGRAPHICAL_INDICATION and not classes:
        return "a mark needs at least one Nice class"
    return None


def mark_expiry(filing_date: dt.date, renewals: int = 0) -> dt.date:
    """A mark's protection ends 10 years after filing, plus 10 per renewal."""
    return add_years(filing_date, MARK_TERM_YEARS * (1 + renewals))


def renewal_window(expiry: dt.date) -> tuple[dt.date, dt.date]:
    """(first day a renewal may be asked, last day of the grace period)."""
    return add_months(expiry, -RENEWAL_WINDOW_MONTHS), add_months(expiry, RENEWAL_GRACE_MONTHS)


def check_renewal_date(expiry: dt.date, on: dt.date) -> str | None:
    opens, closes = renewal_window(expiry)
    if on < opens:
        return f"the renewal window opens on {opens.isoformat()} (6 months before expiry)"
    if on > closes:
        return f"the grace period ended on {closes.isoformat()} (6 months after expiry)"
    return None


def check_date_order(
    filing: dt.date | None, grant: dt.date | None, expiry: dt.date | None
) -> str | None:
    if filing and grant and grant < filing:
        return "the grant date cannot be before the filing date"
    if grant and expiry and expiry < grant:
        return "the expiry date cannot be before the grant date"
    if filing and expiry and expiry < filing:
        return "the expiry date cannot be before the filing date"
    return None


def stars_for_score(score: int) -> int | None:
    for stars, (low, high) in STAR_BANDS.items():
        if low <= score <= high:
            return stars
    return None


def check_stars(score: int, stars: int) -> str | None:
    expected = stars_for_score(score)
    if expected is None:
        return f"a score of {score} earns no star rating (3 stars need at least 50)"
    if expected != stars:
        low, high = STAR_BANDS.get(stars, (0, 0))
        band = f" ({stars} stars need {low}–{high})" if stars in STAR_BANDS else ""
        return f"a score of {score} gives {expected} stars, not {stars}{band}"
    return None


def check_ocop_level(stars: int, level: str) -> str | None:
    # 5 stars are rated by the central council; 3 and 4 by the province.
    expected = OcopLevel.NATIONAL if stars == 5 else OcopLevel.PROVINCIAL
    if level != expected:
        return f"{stars}-star products are rated at {expected} level"
    return None


def ocop_expiry(decision_date: dt.date) -> dt.date:
    return add_months(decision_date, OCOP_VALIDITY_MONTHS)
