"""Shell pages: home, language switch, sign-in, API tokens, the audit log."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from nguon import audit_words, services, sessions
from nguon.auth import login_required, staff_required
from nguon.db import db, paginate, utcnow
from nguon.errors import DomainValidationError, problem
from nguon.forms import ConfirmForm, LoginForm, PasswordForm, TokenForm
from nguon.i18n import LANGUAGES, _
from nguon.models import ApiToken, AuditEntry
from nguon.services import MIN_PASSWORD_LENGTH

main_bp = Blueprint("main", __name__)
accounts_bp = Blueprint("accounts", __name__)
audit_bp = Blueprint("audit", __name__, url_prefix="/audit")


def safe_next(target: str | None, default: str) -> str:
    """Only same-site relative paths: ``next=https://evil.example`` is ignored."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


@main_bp.get("/")
def home() -> Any:
    # A cooperative member starts the day on its own page (batches, labels, scans).
    if (
        current_user.is_authenticated
        and current_user.organisation_id is not None
        and "traceability.home" in current_app.view_functions
    ):
        return redirect(url_for("traceability.home"))
    return render_template("main/home.html")


@main_bp.get("/lang/<code>")
def set_language(code: str) -> Any:
    if code not in LANGUAGES:
        abort(404)
    session["lang"] = code
    return redirect(safe_next(request.args.get("next"), url_for("main.home")))


@main_bp.get("/healthz")
def health() -> dict[str, str]:
    """Liveness: the process answers (nothing else is looked at, the database neither).

    200 ``{"status": "ok"}``. Readiness to serve is ``/readyz``."""
    return {"status": "ok"}


@main_bp.get("/readyz")
def ready() -> Any:
    """Readiness, for load balancers and deploys: the database answers and its schema is
    at this code's migration head.

    200 ``{"status": "ready", "revision": "<head>"}``, or 503 problem+json whose
    ``detail`` gives the reason in the caller's language (``Accept-Language``). A database
    that does not answer is given up after ``NGUON_DB_CONNECT_TIMEOUT`` seconds."""
    from nguon import health as checks

    reason, revision = checks.readiness()
    if reason is not None:
        return problem(503, reason, title=_("Not ready"), headers={"Retry-After": "10"})
    return {"status": "ready", "revision": revision}


# --- sign-in ----------------------------------------------------------------------


@accounts_bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next"), url_for("main.home")))
    form = LoginForm()
    status = 200
    headers: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data or "", form.password.data or "")
        except services.LoginRefused as refused:
            g.commit_despite_error = True  # the failure counter must survive the 401
            if refused.reason == "locked" and refused.locked_until:
                seconds = max(1, math.ceil((refused.locked_until - utcnow()).total_seconds()))
                headers["Retry-After"] = str(seconds)
                status = 429
                form.form_errors.append(
                    _(
                        "Too many failed attempts. Try again in %(minutes)s minute(s).",
                        minutes=math.ceil(seconds / 60),
                    )
                )
            else:
                status = 401
                form.form_errors.append(_("Wrong email or password."))
        else:
            login_user(user)
            sessions.start(user)
            session.permanent = True
            return redirect(safe_next(request.args.get("next"), url_for("main.home")))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/login.html", form=form), status, headers


@accounts_bp.post("/logout")
@login_required
def logout() -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    sessions.end()  # a copy of this cookie stops working too
    logout_user()  # the language choice stays in the session
    flash(_("You are signed out."), "info")
    return redirect(url_for("main.home"))


# --- the account page: password, sessions -----------------------------------------------


@accounts_bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Any:
    """The signed-in user's account: change the password (every other session of the
    user ends; this one goes on), sign out everywhere, the link to the API tokens."""
    form = PasswordForm()
    status = 200
    headers: dict[str, str] = {}
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            services.verify_own_password(user, form.current_password.data or "")
        except services.LoginRefused as refused:
            g.commit_despite_error = True  # the failure counts towards the lockout
            status, message = 422, _("This is not your current password.")
            if refused.reason == "locked" and refused.locked_until:
                seconds = max(1, math.ceil((refused.locked_until - utcnow()).total_seconds()))
                headers["Retry-After"] = str(seconds)
                status = 429
                message = _(
                    "Too many failed attempts. Try again in %(minutes)s minute(s).",
                    minutes=math.ceil(seconds / 60),
                )
            form.current_password.errors = [message]
        else:
            too_short = services.password_problem(form.new_password.data or "")
            if form.new_password.data != form.confirm_password.data:
                form.confirm_password.errors = [_("The two new passwords differ.")]
                status = 422
            elif too_short:
                form.new_password.errors = [
                    _("must be at least %(count)s characters long", count=MIN_PASSWORD_LENGTH)
                ]
                status = 422
            else:
                services.set_password(user, form.new_password.data or "")
                db.session.flush()  # raises the session version: every session ends...
                sessions.start(user)  # ...and this browser gets a new one
                flash(_("Your password was changed; your other sessions are signed out."), "info")
                return redirect(url_for("accounts.account"))
    elif request.method == "POST":
        status = 400
    page = render_template("accounts/account.html", form=form, confirm=ConfirmForm())
    return page, status, headers


@accounts_bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> Any:
    """End every session of the signed-in user, on every device, this one included."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    sessions.end_all(current_user._get_current_object())
    session.pop(sessions.SESSION_ID_KEY, None)
    logout_user()
    flash(_("You are signed out on every device."), "info")
    return redirect(url_for("accounts.login"))


# --- API tokens ---------------------------------------------------------------------


@accounts_bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Any:
    form = TokenForm()
    new_secret = None
    status = 200
    if form.validate_on_submit():
        try:
            issued = services.create_token(current_user, form.name.data or "")
        except DomainValidationError as exc:
            form.name.errors = [*form.name.errors, *exc.errors.get("name", [exc.detail])]
            status = 422
        else:
            new_secret = issued.secret
            form = TokenForm(formdata=None)
    elif request.method == "POST":
        status = 400
    return (
        render_template(
            "accounts/tokens.html",
            form=form,
            tokens=services.tokens_of(current_user),
            new_secret=new_secret,
            confirm=ConfirmForm(),
        ),
        status,
    )


@accounts_bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    services.revoke_token(token)
    flash(_("Token “%(name)s” revoked.", name=token.name), "info")
    return redirect(url_for("accounts.tokens"))


# --- audit log ------------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50


def audit_query(record_table: str | None, record_id: str | None, actor: str | None) -> Any:
    query = select(AuditEntry)
    if record_table:
        query = query.where(AuditEntry.record_table == record_table)
    if record_id:
        query = query.where(AuditEntry.record_id == record_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    return query


@audit_bp.get("/")
@staff_required
def audit_log() -> str:
    record_table = request.args.get("table") or None
    record_id = request.args.get("record") or None
    actor = request.args.get("actor") or None
    page = max(1, request.args.get("page", 1, type=int))
    query = audit_query(record_table, record_id, actor).order_by(AuditEntry.id.desc())
    entries, total, pages = paginate(query, page, AUDIT_PAGE_SIZE)
    tables = db.session.scalars(
        select(AuditEntry.record_table).distinct().order_by(AuditEntry.record_table)
    ).all()
    return render_template(
        "audit/list.html",
        entries=audit_words.in_words(entries, _user_titles),
        table_name=audit_words.table_name,
        total=total,
        page=page,
        pages=pages,
        tables=tables,
        record_table=record_table,
        record_id=record_id,
        actor=actor,
    )


def _user_titles(ids: Any) -> dict[int, str]:
    from nguon.models import User

    rows = db.session.execute(select(User.id, User.name, User.email).where(User.id.in_(list(ids))))
    return {row.id: f"{row.name} ({row.email})" if row.name else row.email for row in rows}


@audit_bp.get("/<record_table>/<record_id>")
@staff_required
def record_history(record_table: str, record_id: str) -> Any:
    return redirect(url_for("audit.audit_log", table=record_table, record=record_id))
