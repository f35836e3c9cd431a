"""`marketstream record --source`: a polled source's answers captured as ingest polls them,
errors and their headers included, the API key nowhere in the file; the capture replays."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
import orjson

from marketstream.replay.faults import FaultPlan
from marketstream.replay.recording_format import read_recording
from marketstream.replay.rest_server import RestReplayServer
from marketstream.sources.base.sessions import DEFAULT_TOKENS, write_recording
from marketstream.sources.registry import get_session, get_source

KEY = "sk-live-do-not-leak-0123456789"
TOKENS = {s: DEFAULT_TOKENS[s] for s in ("SOL", "JUP", "BONK")}


async def test_record_source_keeps_every_answer_and_no_key(tmp_path: Path) -> None:
    jupiter = get_source("jupiter")
    served = tmp_path / "served.jsonl"
    write_recording(
        jupiter, TOKENS, served, start_ns=time.time_ns(), ticks=20, cadence_s=0.5,
        base_url=jupiter.default_url, answer_body=get_session("jupiter"),
    )  # fmt: skip
    capture = tmp_path / "capture.jsonl"
    plan = FaultPlan(fail_429_every=3, retry_after_s=0.2)
    async with RestReplayServer(served, fault_answer=jupiter.fault_answer, faults=plan) as server:
        env = os.environ | {
            "JUPITER_API_KEY": KEY,
            "MARKETSTREAM_SOURCES__JUPITER__CADENCE_S": "0.5",
            "MARKETSTREAM_SOURCES__JUPITER__MAX_RPS": "8",
            "MARKETSTREAM_SOURCES__JUPITER__BURST": "3",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "marketstream", "record", "--source", "jupiter",
            "--url", server.http_url, "--symbols", "SOL", "JUP-USD", "BONK",
            "--ticks", "4", "--out", str(capture),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, output.decode()
        assert "12 prices, 0 token ticks missed" in output.decode()
        assert KEY not in output.decode()

    text = capture.read_text()
    assert KEY not in text
    answers = list(read_recording(capture))
    statuses = [a.status for a in answers]
    assert statuses.count(200) == 4
    assert 429 in statuses
    limited = next(a for a in answers if a.status == 429)
    assert "x-ratelimit-reset" in limited.headers
    assert all(a.exchange == "jupiter" for a in answers)
    ok = next(a for a in answers if a.status == 200)
    assert set(orjson.loads(ok.frame)) == set(TOKENS.values())

    # the capture is a recording the replay server serves as it was received
    async with RestReplayServer(capture) as replay, httpx.AsyncClient() as client:
        target = ok.url.removeprefix(server.http_url)
        answer = await client.get(replay.http_url + target)
    assert answer.status_code in {200, 429}
    if answer.status_code == 200:
        assert set(orjson.loads(answer.content)) == set(TOKENS.values())
