"""Polled REST price sources end to end: 15 and 150 tokens polled once a second from the REST
replay server (answers in Jupiter's shape) while it injects 429s, 5xx and 800 ms spikes as
the integration test does, with `marketstream ingest --source jupiter` and `write-hot` as
the processes a user runs, on the local Redis and QuestDB.

Measured per run, over RUN_S seconds of ticks:

- token ticks/s met, and ticks missed (ingest's `source_ticks` counter);
- database write latency p99: one QuestDB flush the writer made (`write_seconds`);
- fetch -> queryable p50/p99: a watcher queries QuestDB every WATCH_S for new price rows and
  takes, for each, the time it first saw it minus its `recv_ts` (so within WATCH_S plus one
  query of the truth); steady from WARMUP_S after the first tick, and p99 over the whole run;
- the API over the prices: `/v1/latest?exchange=jupiter` and one token's last minute from
  `/v1/prices`, p50/p95 of sequential requests to a running `serve`;
- counts checked in the run: QuestDB holds one row per token per tick met, none twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.local_services import ROOT, running_services
from marketstream.config import PipelineConfig
from marketstream.replay.faults import FaultPlan
from marketstream.replay.rest_server import RestReplayServer
from marketstream.run.demo import histogram_quantile
from marketstream.run.processes import create_schema, sample_sum, scrape
from marketstream.services.process import free_port
from marketstream.sources.base.sessions import token_set, write_recording
from marketstream.sources.registry import get_session, get_source
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.wiring import endpoint
from tests.integration.serve_process import running_serve

TOKENS = (15, 150)
RUN_S = 30
WATCH_S = 0.02
# Left out of the steady fetch -> queryable figures: the first ticks wait for the writer to
# find the new stream (it looks for new streams every `hot.refresh_interval_s`, 2 s).
WARMUP_S = 3
API_REQUESTS = 200
NS = 1_000_000_000
FAULTS = FaultPlan(
    fail_429_every=11, retry_after_s=1.0, fail_5xx_every=7, latency_every=5, latency_ms=800
)


def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        "faults": FAULTS.to_json(),
        "cadence_s": 1,
        "seconds": RUN_S,
    }
    with running_services() as (config, state):
        questdb_url = endpoint(config, state, "questdb_http")
        create_schema(questdb_url)
        for count in TOKENS:
            results[f"tokens_{count}"] = asyncio.run(_one_run(config, state, questdb_url, count))
    _print(results)
    return results


async def _one_run(
    config: PipelineConfig, state: Path, questdb_url: str, count: int
) -> dict[str, Any]:
    jupiter = get_source("jupiter")
    tokens = token_set(count)
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "jupiter.jsonl"
        write_recording(
            jupiter, tokens, recording, start_ns=time.time_ns(), ticks=60, cadence_s=1,
            base_url=jupiter.default_url, answer_body=get_session("jupiter"),
        )  # fmt: skip
        async with RestReplayServer(
            recording, fault_answer=jupiter.fault_answer, faults=FAULTS
        ) as server:
            ports = {"ingest": free_port(), "writer": free_port()}
            config_file = Path(tmp) / "config.json"
            requests = len(jupiter.batches(list(tokens.values())))
            config_file.write_bytes(orjson.dumps(_config(config, server.http_url, tokens,
                                                         requests, ports)))  # fmt: skip
            with _children(config_file, state, tmp) as children:
                started_ns = time.time_ns()
                since_ns = (started_ns // NS + 1) * NS
                seen = await _watch(QuestDBHttp(questdb_url), since_ns, RUN_S)
                ingest = await scrape(f"http://127.0.0.1:{ports['ingest']}/metrics")
                children["ingest"].send_signal(2)  # SIGINT: ingest flushes what it holds
                children["ingest"].wait(60)
                stopped_ns = time.time_ns()
                seen |= await _watch(QuestDBHttp(questdb_url), since_ns, 3.0, seen)
                writer = await scrape(f"http://127.0.0.1:{ports['writer']}/metrics")
            faults = server.faults_status()["counters"]
        api = _api(config_file, state, tokens)
    rows = _rows(QuestDBHttp(questdb_url), since_ns)
    met = int(sample_sum(ingest, "marketstream_ingest_source_ticks_total", outcome="met"))
    missed = int(sample_sum(ingest, "marketstream_ingest_source_ticks_total", outcome="missed"))
    steady_from = since_ns + WARMUP_S * NS
    lags = sorted(lag for (_, ts), lag in seen.items() if ts >= steady_from)
    whole = sorted(seen.values())
    result = {
        "tokens": count,
        "requests_per_tick": requests,
        "token_ticks_met": met,
        "token_ticks_missed": missed,
        "token_ticks_per_s": round(met / RUN_S, 1),
        "rows": rows["rows"],
        "distinct_ticks": rows["distinct"],
        "write_latency_ms_p99": _ms(
            histogram_quantile(writer, "marketstream_hot_write_seconds", 0.99)
        ),
        "fetch_to_queryable_ms_p50": _ms(_quantile(lags, 0.5)),
        "fetch_to_queryable_ms_p99": _ms(_quantile(lags, 0.99)),
        "fetch_to_queryable_ms_p99_whole_run": _ms(_quantile(whole, 0.99)),
        "faults_injected": {k: faults[k] for k in ("injected_429", "injected_5xx", "delayed")},
        "requests_served": faults["requests"],
        "run_s": round((stopped_ns - started_ns) / NS, 1),
        **api,
    }
    # counts checked here: every price met is in QuestDB once (ticks met before the stop)
    if rows["rows"] != rows["distinct"]:
        raise RuntimeError(f"{count} tokens: {rows['rows']} rows for {rows['distinct']} ticks")
    if rows["rows"] < met:
        raise RuntimeError(f"{count} tokens: {met} token ticks met, {rows['rows']} rows")
    return result


def _config(
    config: PipelineConfig, url: str, tokens: dict[str, str], requests: int, ports: dict[str, int]
) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    data["exchanges"] = {}
    data["sources"] = {
        "jupiter": {
            "url": url,
            "cadence_s": 1,
            "max_rps": 4 * requests,  # the replay server's room for retries and hedges
            "burst": 3 * requests,
            "hedge_after_s": 0.4,
            "symbols": tokens,
        }
    }
    data["ingest"]["metrics_port"] = ports["ingest"]
    data["hot"]["metrics_port"] = ports["writer"]
    return data


@contextlib.contextmanager
def _children(config_file: Path, state: Path, tmp: str) -> Iterator[dict[str, Any]]:
    base = [sys.executable, "-m", "marketstream", "--config", str(config_file)]
    state_args = ["--state-dir", str(state)]
    commands = {
        "writer": ["write-hot", *state_args, "--consumer", "bench-sources"],
        "ingest": ["ingest", *state_args, "--source", "jupiter"],
    }
    children: dict[str, subprocess.Popen[bytes]] = {}
    with contextlib.ExitStack() as logs:
        for name, command in commands.items():
            log = logs.enter_context((Path(tmp) / f"{name}.log").open("wb"))
            children[name] = subprocess.Popen(
                [*base, *command], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            yield children
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(2)
                    try:
                        child.wait(30)
                    except subprocess.TimeoutExpired:
                        child.kill()


async def _watch(
    questdb: QuestDBHttp,
    since_ns: int,
    seconds: float,
    seen: dict[tuple[str, int], float] | None = None,
) -> dict[tuple[str, int], float]:
    """(symbol, tick) -> seconds from its fetch to the first query that returned it."""
    seen = {} if seen is None else dict(seen)
    last_recv = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = await asyncio.to_thread(
            questdb.exec,
            "SELECT symbol, ts, recv_ts FROM prices WHERE exchange = 'jupiter' "  # noqa: S608
            f"AND ts >= cast({since_ns // 1000} AS timestamp) "
            f"AND recv_ts > cast({last_recv // 1000} AS timestamp)",
        )
        now_ns = time.time_ns()
        for symbol, ts, recv_ts in found["dataset"]:
            key = (str(symbol), _ns(ts))
            if key not in seen:
                seen[key] = (now_ns - _ns(recv_ts)) / NS
        if found["dataset"]:
            last_recv = max(last_recv, *(_ns(r[2]) for r in found["dataset"])) - NS
        await asyncio.sleep(WATCH_S)
    return seen


def _ns(text: str) -> int:
    """QuestDB's JSON timestamp (ISO-8601, µs) as epoch ns."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000) * 1000


def _rows(questdb: QuestDBHttp, since_ns: int) -> dict[str, int]:
    found = questdb.exec(
        "SELECT count(), count_distinct(concat(symbol, '@', ts)) FROM prices "  # noqa: S608
        f"WHERE exchange = 'jupiter' AND ts >= cast({since_ns // 1000} AS timestamp)"
    )["dataset"][0]
    return {"rows": int(found[0]), "distinct": int(found[1])}


def _api(config_file: Path, state: Path, tokens: dict[str, str]) -> dict[str, Any]:
    """p50/p95 of /v1/latest for the source and of one token's last minute of prices."""
    symbol = f"{next(iter(tokens))}-USD"
    with (
        running_serve({"MARKETSTREAM_CONFIG": str(config_file)}, state) as (url, _lines),
        httpx.Client(base_url=url, timeout=30) as api,
    ):
        latest = _timed(api, "/v1/latest", {"exchange": "jupiter"})
        end = time.time_ns() // NS * NS
        window = {"exchange": "jupiter", "symbol": symbol,
                  "start": str(end - 60 * NS), "end": str(end)}  # fmt: skip
        prices = _timed(api, "/v1/prices", window)
    return {
        "api_latest_ms_p50": _ms(_quantile(latest, 0.5)),
        "api_latest_ms_p95": _ms(_quantile(latest, 0.95)),
        "api_prices_minute_ms_p50": _ms(_quantile(prices, 0.5)),
        "api_prices_minute_ms_p95": _ms(_quantile(prices, 0.95)),
    }


def _timed(api: httpx.Client, path: str, params: dict[str, str]) -> list[float]:
    samples = []
    for _ in range(API_REQUESTS):
        started = time.perf_counter()
        answer = api.get(path, params=params)
        samples.append(time.perf_counter() - started)
        answer.raise_for_status()
    return sorted(samples)


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _print(results: dict[str, Any]) -> None:
    print(f"sources: Jupiter-shaped answers, 1 tick/s, {RUN_S} s, faults {FAULTS.to_json()}")
    for count in TOKENS:
        r = results[f"tokens_{count}"]
        print(
            f"  {count:>3} tokens: {r['token_ticks_per_s']} token ticks/s, "
            f"{r['token_ticks_missed']} missed; write p99 {r['write_latency_ms_p99']} ms; "
            f"fetch->queryable p50 {r['fetch_to_queryable_ms_p50']} ms, "
            f"p99 {r['fetch_to_queryable_ms_p99']} ms (whole run "
            f"{r['fetch_to_queryable_ms_p99_whole_run']} ms); API /v1/latest p95 "
            f"{r['api_latest_ms_p95']} ms, /v1/prices (1 min) p95 "
            f"{r['api_prices_minute_ms_p95']} ms; {r['rows']} rows, faults {r['faults_injected']}"
        )


if __name__ == "__main__":
    run()
