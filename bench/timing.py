"""A small, honest timer: best of several repeats, reported as operations per second."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_second(
    operation: Callable[[], int], *, repeats: int = 5, min_seconds: float = 0.2
) -> float:
    """Best rate over `repeats` runs; `operation` returns how many items it processed."""
    best = 0.0
    for _ in range(repeats):
        items = 0
        start = time.perf_counter()
        while True:
            items += operation()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, items / elapsed)
    return best
