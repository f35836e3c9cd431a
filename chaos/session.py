"""The chaos run's input: long exchange sessions, their offline normalization, the config.

The sessions are the deterministic Kraken v2, OKX v5 and Bybit v5 sessions of
`marketstream/venues/<name>/sessions.py`, made as long as the run (100 ms steps at recorded pace):
unique trade ids, checksummed books, candles and funding, all in the exchanges' documented
formats. Their
exchange times lie on 2025-11-13, so the run's horizons are set from the clock to keep that
day hot while generated history lies past them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from marketstream.config import PipelineConfig
from marketstream.ingest.normalize import normalize_recording
from marketstream.run.demo import find_feeds
from marketstream.schemas.codec import decode_record
from marketstream.schemas.records import Record
from marketstream.venues.base.sessions import STEP_MS, T0_MS, write_session
from marketstream.venues.registry import DIALECTS, SESSIONS

EXCHANGES = ("kraken", "okx", "bybit")
HISTORY_EXCHANGE = "binance"  # generated history: an exchange the replay never uses
REPLAY_DAY = datetime.fromtimestamp(T0_MS / 1000, UTC).date()


@dataclass(frozen=True, slots=True)
class Feed:
    exchange: str
    recording: Path
    symbols: tuple[str, ...]
    channels: tuple[str, ...]
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{DIALECTS[self.exchange].ws_path}"


def write_sessions(directory: Path, seconds: float, speed: float, seed: int) -> list[Path]:
    """One recording per exchange, `seconds` long at `speed` times the recorded pace."""
    directory.mkdir(parents=True, exist_ok=True)
    steps = max(50, int(seconds * speed * 1000 / STEP_MS))
    paths = []
    for offset, exchange in enumerate(EXCHANGES):
        path = directory / f"{exchange}.jsonl"
        write_session(str(path), SESSIONS[exchange](steps, seed=seed * 10 + offset + 1))
        paths.append(path)
    return paths


def build_feeds(directory: Path, config: PipelineConfig, ports: dict[str, int]) -> list[Feed]:
    """Symbols and channels read from each recording, as `marketstream demo` does."""
    return [
        Feed(f.exchange, f.recording, f.symbols, f.channels, ports[f.exchange])
        for f in find_feeds(directory, config)
    ]


def expected_records(feed: Feed, config: PipelineConfig) -> list[Record]:
    """What ingest would publish from the whole session, through the same mapper path."""
    out = io.BytesIO()
    normalize_recording(feed.recording, feed.exchange, out, config.ingest, symbols=feed.symbols)
    return [decode_record(line) for line in out.getvalue().splitlines()]


@dataclass(frozen=True, slots=True)
class Horizons:
    """Ages that keep the replayed day hot and put the generated days past a horizon."""

    hot_days: int
    warm_days: int
    today: date

    @classmethod
    def around_replay(cls, today: date) -> Horizons:
        age = (today - REPLAY_DAY).days
        return cls(hot_days=age + 5, warm_days=age + 5 + 100, today=today)

    def warm_day(self, round_index: int) -> date:
        """A day due for ClickHouse (past hot_days, within warm_days)."""
        return self.today - timedelta(days=self.hot_days + 2 + round_index)

    def cold_day(self, round_index: int) -> date:
        """A day due for Parquet (past warm_days)."""
        return self.today - timedelta(days=self.warm_days + 2 + round_index)

    def tier_of(self, day: date) -> str:
        age = (self.today - day).days
        if age > self.warm_days:
            return "cold"
        return "warm" if age > self.hot_days else "hot"


def chaos_config(
    base: PipelineConfig,
    feeds: list[Feed],
    horizons: Horizons,
    *,
    maxlen: int,
    trim_interval_s: float,
) -> dict[str, Any]:
    """The run's configuration: the replayed exchanges only, small streams, the horizons."""
    data = base.model_dump(mode="json")
    data["exchanges"] = {
        feed.exchange: {
            "enabled": True,
            "url": feed.ws_url,
            "rest_url": feed.http_url,
            "symbols": list(feed.symbols),
            "channels": list(feed.channels),
        }
        for feed in feeds
    }
    data["sources"] = {}  # the live price APIs are out of reach: chaos replays exchanges only
    data["streams"].update(maxlen=maxlen, trim_interval_s=trim_interval_s)
    data["horizons"] = {"hot_days": horizons.hot_days, "warm_days": horizons.warm_days}
    data["hot"]["claim_idle_ms"] = 5000  # a killed writer's entries move on within seconds
    data["ingest"]["metrics_port"] = 0
    data["hot"]["metrics_port"] = 0
    data["archive"]["metrics_port"] = 0
    PipelineConfig.model_validate(data)  # fail here, not in six processes
    return data


def write_config(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
