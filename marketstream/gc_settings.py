"""Python's cyclic garbage collector, set up for a hot-path process (`runtime` in the config).

Records, stream entries and Redis replies are short-lived and hold no reference cycles, yet
each allocation counts towards the next collection: with Python's thresholds a batch being
built is traversed again and again. Freezing start-up's objects and collecting less often
removes that cost; cycles are still collected, only later.
"""

from __future__ import annotations

import gc

from marketstream.config import RuntimeConfig


def apply_gc_settings(runtime: RuntimeConfig) -> None:
    """Call once start-up is done, just before the process's event loop runs."""
    if runtime.gc_thresholds is not None:
        gc.set_threshold(*runtime.gc_thresholds)
    if runtime.gc_freeze:
        gc.collect()  # what start-up left as garbage goes now, not into the frozen set
        gc.freeze()
