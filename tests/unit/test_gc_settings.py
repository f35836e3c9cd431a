"""The collector settings a hot-path process applies at start (`runtime` in the config)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from marketstream.config import RuntimeConfig


def test_the_collector_settings_take_effect_in_the_process() -> None:
    """In a child process: the test run's own collector is left alone."""
    code = (
        "import gc; from marketstream.config import RuntimeConfig; "
        "from marketstream.gc_settings import apply_gc_settings; "
        "apply_gc_settings(RuntimeConfig(gc_thresholds=(12345, 7, 9))); "
        "print(gc.get_threshold(), gc.get_freeze_count() > 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["(12345,", "7,", "9)", "True"]


@pytest.mark.parametrize("thresholds", [(0, 10, 10), (700, -1, 10)])
def test_thresholds_out_of_range_are_refused_naming_them(thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"expected \[gen0 >= 1, gen1 >= 0, gen2 >= 0\]"):
        RuntimeConfig(gc_thresholds=thresholds)
