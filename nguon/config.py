"""Configuration from ``NGUON_*`` environment variables, parsed strictly.

Every setting has one parser. A value that does not parse stops start-up with a
:class:`ConfigError` naming the variable and the rule it broke, so a typo in a
deployment never turns into a silently different behaviour.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "NGUON_"


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


def _int_parser(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if number < minimum or (maximum is not None and number > maximum):
            upper = "" if maximum is None else f" and at most {maximum}"
            raise ValueError(f"must be at least {minimum}{upper}")
        return number

    return parse


def _seconds(maximum: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("must be a number of seconds, e.g. 0.25") from None
        if not 0 <= number <= maximum:
            raise ValueError(f"must be between 0 and {maximum:g} seconds")
        return number

    return parse


def _parse_public_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(
            "must be an absolute http:// or https:// URL, e.g. https://nguon.example.vn"
        )
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or a fragment")
    return value.strip().rstrip("/")


def _parse_database_url(value: str) -> str:
    url = value.strip()
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver; accept the plain form people copy from docs.
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if not (url.startswith("sqlite:///") or url.startswith("postgresql+psycopg://")):
        raise ValueError("must start with sqlite:/// or postgresql:// (psycopg 3)")
    return url


def _parse_locale(value: str) -> str:
    if value not in {"vi", "en"}:
        raise ValueError("must be 'vi' or 'en'")
    return value


def _parse_log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _parse_log_format(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in {"text", "json"}:
        raise ValueError("must be 'text' or 'json'")
    return lowered


def _fraction(value: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except ArithmeticError:
        raise ValueError("must be a decimal number such as 0.10") from None
    if not Decimal(0) <= number <= Decimal(1):
        raise ValueError("must be between 0 and 1")
    return number


def _parse_portal_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value.strip().rstrip("/")


def _bounded(minimum: float, maximum: float, unit: str) -> Callable[[str], float]:
    """A positive number (no 0: a rate or a period of nothing would stop the work)."""

    def parse(value: str) -> float:
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"must be a number of {unit}, e.g. {maximum / 10:g}") from None
        if not minimum <= number <= maximum:  # also refuses nan and inf
            raise ValueError(f"must be between {minimum:g} and {maximum:g} {unit}")
        return number

    return parse


def _capture_runner(value: str) -> str:
    if value not in ("thread", "worker"):
        raise ValueError("must be thread or worker")
    return value


def _parse_tiles_url(value: str) -> str:
    """A tile URL template such as https://tiles.example.vn/{z}/{x}/{y}.png."""
    url = value.strip()
    parts = urlsplit(url.replace("{", "").replace("}", ""))
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(
            "must be an http(s) URL template, e.g. https://tiles.example.vn/{z}/{x}/{y}.png"
        )
    import re

    placeholders = set(re.findall(r"\{([^{}]*)\}", url))
    if not {"z", "x", "y"} <= placeholders or placeholders - {"z", "x", "y", "s", "r"}:
        raise ValueError("must contain {z}, {x} and {y} (and only {s} or {r} besides)")
    if any(c in url for c in "\"'<> \\"):
        raise ValueError("must not contain quotes, spaces, '<', '>' or backslashes")
    return url


def _parse_rate(value: str) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValueError("must be like '300 per minute' or '10/second'") from None
    return value


def _parse_storage(value: str) -> str:
    if not value.startswith(("memory://", "redis://", "rediss://")):
        raise ValueError("must be memory:// or a redis:// URL")
    return value


def _parse_secret(value: str) -> str:
    if len(value) < 32:
        raise ValueError("must be at least 32 characters long")
    return value


@dataclass(frozen=True)
class Setting:
    env: str  # name without the prefix
    key: str  # Flask config key
    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        "DATABASE_URL",
        _parse_database_url,
        None,
        "SQLAlchemy URL; default: SQLite file nguon.db in the instance folder",
    ),
    Setting(
        "SECRET_KEY",
        "SECRET_KEY",
        _parse_secret,
        None,
        "session signing key (≥ 32 chars); default: generated into the instance folder",
    ),
    Setting(
        "PUBLIC_URL",
        "PUBLIC_URL",
        _parse_public_url,
        "http://127.0.0.1:5000",
        "public base URL printed in QR codes and links",
    ),
    Setting(
        "MAX_CONTENT_LENGTH",
        "MAX_CONTENT_LENGTH",
        _int_parser(1024),
        51 * 1024 * 1024,
        "largest accepted request body, in bytes (default: a report with five 10 MiB photos)",
    ),
    Setting(
        "LOGIN_MAX_ATTEMPTS",
        "LOGIN_MAX_ATTEMPTS",
        _int_parser(1, 100),
        5,
        "failed logins in a row before an account is locked",
    ),
    Setting(
        "LOGIN_LOCKOUT_SECONDS",
        "LOGIN_LOCKOUT_SECONDS",
        _int_parser(1, 86400),
        60,
        "first lockout; it doubles with each further failure, up to one day",
    ),
    Setting(
        "DEFAULT_LOCALE",
        "BABEL_DEFAULT_LOCALE",
        _parse_locale,
        "vi",
        "interface language when the visitor has not chosen one",
    ),
    Setting(
        "SECURE_COOKIES",
        "SESSION_COOKIE_SECURE",
        _parse_bool,
        None,
        "Secure flag on cookies; default: on when PUBLIC_URL is https",
    ),
    Setting(
        "YIELD_TOLERANCE",
        "YIELD_TOLERANCE",
        _fraction,
        Decimal("0.10"),
        "how far a batch may exceed its areas' expected yield (0.10 = 10 %)",
    ),
    Setting(
        "CLONE_DISTANCE_KM",
        "CLONE_DISTANCE_KM",
        _int_parser(1, 5000),
        100,
        "an item code scanned this far apart...",
    ),
    Setting(
        "CLONE_WINDOW_HOURS",
        "CLONE_WINDOW_HOURS",
        _int_parser(1, 720),
        24,
        "...within this many hours is flagged",
    ),
    Setting(
        "CLONE_MAX_SCANS",
        "CLONE_MAX_SCANS",
        _int_parser(1, 100000),
        20,
        "an item code scanned more often than this is flagged",
    ),
    Setting(
        "SCAN_FLUSH_SECONDS",
        "SCAN_FLUSH_SECONDS",
        _seconds(60),
        0.0,
        "0: scans are written in the request; more: queued and written in batches that often",
    ),
    Setting(
        "PROXY_HOPS",
        "PROXY_HOPS",
        _int_parser(0, 5),
        0,
        "reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted",
    ),
    Setting(
        "RESOLVER_FAST_PATH",
        "RESOLVER_FAST_PATH",
        _parse_bool,
        True,
        "answer scans of issued codes below Flask's request cycle (same answers, less CPU)",
    ),
    Setting(
        "RATELIMIT_ENABLED",
        "RATELIMIT_ENABLED",
        _parse_bool,
        True,
        "rate-limit the public endpoints",
    ),
    Setting(
        "RATELIMIT_PUBLIC",
        "RATELIMIT_PUBLIC",
        _parse_rate,
        "300 per minute",
        "limit per client address on public pages (flask-limiter syntax)",
    ),
    Setting(
        "RATELIMIT_STORAGE_URL",
        "RATELIMIT_STORAGE_URI",
        _parse_storage,
        "memory://",
        "limiter counters: memory:// (one host) or redis://host:6379 (several)",
    ),
    Setting(
        "PORTAL_URL",
        "PORTAL_URL",
        _parse_portal_url,
        None,
        "National Traceability Portal base URL (sync is off when unset)",
    ),
    Setting("PORTAL_CLIENT_ID", "PORTAL_CLIENT_ID", str, "nguon", "OAuth2 client id at the portal"),
    Setting("PORTAL_CLIENT_SECRET", "PORTAL_CLIENT_SECRET", str, None, "OAuth2 client secret"),
    Setting(
        "EPCIS_PUSH_URL",
        "EPCIS_PUSH_URL",
        _parse_portal_url,
        None,
        "another EPCIS 2.0 repository every captured event is also sent to (off when unset)",
    ),
    Setting("EPCIS_PUSH_TOKEN", "EPCIS_PUSH_TOKEN", str, None, "Bearer token for that repository"),
    Setting(
        "SUBSCRIPTION_ALLOW_HTTP",
        "SUBSCRIPTION_ALLOW_HTTP",
        _parse_bool,
        False,
        "EPCIS subscriptions may name an http (not https) webhook (local use and tests)",
    ),
    Setting(
        "SUBSCRIPTION_ALLOW_PRIVATE",
        "SUBSCRIPTION_ALLOW_PRIVATE",
        _parse_bool,
        False,
        "EPCIS subscription webhooks may resolve to loopback, private or link-local addresses",
    ),
    Setting(
        "EPCIS_CAPTURE_RUNNER",
        "EPCIS_CAPTURE_RUNNER",
        _capture_runner,
        "thread",
        "large EPCIS captures: thread (in this process) or worker (`nguon epcis jobs`)",
    ),
    Setting(
        "EPCIS_CAPTURE_INLINE_EVENTS",
        "EPCIS_CAPTURE_INLINE_EVENTS",
        _int_parser(0, 25_000),
        2000,
        "EPCIS captures of at most this many events are stored within the request",
    ),
    Setting(
        "EPCIS_HASH_PROCESSES",
        "EPCIS_HASH_PROCESSES",
        _int_parser(0, 16),
        1 if (os.cpu_count() or 1) > 1 else 0,
        "helper processes hashing a large EPCIS capture while its request checks the schema",
    ),
    Setting(
        "PORTAL_RATE_LIMIT",
        "PORTAL_RATE_LIMIT",
        _bounded(0.01, 100000, "requests per second"),
        20.0,
        "requests per second the portal allows us; all sync workers together keep under it",
    ),
    Setting(
        "SYNC_RETRY_FOR",
        "SYNC_RETRY_FOR",
        _bounded(0.01, 30 * 86400, "seconds"),
        86400.0,
        "how long a row keeps retrying transient failures (time the portal is down not counted)",
    ),
    Setting(
        "SYNC_BACKOFF_BASE",
        "SYNC_BACKOFF_BASE",
        _bounded(0.001, 3600, "seconds"),
        1.0,
        "first retry delay; it doubles with each failure (full jitter)...",
    ),
    Setting(
        "SYNC_BACKOFF_MAX",
        "SYNC_BACKOFF_MAX",
        _bounded(0.001, 86400, "seconds"),
        600.0,
        "...up to this ceiling",
    ),
    Setting(
        "SYNC_CIRCUIT_FAILURES",
        "SYNC_CIRCUIT_FAILURES",
        _int_parser(1, 1000),
        5,
        "transient failures in a row that mark a destination unreachable (circuit open)",
    ),
    Setting(
        "SYNC_PROBE_SECONDS",
        "SYNC_PROBE_SECONDS",
        _bounded(0.01, 3600, "seconds"),
        30.0,
        "how often an unreachable destination is probed",
    ),
    Setting(
        "SYNC_MAX_ATTEMPTS",
        "SYNC_MAX_ATTEMPTS",
        _int_parser(1, 1000),
        None,
        "retired (rows retry for SYNC_RETRY_FOR); still parsed, then ignored with a warning",
    ),
    Setting(
        "MAP_TILES_URL",
        "MAP_TILES_URL",
        _parse_tiles_url,
        None,
        "tile server for the officers' map editor, e.g. https://tiles.example.vn/{z}/{x}/{y}.png"
        " (unset: the offline base of communes and registered areas only)",
    ),
    Setting(
        "AREA_TOLERANCE",
        "AREA_TOLERANCE",
        _fraction,
        Decimal("0.20"),
        "how far a declared area may differ from its drawn shape before it is flagged (0.20: 20 %)",
    ),
    Setting(
        "DB_CONNECT_TIMEOUT",
        "DB_CONNECT_TIMEOUT",
        _int_parser(2, 600),
        5,
        "PostgreSQL: seconds to wait for a connection (libpq connect_timeout; at least 2)",
    ),
    Setting(
        "DB_STATEMENT_TIMEOUT",
        "DB_STATEMENT_TIMEOUT",
        _seconds(3600),
        25.0,
        "PostgreSQL: a statement running longer is cancelled (0: no limit); keep it below"
        " the server's worker timeout",
    ),
    Setting("LOG_LEVEL", "LOG_LEVEL", _parse_log_level, "INFO", "logging level"),
    Setting(
        "LOG_FORMAT",
        "LOG_FORMAT",
        _parse_log_format,
        "text",
        "log lines: 'text' (time, level, request id, logger, message) or 'json' (an object a line)",
    ),
    Setting("SQL_ECHO", "SQLALCHEMY_ECHO", _parse_bool, False, "log every SQL statement"),
)


def load_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """Parse every ``NGUON_*`` variable in ``environ``.

    Raises :class:`ConfigError` for a malformed value or an unknown ``NGUON_`` name
    (a misspelt variable would otherwise be ignored without a word).
    """
    known = {PREFIX + s.env for s in SETTINGS}
    # Variables read by other tools rather than by the app itself.
    known |= {"NGUON_TEST_DATABASE_URL", "NGUON_BENCH_DATABASE_URL", "NGUON_INSTANCE_PATH"}
    unknown = sorted(name for name in environ if name.startswith(PREFIX) and name not in known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        name = PREFIX + setting.env
        raw = environ.get(name)
        if raw is None or raw == "":
            values[setting.key] = setting.default
            continue
        try:
            values[setting.key] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc} (got {raw!r})") from None
    return values


def secret_key_from_instance(instance_path: Path) -> str:
    """Read the instance's secret key, creating it (mode 0600) on first run."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Several workers may start at once: each writes its own file and links it into place
    # (atomic, complete when visible); the ones that lose read the winner's key.
    draft = instance_path / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        draft.unlink()
    return key


def build_config(
    instance_path: Path,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Flask config for an app: environment first, then explicit overrides (tests)."""
    values = load_settings(os.environ if environ is None else environ)
    values.update(overrides or {})
    if not values.get("DATABASE_URL"):
        values["DATABASE_URL"] = f"sqlite:///{instance_path / 'nguon.db'}"
    if not values.get("SECRET_KEY"):
        values["SECRET_KEY"] = secret_key_from_instance(instance_path)
    if values.get("SESSION_COOKIE_SECURE") is None:
        values["SESSION_COOKIE_SECURE"] = values["PUBLIC_URL"].startswith("https://")
    values.setdefault("SESSION_COOKIE_HTTPONLY", True)
    values.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    values.setdefault("REMEMBER_COOKIE_SECURE", values["SESSION_COOKIE_SECURE"])
    values.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    values.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Ho_Chi_Minh")
    values.setdefault("WTF_CSRF_TIME_LIMIT", None)  # token lives as long as the session
    values.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked in nguon.auth (Bearer exempt)
    return values
