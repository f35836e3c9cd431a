"""Replay -> queryable with ingest and the hot writers as separate processes (`demo`'s path).

A >= 300k-frame Binance USD-M recording (the shipped one repeated with shifted times and ids,
so QuestDB's dedup keeps every copy) is replayed at maximum speed by `run_demo`: the replay
server in this process, ingest and 1 or 2 writers as supervised children. Measured:

- records/s from the replay's first frame until QuestDB has applied everything;
- CPU seconds per 1,000 records of each process (utime + stime from /proc/<pid>/stat over
  the same interval, with its children's once reaped: Redis's AOF rewrites), and the peak
  RSS of each (VmHWM from /proc/<pid>/status);
- the same for the QuestDB and Redis server processes (their pids from the state directory's
  services.json), QuestDB's CPU by thread group (network, write, WAL apply, the JVM's JIT
  compilers, logging), its WAL transactions, each process's cores used while idle once
  drained, and how busy the machine's cores were (/proc/stat: other work competes);
- a stage timeline, each stage sampled every TIMELINE_SAMPLE_S: seconds from the first frame
  until the replay sent its last frame, ingest published its last record, the writers wrote
  their last row, and QuestDB had applied every WAL (queryable), and from it which stage
  the run waited on (`bound`);
- counts checked in the run: QuestDB rows == records published (trades, quotes, books),
  candle rows == the recording's bars, nothing in md:dlq; a mismatch fails the suite;
- the marginal rate, as the issue measures it: with 1 writer, the records and seconds of a
  30,700-frame run taken from those of the 307,000-frame run, so what every run pays once
  (tables created, first flushes) is left out; QuestDB's JVM still compiles in both.

`through` is the one way the bench runs the pipeline: `bench/freshness.py` runs it paced.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from marketstream import event_loop
from marketstream.config import load_config
from marketstream.gc_settings import apply_gc_settings
from marketstream.run.demo import prepare_state, run_demo
from marketstream.run.processes import sample_sum
from marketstream.run.supervisor import Supervisor
from marketstream.schemas.columns import SPECS
from marketstream.services.manager import stop_services
from marketstream.services.state import load_record
from marketstream.tiers.questdb import QuestDBHttp
from tests.conftest import recordings_path
from tests.integration.repeated_recording import Repeated, repeat_recording

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "pipeline.yaml"
REPEATS = 200  # 200 x 1,535 frames = 307,000
SHORT_REPEATS = 20  # 30,700 frames: the short run of the marginal rate
TRADES_PER_COPY = 91  # aggTrade frames in the shipped binance-usdm.jsonl
TICKS = os.sysconf("SC_CLK_TCK")
PUBLISHED = "marketstream_ingest_records_total"
WRITTEN = "marketstream_hot_records_total"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds, with those of its children that ended
    and were waited for (cutime + cstime): Redis's AOF rewrites run in forks it reaps, and
    without them its figure left out about a quarter of its CPU on a 1M-entry backlog."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICKS


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime + stime of a live process's threads, summed by thread name without its number
    (QuestDB's `wal-apply_0`, `shared-network_1`, the JVM's `C2 CompilerThre`, `GC Thread#0`)."""
    groups: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            stat = (task / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")].rstrip("0123456789#_ ")
            fields = stat.rsplit(")", 1)[1].split()
            groups[name] = groups.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return groups


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


SERVICES = {"questdb": "questdb-server", "redis": "redis-server"}  # services.json -> label


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat's `cpu` line."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def wal_transactions(state: Path) -> int:
    """WAL transactions QuestDB sequenced on the record tables: each costs it a commit and an
    apply, so rows per transaction says how much of its CPU the writers' flushes decide."""
    record = load_record(state)
    if record is None or "questdb_http" not in record.endpoints:
        return 0
    answer = QuestDBHttp(record.endpoints["questdb_http"]).exec(
        "SELECT name, sequencerTxn FROM wal_tables()"
    )
    tables = {spec.table for spec in SPECS}
    return sum(int(txn) for name, txn in answer["dataset"] if name in tables)


def _used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each thread group used between two readings, most first, small ones out."""
    used = {name: round(cpu - before.get(name, 0.0), 2) for name, cpu in after.items()}
    return {
        name: cpu
        for name, cpu in sorted(used.items(), key=lambda kv: -kv[1])
        if cpu >= THREAD_SHOWN_S
    }


def _questdb_threads(pids: dict[str, int]) -> dict[str, float]:
    pid = pids.get(SERVICES["questdb"])
    return thread_cpu_seconds(pid) if pid is not None else {}


def _pids(supervisor: Supervisor, state: Path) -> dict[str, int]:
    """The bench process (replay + supervisor), the children, and the local services."""
    pids = {name: c.pid for name, c in supervisor.children.items() if c.pid is not None}
    record = load_record(state)
    services = {
        label: record.processes[name].pid
        for name, label in SERVICES.items()
        if record is not None and name in record.processes
    }
    return {"replay+supervisor": os.getpid(), **pids, **services}


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
    machine_busy: float  # share of all the machine's core time busy over `seconds`
    idle_cores: dict[str, float]  # per process, over `idle_s` once everything was queryable
    wal_transactions: int  # QuestDB WAL transactions on the record tables (fresh each run)
    questdb_threads_cpu_s: dict[str, float]  # QuestDB's CPU over `seconds` by thread name
    samples: list[Sample] = field(default_factory=list)  # every `sample_s`, with `sample=True`


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
TIMELINE_SAMPLE_S = 0.2  # the max-speed run is a few seconds long
THREAD_SHOWN_S = 0.05  # QuestDB thread groups using less CPU over a run are left out
IDLE_S = 2.0  # how long the idle pipeline's CPU (QuestDB's JVM above all) is measured
FRAMES = "marketstream_ingest_frames_total"
FRESHNESS = "marketstream_hot_receive_freshness_seconds"


KEPT = tuple(name.removesuffix("_total") for name in (FRAMES, PUBLISHED, WRITTEN, FRESHNESS))


async def _families(client: httpx.AsyncClient, url: str) -> list[Metric]:
    """The families of a child's /metrics that a sample keeps: parsing every family, with a
    new client each time, cost the bench process (which also runs the replay) about as much
    CPU as the replay itself."""
    response = await client.get(url)
    response.raise_for_status()
    kept = [
        line
        for line in response.text.splitlines()
        if line.removeprefix("# HELP ").removeprefix("# TYPE ").startswith(KEPT)
    ]
    return list(text_string_to_metric_families("\n".join(kept) + "\n"))


async def _sent(client: httpx.AsyncClient, replay_urls: list[str]) -> int:
    answers = [await client.get(f"{url}/_control/status") for url in replay_urls]
    return sum(int(answer.json()["sent"]) for answer in answers)


async def _take(
    client: httpx.AsyncClient, urls: dict[str, str], replay_urls: list[str], start: float
) -> Sample:
    written, freshness = 0.0, []
    for name, url in urls.items():
        if name != "ingest":
            families = await _families(client, url)
            written += sample_sum(families, WRITTEN)
            freshness += [f for f in families if f.name == FRESHNESS]
    ingest = await _families(client, urls["ingest"])
    sent = await _sent(client, replay_urls)
    return Sample(
        round(time.perf_counter() - start, 2),
        sent,
        int(sample_sum(ingest, FRAMES)),
        int(sample_sum(ingest, PUBLISHED)),
        int(written),
        freshness,
    )


async def _sample(
    client: httpx.AsyncClient,
    urls: dict[str, str],
    replay_urls: list[str],
    start: float,
    *,
    into: list[Sample],
    every: float,
) -> None:
    """Every stage's count every `every` seconds, until cancelled."""
    while True:
        with contextlib.suppress(httpx.HTTPError):  # a child restarting
            into.append(await _take(client, urls, replay_urls, start))
        await asyncio.sleep(every)


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
    sample_s: float = SAMPLE_S,
    idle_s: float = 0.0,
) -> Through:
    """`run_demo` over `recordings` (speed None: as fast as possible), counts checked; with
    `idle_s`, each process's cores used while idle for that long once drained."""
    config = load_config(CONFIG, environ={})
    marks: dict[str, Any] = {}
    samples: list[Sample] = []
    sampler: list[asyncio.Task[None]] = []

    async def started(supervisor: Supervisor) -> None:
        # From the replay's first frame: ingest publishes a few records before it (answers
        # to its REST requests), while the replay still holds its frames until every
        # subscription has settled (SUBSCRIBE_SETTLE_S), which is no part of the pipeline.
        marks["replays"] = _replay_urls(state)
        marks["client"] = client = httpx.AsyncClient(timeout=10)
        while await _sent(client, marks["replays"]) == 0:
            await asyncio.sleep(0.005)
        marks["start"] = time.perf_counter()
        marks["pids"] = _pids(supervisor, state)
        marks["cpu0"] = {name: cpu_seconds(pid) for name, pid in marks["pids"].items()}
        marks["ticks0"] = machine_ticks()
        marks["threads0"] = _questdb_threads(marks["pids"])
        if sample:
            marks["urls"] = {n: c["metrics"] for n, c in supervisor.status().items()}
            sampler.append(
                asyncio.create_task(
                    _sample(
                        client,
                        marks["urls"],
                        marks["replays"],
                        marks["start"],
                        into=samples,
                        every=sample_s,
                    )
                )
            )

    async def drained(_urls: dict[str, str]) -> None:
        marks["end"] = time.perf_counter()
        marks["cpu1"] = {name: cpu_seconds(pid) for name, pid in marks["pids"].items()}
        marks["ticks1"] = machine_ticks()
        marks["threads1"] = _questdb_threads(marks["pids"])
        marks["rss"] = {name: peak_rss_mb(pid) for name, pid in marks["pids"].items()}
        marks["txns"] = await asyncio.to_thread(wal_transactions, state)
        for task in sampler:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            samples.append(
                await _take(marks["client"], marks["urls"], marks["replays"], marks["start"])
            )
        await marks["client"].aclose()
        idle0 = {name: cpu_seconds(pid) for name, pid in marks["pids"].items()}
        await asyncio.sleep(idle_s)
        marks["idle"] = {
            name: round((cpu_seconds(pid) - idle0[name]) / idle_s, 2) if idle_s else 0.0
            for name, pid in marks["pids"].items()
        }

    prepare_state(config, state)
    apply_gc_settings(config.runtime)  # as `marketstream demo` does for its replay servers
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
        machine_busy=(marks["ticks1"][0] - marks["ticks0"][0])
        / max(1, marks["ticks1"][1] - marks["ticks0"][1]),
        idle_cores=marks["idle"],
        wal_transactions=marks["txns"],
        questdb_threads_cpu_s=_used(marks["threads0"], marks["threads1"]),
        samples=samples,
    )


def timeline(run: Through) -> dict[str, float]:
    """Seconds from the first frame until each stage had done its last piece of work: the
    first sample whose count equals the final one (taken once everything was queryable),
    so each time is late by at most `resolution_s` (never later than queryable)."""
    final = run.samples[-1]

    def when(done: Callable[[Sample], bool]) -> float:
        return min(next(s.t for s in run.samples if done(s)), round(run.seconds, 2))

    return {
        "replay_sent_last_frame_s": when(lambda s: s.sent >= final.sent),
        "ingest_received_last_frame_s": when(lambda s: s.received >= final.received),
        "ingest_published_last_record_s": when(lambda s: s.published >= final.published),
        "writers_wrote_last_row_s": when(lambda s: s.written >= final.written),
        "queryable_s": round(run.seconds, 2),
        "resolution_s": round(max(b.t - a.t for a, b in itertools.pairwise(run.samples)), 2),
    }


def backlogs(run: Through) -> dict[str, int]:
    """The most any stage held that the next had not taken, over the samples."""
    return {
        "ingest_max_frames_unreceived": max(s.sent - s.received for s in run.samples),
        "writers_max_records_unwritten": max(s.published - s.written for s in run.samples),
    }


def bound(
    stages: dict[str, float], run: Through, cpu_per_1000: dict[str, float], idle: dict[str, float]
) -> str:
    """Which stage the run waited on, whether the machine's cores were the limit, and the
    rate all the machine's cores would allow at this CPU cost per record."""
    total = stages["queryable_s"]
    phases = {
        "the replay sending every frame": stages["replay_sent_last_frame_s"],
        "ingest publishing after the last frame": stages["ingest_published_last_record_s"]
        - stages["replay_sent_last_frame_s"],
        "the writers writing after ingest's last record": stages["writers_wrote_last_row_s"]
        - stages["ingest_published_last_record_s"],
        "QuestDB applying its WAL after the last row": total - stages["writers_wrote_last_row_s"],
    }
    longest = max(phases, key=lambda k: phases[k])
    n = os.cpu_count() or 1
    cores = {name: cpu / run.seconds for name, cpu in run.cpu_s.items()}
    ours = sum(cores.values())
    others = max(0.0, run.machine_busy * n - ours)
    per_1000 = sum(cpu_per_1000.values())
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(cores.items(), key=lambda kv: -kv[1]))
    verdict = (
        f"{longest} took {phases[longest]:.2f} s of {total:.2f} s "
        f"({', '.join(f'{k} {v:.2f} s' for k, v in phases.items())}); "
        f"cores used: {top} (pipeline + services {ours:.2f}, other work {others:.2f}, "
        f"machine {run.machine_busy:.0%} of {n} busy); idle once drained: "
        f"{', '.join(f'{k} {v:.2f}' for k, v in idle.items() if v)}; "
        f"{per_1000:.3f} CPU s per 1,000 records in all, so {n} cores allow at most "
        f"{n / per_1000 * 1000:,.0f} records/s"
    )
    if run.machine_busy >= BUSY_SHARE:
        verdict += ": the cores were saturated, so CPU bounds the figure"
    elif max(cores.values()) < BUSY_SHARE:
        verdict += ": no process used a whole core and the machine had idle time, so hand-offs "
        verdict += "between stages (round trips, batching pauses), not CPU, bound it"
    return verdict


BUSY_SHARE = 0.9


def _one(recordings: Path, state: Path, writers: int, made: Repeated) -> dict[str, Any]:
    run = through(
        recordings,
        state,
        made,
        REPEATS,
        writers=writers,
        speed=None,
        sample=True,
        sample_s=TIMELINE_SAMPLE_S,
        idle_s=IDLE_S,
    )
    cpu = {name: round(s / run.records * 1000, 4) for name, s in run.cpu_s.items()}
    cores = {name: round(s / run.seconds, 2) for name, s in run.cpu_s.items()}
    stages = timeline(run)
    return {
        "writers": writers,
        "records": run.records,
        "seconds": round(run.seconds, 2),
        "records_per_s": round(run.records / run.seconds),
        "cpu_s_per_1000_records": cpu,
        "cores_used": cores,
        "machine_busy_share": round(run.machine_busy, 2),
        "peak_rss_mb": run.peak_rss_mb,
        "timeline": stages,
        "backlogs": backlogs(run),
        "idle_cores": run.idle_cores,
        "questdb_wal_transactions": run.wal_transactions,
        "rows_per_wal_transaction": round(run.records / max(1, run.wal_transactions)),
        "questdb_threads_cpu_s": run.questdb_threads_cpu_s,
        "bound": bound(stages, run, cpu, run.idle_cores),
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
        short_dir = root / "short"
        short_dir.mkdir()
        short_made = repeat_recording(
            recordings / "binance-usdm.jsonl", short_dir / "binance-usdm.jsonl", SHORT_REPEATS
        )
        short = through(
            short_dir, root / "state-short", short_made, SHORT_REPEATS, writers=1, speed=None
        )
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
            stages = ", ".join(f"{k} {v}" for k, v in result["timeline"].items())
            print(f"    timeline from the first frame: {stages}", flush=True)
            print(
                f"    backlogs: {result['backlogs']}; QuestDB WAL transactions: "
                f"{result['questdb_wal_transactions']:,} "
                f"({result['rows_per_wal_transaction']:,} rows each); QuestDB CPU s by thread: "
                f"{result['questdb_threads_cpu_s']}",
                flush=True,
            )
            print(f"    bound: {result['bound']}", flush=True)
        results["marginal_1_writer"] = marginal(short, results["writers_1"], short_made.frames)
        print(f"  marginal rate, 1 writer: {results['marginal_1_writer']['text']}", flush=True)
    return results


def marginal(short: Through, long: dict[str, Any], short_frames: int) -> dict[str, Any]:
    """Records/s between a short and the long run of the same pipeline: what each run pays
    once (start-up of the stages, tables created, the first flushes) cancels out."""
    records = long["records"] - short.records
    seconds = long["seconds"] - short.seconds
    rate = round(records / seconds) if seconds > 0 else None
    return {
        "short_frames": short_frames,
        "short_records": short.records,
        "short_seconds": round(short.seconds, 2),
        "records_per_s": rate,
        "text": (
            f"{rate:,} records/s ({records:,} records in {seconds:.2f} s: the "
            f"{long['records']:,}-record run less the {short.records:,}-record run of "
            f"{short_frames:,} frames, {short.seconds:.2f} s)"
            if rate is not None
            else f"not measured: the long run took no longer than the short ({seconds:.2f} s)"
        ),
    }


if __name__ == "__main__":
    run()
