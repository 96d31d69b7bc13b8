"""One pace for a destination: every call the sync workers make waits for its slot.

The pace is a schedule of send times spaced ``1 / rate`` apart (the generic cell rate
algorithm with no burst): a call reserves the next free slot in one atomic step and
sleeps until it. Reserving rather than "try, refuse, try again" keeps the calls evenly
spaced and served in order however many threads and workers ask at once, and a
``Retry-After`` from the destination pushes the next free slot past it for everyone.

Where the schedule lives decides who shares it:

- Redis (``NGUON_RATELIMIT_STORAGE_URL=redis://…``): every worker on every host; one
  small script keeps the reservation atomic, with Redis's own clock (blocks too);
- PostgreSQL: the destination's ``sync_pace`` row, one ``UPDATE … RETURNING`` per call
  (per block of calls at high rates) in autocommit (the database's clock, so hosts whose
  clocks differ still agree);
- otherwise (SQLite: one worker) the process itself.

A pace keeps ``MARGIN`` under the destination's limit: network jitter may bring two
evenly spaced requests closer together by the time they arrive.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from typing import Any, Protocol

from flask import Flask
from sqlalchemy import create_engine, text

MARGIN = 0.9


class Pace(Protocol):
    def wait(self) -> float:
        """Reserve the next slot and sleep until it; returns the seconds slept."""

    def hold(self, seconds: float) -> None:
        """Nobody sends for ``seconds`` (the destination's Retry-After)."""

    def close(self) -> None:
        """Let go of connections (a database or Redis pace)."""


class Unpaced:
    """No limit (a simulator in a test, a repository that sets none)."""

    def wait(self) -> float:
        return 0.0

    def hold(self, seconds: float) -> None:
        return None

    def close(self) -> None:
        return None


class LocalPace:
    """The schedule in this process (threads share it)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / (rate * MARGIN)
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + self.interval
            return start - now

    def wait(self) -> float:
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)
        return delay

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)

    def close(self) -> None:
        return None


class SharedPace(LocalPace):
    """A schedule kept elsewhere (the database, Redis). At a high rate a round trip per
    call would cost more than the slot is long: a pace takes a block of consecutive slots
    at once (at most ``BLOCK_SECONDS`` of them) and hands them out here. A slot whose time
    passed more than ``BLOCK_SECONDS`` ago is dropped, never sent late: the most a block
    left unused can turn into is one block's worth of calls at once (5 % of a second's,
    within the margin)."""

    BLOCK_SECONDS = 0.05

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self.block = max(1, min(100, int(rate * MARGIN * self.BLOCK_SECONDS)))
        self._slots: deque[float] = deque()

    def reserve(self) -> float:
        with self._lock:
            now = time.monotonic()
            while self._slots and self._slots[0] < now - max(self.interval, self.BLOCK_SECONDS):
                self._slots.popleft()
            if not self._slots:
                first = now + self._reserve_block(self.block)
                self._slots.extend(first + n * self.interval for n in range(self.block))
            return max(0.0, self._slots.popleft() - now)

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._slots.clear()
            self._hold(seconds)

    def _reserve_block(self, count: int) -> float:
        """Take ``count`` consecutive slots; the seconds until the first."""
        raise NotImplementedError

    def _hold(self, seconds: float) -> None:
        raise NotImplementedError


class DatabasePace(SharedPace):
    """The schedule in the destination's ``sync_pace`` row (PostgreSQL)."""

    RESERVE = text(
        "UPDATE sync_pace SET next_slot = GREATEST(next_slot, clock_timestamp())"
        " + make_interval(secs => :length) WHERE target = :target"
        " RETURNING EXTRACT(EPOCH FROM next_slot - clock_timestamp()) - :length"
    )
    HOLD = text(
        "UPDATE sync_pace SET next_slot = GREATEST(next_slot,"
        " clock_timestamp() + make_interval(secs => :seconds)) WHERE target = :target"
    )

    def __init__(self, url: Any, target: str, rate: float) -> None:
        super().__init__(rate)
        self.target = target
        # Its own small pool in autocommit: a reservation never waits for a worker's
        # transaction, and holds the row's lock for one statement only.
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=2,
                                    max_overflow=6, pool_recycle=300)  # fmt: skip
        with self.engine.connect() as connection:
            connection.execute(
                text(
                    "INSERT INTO sync_pace (target, next_slot) VALUES (:target, clock_timestamp())"
                    " ON CONFLICT (target) DO NOTHING"
                ),
                {"target": target},
            )

    def _reserve_block(self, count: int) -> float:
        with self.engine.connect() as connection:
            delay = connection.scalar(
                self.RESERVE, {"length": self.interval * count, "target": self.target}
            )
        return float(delay or 0)

    def _hold(self, seconds: float) -> None:
        with self.engine.connect() as connection:
            connection.execute(self.HOLD, {"seconds": seconds, "target": self.target})

    def close(self) -> None:
        self.engine.dispose()


class RedisPace(SharedPace):
    """The schedule in Redis, for workers on several hosts."""

    # KEYS[1]: the schedule; ARGV[1]: the block's length, ARGV[2]: a hold (0: a block).
    # Returns the seconds to wait, as a string (Redis turns Lua numbers into integers).
    SCRIPT = """
    local now = redis.call('TIME')
    now = tonumber(now[1]) + tonumber(now[2]) / 1000000
    local free = tonumber(redis.call('GET', KEYS[1]) or '0')
    local hold = tonumber(ARGV[2])
    if hold > 0 then
        free = math.max(free, now + hold)
        redis.call('SET', KEYS[1], string.format('%.6f', free), 'EX', math.ceil(hold) + 60)
        return '0'
    end
    local start = math.max(free, now)
    redis.call('SET', KEYS[1], string.format('%.6f', start + tonumber(ARGV[1])), 'EX', 3600)
    return string.format('%.6f', start - now)
    """

    def __init__(self, url: str, key: str, rate: float) -> None:
        import redis

        super().__init__(rate)
        self.key = key
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(self.SCRIPT)

    def _reserve_block(self, count: int) -> float:
        return float(self.script(keys=[self.key], args=[self.interval * count, 0]))

    def _hold(self, seconds: float) -> None:
        self.script(keys=[self.key], args=[self.interval, seconds])

    def close(self) -> None:
        self.client.close()


def pace_for(app: Flask, target: str, rate: float | None) -> Pace:
    """The pace the workers of ``app`` share for ``target`` (see the module's docstring)."""
    from nguon.db import db

    if rate is None:
        return Unpaced()
    storage = app.config.get("RATELIMIT_STORAGE_URI") or ""
    engine = db.engine(app)
    if storage.startswith(("redis://", "rediss://")):
        # Keyed by the database too: deployments sharing a Redis keep their own paces.
        database = engine.url.render_as_string(hide_password=True)
        digest = hashlib.sha256(database.encode()).hexdigest()[:12]
        return RedisPace(storage, f"nguon:sync:pace:{digest}:{target}", rate)
    if engine.dialect.name == "postgresql":
        return DatabasePace(engine.url, target, rate)
    # One per process and destination: the worker, its poll threads and a reconciliation
    # run in the same process keep one schedule.
    paces = app.extensions.setdefault("nguon.sync.paces", {})
    with _LOCAL_PACES:
        if (target, rate) not in paces:
            paces[(target, rate)] = LocalPace(rate)
        return paces[(target, rate)]


_LOCAL_PACES = threading.Lock()
