"""The issue's proof: 15 tokens polled from Jupiter at one request a second for two minutes,
against the replay server injecting 429s, 5xx answers and 800 ms latency spikes, with ingest
and the hot writer as the processes a user runs. The quality report must show no missed tick
for any token, and QuestDB every price once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from marketstream.config import PipelineConfig
from marketstream.quality.polled import PolledQueries, polled_completeness
from marketstream.replay.faults import FaultPlan
from marketstream.replay.rest_server import RestReplayServer
from marketstream.run.processes import create_schema, wait_drained
from marketstream.sources.base.sessions import DEFAULT_TOKENS, write_recording
from marketstream.sources.registry import get_session, get_source
from marketstream.wiring import PipelineEndpoints
from tests.integration.endpoints import REPO, QuestDBEndpoints

NS = 1_000_000_000
RUN_S = 125  # at least two minutes of ticks
# Every N-th request of the server: a 429 asking for 1 s, a 503, an answer held 800 ms. The
# periods are co-prime, so over the run every pairing of faults on consecutive requests occurs.
FAULTS = FaultPlan(
    fail_429_every=11, retry_after_s=1.0, fail_5xx_every=7, latency_every=5, latency_ms=800
)


def _config(pipeline_config: PipelineConfig, redis_url: str, questdb: QuestDBEndpoints,
            url: str) -> dict[str, Any]:  # fmt: skip
    data = pipeline_config.model_dump(mode="json")
    data["ingest"]["metrics_port"] = 0
    data["hot"]["metrics_port"] = 0
    data["endpoints"] |= {
        "redis": redis_url,
        "questdb_http": questdb.http_url,
        "questdb_pg": f"postgresql://admin:quest@127.0.0.1:{questdb.pg_port}/qdb",
    }
    data["sources"] = {
        "jupiter": {
            "url": url,
            "cadence_s": 1,  # the 1 RPS: 15 tokens are one request a tick
            "max_rps": 4,  # room for retries and hedges (the live free tier has none)
            "burst": 3,
            "hedge_after_s": 0.4,
            "symbols": dict(DEFAULT_TOKENS),
        }
    }
    return data


def _spawn(config_file: Path, log: Path, *argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "marketstream", "--config", str(config_file), *argv,
         "--metrics-port", "0"],
        cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _stop(process: subprocess.Popen[bytes], log: Path) -> str:
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0, log.read_text()
    return log.read_text()


@pytest.mark.timeout(600)
async def test_fifteen_tokens_at_one_request_a_second_through_faults_miss_no_tick(
    pipeline_config: PipelineConfig, redis_url: str, questdb: QuestDBEndpoints, tmp_path: Path
) -> None:
    jupiter = get_source("jupiter")
    recording = tmp_path / "jupiter.jsonl"
    write_recording(
        jupiter, DEFAULT_TOKENS, recording, start_ns=time.time_ns(), ticks=60, cadence_s=1,
        base_url=jupiter.default_url, answer_body=get_session("jupiter"),
    )  # fmt: skip
    create_schema(questdb.http_url)
    async with RestReplayServer(
        recording, fault_answer=jupiter.fault_answer, faults=FAULTS
    ) as server:
        data = _config(pipeline_config, redis_url, questdb, server.http_url)
        config_file = tmp_path / "config.json"
        config_file.write_bytes(orjson.dumps(data))
        writer_log, ingest_log = tmp_path / "writer.log", tmp_path / "ingest.log"
        writer = _spawn(config_file, writer_log, "write-hot", "--consumer", "prices-test")
        started_ns = time.time_ns()
        ingest = _spawn(config_file, ingest_log, "ingest", "--source", "jupiter")
        try:
            for _ in range(RUN_S * 10):
                await asyncio.sleep(0.1)
                assert ingest.poll() is None, ingest_log.read_text()
                assert writer.poll() is None, writer_log.read_text()
            stopped_ns = time.time_ns()
            ingest_output = _stop(ingest, ingest_log)
            endpoints = PipelineEndpoints(redis_url, questdb.http_url)
            async with asyncio.timeout(60):
                await wait_drained(endpoints, data["hot"]["group"], queryable=True)
            _stop(writer, writer_log)
        finally:
            for process in (ingest, writer):
                if process.poll() is None:
                    process.kill()
        faults = server.faults_status()["counters"]

    # the faults really happened, and the poller answered them
    assert faults["injected_429"] >= 5, faults
    assert faults["injected_5xx"] >= 10, faults
    assert faults["delayed"] >= 15, faults
    assert " missed for " not in ingest_output

    config = PipelineConfig.model_validate(data)
    hot = PolledQueries.connect(data["endpoints"]["questdb_pg"])
    try:
        # the window: from the first tick ingest could poll to the last it surely finished
        since = (started_ns // NS + 1) * NS
        until = (stopped_ns // NS - 2) * NS
        report = polled_completeness(hot, config, since, until, from_first_tick=True)
    finally:
        hot.close()
    table = questdb.http.exec(
        "SELECT symbol, count(), count_distinct(ts) FROM prices WHERE exchange = 'jupiter' "
        f"AND ts >= cast({since // 1000} AS timestamp)"
    )
    assert len(report) == 15
    for token in report:
        assert token.missed == 0, token
        assert token.duplicates == 0, token
        assert token.present == token.expected, token
        assert token.expected >= 120, token
    counts = {str(symbol): (int(n), int(distinct)) for symbol, n, distinct in table["dataset"]}
    assert sorted(counts) == sorted(f"{symbol}-USD" for symbol in DEFAULT_TOKENS)
    assert all(n == distinct for n, distinct in counts.values()), counts  # every price once
    latest = redis.Redis.from_url(redis_url).get("price:{jupiter}:SOL-USD")
    assert latest is not None
    assert orjson.loads(latest)["price"] > 0
