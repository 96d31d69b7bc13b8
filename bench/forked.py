"""Measuring in a forked process of its own, for the benches whose memory figure must
not carry what an earlier measurement left (Pillow's pixel buffers are invisible to
tracemalloc; the resident peak of a fresh fork counts them)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    """This process's resident memory now, MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def in_fork(target: Callable[..., None], *args: Any) -> Any:
    """Run ``target(*args, pipe)`` in a forked process; what it sent on ``pipe``."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=target, args=(*args, child))
    process.start()
    result = parent.recv()
    process.join()
    return result
