"""`run` and `demo` as processes: ingest, the hot writers and the API are supervised children.

A writer killed with SIGKILL mid-run is restarted under its consumer name and nothing is lost
or doubled; two writers both consume; the API answers over HTTP and comes back when killed; a
child that keeps crashing ends the run with the cause, not a silent restart loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from marketstream.config import PipelineConfig, load_config
from marketstream.run.demo import prepare_state, run_demo
from marketstream.run.processes import run_processes, sample_sum, scrape
from marketstream.run.supervisor import Supervisor, SupervisorError
from marketstream.services.manager import stop_services
from marketstream.wiring import PipelineEndpoints
from tests.integration.endpoints import CONFIG_FILE, QuestDBEndpoints
from tests.integration.repeated_recording import Repeated, repeat_recording

pytestmark = pytest.mark.integration

REPEATS = 20  # ~30k frames: long enough that a writer is killed with work in hand


def _recordings(recordings: Path, tmp_path: Path) -> tuple[Path, Repeated]:
    chosen = tmp_path / "recordings"
    chosen.mkdir()
    made = repeat_recording(
        recordings / "binance-usdm.jsonl", chosen / "binance-usdm.jsonl", REPEATS
    )
    return chosen, made


def _demo(chosen: Path, state: Path, writers: int, **hooks: Any) -> dict[str, Any]:
    config = load_config(CONFIG_FILE, environ={})
    prepare_state(config, state)
    try:
        return asyncio.run(
            run_demo(
                config,
                chosen,
                state,
                speed=None,
                generate_missing=False,
                writers=writers,
                **hooks,
            )
        )
    finally:
        stop_services(config, state)


def _assert_exact(summary: dict[str, Any], made: Repeated) -> None:
    published, rows = summary["published"], summary["hot_rows"]
    assert published["trade"] == 91 * REPEATS  # every copy's trades reached ingest
    for record_type, table in (("trade", "trades"), ("quote", "quotes"), ("book", "books")):
        assert rows[table] == published[record_type], table  # nothing lost, nothing doubled
    assert rows["candles"] == made.candle_bars  # one row per bar
    assert summary["dlq"] == 0


def test_a_writer_killed_mid_run_is_restarted_and_nothing_is_lost_or_doubled(
    recordings: Path, tmp_path: Path
) -> None:
    chosen, made = _recordings(recordings, tmp_path)
    killed: list[int] = []

    async def kill_a_busy_writer(supervisor: Supervisor) -> None:
        writer = supervisor.children["writer-1"]
        url = writer.status(supervisor.metrics_host)["metrics"]
        while True:  # once it has written something, so it dies with a batch in hand
            try:
                written = sample_sum(await scrape(url), "marketstream_hot_records_total")
            except Exception:
                written = 0
            if written > 0:
                break
            await asyncio.sleep(0.02)
        assert writer.pid is not None
        killed.append(writer.pid)
        os.kill(writer.pid, signal.SIGKILL)

    summary = _demo(chosen, tmp_path / "state", 1, on_started=kill_a_busy_writer)
    writer = summary["processes"]["writer-1"]
    assert writer["restarts"] == 1
    assert writer["exits"] == ["killed by SIGKILL"]
    assert writer["pid"] != killed[0]  # a new process took over
    assert summary["processes"]["ingest"]["restarts"] == 0
    _assert_exact(summary, made)


def test_two_writers_both_consume_and_together_write_everything_once(
    recordings: Path, tmp_path: Path
) -> None:
    chosen, made = _recordings(recordings, tmp_path)
    written: dict[str, float] = {}

    async def count(urls: dict[str, str]) -> None:
        for name, url in urls.items():
            if name.startswith("writer-"):
                written[name] = sample_sum(await scrape(url), "marketstream_hot_records_total")

    summary = _demo(chosen, tmp_path / "state", 2, on_drained=count)
    assert set(summary["processes"]) == {"ingest", "writer-1", "writer-2"}
    assert written["writer-1"] > 0
    assert written["writer-2"] > 0
    _assert_exact(summary, made)


def test_a_child_that_keeps_crashing_ends_the_run_with_its_cause(
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ingest's metrics port is taken: it exits at every start. The supervisor restarts it
    (logged), then gives up and the run ends with the cause."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = pipeline_config.model_dump(mode="json")
        data["ingest"]["metrics_port"] = port
        data["hot"]["metrics_port"] = 0
        data["endpoints"] = {
            **data["endpoints"],
            "redis": redis_url,
            "questdb_http": questdb.http_url,
        }
        data["supervisor"] = {
            "max_restarts": 2,
            "window_s": 120,
            "backoff_initial_s": 0.1,
            "backoff_max_s": 0.2,
            "stop_timeout_s": 30,
        }
        config_file = tmp_path / "config.json"
        config_file.write_bytes(orjson.dumps(data))
        config = PipelineConfig.model_validate(data)
        endpoints = PipelineEndpoints(redis=redis_url, questdb_http=questdb.http_url)
        caplog.set_level("INFO", logger="marketstream.run.supervisor")
        with pytest.raises(SupervisorError) as raised:
            asyncio.run(
                asyncio.wait_for(
                    run_processes(
                        config,
                        endpoints,
                        asyncio.Event(),  # never set: only the crashes end this run
                        writers=1,
                        config_file=config_file,
                        state_dir=None,
                    ),
                    timeout=120,
                )
            )
    cause = str(raised.value)
    assert cause.startswith("ingest (pid ")
    assert "died 3 times within 120 s" in cause
    assert str(port) in cause  # its last output names the port it could not take
    restarts = [r.getMessage() for r in caplog.records if "; restart " in r.getMessage()]
    assert len(restarts) == 2
    assert all(m.startswith("supervisor: ingest (pid ") for m in restarts)
    assert "exited with code" in restarts[0]
    assert "restart 1 in 0.1 s" in restarts[0]


def _run_config(
    pipeline_config: PipelineConfig, redis_url: str, questdb: QuestDBEndpoints
) -> dict[str, Any]:
    """The repository's configuration on the test's services, every port a free one."""
    data = pipeline_config.model_dump(mode="json")
    data["ingest"]["metrics_port"] = 0
    data["hot"]["metrics_port"] = 0
    data["serve"] |= {"port": 0, "metrics_port": 0}
    data["endpoints"] = {
        **data["endpoints"],
        "redis": redis_url,
        "questdb_http": questdb.http_url,
        "questdb_pg": f"postgresql://admin:quest@127.0.0.1:{questdb.pg_port}/qdb",
    }
    return data


async def _answer(url: str, **params: str) -> httpx.Response:
    """The first answer of a child that may still be starting (connection refused until)."""
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            try:
                return await client.get(url, params=params)
            except httpx.TransportError:
                await asyncio.sleep(0.1)


def test_run_starts_serve_which_answers_and_is_restarted_when_killed(
    redis_url: str,
    questdb: QuestDBEndpoints,
    pipeline_config: PipelineConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`run` with serve on: the API answers /healthz and /v1/latest over real HTTP; killed
    with SIGKILL, it is restarted on the same address and answers again."""
    client = redis.Redis.from_url(redis_url)
    client.set("price:{binance}:BTC-USDT", orjson.dumps({"price": 42.5, "ts": 1}))
    client.close()
    exchanges = {  # one exchange, on a closed loopback port: ingest retries, nothing leaves
        name: {"enabled": name == "binance", "url": "ws://127.0.0.1:9/stream"}
        for name in pipeline_config.exchanges
    }
    data = _run_config(pipeline_config, redis_url, questdb)
    for name, changes in exchanges.items():
        data["exchanges"][name] |= changes
    config_file = tmp_path / "config.json"
    config_file.write_bytes(orjson.dumps(data))
    config = PipelineConfig.model_validate(data)
    endpoints = PipelineEndpoints(redis=redis_url, questdb_http=questdb.http_url)
    seen: dict[str, Any] = {}

    async def ask_kill_ask(supervisor: Supervisor) -> None:
        api = supervisor.children["serve"]
        url = api.spec.url
        assert url is not None
        seen["health"] = await _answer(f"{url}/healthz")
        seen["latest"] = await _answer(f"{url}/v1/latest", exchange="binance")
        assert api.pid is not None
        seen["killed"] = api.pid
        os.kill(api.pid, signal.SIGKILL)
        while api.restarts == 0 or api.pid == seen["killed"]:
            supervisor.check()
            await asyncio.sleep(0.05)
        seen["again"] = await _answer(f"{url}/v1/latest", exchange="binance", symbol="BTC-USDT")
        seen["status"] = supervisor.status()["serve"]
        stop.set()

    stop = asyncio.Event()

    async def run() -> None:
        await run_processes(
            config,
            endpoints,
            stop,
            writers=1,
            config_file=config_file,
            state_dir=None,
            serve=True,
            on_started=ask_kill_ask,
        )

    asyncio.run(asyncio.wait_for(run(), timeout=300))
    health = seen["health"].json()
    assert seen["health"].status_code in (200, 503), seen["health"].text
    assert health["checks"]["redis"] == {"ok": True}
    assert health["checks"]["questdb"] == {"ok": True}
    expected = [{"exchange": "binance", "symbol": "BTC-USDT", "price": 42.5, "ts": 1}]
    assert seen["latest"].status_code == 200
    assert seen["latest"].json()["data"] == expected
    assert seen["again"].status_code == 200
    assert seen["again"].json()["data"] == expected
    status = seen["status"]
    assert status["restarts"] == 1
    assert status["exits"] == ["killed by SIGKILL"]
    assert status["pid"] != seen["killed"]
    assert f"serve: {status['url']} (OpenAPI docs at {status['url']}/docs)" in (
        capsys.readouterr().out
    )
