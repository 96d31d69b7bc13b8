"""The National Traceability Portal client (requests): OAuth2 client credentials with a
cached token refreshed once on 401, an Idempotency-Key on every write, per-call timeouts,
and answers sorted into: done, accepted for later, retry (with a wait), or invalid."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0


@dataclass
class Outcome:
    kind: str  # "ok" | "retry" | "invalid"
    status: int | None = None
    body: Any = None
    retry_after: float | None = None
    reasons: list[Any] = field(default_factory=list)
    error: str = ""


class PortalClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
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
        self._token = body["access_token"]
        # Renew a little early so a token does not die in flight.
        self._token_expiry = time.monotonic() + max(float(body.get("expires_in", 60)) - 1, 1)
        return self._token

    def token(self, force: bool = False) -> str:
        with self._lock:
            if force or self._token is None or time.monotonic() >= self._token_expiry:
                return self._fetch_token()
            return self._token

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Outcome:
        """One call; a 401 gets a fresh token and one more try."""
        try:
            for attempt in (0, 1):
                headers = {"Authorization": f"Bearer {self.token(force=attempt == 1)}"}
                if key:
                    headers["Idempotency-Key"] = key
                response = self.http.request(
                    method,
                    self.base_url + path,
                    json=body,
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                )
                if response.status_code != 401:
                    break
        except (requests.ConnectionError, requests.Timeout) as exc:
            return Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:500])
        except requests.HTTPError as exc:  # the token endpoint itself failed
            return Outcome(
                "retry",
                status=exc.response.status_code if exc.response else None,
                error=f"token: {exc}"[:500],
            )
        return classify(response)


def classify(response: requests.Response) -> Outcome:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if 200 <= status < 300:
        return Outcome("ok", status, body)
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        return Outcome(
            "retry", status, body, float(retry_after) if retry_after else None, error="rate limited"
        )
    if status in (400, 422):
        reasons = (body or {}).get("errors") or [(body or {}).get("detail", response.text[:300])]
        return Outcome(
            "invalid", status, body, reasons=reasons, error=(body or {}).get("detail", "invalid")
        )
    if status == 409 or status >= 500 or status == 401:
        return Outcome("retry", status, body, error=f"HTTP {status}")
    return Outcome("invalid", status, body, reasons=[f"HTTP {status}"], error=f"HTTP {status}")


class EpcisPushClient:
    """Delivers EPCIS documents to another EPCIS 2.0 repository's /capture (static token)."""

    def __init__(self, base_url: str, token: str | None, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.http = session or requests.Session()

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Outcome:
        headers = {"Content-Type": "application/ld+json", "GS1-Capture-Error-Behaviour": "rollback"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if key:
            headers["Idempotency-Key"] = key  # ignored by most repositories; eventIDs dedupe
        try:
            response = self.http.request(method, self.base_url + path, json=body, headers=headers,
                                         timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))  # fmt: skip
        except (requests.ConnectionError, requests.Timeout) as exc:
            return Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:500])
        if response.status_code == 401:
            return Outcome("retry", 401, error="the repository refused the token")
        return classify(response)
