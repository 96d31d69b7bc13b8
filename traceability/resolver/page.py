"""Represent, for a person: the consumer page.

The batch's part is rendered once per TTL and language and kept as text split at its
slots; each scan fills in its own parts (verdict, serial, the place question with the
scan's reference, the report link). The fast path fills the same parts the same way.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, format_datetime
from flask import current_app, render_template
from flask_babel import get_locale
from markupsafe import Markup, escape

from traceability.gs1 import DigitalLink
from traceability.resolver import card as cards
from traceability.resolver.places import province_options
from traceability.resolver.verdict import VERDICTS

SLOT = "\x00"
_REF = "0" * 32  # where a scan's reference goes in the place form
# Dates and times as people write them: Vietnamese dd/mm/yyyy and 24 h; English the same
# order with the month's name. Each event's time is shown in its own place's offset.
DAY_FORMATS = {"vi": "dd/MM/yyyy", "en": "d MMM yyyy"}
MOMENT_FORMATS = {"vi": "dd/MM/yyyy HH:mm", "en": "d MMM yyyy, HH:mm"}


def _slot(name: str) -> Markup:
    return Markup(f"{SLOT}{name}{SLOT}")  # noqa: S704  (a fixed marker, no user text)


def fill(parts: list[str], values: dict[str, str]) -> str:
    """A page kept as text split at its slots, with each slot's (safe) value filled in."""
    return "".join(values[part] if i % 2 else part for i, part in enumerate(parts))


@functools.lru_cache(maxsize=1024)
def format_day(value: str | None, locale: str) -> str:
    """An ISO date (2026-06-24) as people in ``locale`` write it (24/06/2026)."""
    if not value:
        return ""
    return format_date(
        dt.date.fromisoformat(value), DAY_FORMATS.get(locale, "dd/MM/yyyy"), locale=locale
    )


@functools.lru_cache(maxsize=4096)
def format_moment(value: str | None, locale: str) -> str:
    """An ISO time with its offset, written in that offset (not converted elsewhere)."""
    if not value:
        return ""
    moment = dt.datetime.fromisoformat(value)
    pattern = MOMENT_FORMATS.get(locale, "dd/MM/yyyy HH:mm")
    return format_datetime(moment, pattern, tzinfo=moment.tzinfo, locale=locale)


def offset_label(value: str | None) -> str:
    """The UTC offset of an ISO time, as "UTC+07:00"."""
    if not value:
        return ""
    return "UTC" + dt.datetime.fromisoformat(value).isoformat()[-6:]


def page_parts(card: dict[str, Any], locale: str, *, render: bool = True) -> list[str] | None:
    """The batch's consumer page in ``locale``, split at the slots each scan fills in;
    rendered once per TTL and language (None if not yet rendered and not ``render``)."""
    pages = card.setdefault("_page", {})
    parts = pages.get(locale)
    if parts is None and render:
        helpers = {
            "day": lambda v: format_day(v, locale),
            "moment": lambda v: format_moment(v, locale),
            "offset": offset_label,
        }
        # Another language shows this same scan again (it is not another scan).
        lang_href = lambda code: Markup(f"/scans/{_slot('ref')}?lang={code}")  # noqa: E731, S704
        # render_template escaped every value, so the pieces are safe HTML.
        html = render_template(
            "public/consumer.html",
            card=card,
            card_html=Markup(render_template("public/_card.html", card=card, **helpers)),  # noqa: S704
            slot=_slot,
            lang_href=lang_href,
            **helpers,
        )
        parts = pages[locale] = html.split(SLOT)
    return parts


_SCAN_HTML: dict[tuple[Any, ...], list[str]] = {}
SCAN_SHAPES = list(itertools.product(VERDICTS, *[(False, True)] * 3))


def scan_fragment(
    locale: str,
    verdict: str,
    code: Any,
    link: DigitalLink,
    shared: str | None,
    *,
    render: bool = True,
) -> list[str] | None:
    """The verdict, serial and thank-you note of one scan, split at the slots its values
    go in (None if not rendered yet, and not ``render``). A language's first render does
    every shape at once (verdicts, with or without serial, first time and place), so
    every later scan finds its shape ready."""
    shape = (
        verdict,
        link.serial is not None,
        bool(code.first_scan_at),
        bool(code.first_scan_place),
    )
    parts = _SCAN_HTML.get((locale, shared, shape))
    if parts is None and render:
        template = current_app.jinja_env.get_template("public/_scan.html")
        shapes = SCAN_SHAPES if shared is None else [shape]
        for verdict_, serial, first, place in shapes:
            html = template.render(
                verdict=verdict_,
                shared=shared,
                serial=serial,
                first=first,
                place=place,
                slot=_slot,
            )  # straight from the environment: no context processors
            _SCAN_HTML[(locale, shared, (verdict_, serial, first, place))] = html.split(SLOT)
        parts = _SCAN_HTML[(locale, shared, shape)]
    return parts


_FORMS: dict[str, str] = {}


def share_form(locale: str, *, render: bool = True, ref: str = _REF, error: str = "") -> str | None:
    """The place question, with a stand-in for the scan's reference (rendered once per
    language; None if not yet, and not ``render``). With ``error`` (a share refused):
    rendered for that scan alone, the message beside the list."""
    if error:
        return render_template(
            "public/_share.html", ref=ref, province_options=province_options(), error=error
        )
    form = _FORMS.get(locale)
    if form is None and render:
        form = _FORMS[locale] = render_template(
            "public/_share.html", ref=_REF, province_options=province_options(), error=""
        )
    return form


def page_html(
    config: Any,
    parts: list[str],
    scan_parts: list[str],
    form: str | None,
    link: DigitalLink,
    code: Any,
    verdict: str,
    ref: str | None,
) -> str:
    """Fill a page's slots: the scan's verdict and serial, its place question (``form``,
    with the scan's reference) and the report link."""
    first = code.first_scan_at
    reason = code.flag_reason if verdict == "suspicious" else code.void_reason
    scan = fill(
        scan_parts,
        {
            "count": str(code.scan_count),
            "first": _local_scan_time(first, config["BABEL_DEFAULT_TIMEZONE"]) if first else "",
            "place": escape(code.first_scan_place or ""),
            "reason": escape(reason or ""),
            "serial": escape(link.serial or ""),
        },
    )
    own = {
        "scan": scan,
        "share": form.replace(_REF, ref) if form is not None and ref else "",
        "report": quote(link.uri(config["PUBLIC_URL"]), safe=""),
        "ref": ref or _REF,
    }
    return fill(parts, own)


def _local_scan_time(value: dt.datetime, zone: str) -> str:
    """A scan's time in the service's time zone: dd/mm/yyyy HH:MM, 24 h."""
    return value.astimezone(cards.zone(zone)).strftime("%d/%m/%Y %H:%M")


def consumer_page(
    card: dict[str, Any],
    link: DigitalLink,
    code: Any,
    verdict: str,
    ref: str | None,
    shared: str | None = None,
    share_error: str = "",
    *,
    ask_place: bool = True,
) -> str:
    """The consumer page: the batch's part rendered once per TTL and language, with the
    scan's own parts (verdict, serial, place form, report link, language links) filled
    into its slots; ``ask_place``: with the place question (not once it is answered)."""
    locale = str(get_locale())
    form = share_form(locale, ref=ref or _REF, error=share_error) if ref and ask_place else None
    return page_html(
        current_app.config,
        page_parts(card, locale),  # type: ignore[arg-type]
        scan_fragment(locale, verdict, code, link, shared),  # type: ignore[arg-type]
        form,
        link,
        code,
        verdict,
        ref,
    )


def clear() -> None:
    _FORMS.clear()
    _SCAN_HTML.clear()
