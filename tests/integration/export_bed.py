"""Data for the export tests, spread over the three tiers by a real archive run (horizons of
2 and 4 days): 6 generated days of binance BTC-USDT (trades, quotes, 1m candles) and
BTC-USDT-PERP (also liquidations and open interest), with books (25 levels) and funding
written through the real hot writer, and the exchange's candles of one day left out so that
day's bars must be built from trades. `source` keeps what went in, by table and symbol."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketstream.config import ServicesConfig
from marketstream.generate.history import HistoryConfig, generate
from marketstream.generate.hot_load import load_history
from marketstream.schemas.arrow import to_arrow
from marketstream.schemas.columns import BOOKS, FUNDING, SPEC_BY_TABLE
from marketstream.schemas.records import Book, Funding, Instrument, InstrumentKind
from marketstream.tiers.days import NS_PER_DAY, day_start_ns
from tests.integration.archive_tiers import (
    Tiers,
    cold_days,
    hot_days,
    start_archived,
    utc_today,
    wait_applied,
    warm_days,
    write_hot,
)
from tests.integration.endpoints import S3Endpoint

DAYS = 6
EXCHANGE = "binance"
SPOT, PERP = "BTC-USDT", "BTC-USDT-PERP"
BOOK_EVERY_NS = 600 * 10**9  # a book every 10 minutes
FUNDING_EVERY_NS = 3600 * 10**9
LEVELS = 25
NO_CANDLES_OFFSET = 2  # the third day (a warm one) has no exchange candles for SPOT


@dataclass
class ExportBed:
    tiers: Tiers
    first_day: date
    last_day: date
    no_candles_day: date  # the exchange's candles of SPOT are missing on this day
    source: dict[tuple[str, str], pa.Table]  # (table, symbol) -> rows, in time order

    @property
    def start_ns(self) -> int:
        return day_start_ns(self.first_day)

    @property
    def end_ns(self) -> int:
        return day_start_ns(self.last_day) + NS_PER_DAY


def books_and_funding(first: date, days: int) -> tuple[list[Book], list[Funding]]:
    books, funding = [], []
    for n in range(days):
        start = day_start_ns(first + timedelta(days=n))
        for k, ts in enumerate(range(start + 7_000_000, start + NS_PER_DAY, BOOK_EVERY_NS)):
            mid = 60_000.0 + 10 * n + (k % 50) * 0.5
            bids = [(round(mid - 0.5 - i / 10, 2), round((i + 1) / 1000, 6)) for i in range(LEVELS)]
            asks = [(round(mid + 0.5 + i / 10, 2), round((i + 1) / 500, 6)) for i in range(LEVELS)]
            books.append(Book(EXCHANGE, SPOT, ts, ts + 1_500_000, n * 1_000_000 + k, bids, asks))
        for k, ts in enumerate(range(start + 3_000_000, start + NS_PER_DAY, FUNDING_EVERY_NS)):
            next_ts = (ts // (8 * 3600 * 10**9) + 1) * 8 * 3600 * 10**9
            rate = round(0.0001 + 0.00001 * ((n + k) % 7), 8)
            funding.append(Funding(EXCHANGE, PERP, ts, rate, 60_001.5 + k, 60_000.5 + k, next_ts))
    return books, funding


def instruments(first: date) -> list[Instrument]:
    """What ingest writes at its start: each instrument's definition (the tiers hold it)."""
    ts = day_start_ns(first) + 1_000

    def one(symbol: str, kind: InstrumentKind, tick: float, lot: float) -> Instrument:
        return Instrument(
            EXCHANGE, symbol, ts, "BTCUSDT", kind, "BTC", "USDT", "USDT", 1.0, 1.0, tick, lot,
            None, "trading",
        )  # fmt: skip

    return [one(SPOT, "spot", 0.01, 0.00001), one(PERP, "linear_perpetual", 0.01, 0.00001)]


def start_export_bed(
    services_config: ServicesConfig,
    tmp_path_factory: pytest.TempPathFactory,
    s3: S3Endpoint,
    redis_url: str,
    bucket: str,
) -> Iterator[ExportBed]:
    """Use as a module-scoped fixture: the services stop when the module is done."""
    written: dict[str, Any] = {}

    def fill(tiers: Tiers, first: date, last: date) -> None:
        no_candles = first + timedelta(days=NO_CANDLES_OFFSET)
        history = HistoryConfig(exchanges=(EXCHANGE,), symbols=(SPOT, PERP), trades_per_day=400)
        generated = []
        for day in generate(history, first, last):
            if day.day == no_candles:
                keep = pc.not_equal(day.candles.column("symbol"), pa.scalar(SPOT))
                day = dataclasses.replace(day, candles=day.candles.filter(keep))  # noqa: PLW2901
            generated.append(day)
        load_history(tiers.http, generated)
        wait_applied(tiers)
        books, funding = books_and_funding(first, DAYS)
        write_hot(tiers, redis_url, [*books, *funding, *instruments(first)])
        written.update(generated=generated, books=books, funding=funding)

    for tiers in start_archived(services_config, tmp_path_factory, s3, bucket, DAYS, fill):
        last = utc_today()
        first = last - timedelta(days=DAYS - 1)
        no_candles = first + timedelta(days=NO_CANDLES_OFFSET)
        generated, books, funding = written["generated"], written["books"], written["funding"]
        source: dict[tuple[str, str], pa.Table] = {}
        for name in ("trades", "quotes", "candles", "liquidations", "open_interest"):
            table = pa.concat_tables(d.tables[name] for d in generated if name in d.tables)
            for symbol in (SPOT, PERP):
                rows = table.filter(pc.equal(table.column("symbol"), pa.scalar(symbol)))
                if rows.num_rows:
                    source[name, symbol] = rows.sort_by("ts")
        source["books", SPOT] = to_arrow(BOOKS, books)
        source["funding", PERP] = to_arrow(FUNDING, funding)
        for spec_table in ("trades", "books", "funding"):  # the range spans all three tiers
            spec = SPEC_BY_TABLE[spec_table]
            assert hot_days(tiers, spec), spec_table
            assert warm_days(tiers, spec), spec_table
            assert cold_days(tiers, spec), spec_table
        yield ExportBed(tiers, first, last, no_candles, source)
