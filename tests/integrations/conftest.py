"""A portal simulator served on a free port for the duration of a test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

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


class Simulator:
    def __init__(self, faults: Faults) -> None:
        self.app = create_simulator(faults, seed=7)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def faults(self) -> Faults:
        return self.app.faults  # type: ignore[attr-defined]

    @property
    def state(self) -> Any:
        return self.app.state  # type: ignore[attr-defined]

    def client(self) -> PortalClient:
        return PortalClient(self.url, "nguon", "secret")

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def simulator() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(**faults: Any) -> Simulator:
        sim = Simulator(Faults(rate_limit=100_000, accept_after=0.0, **faults))
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()
