"""Replay -> queryable with ingest and the hot writers as separate processes (`demo`'s path).

A >= 300k-frame Binance USD-M recording (the shipped one repeated with shifted times and ids,
so QuestDB's dedup keeps every copy) is replayed at maximum speed by `run_demo`: the replay
server in this process, ingest and 1 or 2 writers as supervised children. Measured:

- records/s from the replay's first frame until QuestDB has applied everything;
- CPU seconds per 1,000 records of each process (utime + stime from /proc/<pid>/stat over
  the same interval), and the peak RSS of each (VmHWM from /proc/<pid>/status);
- counts checked in the run: QuestDB rows == records published (trades, quotes, books),
  candle rows == the recording's bars, nothing in md:dlq; a mismatch fails the suite.

`through` is the one way the bench runs the pipeline: `bench/freshness.py` runs it paced.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.metrics_core import Metric

from marketstream import event_loop
from marketstream.config import load_config
from marketstream.errors import ServiceError
from marketstream.run.demo import prepare_state, run_demo
from marketstream.run.processes import sample_sum, scrape
from marketstream.run.supervisor import Supervisor
from marketstream.services.manager import stop_services
from tests.conftest import recordings_path
from tests.integration.repeated_recording import Repeated, repeat_recording

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "pipeline.yaml"
REPEATS = 200  # 200 x 1,535 frames = 307,000
TRADES_PER_COPY = 91  # aggTrade frames in the shipped binance-usdm.jsonl
TICKS = os.sysconf("SC_CLK_TCK")
PUBLISHED = "marketstream_ingest_records_total"
WRITTEN = "marketstream_hot_records_total"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _pids(supervisor: Supervisor) -> dict[str, int]:
    pids = {name: c.pid for name, c in supervisor.children.items() if c.pid is not None}
    return {"replay+supervisor": os.getpid(), **pids}


def check_counts(summary: dict[str, Any], made: Repeated, repeats: int) -> None:
    """Nothing lost or doubled: raise AssertionError naming every mismatch."""
    published, rows = summary["published"], summary["hot_rows"]
    problems = [
        f"{table}: {rows[table]} rows, {published[kind]} published"
        for kind, table in (("trade", "trades"), ("quote", "quotes"), ("book", "books"))
        if rows[table] != published[kind]
    ]
    if rows["candles"] != made.candle_bars:
        problems.append(f"candles: {rows['candles']} rows, {made.candle_bars} bars")
    if published["trade"] != TRADES_PER_COPY * repeats:
        problems.append(
            f"trades: {published['trade']} published, {TRADES_PER_COPY * repeats} recorded"
        )
    if summary["dlq"]:
        problems.append(f"{summary['dlq']} entries in md:dlq")
    if any(p["restarts"] for p in summary["processes"].values()):
        problems.append(f"a child restarted: {summary['processes']}")
    if problems:
        raise AssertionError("pipeline bench: counts do not match: " + "; ".join(problems))


@dataclass(slots=True)
class Through:
    """One run of `run_demo`, with what the bench saw while it ran."""

    summary: dict[str, Any]
    records: int  # published by ingest (== rows, checked)
    seconds: float  # the replay's first frame -> everything queryable
    cpu_s: dict[str, float]  # per process, over `seconds`
    peak_rss_mb: dict[str, float]
    samples: list[Sample] = field(default_factory=list)  # every SAMPLE_S, with `sample=True`


@dataclass(frozen=True, slots=True)
class Sample:
    """Each stage's count at `t` seconds from the replay's first frame. Read downstream
    first (writers, ingest, replay), so a backlog between two stages is never understated."""

    t: float
    sent: int  # frames the replay servers sent
    received: int  # frames ingest received
    published: int  # records ingest published (Redis confirmed)
    written: int  # records the writers wrote (QuestDB confirmed)
    freshness: list[Metric]  # the writers' receive -> written histograms, as scraped


SAMPLE_S = 0.5
FRAMES = "marketstream_ingest_frames_total"
FRESHNESS = "marketstream_hot_receive_freshness_seconds"


async def _sent(replay_urls: list[str]) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        answers = [await client.get(f"{url}/_control/status") for url in replay_urls]
    return sum(int(answer.json()["sent"]) for answer in answers)


async def _take(urls: dict[str, str], replay_urls: list[str], start: float) -> Sample:
    written, freshness = 0.0, []
    for name, url in urls.items():
        if name != "ingest":
            families = await scrape(url)
            written += sample_sum(families, WRITTEN)
            freshness += [f for f in families if f.name == FRESHNESS]
    ingest = await scrape(urls["ingest"])
    sent = await _sent(replay_urls)
    return Sample(
        round(time.perf_counter() - start, 2),
        sent,
        int(sample_sum(ingest, FRAMES)),
        int(sample_sum(ingest, PUBLISHED)),
        int(written),
        freshness,
    )


async def _sample(
    urls: dict[str, str], replay_urls: list[str], start: float, into: list[Sample]
) -> None:
    """Every stage's count every SAMPLE_S, until cancelled."""
    while True:
        with contextlib.suppress(ServiceError, httpx.HTTPError):  # a child restarting
            into.append(await _take(urls, replay_urls, start))
        await asyncio.sleep(SAMPLE_S)


def _replay_urls(state: Path) -> list[str]:
    """The replay servers' HTTP addresses, from the configuration `run_demo` gave ingest."""
    demo = orjson.loads((state / "demo-config.json").read_bytes())
    return [exchange["rest_url"] for exchange in demo["exchanges"].values()]


def through(
    recordings: Path,
    state: Path,
    made: Repeated,
    repeats: int,
    *,
    writers: int | None,
    speed: float | None,
    sample: bool = False,
) -> Through:
    """`run_demo` over `recordings` (speed None: as fast as possible), counts checked."""
    config = load_config(CONFIG, environ={})
    marks: dict[str, Any] = {}
    samples: list[Sample] = []
    sampler: list[asyncio.Task[None]] = []

    async def started(supervisor: Supervisor) -> None:
        # From the replay's first frame: ingest publishes a few records before it (answers
        # to its REST requests), while the replay still holds its frames until every
        # subscription has settled (SUBSCRIBE_SETTLE_S), which is no part of the pipeline.
        marks["replays"] = _replay_urls(state)
        while await _sent(marks["replays"]) == 0:
            await asyncio.sleep(0.005)
        marks["start"] = time.perf_counter()
        marks["pids"] = _pids(supervisor)
        marks["cpu0"] = {name: cpu_seconds(pid) for name, pid in marks["pids"].items()}
        if sample:
            marks["urls"] = {n: c["metrics"] for n, c in supervisor.status().items()}
            sampler.append(
                asyncio.create_task(
                    _sample(marks["urls"], marks["replays"], marks["start"], samples)
                )
            )

    async def drained(_urls: dict[str, str]) -> None:
        marks["end"] = time.perf_counter()
        marks["cpu1"] = {name: cpu_seconds(pid) for name, pid in marks["pids"].items()}
        marks["rss"] = {name: peak_rss_mb(pid) for name, pid in marks["pids"].items()}
        for task in sampler:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            samples.append(await _take(marks["urls"], marks["replays"], marks["start"]))

    prepare_state(config, state)
    try:
        summary = event_loop.run(
            run_demo(
                config,
                recordings,
                state,
                speed=speed,
                generate_missing=False,
                writers=writers,
                on_started=started,
                on_drained=drained,
            )
        )
    finally:
        stop_services(config, state)
    check_counts(summary, made, repeats)
    return Through(
        summary=summary,
        records=sum(summary["published"].values()),
        seconds=marks["end"] - marks["start"],
        cpu_s={name: marks["cpu1"][name] - marks["cpu0"][name] for name in marks["pids"]},
        peak_rss_mb=marks["rss"],
        samples=samples,
    )


def _one(recordings: Path, state: Path, writers: int, made: Repeated) -> dict[str, Any]:
    run = through(recordings, state, made, REPEATS, writers=writers, speed=None)
    cpu = {name: round(s / run.records * 1000, 4) for name, s in run.cpu_s.items()}
    return {
        "writers": writers,
        "records": run.records,
        "seconds": round(run.seconds, 2),
        "records_per_s": round(run.records / run.seconds),
        "cpu_s_per_1000_records": cpu,
        "peak_rss_mb": run.peak_rss_mb,
        "counts_checked": "rows == published (trades, quotes, books), candles == bars, dlq 0",
    }


def run() -> dict[str, Any]:
    recordings = recordings_path()
    if not recordings.is_dir():
        print(f"  skipped: no recordings at {recordings}")
        return {"skipped": f"no recordings at {recordings}"}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chosen = root / "recordings"
        chosen.mkdir()
        made = repeat_recording(
            recordings / "binance-usdm.jsonl", chosen / "binance-usdm.jsonl", REPEATS
        )
        results["frames"] = made.frames
        for writers in (1, 2):
            result = _one(chosen, root / f"state-{writers}", writers, made)
            results[f"writers_{writers}"] = result
            cpu = ", ".join(f"{k} {v}" for k, v in result["cpu_s_per_1000_records"].items())
            rss = ", ".join(f"{k} {v}" for k, v in result["peak_rss_mb"].items())
            print(
                f"  replay -> queryable, ingest + {writers} writer process(es): "
                f"{result['records_per_s']:,} records/s ({result['records']:,} records from "
                f"{made.frames:,} frames, counts checked); CPU s/1,000 records: {cpu}; "
                f"peak RSS MB: {rss}",
                flush=True,
            )
    return results


if __name__ == "__main__":
    run()
