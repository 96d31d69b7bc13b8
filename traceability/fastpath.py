"""The resolver's fast path: a scan of a printed code answered below Flask.

A scan of a label this service printed is by far the busiest request: a consumer's phone
opening ``/01/<gtin>/10/<lot>/21/<serial>``. Flask's request machinery (request and
session objects, hooks, extensions, the rate limiter's decorator) costs more CPU than the
answer itself, so this WSGI middleware answers the common case directly, with the very
functions the Flask view uses: the same label read, verdict, cached page or passport,
scan log, rate-limit counters and headers; the language is chosen by the same function
(``?lang=``, then the language cookie, then Accept-Language).

Anything it is not sure of goes to Flask, untouched, and gets the full treatment:

- another method (HEAD, OPTIONS) or path, a query other than ``?lang=``, a session or
  remember cookie (a signed-in officer), credentials or a body, an Accept asking for the
  linkset;
- a code this service never issued, or a path the shared parse does not resolve in place
  (Flask answers 404, 301 or 400);
- a batch whose page, passport or verdict wording is not rendered yet (Flask renders and
  keeps it, so the next scan of the batch takes this path);
- a client over its rate limit (Flask answers 429), or any error before the scan is logged.

``NGUON_RESOLVER_FAST_PATH=0`` switches it off; the tests check both paths give the same
answers.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from typing import Any

from flask import Flask, g
from flask_limiter.constants import HeaderNames
from limits import parse_many
from werkzeug.http import parse_cookie

from nguon.app import REQUEST_ID
from nguon.db import commit_boundary, db, utcnow
from nguon.i18n import LANG_COOKIE, LANGUAGES, choose_language
from nguon.ratelimit import limiter
from traceability import resolver, scans
from traceability.resolver import page
from traceability.resolver.passport import passport_json, passport_static
from traceability.resolver.views import scan_headers

log = logging.getLogger(__name__)
ENDPOINT = "resolver.resolve"  # flask-limiter's scope for the view: both paths share counters
LANG_QUERIES = {f"lang={code}": code for code in LANGUAGES}

Answer = tuple[str, list[tuple[str, str]], bytes]


class ResolverFastPath:
    """WSGI middleware answering scans of issued codes without Flask's request cycle."""

    def __init__(
        self,
        app: Flask,
        wsgi_app: Callable[..., Iterable[bytes]],
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._headers = list(headers)  # sent with every answer (the app's security headers)
        self.answered = 0  # scans this process answered here (tests and diagnostics)
        cookies = (
            app.config["SESSION_COOKIE_NAME"],
            app.config.get("REMEMBER_COOKIE_NAME", "remember_token"),
        )
        self._cookies = set(cookies)
        self._limits: tuple[str, list[Any]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") == "GET"
            and environ.get("PATH_INFO", "").startswith("/01/")
            and self.app.config["RESOLVER_FAST_PATH"]
        ):
            try:
                answer = self.answer(environ)
            except Exception:  # nothing was logged yet: Flask answers, and reports the error
                log.exception("resolver fast path failed; Flask answers instead")
                answer = None
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    def answer(self, environ: dict[str, Any]) -> Answer | None:
        """The answer to a scan, or None when Flask should answer."""
        if environ.get("HTTP_AUTHORIZATION") or environ.get("CONTENT_LENGTH", "0") not in ("", "0"):
            return None  # credentials to check, or a body: Flask's rules apply
        cookie = environ.get("HTTP_COOKIE")
        cookies = parse_cookie(cookie) if cookie else {}
        if cookies and any(name in self._cookies for name in cookies):
            return None
        query = environ.get("QUERY_STRING", "")
        config = self.app.config
        asked = LANG_QUERIES.get(query) if query else None
        if query and asked is None:
            return None  # linkType, GS1 data attributes, anything else: Flask's
        # The path as the client sent it (percent-encoded), parsed as Flask's view does.
        parsed = resolver.parse(resolver.raw_path(environ), "")
        if parsed.outcome != "resolve" or parsed.link is None:
            return None  # Flask answers 301, 400 and 404 (and logs the unknown code)
        link = parsed.link
        wanted = resolver.accept_kind(environ.get("HTTP_ACCEPT", ""))
        if wanted == "linkset":
            return None
        locale = choose_language(
            asked,
            cookies.get(LANG_COOKIE),
            environ.get("HTTP_ACCEPT_LANGUAGE", ""),
            config["BABEL_DEFAULT_LOCALE"],
        )
        bound = db.is_bound(self.app)
        log_ = self.app.extensions["nguon.scans"]
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if REQUEST_ID.match(given) else secrets.token_hex(16)
        # The app context only where the session is needed: a test's bound connection, or
        # a scan written in the request.
        with self.app.app_context() if bound or not log_.batched else nullcontext():
            if not log_.batched:
                g.request_id = request_id  # what the write audits (a flag, a case) is traced
            # An item code by GTIN and serial (unique), its lot checked against the
            # batch's kept card; a lot that differs goes to Flask's exact read.
            label = resolver.lookup(link, app=self.app, any_lot=True)
            if label is None:
                return None
            card = resolver.cards.get(label.batch_id)
            if card is None or (link.lot is not None and card["lot"] != link.lot):
                return None
            client = resolver.client_fingerprint(
                config["SECRET_KEY"],
                environ.get("REMOTE_ADDR"),
                environ.get("HTTP_USER_AGENT", ""),
            )
            label, verdict = resolver.as_now(label, log_, client)
            if wanted == "json":
                static = passport_static(self.app, card, render=False)
                if static is None:
                    return None
            else:
                parts = page.page_parts(card, locale, render=False)
                scan_parts = page.scan_fragment(locale, verdict, label, link, None, render=False)
                form = page.share_form(locale, render=False)
                if parts is None or scan_parts is None or form is None:
                    return None
            limit_headers = self._rate_limit(environ)
            if limit_headers is None:
                return None
            ref, now = scans.new_ref(), utcnow()
            scan = scans.PendingScan(ref, label.id, now, link.path[:300], verdict, client)
            if wanted == "json":
                body = passport_json(self.app, link, label, verdict, static)
                content_type, language = "application/json", None
            else:
                body = page.page_html(config, parts, scan_parts, form, link, label, verdict, ref)
                content_type, language = "text/html; charset=utf-8", locale
            data = body.encode()
            # The scan is logged last: whatever fails before it leaves no trace for Flask
            # to log twice.
            if log_.batched:
                log_.record(scan)
            else:
                with commit_boundary():
                    log_.record(scan)
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            *scan_headers(
                link,
                config["PUBLIC_URL"],
                language,
                asked,
                secure=config["SESSION_COOKIE_SECURE"],
            ),
            ("X-Request-ID", request_id),
            *limit_headers,
            *self._headers,
        ]
        self.answered += 1
        return "200 OK", headers, data

    def _rate_limit(self, environ: dict[str, Any]) -> list[tuple[str, str]] | None:
        """Count the request against the public limit as flask-limiter does for the view
        (same storage, keys and headers); None when over the limit or when the limiter is
        not in its normal state (Flask then answers, 429 included)."""
        if not (limiter.enabled and limiter.initialized):
            return []
        if limiter._storage_dead:  # flask-limiter's in-memory fallback: Flask handles it
            return None
        spec = self.app.config["RATELIMIT_PUBLIC"]
        if self._limits is None or self._limits[0] != spec:
            self._limits = (spec, sorted(parse_many(spec)))
        strategy = limiter.limiter
        args: tuple[str, ...] = (environ.get("REMOTE_ADDR") or "127.0.0.1", ENDPOINT)
        if limiter._key_prefix:
            args = (limiter._key_prefix, *args)
        for item in self._limits[1]:
            if not strategy.hit(item, *args):
                return None
        first = self._limits[1][0]
        reset_time, remaining = strategy.get_window_stats(first, *args)
        reset_at = int(reset_time + 1)
        return [
            (HeaderNames.LIMIT.value, str(first.amount)),
            (HeaderNames.REMAINING.value, str(remaining)),
            (HeaderNames.RESET.value, str(reset_at)),
            (HeaderNames.RETRY_AFTER.value, str(int(reset_at - time.time()))),
        ]


def install(app: Flask, headers: Sequence[tuple[str, str]] = ()) -> None:
    """Put the fast path in front of the app's WSGI callable; ``headers`` go with each of
    its answers."""
    app.wsgi_app = ResolverFastPath(app, app.wsgi_app, headers)  # type: ignore[method-assign]
