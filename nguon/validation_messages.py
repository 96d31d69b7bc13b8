"""The built-in messages of marshmallow and WTForms, in the visitor's language.

Neither library ships a Vietnamese catalogue. Their English messages are the msgids of
our own catalogue (listed below so ``make messages`` extracts them); marshmallow's are
replaced by :class:`CatalogueMessage`, a ``str`` that translates itself when it is
formatted or printed, and WTForms forms take :data:`wtforms_translations` as their
``Meta.get_translations``.
"""

from __future__ import annotations

import inspect
from typing import Any

import flask_babel
from flask import has_request_context, request
from marshmallow import fields as ma_fields
from marshmallow import schema as ma_schema
from marshmallow import validate as ma_validate

from nguon.i18n import LABELS, _l, ngettext

MARSHMALLOW = (
    _l("Not a valid boolean."),
    _l("Not a valid date."),
    _l('"{input}" cannot be formatted as a date.'),
    _l("Special numeric values (nan or infinity) are not permitted."),
    _l("Not a valid email address."),
    _l("Must be one of: {choices}."),
    _l("Missing data for required field."),
    _l("Field may not be null."),
    _l("Invalid value."),
    _l("Not a valid IP address."),
    _l("Not a valid integer."),
    _l("Not a valid list."),
    _l("Not a valid mapping type."),
    _l("Invalid type."),
    _l("Not a valid number."),
    _l("Number too large."),
    _l("Not a valid string."),
    _l("Not a valid utf-8 string."),
    _l("Not a valid period of time."),
    _l("Not a valid tuple."),
    _l("Not a valid URL."),
    _l("Not a valid UUID."),
    _l("Not a valid {obj_type}."),
    _l("Not a valid {awareness} {obj_type}."),
    _l('"{input}" cannot be formatted as a {obj_type}.'),
    _l("One or more of the choices you made was in: {values}."),
    _l("One or more of the choices you made was not in: {choices}."),
    _l("Must be equal to {other}."),
    _l("Shorter than minimum length {min}."),
    _l("Longer than maximum length {max}."),
    _l("Length must be between {min} and {max}."),
    _l("Length must be {equal}."),
    _l("Invalid input."),
    _l("Must be {min_op} {{min}}."),
    _l("Must be {max_op} {{max}}."),
    _l("Must be {min_op} {{min}} and {max_op} {{max}}."),
    _l("greater than or equal to"),
    _l("greater than"),
    _l("less than or equal to"),
    _l("less than"),
    _l("String does not match expected pattern."),
    _l("Invalid input type."),
    _l("Unknown field."),
    # words marshmallow puts into its messages
    _l("datetime"),
    _l("date"),
    _l("time"),
    _l("aware"),
    _l("naive"),
)
WORDS = {"datetime", "date", "time", "aware", "naive"}


def _wtforms_catalogue() -> None:  # never called: the msgids, for extraction
    _l("Invalid field name '%s'.")
    _l("Field must be equal to %(other_name)s.")
    ngettext(
        "Field must be at least %(min)d character long.",
        "Field must be at least %(min)d characters long.",
        1,
    )
    ngettext(
        "Field cannot be longer than %(max)d character.",
        "Field cannot be longer than %(max)d characters.",
        1,
    )
    ngettext(
        "Field must be exactly %(max)d character long.",
        "Field must be exactly %(max)d characters long.",
        1,
    )
    _l("Field must be between %(min)d and %(max)d characters long.")
    _l("Number must be at least %(min)s.")
    _l("Number must be at most %(max)s.")
    _l("Number must be between %(min)s and %(max)s.")
    _l("This field is required.")
    _l("Invalid input.")
    _l("Invalid email address.")
    _l("Invalid URL.")
    _l("Invalid value, must be one of: %(values)s.")
    _l("Invalid CSRF Token.")
    _l("CSRF token missing.")
    _l("CSRF failed.")
    _l("CSRF token expired.")
    _l("Not a valid choice.")
    _l("Not a valid datetime value.")
    _l("Not a valid date value.")
    _l("Not a valid time value.")
    _l("Not a valid integer value.")
    _l("Not a valid decimal value.")
    _l("Not a valid float value.")


def _for_programs() -> bool:
    return request.path.startswith(("/api/", "/epcis/"))


def _stored_value(value: str) -> str:
    """A stored value (a unit code, an enum key) as the interface names it, if it does."""
    for labels in LABELS.values():
        if value in labels:
            return str(labels[value])
    return value


def _translate(text: str) -> str:
    return flask_babel.get_translations().ugettext(text) if has_request_context() else text


class CatalogueMessage(str):
    """A marshmallow message that is translated when it is used. Outside a request
    (schemas built at import time) ``format`` keeps the arguments it was given for later,
    so Range's bound words ("greater than") are translated with the sentence."""

    def __new__(cls, msgid: str, bound: dict[str, Any] | None = None) -> CatalogueMessage:
        made = super().__new__(cls, msgid)
        made.msgid = msgid
        made.bound = bound or {}
        return made

    def _words(self, values: dict[str, Any]) -> dict[str, Any]:
        if isinstance(values.get("choices"), str) and not _for_programs():
            # A person reads stored codes (KGM, fake_code) in words; a program needs them.
            values = {
                **values,
                "choices": ", ".join(map(_stored_value, values["choices"].split(", "))),
            }
        return {
            key: str(value)
            if isinstance(value, CatalogueMessage)
            else (_translate(value) if isinstance(value, str) and value in WORDS else value)
            for key, value in values.items()
        }

    def format(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        if not has_request_context():
            return CatalogueMessage(self.msgid, {**self.bound, **kwargs})
        text = _translate(self.msgid)
        if self.bound:
            text = text.format(**self._words(self.bound))
        return text.format(*args, **self._words(kwargs))

    def __str__(self) -> str:
        if not has_request_context():
            return str.__str__(self)
        return self.format() if self.bound else _translate(self.msgid)


def _wrap(value: Any) -> Any:
    return CatalogueMessage(value) if isinstance(value, str) and type(value) is str else value


def install() -> None:
    """Replace marshmallow's class-level messages (idempotent)."""
    for _name, cls in inspect.getmembers(ma_fields, inspect.isclass):
        own = cls.__dict__.get("default_error_messages")
        if own:
            cls.default_error_messages = {k: _wrap(v) for k, v in own.items()}
    for _name, cls in inspect.getmembers(ma_validate, inspect.isclass):
        for key, value in list(cls.__dict__.items()):
            if key.startswith("message") or key == "default_message":
                setattr(cls, key, _wrap(value))
    ma_schema.Schema._default_error_messages = {
        k: _wrap(v) for k, v in ma_schema.Schema._default_error_messages.items()
    }


class WTFormsTranslations:
    """WTForms' gettext interface over our catalogue (WTForms interpolates itself)."""

    def gettext(self, string: str) -> str:
        return _translate(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        if not has_request_context():
            return singular if n == 1 else plural
        return flask_babel.get_translations().ungettext(singular, plural, n)


wtforms_translations = WTFormsTranslations()


install()
