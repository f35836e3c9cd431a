"""Freshness at a steady paced rate, with ingest and the hot writer(s) as separate processes.

`run_demo` (what `marketstream demo --speed` runs) replays the >= 300k-frame repeated Binance
USD-M recording at the speed factor that offers TARGET_RATE records/s: the factor is the
target over the recording's own record rate (records per copy over its receive-time span).
Measured, from the replay's first frame:

- offered records/s: records published over the paced replay's duration (span / speed);
- achieved records/s: the same records over the replay's first frame -> everything queryable;
- each stage sampled every 0.5 s (the replay's /_control/status, ingest's and the writers'
  /metrics): when the replay had sent and ingest had published everything, and how far
  ingest (frames) and the writers (records) were behind a quarter, half and three quarters
  through the replay. A pipeline that keeps up is a flush or two behind throughout;
- freshness p50/p99, local receive -> written (the writers' receive_freshness histogram, summed
  over writers, interpolated in its buckets): steady, from the first sample WARMUP_S after
  the replay's first frame (start-up left out) to the end, and over the whole run;
- the cores each process used over the run (CPU seconds / wall seconds);
- counts checked as in `bench/pipeline.py`: rows == published, nothing lost or doubled.

A rate is sustained when the replay sent, and ingest published, everything within LATE_S of
the replay's scheduled end, the writers were less than LATE_S of records behind three
quarters through, and achieved >= SUSTAINED_SHARE of offered. When TARGET_RATE is not
sustained, the bench says so and goes on to the lower rates in FALLBACK_RATES (on shorter
recordings of about FALLBACK_SECONDS each) until one is.

Then the same at LOW_RATE, a quiet feed: there the writers flush at `hot.batch_wait_ms`, each
flush is a QuestDB transaction per table, and QuestDB's cores used show what that wait costs.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric

from bench.pipeline import CONFIG, FRESHNESS, REPEATS, Sample, Through, through
from marketstream.config import load_config
from marketstream.ingest.normalize import normalize_recording
from marketstream.replay.recording_format import read_recording
from marketstream.run.demo import histogram_quantile
from tests.conftest import recordings_path
from tests.integration.repeated_recording import Repeated, repeat_recording

TARGET_RATE = 20_000  # records/s, the figure
FALLBACK_RATES = (10_000, 5_000)
FALLBACK_SECONDS = 12.0
LOW_RATE = 2_000  # records/s: a quiet feed, where QuestDB's cost per transaction shows most
SUSTAINED_SHARE = 0.9
WARMUP_S = 2.0  # left out of the steady freshness: start-up, the writers' first flushes
LATE_S = 1.0  # a stage done this long after the replay was due to end fell behind
RECORDING = "binance-usdm.jsonl"


def recorded_rate(source: Path) -> tuple[float, float]:
    """(records per copy, seconds per copy) of `source` as `repeat_recording` lays copies
    end to end; the records as `marketstream normalize` makes them, which live ingest does
    too (book deltas wait for a snapshot in both)."""
    frames = [f for f in read_recording(source) if not f.is_rest]
    span_s = (frames[-1].recv_ns - frames[0].recv_ns + 1) / 1e9
    config = load_config(CONFIG, environ={})
    summary = normalize_recording(source, frames[0].exchange, io.BytesIO(), config.ingest)
    return sum(summary.counts.values()), span_s


def _stages(run: Through, replay_s: float, frames: int) -> dict[str, Any]:
    """When each stage had everything, and how far behind ingest and the writers were at
    points through the replay (ingest: frames sent not yet received; writers: records
    published not yet written)."""
    samples = run.samples
    if not samples:
        return {"samples": 0}

    def when(done: Callable[[Sample], bool]) -> float | None:
        return next((s.t for s in samples if done(s)), None)

    def behind(of: Callable[[Sample], int]) -> dict[str, int]:
        points = {}
        for share in (0.25, 0.5, 0.75):
            at = min(samples, key=lambda s: abs(s.t - share * replay_s))
            points[f"at_{int(share * 100)}pct"] = of(at)
        return {**points, "max": max(of(s) for s in samples)}

    return {
        "samples": len(samples),
        "replay_sent_all_after_s": when(lambda s: s.sent >= frames),
        "ingest_published_all_after_s": when(lambda s: s.published >= run.records),
        "ingest_behind_frames": behind(lambda s: s.sent - s.received),
        "writers_behind_records": behind(lambda s: s.published - s.written),
        "t_sent_received_published_written": [
            [s.t, s.sent, s.received, s.published, s.written] for s in samples
        ],
    }


def _bottleneck(
    stages: dict[str, Any], replay_s: float, offered: float, cores: dict[str, float]
) -> str | None:
    """Which stage fell behind the paced replay, or None when none did."""
    late = replay_s + LATE_S
    sent = stages.get("replay_sent_all_after_s")
    published = stages.get("ingest_published_all_after_s")
    load = ", ".join(f"{name} {share:.0%}" for name, share in cores.items())
    if sent is None or sent > late:
        return (
            f"the replay could not keep its schedule (its sends wait while ingest's socket is "
            f"full); cores used: {load}"
        )
    if published is None or published > late:
        return f"ingest fell behind the replay; cores used: {load}"
    if stages["writers_behind_records"]["at_75pct"] > offered * LATE_S:
        return f"the writers fell behind ingest; cores used: {load}"
    return None


def _quantiles(before: Sample | None, after: Sample) -> tuple[float | None, float | None]:
    """p50 and p99 in ms of the freshness observed between two samples (None: since start)."""
    counts: dict[str, float] = {}
    for sample, sign in ((after, 1), (before, -1)):
        for family in sample.freshness if sample is not None else ():
            for s in family.samples:
                if s.name == f"{FRESHNESS}_bucket":
                    le = s.labels["le"]
                    counts[le] = counts.get(le, 0.0) + sign * s.value
    delta = Metric(FRESHNESS, "receive -> written, between two samples", "histogram")
    for le, count in counts.items():
        delta.add_sample(f"{FRESHNESS}_bucket", {"le": le}, count)
    p50, p99 = (histogram_quantile([delta], FRESHNESS, q) for q in (0.5, 0.99))
    return _ms(p50), _ms(p99)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _steady(run: Through) -> dict[str, Any] | None:
    """Freshness from WARMUP_S after the replay's first frame to the end: start-up (the
    writers' first flushes into QuestDB) left out. None when the run was shorter."""
    final = run.samples[-1]
    first = next((s for s in run.samples[:-1] if s.t >= WARMUP_S), None)
    if first is None:
        return None
    p50, p99 = _quantiles(first, final)
    return {
        "from_s": first.t,
        "records": final.written - first.written,
        "freshness_ms_p50": p50,
        "freshness_ms_p99": p99,
    }


def _paced(
    source: Path, root: Path, rate: int, repeats: int, per_copy: tuple[float, float]
) -> dict[str, Any]:
    records_per_copy, span_s = per_copy
    speed = rate / (records_per_copy / span_s)
    chosen = root / f"recordings-{rate}"
    chosen.mkdir()
    made: Repeated = repeat_recording(source, chosen / RECORDING, repeats)
    load = os.getloadavg()[0]  # other work on the machine competes for its cores
    run = through(
        chosen, root / f"state-{rate}", made, repeats, writers=None, speed=speed, sample=True
    )
    replay_s = repeats * span_s / speed
    offered = run.records / replay_s
    achieved = run.records / run.seconds
    stages = _stages(run, replay_s, made.frames)
    freshness = run.summary["freshness_ms"]
    cores = {name: round(cpu / run.seconds, 2) for name, cpu in run.cpu_s.items()}
    behind = _bottleneck(stages, replay_s, offered, cores) if stages["samples"] else "not sampled"
    steady = _steady(run) if run.samples else None
    if behind is None and achieved < SUSTAINED_SHARE * offered:
        behind = "draining took longer than the replay"
    sustained = behind is None
    return {
        "target_records_per_s": rate,
        "load_average_1m_before": round(load, 2),
        "speed_factor": round(speed, 1),
        "frames": made.frames,
        "records": run.records,
        "writers": len(run.summary["processes"]) - 1,
        "offered_records_per_s": round(offered),
        "offered_frames_per_s": round(made.frames / replay_s),
        "achieved_records_per_s": round(achieved),
        "replay_seconds": round(replay_s, 2),
        "seconds": round(run.seconds, 2),
        "sustained": sustained,
        "fell_behind": behind,
        "stages": stages,
        "cores_used": cores,
        "steady": steady,
        "freshness_ms_p50": None if steady is None else steady["freshness_ms_p50"],
        "freshness_ms_p99": None if steady is None else steady["freshness_ms_p99"],
        "whole_run_freshness_ms_p50": freshness["p50"],
        "whole_run_freshness_ms_p99": freshness["p99"],
        "freshness_measured": "local receive -> written to QuestDB (the writers' "
        f"{FRESHNESS}, interpolated in its buckets); freshness_ms_* once the writers first "
        "WARMUP_S in (steady), whole_run_* from the first record",
        "counts_checked": "rows == published (trades, quotes, books), candles == bars, dlq 0",
    }


def _print(result: dict[str, Any]) -> None:
    stages = result["stages"]
    writers = stages.get("writers_behind_records", {})
    ingest = stages.get("ingest_behind_frames", {})
    verdict = "sustained" if result["sustained"] else f"NOT sustained: {result['fell_behind']}"
    window = result["steady"]
    steady = (
        f" (from {window['from_s']} s, {window['records']:,} records)"
        if window
        else " (none: the run was shorter than the warm-up)"
    )
    print(
        f"  paced {result['target_records_per_s']:,} records/s (speed x{result['speed_factor']}, "
        f"{result['frames']:,} frames, {result['offered_frames_per_s']:,} frames/s; ingest + "
        f"{result['writers']} writer process(es)): offered {result['offered_records_per_s']:,}/s "
        f"over {result['replay_seconds']} s, achieved {result['achieved_records_per_s']:,}/s "
        f"over {result['seconds']} s; {verdict}. Replay sent all after "
        f"{stages.get('replay_sent_all_after_s')} s, ingest published all after "
        f"{stages.get('ingest_published_all_after_s')} s; behind at 25/50/75%: ingest "
        f"{ingest.get('at_25pct')}/{ingest.get('at_50pct')}/{ingest.get('at_75pct')} frames, "
        f"writers {writers.get('at_25pct')}/{writers.get('at_50pct')}/{writers.get('at_75pct')} "
        f"records. Freshness receive -> written, steady{steady}: p50 "
        f"{result['freshness_ms_p50']} ms, p99 {result['freshness_ms_p99']} ms; whole run "
        f"p50 {result['whole_run_freshness_ms_p50']} ms, p99 "
        f"{result['whole_run_freshness_ms_p99']} ms ({result['records']:,} records, "
        "counts checked)",
        flush=True,
    )


def run() -> dict[str, Any]:
    recordings = recordings_path()
    source = recordings / RECORDING
    if not source.is_file():
        print(f"  skipped: no recording at {source}")
        return {"skipped": f"no recording at {source}"}
    per_copy = recorded_rate(source)
    results: dict[str, Any] = {"recorded_records_per_s": round(per_copy[0] / per_copy[1], 1)}
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rate in (TARGET_RATE, *FALLBACK_RATES):
            repeats = (
                REPEATS
                if rate == TARGET_RATE
                else max(1, math.ceil(rate * FALLBACK_SECONDS / per_copy[0]))
            )
            result = _paced(source, root, rate, repeats, per_copy)
            _print(result)
            runs.append(result)
            if result["sustained"]:
                break
    results["runs"] = runs
    with tempfile.TemporaryDirectory() as tmp:
        low = _paced(
            source,
            Path(tmp),
            LOW_RATE,
            max(1, math.ceil(LOW_RATE * FALLBACK_SECONDS / per_copy[0])),
            per_copy,
        )
    _print(low)
    print(f"    cores used at {LOW_RATE:,} records/s: {low['cores_used']}", flush=True)
    results["low_rate"] = low
    steady = [r for r in runs if r["sustained"]]
    results["highest_sustained_records_per_s"] = (
        steady[0]["target_records_per_s"] if steady else None
    )
    if not runs[0]["sustained"]:
        print(
            f"  {TARGET_RATE:,} records/s is not sustained on this machine; highest sustained: "
            f"{results['highest_sustained_records_per_s'] or 'none of those tried'}"
        )
    return results


if __name__ == "__main__":
    run()
