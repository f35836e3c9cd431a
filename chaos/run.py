"""Run the chaos suite: start everything, inject the faults, drain, compare, summarize."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from chaos.compare import (
    Diff,
    collapse,
    compare_keyed,
    compare_multiset,
    rows_of_records,
    rows_of_table,
    without,
)
from chaos.history import ArchiveWorkload, verify_history
from chaos.processes import Child, PeakMemory
from chaos.session import (
    HISTORY_EXCHANGE,
    Feed,
    Horizons,
    build_feeds,
    chaos_config,
    expected_records,
    write_config,
    write_sessions,
)
from chaos.tap import Tap
from marketstream.cli.common import positive_float, positive_int
from marketstream.config import PipelineConfig, load_config
from marketstream.errors import MarketStreamError
from marketstream.ingest.publisher import RETRY_MAX_S
from marketstream.schemas.codec import decode_record
from marketstream.schemas.columns import SPEC_BY_TABLE, SPECS, spec_of
from marketstream.schemas.records import Record
from marketstream.services import process as service_process
from marketstream.services.manager import start_services, stop_services
from marketstream.services.state import load_record
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.redis_bus import connect, stream_key

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "chaos" / "results.json"
DEFAULT_STATE = REPO / ".marketstream-chaos"
KINDS = (
    "ingest_kill",
    "writer1_kill",
    "writer2_kill",
    "redis_kill",
    "questdb_kill",
    "questdb_pause",
    "archiver_kill",
    "exchange_drop",
)
EXCLUDED = {
    "hot_path": "none: every column of every row, recv_ts included, against what Redis "
    "acknowledged (the tap)",
    "ingest_input": "recv_ts (a replay's receive clock is not the recording's); books "
    "(after a reconnect a book restarts from a snapshot, so which seq are published "
    "depends on when the connection broke)",
    "archive": "none: every column of every generated row",
}


@dataclass(frozen=True)
class Profile:
    minutes: float
    seed: int
    speed: float
    maxlen: int
    trim_interval_s: float
    pause_s: float
    repeats: int  # faults of each kind
    kinds: tuple[str, ...] = KINDS
    drain_timeout_s: float = 240.0
    trades_per_day: int = 500


@dataclass
class Progress:
    """QuestDB rows of the replayed exchanges over time, for stall measurement."""

    samples: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, t: float, rows: int) -> None:
        with self.lock:
            self.samples.append((t, rows))

    def longest_stall(self, start: float, end: float) -> float:
        """The longest time within [start, end] without the row count growing."""
        with self.lock:
            points = [(t, n) for t, n in self.samples if start <= t <= end]
        if not points:
            return round(end - start, 1)
        longest, since, last = 0.0, start, -1
        for t, n in points:
            if n > last:
                longest = max(longest, t - since)
                since, last = t, n
        return round(max(longest, end - since), 1)


class Run:
    def __init__(self, profile: Profile, state_dir: Path) -> None:
        self.p = profile
        self.state_dir = state_dir.resolve()
        self.log_dir = self.state_dir / "logs-chaos"
        self.rng = random.Random(profile.seed)
        self.memory = PeakMemory()
        self.children: dict[str, Child] = {}
        self.faults: list[dict[str, Any]] = []
        self.progress = Progress()
        self.t0 = time.monotonic()
        self.stop_sampler = threading.Event()
        self.harness_notes: list[str] = []
        self.restarts_after_exit: Counter[str] = Counter()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def note(self, text: str) -> None:
        print(f"chaos [{self.now():7.1f}s] {text}", file=sys.stderr, flush=True)

    # set-up ----------------------------------------------------------------------------

    def setup(self) -> None:
        base = load_config(None)
        if self.state_dir.exists():
            stop_services(base, self.state_dir)
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True)
        seconds = self.p.minutes * 60
        recordings = self.state_dir / "recordings"
        write_sessions(recordings, seconds, self.p.speed, self.p.seed)
        ports = {name: service_process.free_port() for name in ("kraken", "okx", "bybit")}
        self.feeds: list[Feed] = build_feeds(recordings, base, ports)
        self.horizons = Horizons.around_replay(datetime.now(UTC).date())
        data = chaos_config(
            base, self.feeds, self.horizons,
            maxlen=self.p.maxlen, trim_interval_s=self.p.trim_interval_s,
        )  # fmt: skip
        self.config_path = self.state_dir / "chaos.yaml"
        write_config(self.config_path, data)
        self.config: PipelineConfig = load_config(self.config_path)
        self.note(f"starting services in {self.state_dir}")
        status = start_services(self.config, self.state_dir)
        if not status.all_answering:
            failing = [n for n, s in status.services.items() if not s.answering]
            raise MarketStreamError(f"chaos: services did not start: {', '.join(failing)}")
        self.endpoints = self._endpoints()
        self.questdb = QuestDBHttp(self.endpoints["questdb_http"], timeout_s=3.0)
        streams = [stream_key(c, f.exchange) for f in self.feeds for c in f.channels]
        self.tap = Tap(self.endpoints["redis"], streams)
        self.tap.create_groups()
        self.tap.start()
        common = ["--config", str(self.config_path)]
        state = ["--state-dir", str(self.state_dir)]
        for feed in self.feeds:
            self._child(
                f"replay-{feed.exchange}",
                ["replay-server", "--recording", str(feed.recording),
                 "--port", str(feed.port), "--speed", str(self.p.speed)],
            )  # fmt: skip
        for feed in self.feeds:
            self._wait_http(f"{feed.http_url}/_control/status")
        self._child("ingest", [*common, "ingest", "--metrics-port", "0", *state])
        for n in (1, 2):
            self._child(
                f"writer-{n}",
                [*common, "write-hot", "--consumer", f"chaos-w{n}", "--shard", f"{n}/2",
                 "--metrics-port", "0", *state],
            )  # fmt: skip
        self.archive = ArchiveWorkload(
            common=common, state_dir=self.state_dir, log_dir=self.log_dir, memory=self.memory,
            horizons=self.horizons, seed=self.p.seed, trades_per_day=self.p.trades_per_day,
            rng=random.Random(self.p.seed + 1),
        )  # fmt: skip
        self.archive.start()
        threading.Thread(target=self._sample, name="chaos-sampler", daemon=True).start()

    def _endpoints(self) -> dict[str, str]:
        record = load_record(self.state_dir)
        if record is None:
            raise MarketStreamError(f"chaos: no services.json in {self.state_dir}")
        return dict(record.endpoints)

    def _child(self, role: str, args: list[str]) -> Child:
        child = Child(role, args, self.log_dir, self.memory)
        child.start()
        self.children[role] = child
        return child

    def _wait_http(self, url: str, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
                    value: dict[str, Any] = orjson.loads(answer.read())
                    return value
            except OSError:
                if time.monotonic() > deadline:
                    raise MarketStreamError(f"chaos: {url} did not answer") from None
                time.sleep(0.2)

    # watching --------------------------------------------------------------------------

    def _sample(self) -> None:
        tables = [spec.table for spec in SPECS]
        while not self.stop_sampler.wait(1.0):
            for role, child in list(self.children.items()):
                code = child.check()
                if code is not None:
                    self.note(f"{role} exited on its own with {code}: {child.log_tail(2)}")
                    time.sleep(1.0)
                    child.start()
                    self.restarts_after_exit[role] += 1
            record = load_record(self.state_dir)
            if record is not None:
                for name, proc in record.processes.items():
                    self.memory.see(name, proc.pid)
            total = 0
            try:
                for table in tables:
                    answer = self.questdb.exec(
                        f"SELECT count() FROM {table} WHERE exchange != '{HISTORY_EXCHANGE}'"  # noqa: S608
                    )
                    total += int(answer["dataset"][0][0])
            except (MarketStreamError, KeyError, IndexError):
                continue
            self.progress.add(time.monotonic() - self.t0, total)

    # faults ----------------------------------------------------------------------------

    def schedule(self) -> list[tuple[float, str]]:
        kinds = [k for k in self.p.kinds for _ in range(self.p.repeats)]
        self.rng.shuffle(kinds)
        window = self.p.minutes * 60
        start, end = 0.08 * window, 0.85 * window
        slot = (end - start) / len(kinds)
        return [
            (start + i * slot + self.rng.uniform(0, slot * 0.5), kind)
            for i, kind in enumerate(kinds)
        ]

    def wait_first_rows(self, timeout_s: float = 120.0) -> None:
        """Faults start once rows reach QuestDB: a fault during start-up tests start-up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            samples = self.progress.samples
            if samples and samples[-1][1] > 0:
                return
            time.sleep(0.5)
        self.harness_notes.append(f"no row reached QuestDB within {timeout_s:.0f} s")

    def inject_all(self) -> None:
        origin = time.monotonic()
        for at, kind in self.schedule():
            wait = at - (time.monotonic() - origin)
            if wait > 0:
                time.sleep(wait)
            started = self.now()
            self.note(f"fault {kind}")
            detail = self.inject(kind)
            self.faults.append({"kind": kind, "at_s": started, "end_s": self.now(), **detail})

    def inject(self, kind: str) -> dict[str, Any]:
        actions: dict[str, Callable[[], dict[str, Any]]] = {
            "ingest_kill": lambda: self._kill_restart("ingest"),
            "writer1_kill": lambda: self._kill_restart("writer-1"),
            "writer2_kill": lambda: self._kill_restart("writer-2"),
            "redis_kill": lambda: self._kill_service("redis"),
            "questdb_kill": lambda: self._kill_service("questdb"),
            "questdb_pause": self._pause_questdb,
            "archiver_kill": lambda: {"injected": self.archive.request_kill(timeout_s=180.0)},
            "exchange_drop": self._drop_connections,
        }
        return actions[kind]()

    def _pause_questdb(self) -> dict[str, Any]:
        pid = self._service_pid("questdb")
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(self.p.pause_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        return {"paused_s": self.p.pause_s}

    def _drop_connections(self) -> dict[str, Any]:
        dropped = 0
        for feed in self.feeds:
            dropped += int(self._wait_http(f"{feed.http_url}/_control/drop")["dropped"])
        return {"connections_dropped": dropped}

    def _kill_restart(self, role: str) -> dict[str, Any]:
        child = self.children[role]
        child.kill()
        time.sleep(self.rng.uniform(0.5, 3.0))
        child.start()
        return {"injected": True}

    def _service_pid(self, name: str) -> int:
        record = load_record(self.state_dir)
        if record is None or name not in record.processes:
            raise MarketStreamError(f"chaos: {name} is not recorded in services.json")
        return record.processes[name].pid

    def _kill_service(self, name: str) -> dict[str, Any]:
        pid = self._service_pid(name)
        self.memory.see(name, pid)
        before = self._endpoints()
        os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)  # our child (services were spawned here): reap it
        except ChildProcessError:
            while service_process.cmdline(pid):
                time.sleep(0.05)
        time.sleep(self.rng.uniform(0.5, 3.0))
        started = time.monotonic()
        status = start_services(self.config, self.state_dir)
        after = self._endpoints()
        moved = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
        if moved:
            self.harness_notes.append(f"{name} restarted on other ports: {moved}")
        return {
            "injected": True,
            "restart_s": round(time.monotonic() - started, 1),
            "answering": status.all_answering,
        }

    # the end ---------------------------------------------------------------------------

    def wait_replays(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = [self._wait_http(f"{feed.http_url}/_control/status") for feed in self.feeds]
            if all(s["finished"] for s in states):
                return True
            time.sleep(1.0)
        return False

    def drain(self, expected_rows: int, timeout_s: float) -> float | None:
        """Until QuestDB holds as many replayed rows as expected (and a bit longer, so late
        duplicates show); the time it took, None on timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            samples = self.progress.samples
            if samples and samples[-1][1] >= expected_rows:
                time.sleep(3.0)
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
        return None

    def stop_all(self) -> dict[str, int | None]:
        self.stop_sampler.set()
        codes = {role: child.stop() for role, child in self.children.items()}
        self.tap.stop()
        return codes


def _published(tap: Tap) -> tuple[dict[str, list[Record]], int]:
    """Tap entries by table, in stream order; and how many entries repeated a record."""
    by_table: dict[str, list[Record]] = {spec.table: [] for spec in SPECS}
    seen: Counter[tuple[str, bytes]] = Counter()
    for (stream, _), data in sorted(tap.snapshot().items()):
        record = decode_record(data)
        by_table[spec_of(record).table].append(record)
        seen[(stream, data)] += 1
    repeats = sum(n - 1 for n in seen.values())
    return by_table, repeats


def compare_hot(run: Run, published: dict[str, list[Record]]) -> dict[str, Diff]:
    http = QuestDBHttp(run.endpoints["questdb_http"], timeout_s=120)
    from marketstream.tiers.questdb_partitions import _exported  # noqa: PLC0415

    diffs = {}
    for spec in SPECS:
        expected = collapse(spec, rows_of_records(spec, published[spec.table]))
        tables = {row[0] for row in http.exec("SELECT table_name FROM tables()")["dataset"]}
        held: list[tuple[Any, ...]] = []
        if spec.table in tables:
            import pyarrow as pa  # noqa: PLC0415
            import pyarrow.parquet as pq  # noqa: PLC0415

            columns = ", ".join(_exported(c) for c in spec.columns)
            data = http.export(
                f"SELECT {columns} FROM {spec.table} "  # noqa: S608 - names from our specs
                f"WHERE exchange != '{HISTORY_EXCHANGE}'"
            )
            if data:
                held = rows_of_table(spec, pq.read_table(pa.BufferReader(data)))
        diffs[spec.table] = compare_keyed(spec, expected, held, spec.table)
    return diffs


def compare_input(run: Run, published: dict[str, list[Record]]) -> dict[str, Any]:
    """The offline normalization of every replayed frame against what ingest published."""
    offline: dict[str, list[Record]] = {spec.table: [] for spec in SPECS}
    for feed in run.feeds:
        for record in expected_records(feed, run.config):
            offline[spec_of(record).table].append(record)
    out: dict[str, Any] = {}
    for table in ("trades", "quotes", "candles", "funding"):
        spec = SPEC_BY_TABLE[table]
        want = rows_of_records(spec, offline[table])
        got = list(collapse(spec, rows_of_records(spec, published[table])).values())
        if "recv_ts" in spec.names:
            diff = compare_multiset(
                without(spec, want, ["recv_ts"]), without(spec, got, ["recv_ts"]), table
            )
            if table == "trades":  # trades have a key without recv_ts: say which differ
                diff.altered = 0
        else:
            diff = compare_keyed(spec, collapse(spec, want), got, table)
        out[table] = diff.as_dict()
    out["books_published"] = len(published["books"])
    return out


def summarize(run: Run, profile: Profile, extra: dict[str, Any]) -> dict[str, Any]:
    published, repeats = _published(run.tap)
    hot = compare_hot(run, published)
    hot_total = Diff()
    for diff in hot.values():
        hot_total.add(diff)
    archive = verify_history(run.config, run.endpoints, run.archive)
    arch_total = archive["total"]
    faults = Counter(f["kind"] for f in run.faults if f.get("injected", True))
    last_fault_end = max((f["end_s"] for f in run.faults), default=0.0)
    client = connect(run.endpoints["redis"])
    try:
        dlq = int(client.xlen("md:dlq"))
    finally:
        client.close()
    frames = extra.pop("replayed_frames")
    lost = hot_total.lost + arch_total["lost"]
    duplicated = (
        hot_total.duplicated + hot_total.unexpected
        + arch_total["duplicated"] + arch_total["unexpected"]
    )  # fmt: skip
    altered = hot_total.altered + arch_total["altered"]
    stall_after = extra.pop("stall_after_last_fault_s")
    ingest_input = compare_input(run, published)
    lost_at_ingest = sum(
        ingest_input[t]["lost"] for t in ("trades", "quotes", "candles", "funding")
    )
    offered = sum(ingest_input[t]["expected"] for t in ("trades", "quotes", "candles", "funding"))
    ingest_kills = run.children["ingest"].kills
    allowed_s = ingest_loss_seconds(run.faults, ingest_kills)
    bound = round(allowed_s * offered / (profile.minutes * 60))
    summary: dict[str, Any] = {
        "started": extra.pop("started"),
        "profile": {
            "minutes": profile.minutes,
            "seed": profile.seed,
            "speed": profile.speed,
            "streams_maxlen": profile.maxlen,
            "trim_interval_s": profile.trim_interval_s,
            "questdb_pause_s": profile.pause_s,
        },
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "records_in": {
            "replayed_frames": frames,
            "published_by_ingest": sum(len(v) for v in published.values()),
            "generated_rows": archive["total"]["expected"],
        },
        "faults": {kind: faults.get(kind, 0) for kind in profile.kinds},
        "lost": lost,
        "duplicated": duplicated,
        "altered": altered,
        "stall_s": {
            "after_last_fault": stall_after,
            "longest_during_run": run.progress.longest_stall(0, last_fault_end),
        },
        "peak_rss_mb": run.memory.as_mb(),
        "hot_path": {
            "total": hot_total.as_dict(),
            "tables": {k: v.as_dict() for k, v in hot.items()},
            "entries_repeating_a_record": repeats,
        },
        "lost_at_ingest": {
            "records": lost_at_ingest,
            "ingest_kills": ingest_kills,
            "allowed": bound,
            "allowed_feed_s": round(allowed_s, 2),
            "note": "replayed records ingest never published: in flight at an ingest kill "
            "(up to 'allowed': 2 s of feed per kill, and for a kill during a Redis outage or "
            "just after it, the feed since Redis went away), else dropped by ingest itself",
        },
        "ingest_input": ingest_input,
        "archive": {**archive, "workload": run.archive.as_dict()},
        "processes": {
            role: {
                "starts": c.starts,
                "kills": c.kills,
                "unexpected_exits": c.unexpected_exits,
            }
            for role, c in run.children.items()
        },
        "dlq_entries": dlq,
        "tap": {"reconnects": run.tap.reconnects, "errors": run.tap.errors[:5]},
        "excluded_columns": EXCLUDED,
        "faults_log": run.faults,
        "harness_notes": run.harness_notes,
        **extra,
    }
    summary["ok"] = (
        lost == 0
        and duplicated == 0
        and altered == 0
        and all(summary["faults"][k] >= profile.repeats for k in profile.kinds)
        and stall_after is not None
        and stall_after <= 10
        and lost_at_ingest <= bound
    )
    return summary


KILL_LOSS_S = 2.0  # one ingest kill: its unpublished records (publish_interval_ms), sockets


def ingest_loss_seconds(faults: list[dict[str, Any]], ingest_kills: int) -> float:
    """Seconds of feed the ingest kills may lose. A kill loses what ingest held unpublished:
    a few ms of feed plus socket buffers, for which two seconds is generous; and a kill while
    Redis was away, or before the publisher's next attempt once it was back, also loses what
    ingest accepted since Redis went away, which it holds in memory by design (a kill during
    an outage is a double fault; the hot path must still lose nothing)."""
    outages = [(f["at_s"], f["end_s"]) for f in faults if f["kind"] == "redis_kill"]
    held = 0.0
    for kill in (f for f in faults if f["kind"] == "ingest_kill" and f.get("injected", True)):
        at = kill["at_s"]
        held += max(
            (at - down for down, up in outages if down <= at <= up + RETRY_MAX_S),
            default=0.0,
        )
    return ingest_kills * KILL_LOSS_S + held


def run_chaos(profile: Profile, state_dir: Path = DEFAULT_STATE) -> dict[str, Any]:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    run = Run(profile, state_dir)
    try:
        run.setup()
        run.wait_first_rows()
        run.note(f"running {profile.minutes:g} min, faults: {len(run.schedule())}")
        run.inject_all()
        last_fault_end = run.now()
        replays_done = run.wait_replays(timeout_s=profile.minutes * 60 + 300)
        run.note("replays finished; stopping the archive workload")
        run.archive.stop()
        published, _ = _published(run.tap)
        expected_rows = sum(
            len(collapse(spec, rows_of_records(spec, published[spec.table]))) for spec in SPECS
        )
        drain_s = run.drain(expected_rows, profile.drain_timeout_s)
        drain_end = run.now()
        stall = run.progress.longest_stall(last_fault_end, drain_end)
        run.note(f"drained in {drain_s} s; comparing")
        frames = sum(
            int(run._wait_http(f"{feed.http_url}/_control/status")["sent"]) for feed in run.feeds
        )
        codes = run.stop_all()
        summary = summarize(
            run,
            profile,
            {
                "started": started,
                "replayed_frames": frames,
                "stall_after_last_fault_s": stall if drain_s is not None else None,
                "drain_s": drain_s,
                "replays_finished": replays_done,
                "graceful_stop_exit_codes": codes,
            },
        )
    finally:
        run.stop_sampler.set()
        for child in run.children.values():
            child.stop(timeout_s=5)
        if hasattr(run, "tap"):
            run.tap.stop()
        if hasattr(run, "archive"):
            run.archive.stop_event.set()
            if run.archive.archiver is not None:
                run.archive.archiver.stop(timeout_s=5)
        if hasattr(run, "config"):
            stop_services(run.config, run.state_dir)
    return summary


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    number, count = positive_float, positive_int
    parser.add_argument("--minutes", type=number, default=10.0, help="replay length (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=number, default=1.0, help="times the recorded pace")
    parser.add_argument("--maxlen", type=count, default=100, help="streams.maxlen")
    parser.add_argument("--trim-interval", type=number, default=0.1, help="streams.trim_interval_s")
    parser.add_argument("--pause", type=number, default=30.0, help="QuestDB SIGSTOP seconds")
    parser.add_argument("--repeats", type=count, help="faults per kind (default: 2 per 10 min)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # stop the services on the way out
    repeats = args.repeats or max(2, round(args.minutes / 5))
    profile = Profile(
        minutes=args.minutes, seed=args.seed, speed=args.speed, maxlen=args.maxlen,
        trim_interval_s=args.trim_interval, pause_s=args.pause, repeats=repeats,
    )  # fmt: skip
    summary = run_chaos(profile, args.state_dir)
    text = orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if summary["ok"] else 1
