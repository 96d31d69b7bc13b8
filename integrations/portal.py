"""The National Traceability Portal client (requests): OAuth2 client credentials with a
cached token refreshed once on 401, an Idempotency-Key on every write, per-call timeouts,
every request paced (``integrations.pace``), and answers sorted into what the worker
does next:

- ``ok``: done, or taken for later;
- ``retry``: transient (connection refused or reset, timeout, 5xx): again later, and it
  counts towards the destination's circuit breaker;
- ``throttled``: 429: again after its Retry-After, which also holds every worker back;
  never a failure of the row or of the destination;
- ``conflict``: 409 (an update of a record that is not at the revision we think);
- ``invalid``: an answer that can never succeed as sent (400/422 with the portal's
  reasons, 403 for an authorisation that expired, any other 4xx): parked at once;
- ``refused``: the portal refuses our credentials (the token endpoint says no, or a fresh
  token is refused): parked at once, and the destination is held until a probe passes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from integrations.pace import Pace, Unpaced

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0


@dataclass
class Outcome:
    kind: str  # "ok" | "retry" | "throttled" | "conflict" | "invalid" | "refused"
    status: int | None = None
    body: Any = None
    retry_after: float | None = None
    reasons: list[Any] = field(default_factory=list)
    error: str = ""

    @property
    def reached(self) -> bool:
        """Whether the destination answered (anything but a transient failure)."""
        return self.kind != "retry"


class PortalClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        session: requests.Session | None = None,
        pace: Pace | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.pace: Pace = pace or Unpaced()
        self._given_session = session
        self._local = threading.local()  # one HTTP session (connection pool) per thread
        self._token: str | None = None
        self._token_expiry = 0.0
        self._lock = threading.Lock()

    @property
    def http(self) -> requests.Session:
        if self._given_session is not None:
            return self._given_session
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _fetch_token(self) -> str:
        response = self.http.post(
            f"{self.base_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
        )
        response.raise_for_status()
        body = response.json()
        self._token = str(body["access_token"])
        # Renew a little early so a token does not die in flight.
        self._token_expiry = time.monotonic() + max(float(body.get("expires_in", 60)) - 1, 1)
        return self._token

    def token(self, force: bool = False) -> str:
        with self._lock:
            if force or self._token is None or time.monotonic() >= self._token_expiry:
                return self._fetch_token()
            return self._token

    def probe(self) -> Outcome:
        """Whether the portal answers and takes our credentials (a fresh token)."""
        try:
            self.pace.wait()
            self.token(force=True)
        except Exception as exc:  # sorted by failure(); anything else raises again
            return failure(exc)
        return Outcome("ok")

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Outcome:
        """One call, at the shared pace; a 401 gets a fresh token and one more try."""
        try:
            for attempt in (0, 1):
                headers = {"Authorization": f"Bearer {self.token(force=attempt == 1)}"}
                if key:
                    headers["Idempotency-Key"] = key
                self.pace.wait()
                response = self.http.request(
                    method,
                    self.base_url + path,
                    json=body,
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                )
                if response.status_code != 401:
                    break
            else:
                return Outcome("refused", 401, error="the portal refused a fresh token")
        except Exception as exc:  # sorted by failure(); anything else raises again
            return failure(exc)
        outcome = classify(response)
        if outcome.kind == "throttled":
            self.pace.hold(outcome.retry_after or 1.0)
        return outcome


def failure(exc: Exception) -> Outcome:
    """What a call that raised met: the token endpoint's refusal, a transport failure
    (refused, reset, timed out, cut mid-answer: all transient), or a token answer we
    cannot read. Anything else is a bug and raises again."""
    if isinstance(exc, requests.HTTPError):  # raised by the token request only
        status = exc.response.status_code if exc.response is not None else None
        kind = "refused" if status in (400, 401, 403) else "retry"
        return Outcome(kind, status, error=f"token: {exc}"[:500])
    if isinstance(exc, requests.RequestException):
        return Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:500])
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        return Outcome("retry", error=f"token: unreadable answer ({exc})"[:500])
    raise exc


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (an HTTP date is read as "a second"); bounded to an hour."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return 1.0
    return min(max(seconds, 0.0), 3600.0) if seconds == seconds else 1.0


def classify(response: requests.Response) -> Outcome:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if 200 <= status < 300:
        return Outcome("ok", status, body)
    if status == 429:
        return Outcome(
            "throttled", status, body, retry_after(response.headers.get("Retry-After")),
            error="rate limited",
        )  # fmt: skip
    if status in (400, 422):
        errors = body.get("errors") if isinstance(body, dict) else None
        reasons = errors or [detail or response.text[:300]]
        return Outcome("invalid", status, body, reasons=reasons, error=detail or "invalid")
    if status == 409:
        return Outcome("conflict", status, body, error=detail or "HTTP 409")
    if status >= 500 or status == 408:
        return Outcome("retry", status, body, retry_after(response.headers.get("Retry-After")),
                       error=f"HTTP {status}")  # fmt: skip
    if status == 401:
        return Outcome("refused", status, body, error=detail or "HTTP 401")
    reason = f"HTTP {status}" + (f": {detail}" if detail else "")
    return Outcome("invalid", status, body, reasons=[reason], error=reason)


class EpcisPushClient:
    """Delivers EPCIS documents to another EPCIS 2.0 repository's /capture (static token)."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        session: requests.Session | None = None,
        pace: Pace | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.http = session or requests.Session()
        self.pace: Pace = pace or Unpaced()

    def probe(self) -> Outcome:
        """Whether the repository answers and takes our token (no event is sent)."""
        return self.call("GET", "/capture")

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Outcome:
        headers = {"Content-Type": "application/ld+json", "GS1-Capture-Error-Behaviour": "rollback"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if key:
            headers["Idempotency-Key"] = key  # ignored by most repositories; eventIDs dedupe
        try:
            self.pace.wait()
            response = self.http.request(method, self.base_url + path, json=body, headers=headers,
                                         timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))  # fmt: skip
        except requests.RequestException as exc:
            return Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:500])
        if response.status_code in (401, 403):
            return Outcome("refused", response.status_code,
                           error="the repository refused the token")  # fmt: skip
        outcome = classify(response)
        if outcome.kind == "throttled":
            self.pace.hold(outcome.retry_after or 1.0)
        return outcome
