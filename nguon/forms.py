"""HTML forms (flask-wtf: every one carries the session's CSRF token)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from nguon.i18n import _l
from nguon.inputs import has_bad_characters
from nguon.validation_messages import wtforms_translations


class Form(FlaskForm):
    """A form whose built-in messages come from our catalogue (WTForms has no Vietnamese)."""

    class Meta:
        def get_translations(self, form):  # type: ignore[no-untyped-def]
            return wtforms_translations

    def validate(self, extra_validators=None):  # type: ignore[no-untyped-def]
        """The fields' own rules, then one for every form: no NUL or lone surrogate in any
        text (nguon.inputs), named beside the field rather than reaching the database."""
        valid = super().validate(extra_validators)
        for field in self:
            values = field.data if isinstance(field.data, list) else [field.data]
            if not field.errors and any(
                isinstance(v, str) and has_bad_characters(v) for v in values
            ):
                field.errors = [
                    _l("Contains a character that is not allowed (NUL or an invalid character).")
                ]
                valid = False
        return valid


class LoginForm(Form):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1000)])


class PasswordForm(Form):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(), Length(max=1000)]
    )
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1000)])
    confirm_password = PasswordField(
        _l("New password, again"), validators=[DataRequired(), Length(max=1000)]
    )


class TokenForm(Form):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=100)])


class ConfirmForm(Form):
    """A button-only form: CSRF is its whole content."""
