"""A running `marketstream ingest --source jupiter` reports its polled source in /healthz:
healthy while the (replayed) API answers, unhealthy with the missed ticks and the last error
while it answers only 503s, healthy again once it answers again. Real Redis, a real replay
server, ingest as the process a user runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from marketstream.config import PipelineConfig
from marketstream.replay.rest_server import RestReplayServer
from marketstream.services import process
from marketstream.sources.base.sessions import DEFAULT_TOKENS, write_recording
from marketstream.sources.registry import get_session, get_source
from tests.integration.endpoints import REPO

pytestmark = pytest.mark.integration

TOKENS = dict(list(DEFAULT_TOKENS.items())[:3])  # one request a tick
CADENCE_S = 0.5
DEADLINE_S = 1.0  # unhealthy after max(3 cadences, deadline + cadence) = 1.5 s without a tick
WAIT_S = 20.0  # a hang guard per state, not a timing assertion

Health = tuple[int, dict[str, Any]]


def _config(pipeline_config: PipelineConfig, redis_url: str, url: str) -> dict[str, Any]:
    data = pipeline_config.model_dump(mode="json")
    data["endpoints"]["redis"] = redis_url
    data["sources"] = {
        "jupiter": {
            "url": url,
            "cadence_s": CADENCE_S,
            "deadline_s": DEADLINE_S,
            "hedge_after_s": 0.3,
            "max_rps": 8,  # room for the retries the 503s cause
            "burst": 4,
            "symbols": TOKENS,
        }
    }
    return data


@dataclass(frozen=True)
class Probe:
    """Asks a running ingest's /healthz; ingest must keep running meanwhile."""

    client: httpx.AsyncClient
    url: str
    ingest: subprocess.Popen[bytes]
    log: Path

    async def until(self, wanted: Callable[[Health], bool], what: str) -> Health:
        """The first /healthz answer that is `wanted`."""
        deadline = time.monotonic() + WAIT_S
        last: Health | None = None
        while time.monotonic() < deadline:
            assert self.ingest.poll() is None, self.log.read_text()
            try:
                answer = await self.client.get(self.url)
                last = answer.status_code, answer.json()
            except httpx.TransportError:  # not listening yet
                last = None
            if last is not None and wanted(last):
                return last
            await asyncio.sleep(0.2)
        pytest.fail(f"/healthz never showed {what} within {WAIT_S} s; last: {last}")


def _jupiter(health: Health) -> dict[str, Any]:
    detail: dict[str, Any] = health[1]["sources"]["jupiter"]
    return detail


async def _set_faults(server_url: str, plan: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{server_url}/_control/faults", content=orjson.dumps(plan))
        assert answer.status_code == 200, answer.text


@pytest.mark.timeout(120)
async def test_healthz_shows_a_source_failing_and_recovering(
    pipeline_config: PipelineConfig, redis_url: str, tmp_path: Path
) -> None:
    jupiter = get_source("jupiter")
    recording = tmp_path / "jupiter.jsonl"
    write_recording(
        jupiter, TOKENS, recording, start_ns=time.time_ns(), ticks=20, cadence_s=CADENCE_S,
        base_url=jupiter.default_url, answer_body=get_session("jupiter"),
    )  # fmt: skip
    async with RestReplayServer(recording, fault_answer=jupiter.fault_answer) as server:
        config_file = tmp_path / "config.json"
        config_file.write_bytes(orjson.dumps(_config(pipeline_config, redis_url, server.http_url)))
        port = process.free_port()
        log = tmp_path / "ingest.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
        ingest = subprocess.Popen(
            [sys.executable, "-m", "marketstream", "--config", str(config_file), "ingest",
             "--source", "jupiter", "--metrics-port", str(port)],
            cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://{process.LOOPBACK}:{port}/healthz"
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                probe = Probe(client, url, ingest, log)
                healthy = await probe.until(
                    lambda h: h[0] == 200 and _jupiter(h)["ticks_met"] > 0, "jupiter meeting ticks"
                )
                assert healthy[1]["status"] == "ok"
                assert _jupiter(healthy)["failure"] is None

                await _set_faults(server.http_url, {"fail_5xx_every": 1})
                sick = await probe.until(lambda h: h[0] == 503, "unhealthy")
                failing = _jupiter(sick)
                assert sick[1]["status"] == "unhealthy"
                assert failing["ticks_missed"] > 0, failing
                assert "503" in (failing["last_error"] or ""), failing
                assert failing["recent_missed"], failing
                assert failing["recent_missed"][-1]["tokens"] == len(TOKENS)
                assert failing["seconds_since_last_met"] >= 3 * CADENCE_S  # shown to 0.1 s
                assert failing["failure"] is None  # a failing API is no reason to exit

                await _set_faults(server.http_url, {})  # the plan cleared
                well = await probe.until(
                    lambda h: h[0] == 200 and _jupiter(h)["ticks_met"] > failing["ticks_met"],
                    "jupiter recovered",
                )
                assert well[1]["status"] == "ok"
                assert _jupiter(well)["ticks_missed"] >= failing["ticks_missed"]
        finally:
            if ingest.poll() is None:
                ingest.send_signal(signal.SIGINT)
                try:
                    ingest.wait(30)
                except subprocess.TimeoutExpired:
                    ingest.kill()
                    ingest.wait()
        assert ingest.returncode == 0, log.read_text()
        assert server.faults_status()["counters"]["injected_5xx"] > 0
    output = log.read_text()
    assert " missed for " in output  # each missed tick is logged
    assert "Traceback" not in output, output
