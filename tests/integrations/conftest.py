"""A portal simulator served on a free port for the duration of a test."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer

from integrations.portal import PortalClient
from integrations.simulator import Faults, create_simulator
from integrations.worker import SyncSettings
from nguon.db import db

# Time constants short enough for a test (the defaults are a day, seconds and minutes).
FAST = SyncSettings(
    retry_for=60.0,
    backoff_base=0.005,
    backoff_max=0.05,
    circuit_failures=5,
    probe_every=0.05,
    poll_first=0.01,
    poll_max=0.05,
)


def outbox_rows(app: Any) -> list[Any]:
    """Every outbox row, oldest first, detached from the session."""
    from integrations.models import OutboxRow

    with app.app_context():
        found = list(db.session.scalars(select(OutboxRow).order_by(OutboxRow.id)))
        db.session.expunge_all()
        return found


class _Server(BaseWSGIServer):
    """The simulator's server, keeping its open connections so that ``stop`` can cut
    them: a stopped portal refuses connections, it does not answer on old ones."""

    multithread = True  # a thread per connection (below), and HTTP/1.1 keep-alive

    def __init__(self, port: int, app: Any) -> None:
        self.connections: set[socket.socket] = set()
        super().__init__("127.0.0.1", port, app)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        threading.Thread(target=self._serve, args=(request, client_address), daemon=True).start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            with contextlib.suppress(OSError):  # cut by stop()
                self.finish_request(request, client_address)
        finally:
            self.connections.discard(request)
            self.shutdown_request(request)


class Simulator:
    def __init__(self, faults: Faults) -> None:
        self.app = create_simulator(faults, seed=7)
        self.port = 0
        self.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve (again, on the same port after ``stop``)."""
        self.server = _Server(self.port, self.app)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop as a crashed portal does: connections refused, open ones cut."""
        self.server.shutdown()
        self.server.server_close()
        for connection in list(self.server.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=5)

    @property
    def faults(self) -> Faults:
        return self.app.faults  # type: ignore[attr-defined]

    @property
    def state(self) -> Any:
        return self.app.state  # type: ignore[attr-defined]

    def client(self, pace: Any = None) -> PortalClient:
        return PortalClient(self.url, "nguon", "secret", pace=pace)

    def close(self) -> None:
        self.stop()


@pytest.fixture
def simulator() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(**faults: Any) -> Simulator:
        sim = Simulator(Faults(**{"rate_limit": 100_000, "accept_after": 0.0, **faults}))
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()
