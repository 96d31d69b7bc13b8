"""Vietnamese first, English second: flask-babel and the language choice.

Message ids in the code are English; the ``vi`` catalogue (compiled at install, never
committed as a binary) gives the Vietnamese every page shows by default.
"""

from __future__ import annotations

import flask_babel
from flask import Flask, has_request_context, request, session
from flask_babel import Babel, gettext, lazy_gettext, ngettext

LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}

_ = gettext
_l = lazy_gettext
__all__ = ["LABELS", "LANGUAGES", "_", "_l", "babel", "get_locale", "init_app", "label", "ngettext"]

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


def label(kind: str, value: str) -> str:
    found = LABELS.get(kind, {}).get(value)
    return str(found) if found is not None else value


def get_locale() -> str:
    """The visitor's choice (``?lang=`` or the session), else the configured default
    (pages) or Accept-Language (the API)."""
    from flask import current_app

    if not has_request_context():  # a CLI command or a worker: the default
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    if request.path.startswith(("/api/", "/epcis/")):
        # Programs get the language they ask for (Accept-Language), English by default.
        return request.accept_languages.best_match(LANGUAGES) or "en"
    return current_app.config["BABEL_DEFAULT_LOCALE"]


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
