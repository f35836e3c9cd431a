"""`marketstream config check` as a user runs it: one line, an exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "marketstream", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_passes_on_the_shipped_config() -> None:
    result = _run("config", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configs/pipeline.yaml: OK")


def test_check_reports_a_wrong_value_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "configs/pipeline.yaml").read_text().replace("warm_days: 365", "warm_days: soon")
    )
    result = _run("config", "check", str(bad))
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "horizons.warm_days: value 'soon'" in lines[0]
    assert "Traceback" not in result.stderr


def test_check_reports_a_wrong_environment_value() -> None:
    result = _run("config", "check", env={"MARKETSTREAM_SERVICES__START_TIMEOUT_S": "-3"})
    assert result.returncode != 0
    assert "MARKETSTREAM_SERVICES__START_TIMEOUT_S: services.start_timeout_s" in result.stderr
    assert len(result.stderr.splitlines()) == 1
