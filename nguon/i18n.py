"""Vietnamese first, English second: flask-babel and the language choice.

Message ids in the code are English; the ``vi`` catalogue (compiled at install, never
committed as a binary) gives the Vietnamese every page shows by default.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import flask_babel
from flask import Flask, request, session
from flask_babel import Babel, gettext, lazy_gettext, ngettext
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}
LANG_COOKIE = (
    "lang"  # a consumer's choice, kept without a session (pages served below Flask read it)
)
LANG_COOKIE_AGE = 365 * 24 * 3600
# Blueprints whose pages also follow the browser's Accept-Language when nothing was chosen
# (the public pages a phone opens from a label); the rest stay Vietnamese first.
NEGOTIATING_BLUEPRINTS: set[str] = set()

_ = gettext
_l = lazy_gettext


def N_(text: str) -> str:
    """A msgid marked for the catalogue, translated later (e.g. by an exception's words)."""
    return text


__all__ = [
    "LABELS",
    "LANGUAGES",
    "N_",
    "_",
    "_l",
    "babel",
    "get_locale",
    "init_app",
    "label",
    "ngettext",
    "records_language",
]

babel = Babel()

# Labels for values stored in English (roles, audit actions, kinds); templates use
# ``label(kind, value)``.
LABELS = {
    "role": {
        "admin": _l("administrator"),
        "officer": _l("officer"),
        "cooperative": _l("cooperative member"),
    },
    "action": {"insert": _l("created"), "update": _l("changed"), "delete": _l("deleted")},
    # UN/ECE Recommendation 20 codes, as stored, in words.
    "unit": {
        "KGM": _l("kg"),
        "TNE": _l("tonnes"),
        "H87": _l("pieces"),
        "LTR": _l("litres"),
        "XBX": _l("boxes"),
        "XCT": _l("cartons"),
    },
}


@contextlib.contextmanager
def records_language() -> Iterator[None]:
    """Words written into a record officers read (a case's title, an alarm's detail) are
    in the service's own language (the default locale), whoever's request wrote them (a
    consumer reading in English, a scan flushed outside any request)."""
    from flask import current_app

    with flask_babel.force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        yield


def label(kind: str, value: str) -> str:
    found = LABELS.get(kind, {}).get(value)
    return str(found) if found is not None else value


def get_locale() -> str:
    """The visitor's choice (``?lang=``, the session, the language cookie), then on the
    public pages that negotiate the browser's Accept-Language, else the configured default;
    the API follows Accept-Language, English by default. Outside a request: the default."""
    from flask import current_app

    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    if not request:
        return default
    chosen = session.get("lang")
    if request.args.get("lang") not in LANGUAGES and chosen in LANGUAGES:
        return chosen
    machine = request.path.startswith(("/api/", "/epcis/")) or request.path == "/readyz"
    if machine and request.args.get("lang") not in LANGUAGES:
        # Programs and load balancers get the language they ask for, English by default.
        return request.accept_languages.best_match(LANGUAGES) or "en"
    negotiates = request.blueprint in NEGOTIATING_BLUEPRINTS
    return choose_language(
        request.args.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("Accept-Language", "") if negotiates else "",
        default,
    )


@functools.lru_cache(maxsize=512)
def choose_language(asked: str | None, cookie: str | None, accept: str, default: str) -> str:
    """The page's language: ``?lang=``, then the language cookie, then the best match of
    Accept-Language, then ``default``. One function for every path that answers a page
    (the resolver's fast path included); browsers send a handful of distinct headers."""
    if asked in LANGUAGES:
        return asked  # type: ignore[return-value]
    if cookie in LANGUAGES:
        return cookie  # type: ignore[return-value]
    if accept:
        best = parse_accept_header(accept, LanguageAccept).best_match(list(LANGUAGES))
        if best:
            return best
    return default


def language_cookie(code: str, *, secure: bool) -> str:
    """The Set-Cookie value that keeps a language chosen with ``?lang=`` (fixed text: both
    the resolver's paths send the same header)."""
    flags = "; Secure" if secure else ""
    return f"{LANG_COOKIE}={code}; Max-Age={LANG_COOKIE_AGE}; Path=/; SameSite=Lax{flags}"


def init_app(app: Flask) -> None:
    babel.init_app(
        app,
        locale_selector=get_locale,
        default_translation_directories="translations",
    )
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["label"] = label
    app.jinja_env.globals["get_locale"] = lambda: str(flask_babel.get_locale() or "vi")
    from nguon import formatting

    formatting.install(app, babel)
