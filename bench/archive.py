"""The warm and cold tiers: archive rows/s per hop, and what each tier's bytes cost.

- hops: generated history (30 days, 2 exchanges x 2 symbols) loaded into QuestDB, then
  `archive --once` twice: first with a warm horizon far away (hot -> warm only), then with
  the default one (warm -> cold); rows/s per hop from the moves' own timings;
- compression: bytes per row of each table in ClickHouse (compressed parts on disk) and in
  the cold Parquet files, on the same rows;
- raw frames: the shipped recordings normalized, their rows written as cold Parquet files,
  against the bytes of the exchange frames they came from.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ingest import _processor
from bench.local_services import running_services
from marketstream.archiver.moves import HOT_TO_WARM, WARM_TO_COLD
from marketstream.config import load_config
from marketstream.generate.history import HistoryConfig, generate
from marketstream.generate.hot_load import load_history
from marketstream.replay.recording_format import read_recording
from marketstream.schemas.arrow import to_arrow
from marketstream.schemas.columns import SPEC_BY_CLASS, SPECS
from marketstream.schemas.records import Record
from marketstream.tiers.cold_parquet import encode_partition, read_metadata
from marketstream.wiring import build_archiver, questdb_http
from marketstream.writers.hot_writer_questdb import wal_applied
from tests.conftest import recordings_path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "pipeline.yaml"
DAYS = 30
HISTORY = HistoryConfig(
    exchanges=("binance", "okx"), symbols=("BTC-USDT", "ETH-USDT"), trades_per_day=10_000
)


def _hops(state: Path) -> dict[str, Any]:
    config = load_config(CONFIG, environ={})
    http = questdb_http(config, state)
    newest = datetime.now(UTC).date() - timedelta(days=config.horizons.warm_days + 10)
    loaded = load_history(http, generate(HISTORY, newest - timedelta(days=DAYS - 1), newest))
    while not wal_applied(http):
        time.sleep(0.05)
    rows = {name: sum(r for r, _ in days.values()) for name, days in loaded.truth.items()}

    far = config.model_copy(
        update={"horizons": config.horizons.model_copy(update={"warm_days": 100_000})}
    )
    to_warm = build_archiver(far, state)
    to_warm.prepare()
    first = to_warm.run_once()
    warm_bytes = {
        spec.table: to_warm.warm.total_bytes(spec) for spec in SPECS if spec.table in rows
    }
    archiver = build_archiver(config, state)
    second = archiver.run_once()
    cold_bytes = {table: archiver.cold.total_bytes(table) for table in rows}
    if first.failed or second.failed:
        raise RuntimeError(f"archive moves failed: {first.failed + second.failed}")
    per_table = {
        table: {
            "rows": count,
            "clickhouse_bytes_per_row": round(warm_bytes[table][0] / count, 2),
            "clickhouse_compression": round(warm_bytes[table][1] / max(warm_bytes[table][0], 1), 1),
            "parquet_bytes_per_row": round(cold_bytes[table] / count, 2),
            "parquet_vs_clickhouse": round(warm_bytes[table][0] / max(cold_bytes[table], 1), 2),
        }
        for table, count in rows.items()
    }
    return {
        "days": DAYS,
        "rows": sum(rows.values()),
        "hot_to_warm_rows_per_s": round(first.rows_per_s(HOT_TO_WARM)),
        "warm_to_cold_rows_per_s": round(second.rows_per_s(WARM_TO_COLD)),
        "run_seconds": {
            "hot_to_warm": round(first.seconds, 1),
            "warm_to_cold": round(second.seconds, 1),
        },
        "tables": per_table,
    }


def _raw_frames() -> dict[str, Any]:
    """Cold files of the recordings' rows against the bytes of the frames they came from."""
    recordings = recordings_path()
    raw = 0
    rows: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for path in sorted(recordings.glob("*.jsonl")):
        frames = [f for f in read_recording(path) if not f.is_rest]
        processor = _processor(frames[0].exchange, frames[0].url)
        for frame in frames:
            raw += len(frame.frame.encode())
            for record in processor.process(frame.frame, frame.recv_ns).records:
                rows[(SPEC_BY_CLASS[type(record)].table, record.exchange)].append(record)
    parquet = footers = count = 0
    for (table, _exchange), records in rows.items():
        spec = next(s for s in SPECS if s.table == table)
        data = encode_partition(spec, to_arrow(spec, records))
        parquet += len(data)
        footers += read_metadata(data).serialized_size
        count += len(records)
    return {
        "frames_bytes": raw,
        "rows": count,
        "files": len(rows),
        "parquet_bytes": parquet,
        "ratio": round(raw / parquet, 1),
        # each file's footer (~2 KB: schema, statistics, page index) is a fixed cost that a
        # day of live data spreads over far more rows than these short recordings hold
        "ratio_without_footers": round(raw / (parquet - footers), 1),
    }


def run() -> dict[str, Any]:
    with running_services() as (_, state):
        hops = _hops(state)
    print(
        f"  archive ({hops['rows']:,} generated rows, {DAYS} days): hot -> warm "
        f"{hops['hot_to_warm_rows_per_s']:,} rows/s, warm -> cold "
        f"{hops['warm_to_cold_rows_per_s']:,} rows/s"
    )
    for table, figures in hops["tables"].items():
        print(
            f"    {table:<8} ClickHouse {figures['clickhouse_bytes_per_row']} B/row "
            f"({figures['clickhouse_compression']}x), Parquet {figures['parquet_bytes_per_row']} "
            f"B/row ({figures['parquet_vs_clickhouse']}x smaller than ClickHouse)"
        )
    result: dict[str, Any] = {"hops": hops}
    if recordings_path().is_dir():
        raw = _raw_frames()
        print(
            f"  Parquet vs raw frames (shipped recordings): {raw['frames_bytes']:,} B of frames "
            f"-> {raw['parquet_bytes']:,} B of Parquet in {raw['files']} files ({raw['ratio']}x; "
            f"{raw['ratio_without_footers']}x without the files' fixed footers)"
        )
        result["raw_frames"] = raw
    return result
