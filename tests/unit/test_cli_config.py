"""`marketstream config check|show` as a user runs them, from the checkout and from elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "marketstream", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_passes_on_the_shipped_config() -> None:
    result = _run("config", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configs/pipeline.yaml: OK")


def test_check_reports_the_polled_sources_and_refuses_what_ingest_would() -> None:
    """A source's key and limits are checked as `ingest` checks them at start."""
    result = _run("config", "check")
    assert "1 polled sources, 15 tokens" in result.stdout
    no_key = _run("config", "check", env={"MARKETSTREAM_SOURCES__BIRDEYE__ENABLED": "true"})
    assert no_key.returncode == 2
    assert no_key.stderr.strip() == (
        "marketstream: error: sources.birdeye: birdeye needs an API key: set the environment "
        "variable BIRDEYE_API_KEY"
    )
    too_fast = _run("config", "check", env={"MARKETSTREAM_SOURCES__JUPITER__CADENCE_S": "1"})
    assert too_fast.returncode == 2
    assert "above max_rps 0.5: raise cadence_s or max_rps" in too_fast.stderr


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


def test_outside_the_checkout_the_packaged_defaults_are_used(tmp_path: Path) -> None:
    result = _run("config", "show", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.endswith("marketstream/defaults/pipeline.yaml (chosen by package defaults)")
    status = _run("services", "status", "--json", cwd=tmp_path)
    assert "not found" not in status.stderr
    assert '"redis"' in status.stdout  # it answered: nothing runs in an empty folder


def test_show_names_the_file_the_overrides_and_hides_credentials(tmp_path: Path) -> None:
    env = {
        "MARKETSTREAM_STREAMS__MAXLEN": "50",
        "MARKETSTREAM_ENDPOINTS__CLICKHOUSE": "http://reader:s3cret@127.0.0.1:8123",
        "MARKETSTREAM_SERVICES__QUESTDB__SERVER_CONF": '{"pg.password": "pg-s3cret"}',
    }
    result = _run("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"# file: {ROOT / 'configs/pipeline.yaml'} (chosen by ./configs)"
    assert "#   streams.maxlen <- MARKETSTREAM_STREAMS__MAXLEN" in lines
    assert "#   endpoints.clickhouse <- MARKETSTREAM_ENDPOINTS__CLICKHOUSE" in lines
    assert "  maxlen: 50" in lines
    assert "  clickhouse: http://reader:***@127.0.0.1:8123" in lines
    assert "      pg.password: '***'" in lines
    assert "      shared.worker.sleep.threshold: 200" in lines  # a setting, not a secret
    assert "s3cret" not in result.stdout


def test_the_environment_names_a_config_file_from_anywhere(tmp_path: Path) -> None:
    file = tmp_path / "mine.yaml"
    file.write_text(
        (ROOT / "configs/pipeline.yaml").read_text().replace("hot_days: 7", "hot_days: 2")
    )
    result = _run("config", "show", env={"MARKETSTREAM_CONFIG": str(file)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"# file: {file} (chosen by $MARKETSTREAM_CONFIG)"
    assert "  hot_days: 2" in result.stdout.splitlines()


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    """`marketstream normalize ... | head -1`: the pipe closes while records are written."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    command = [sys.executable, "-m", "marketstream", "normalize", "--exchange", "coinbase"]
    recording = str(ROOT / "tests/data/recordings/coinbase.jsonl")
    with subprocess.Popen(
        [*command, recording], cwd=ROOT, env=environ, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as reader:  # fmt: skip
        assert reader.stdout is not None
        assert reader.stderr is not None
        assert reader.stdout.readline().startswith(b"{")
        reader.stdout.close()  # records still to come: the next writes fail with EPIPE
        errors = reader.stderr.read().decode()
    assert reader.returncode == 141, errors
    assert "Traceback" not in errors
