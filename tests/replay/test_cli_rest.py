"""`marketstream replay-server` on a polled source's recording, as a user runs it."""

from __future__ import annotations

import asyncio
import signal
import sys
import types
from pathlib import Path

import httpx
import pytest

from marketstream.cli.recordings import fault_answer_of
from tests.replay.helpers import WAIT_S
from tests.replay.rest_helpers import PAIR, SOURCE, rest_frames, write_recording
from tests.replay.test_cli import COMMAND, ROOT, environ, run


async def test_replay_server_serves_a_source_recording_with_faults(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "prices.jsonl", rest_frames())
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        *("replay-server", "--recording", str(recording), "--no-loop"),
        *("--fail-429-every", "2", "--retry-after", "3", "--fail-5xx-every", "3"),
        *("--fail-5xx-status", "500", "--latency-every", "4", "--latency-ms", "1"),
        cwd=ROOT,
        env=environ(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), WAIT_S)).decode()
        http_url = line.split()[0]
        assert http_url.startswith("http://127.0.0.1:")
        assert f"({SOURCE}: 6 REST answers for 2 targets from {recording}, once)" in line
        async with httpx.AsyncClient(base_url=http_url, timeout=WAIT_S) as http:
            statuses = [(await http.get(PAIR)).status_code for _ in range(4)]
            assert statuses == [200, 429, 500, 429]
            faults = (await http.get("/_control/faults")).json()
            status = (await http.get("/_control/status")).json()
        assert faults["plan"] == {
            "fail_429_every": 2,
            "retry_after_s": 3.0,
            "fail_5xx_every": 3,
            "status_5xx": 500,
            "latency_every": 4,
            "latency_ms": 1.0,
        }
        assert faults["counters"]["delayed"] == 1
        assert (status["mode"], status["loop"], status["requests"]) == ("rest", False, 4)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
    assert process.returncode == 0, stderr


def test_websocket_options_on_a_source_recording_are_one_line_and_exit_2(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "prices.jsonl", rest_frames())
    result = run("replay-server", "--recording", str(recording), "--max")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"marketstream: error: {recording}: --max and --drop-every are for WebSocket "
        f"recordings; {SOURCE!r} is a polled source (REST answers, paced by --speed)"
    ]


def test_fault_flags_on_a_websocket_recording_are_refused(usdm: Path) -> None:
    result = run("replay-server", "--recording", str(usdm), "--fail-429-every", "3", "--no-loop")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"marketstream: error: {usdm}: --no-loop, --fail-429-every only apply to a polled "
        "source's recording; 'binance-usdm' is replayed over WebSocket"
    ]


def test_a_bad_fault_flag_is_one_line_and_exit_2(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "prices.jsonl", rest_frames())
    result = run("replay-server", "--recording", str(recording), "--fail-5xx-status", "404")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "marketstream: error: replay-server: status_5xx must be 500-599, got 404"
    ]
    negative = run("replay-server", "--recording", str(recording), "--fail-429-every", "-1")
    assert negative.returncode == 2
    assert "expected a whole number from 0, got '-1'" in negative.stderr


def test_fault_answers_come_from_the_source_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    def shaped(status: int, after: float, now: float) -> tuple[dict[str, str], bytes]:
        return {"x": "y"}, b"shaped"

    registry = types.ModuleType("marketstream.sources.registry")
    registry.SOURCE_DEFS = {SOURCE: types.SimpleNamespace(fault_answer=shaped)}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "marketstream.sources.registry", registry)
    assert fault_answer_of(SOURCE) is shaped
    # a source the registry does not list: the PolledSource default (Retry-After, no body)
    headers, body = fault_answer_of("unlisted")(429, 2.0, 0.0)
    assert (dict(headers), body) == ({"retry-after": "2"}, b"")
