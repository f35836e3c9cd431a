"""`marketstream replay-server` and `marketstream record` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from marketstream.replay.recording_format import read_recording
from marketstream.replay.server import ReplayServer
from marketstream.venues.registry import DIALECTS
from tests.replay.helpers import WAIT_S, frames_of, http_get, message_of

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "marketstream"]


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=ROOT,
        env=environ(),
        capture_output=True,
        text=True,
        check=False,
        timeout=WAIT_S,
    )


def test_replay_server_on_a_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"recv_ns":1,"exchange":"coinbase","url":"wss://x","frame":"{}"}\n{oops\n')
    result = run("replay-server", "--recording", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"marketstream: error: {bad} line 2: expected a JSON object with recv_ns, exchange, "
        "url, frame (not valid JSON)"
    ]


def test_replay_server_on_a_missing_file(tmp_path: Path) -> None:
    result = run("replay-server", "--recording", str(tmp_path / "none.jsonl"))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "cannot read recording" in result.stderr


async def test_replay_server_serves_until_sigterm(usdm: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        "replay-server",
        "--recording",
        str(usdm),
        "--max",
        cwd=ROOT,
        env=environ(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), WAIT_S)).decode()
        ws_url, http_url = line.split()[:2]
        assert ws_url.startswith("ws://127.0.0.1:")
        assert ws_url.endswith("/stream")
        status, _, body = await http_get(f"{http_url}/_control/status")
        assert status == 200
        assert orjson.loads(body)["total"] == 1535
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
    assert process.returncode == 0, stderr


def test_record_an_unknown_exchange_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("record", "--exchange", "nasdaq", "--out", str(tmp_path / "r.jsonl"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "marketstream: error: unknown exchange 'nasdaq': expected one of binance, "
        "binance-usdm, bybit, coinbase, kraken, okx"
    ]
    assert not (tmp_path / "r.jsonl").exists()


async def test_record_from_a_replay_server(coinbase: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    async with ReplayServer(coinbase, DIALECTS, max_speed=True) as server:
        process = await asyncio.create_subprocess_exec(
            *COMMAND,
            *("record", "--exchange", "coinbase", "--url", server.ws_url, "--out", str(out)),
            *("--symbols", "SKL-USD", "--channels", "trades", "--max-frames", "54"),
            cwd=ROOT,
            env=environ(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
    assert process.returncode == 0, stderr
    assert stdout.decode().startswith(
        f"recorded 54 frames, 0 snapshots and 0 instrument lists from {server.ws_url}"
    )
    served = [
        f.frame
        for f in frames_of(coinbase)
        if message_of(f.frame)["type"] in {"match", "last_match"}
        and message_of(f.frame)["product_id"] == "SKL-USD"
    ]
    captured = [f.frame for f in read_recording(out)]
    assert message_of(captured[0])["type"] == "subscriptions"
    assert captured[1:] == served
