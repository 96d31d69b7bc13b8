"""The application factory, built from small steps; nothing here touches the database."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_smorest import Api

from nguon import audit, auth, errors, i18n, inputs, ratelimit
from nguon.config import build_config
from nguon.db import db
from nguon.schemas import ProblemSchema

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class NguonApi(Api):
    """flask-smorest, with errors left to :mod:`nguon.errors` (one shape everywhere)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        pass

    def _openapi_json(self) -> Response:
        """The document as the API answers (see :mod:`nguon.openapi`)."""
        from flask import current_app, json

        from nguon.openapi import conform

        return current_app.response_class(
            json.dumps(conform(self.spec.to_dict()), indent=2, sort_keys=False),
            mimetype="application/json",
        )


api = NguonApi()


MODEL_MODULES = (
    "nguon.models",
    "registry.models",
    "registry.enforcement.models",
    "traceability.models",
    "traceability.subscriptions",
    "integrations.models",
)


def import_models() -> None:
    """Import every package's models so the metadata and mappers are complete.

    The factory is the composition root: it may know every package; the packages
    themselves only import in the direction nguon <- registry <- traceability.
    """
    import importlib

    for module in MODEL_MODULES:
        importlib.import_module(module)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides what the ``NGUON_*`` environment says."""
    instance_path = Path(os.environ.get("NGUON_INSTANCE_PATH") or PROJECT_ROOT / "instance")
    app = Flask(
        "nguon",
        root_path=str(PROJECT_ROOT),
        instance_path=str(instance_path.resolve()),
        template_folder="templates",
        static_folder="static",
    )
    app.config.update(build_config(Path(app.instance_path), overrides=config))
    app.config.update(
        BABEL_TRANSLATION_DIRECTORIES=str(PROJECT_ROOT / "nguon" / "translations"),
        API_TITLE="Nguồn",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    from nguon import logs

    logs.configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])

    import_models()
    db.init_app(app)
    audit.install()
    from integrations import outbox, webhooks

    outbox.install()
    webhooks.install()
    app.session_interface = SessionInterface()
    _register_request_hooks(app)  # first: request id and size cap precede authentication
    inputs.init_app(app)  # then the input screen; before the blueprints (the int converter)
    auth.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    ratelimit.init_app(app)
    _register_api(app)
    _register_blueprints(app)
    _register_template_helpers(app)
    _install_middleware(app)
    return app


def schema_name(schema: Any) -> str | None:
    """OpenAPI component names: the class name without "Schema"; a schema narrowed by
    ``only``/``exclude``/``partial`` is drawn inline rather than under a clashing name."""
    from apispec.ext.marshmallow.common import resolve_schema_cls

    if not isinstance(schema, type) and (schema.only or schema.exclude or schema.partial):
        return None
    cls = resolve_schema_cls(schema)
    if cls.__name__ == "GeneratedSchema":  # Schema.from_dict(): small, inline
        return None
    return cls.__name__.removesuffix("Schema") or cls.__name__


def _register_api(app: Flask) -> None:
    from apispec.ext.marshmallow import MarshmallowPlugin

    from nguon.openapi import field_limits

    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)

    api.init_app(
        app,
        spec_kwargs={
            "info": {"description": "Nguồn: IP registry and traceability of a province's products"},
            "marshmallow_plugin": plugin,
        },
    )
    plugin.converter.add_attribute_function(field_limits)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "API token (ngn_...)"}
    )
    from nguon.api import api_bp
    from registry.api import api_bp as registry_api_bp
    from traceability.api import api_bp as traceability_api_bp

    api.register_blueprint(api_bp)
    api.register_blueprint(registry_api_bp)
    api.register_blueprint(traceability_api_bp)


def _register_blueprints(app: Flask) -> None:
    from integrations.views import bp as integrations_bp
    from nguon.views import accounts_bp, audit_bp, main_bp
    from registry.enforcement.views import bp as reports_bp
    from registry.views import bp as registry_bp
    from traceability.alarm_views import bp as alarms_bp
    from traceability.epcis_api import bp as epcis_bp
    from traceability.report_views import bp as monthly_bp
    from traceability.resolver import bp as resolver_bp
    from traceability.subscription_api import bp as subscriptions_bp
    from traceability.views import bp as traceability_bp

    for bp in (
        main_bp,
        accounts_bp,
        audit_bp,
        registry_bp,
        reports_bp,
        traceability_bp,
        alarms_bp,
        monthly_bp,
        epcis_bp,
        subscriptions_bp,
        resolver_bp,
        integrations_bp,
    ):
        app.register_blueprint(bp)


def _too_large(size: int, limit: int) -> str:
    """The 413 sentence, in the visitor's language (a reporter's photos are the usual cause)."""
    from nguon.i18n import _

    def mb(n: int) -> str:
        return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".")

    return errors.ForPeople(
        _(
            "What you sent is %(size)s MB; at most %(limit)s MB is accepted. Nothing was saved: go"
            " back (your browser usually keeps what you typed) and send fewer or smaller files.",
            size=mb(size),
            limit=mb(limit),
        )
    )


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per key
    rather than on every request."""

    def __init__(self) -> None:
        self._serializers: dict[Any, Any] = {}

    def get_signing_serializer(self, app: Flask) -> Any:
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        serializer = self._serializers.get(key)
        if serializer is None:
            serializer = self._serializers[key] = super().get_signing_serializer(app)
        return serializer


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _request_id_and_size_cap() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else secrets.token_hex(16)
        # Refuse an oversized body before anything else looks at the request
        # (werkzeug would only notice once a view reads it).
        limit = app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            abort(413, description=_too_large(request.content_length, limit))

    @app.after_request
    def _commit_or_roll_back(response: Response) -> Response:
        # The one commit boundary of a request: success commits, any error rolls back,
        # so a refused request changes nothing. The one exception is named by the view:
        # a refused login must still count towards the lockout.
        session = g.get("_nguon_session")
        if session is not None:
            if response.status_code < 400 or g.get("commit_despite_error"):
                session.commit()
            else:
                session.rollback()
        return response

    @app.after_request
    def _request_id_and_caching(response: Response) -> Response:
        headers = response.headers
        headers["X-Request-ID"] = g.get("request_id", "")
        if "text/html" in response.content_type and "Cache-Control" not in headers:
            headers["Cache-Control"] = (
                "no-store" if auth.current_user.is_authenticated else "no-cache"
            )
        return response


def _install_middleware(app: Flask) -> None:
    """WSGI middleware, innermost first: the security headers every response carries
    (error pages' too), the resolver's fast path for scans (which sends them itself), and
    the trusted proxies' forwarded headers."""
    from traceability import fastpath

    static_headers = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(self)"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if app.config["SESSION_COOKIE_SECURE"]:
        static_headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    app.wsgi_app = SecurityHeaders(app.wsgi_app, static_headers)  # type: ignore[method-assign]
    fastpath.install(app, static_headers)  # outside: it sends the same headers itself
    hops = app.config["PROXY_HOPS"]
    if hops:  # outermost: the client's own address for the rate limits and fingerprints
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )


class SecurityHeaders:
    """WSGI middleware adding the fixed security headers every response carries (unless
    a view set its own), as plain tuples: cheaper than werkzeug's header objects on the
    hottest routes, and it covers every response, error pages included."""

    def __init__(self, wsgi_app: Any, headers: list[tuple[str, str]]) -> None:
        self.wsgi_app = wsgi_app
        self.headers = [(name.lower(), (name, value)) for name, value in headers]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _value in headers}
            headers.extend(pair for low, pair in self.headers if low not in present)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def _register_template_helpers(app: Flask) -> None:
    from flask_wtf.csrf import generate_csrf

    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.jinja_env.globals["is_staff"] = auth.is_staff
