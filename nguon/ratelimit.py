"""Rate limits on public endpoints (flask-limiter): memory by default, Redis when several
hosts share the counters (NGUON_RATELIMIT_STORAGE_URL)."""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def public_limit() -> str:
    return current_app.config["RATELIMIT_PUBLIC"]


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
