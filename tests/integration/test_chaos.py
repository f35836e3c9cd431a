"""The short form of the chaos suite (`make chaos` runs the long one, see chaos/__init__.py):
every fault kind once in about a minute of replay, then the row-by-row comparison."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from chaos.run import KINDS, Profile, run_chaos

pytestmark = pytest.mark.integration


def test_short_chaos_run_loses_doubles_and_alters_nothing(tmp_path: Path) -> None:
    profile = Profile(
        minutes=1.0,
        seed=7,
        speed=1.0,
        maxlen=50,
        trim_interval_s=0.05,
        pause_s=8.0,
        repeats=1,
        drain_timeout_s=90.0,
    )
    summary = run_chaos(profile, tmp_path / "chaos")
    keys = ("faults", "lost", "duplicated", "altered", "stall_s", "hot_path", "processes")
    shown = orjson.dumps({k: summary[k] for k in keys}, option=orjson.OPT_INDENT_2).decode()
    assert all(summary["faults"][kind] == 1 for kind in KINDS), shown
    assert summary["hot_path"]["total"]["expected"] > 1000, shown  # the replay got through
    assert summary["archive"]["days"] >= 2, shown
    assert (summary["lost"], summary["duplicated"], summary["altered"]) == (0, 0, 0), shown
    assert summary["stall_s"]["after_last_fault"] is not None, shown  # it drained
    unexpected = {role: p["unexpected_exits"] for role, p in summary["processes"].items()}
    assert not any(unexpected.values()), shown
