"""Replay -> queryable with ingest and the hot writers as separate processes (`demo`'s path).

A >= 300k-frame Binance USD-M recording (the shipped one repeated with shifted times and ids,
so QuestDB's dedup keeps every copy) is replayed at maximum speed by `run_demo`: the replay
server in this process, ingest and 1 or 2 writers as supervised children. Measured:

- records/s from ingest's first published record until QuestDB has applied everything;
- CPU seconds per 1,000 records of each process (utime + stime from /proc/<pid>/stat over
  the same interval), and the peak RSS of each (VmHWM from /proc/<pid>/status);
- counts checked in the run: QuestDB rows == records published (trades, quotes, books),
  candle rows == the recording's bars, nothing in md:dlq; a mismatch fails the suite.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from marketstream import event_loop
from marketstream.config import load_config
from marketstream.run.demo import prepare_state, run_demo
from marketstream.run.processes import sample_sum, scrape
from marketstream.run.supervisor import Supervisor
from marketstream.services.manager import stop_services
from tests.conftest import recordings_path
from tests.integration.repeated_recording import Repeated, repeat_recording

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "pipeline.yaml"
REPEATS = 200  # 200 x 1,535 frames = 307,000
TICKS = os.sysconf("SC_CLK_TCK")


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


def _check(summary: dict[str, Any], made: Repeated) -> None:
    published, rows = summary["published"], summary["hot_rows"]
    problems = [
        f"{table}: {rows[table]} rows, {published[kind]} published"
        for kind, table in (("trade", "trades"), ("quote", "quotes"), ("book", "books"))
        if rows[table] != published[kind]
    ]
    if rows["candles"] != made.candle_bars:
        problems.append(f"candles: {rows['candles']} rows, {made.candle_bars} bars")
    if published["trade"] != 91 * REPEATS:
        problems.append(f"trades: {published['trade']} published, {91 * REPEATS} recorded")
    if summary["dlq"]:
        problems.append(f"{summary['dlq']} entries in md:dlq")
    if any(p["restarts"] for p in summary["processes"].values()):
        problems.append(f"a child restarted: {summary['processes']}")
    if problems:
        raise AssertionError("pipeline bench: counts do not match: " + "; ".join(problems))


def _one(recordings: Path, state: Path, writers: int, made: Repeated) -> dict[str, Any]:
    config = load_config(CONFIG, environ={})
    marks: dict[str, Any] = {}

    async def started(supervisor: Supervisor) -> None:
        url = supervisor.children["ingest"].status(supervisor.metrics_host)["metrics"]
        while True:
            try:
                published = sample_sum(await scrape(url), "marketstream_ingest_records_total")
            except Exception:
                published = 0
            if published > 0:
                break
            await asyncio.sleep(0.01)
        marks["start"] = time.perf_counter()
        marks["pids"] = _pids(supervisor)
        marks["cpu0"] = {name: cpu_seconds(pid) for name, pid in marks["pids"].items()}

    async def drained(_urls: dict[str, str]) -> None:
        marks["end"] = time.perf_counter()
        marks["cpu1"] = {name: cpu_seconds(pid) for name, pid in marks["pids"].items()}
        marks["rss"] = {name: peak_rss_mb(pid) for name, pid in marks["pids"].items()}

    prepare_state(config, state)
    try:
        summary = event_loop.run(
            run_demo(
                config,
                recordings,
                state,
                speed=None,
                generate_missing=False,
                writers=writers,
                on_started=started,
                on_drained=drained,
            )
        )
    finally:
        stop_services(config, state)
    _check(summary, made)
    records = sum(summary["published"].values())
    elapsed = marks["end"] - marks["start"]
    cpu = {
        name: round((marks["cpu1"][name] - marks["cpu0"][name]) / records * 1000, 4)
        for name in marks["pids"]
    }
    return {
        "writers": writers,
        "records": records,
        "seconds": round(elapsed, 2),
        "records_per_s": round(records / elapsed),
        "cpu_s_per_1000_records": cpu,
        "peak_rss_mb": marks["rss"],
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
