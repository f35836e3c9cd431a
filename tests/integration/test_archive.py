"""The archiver end to end on real QuestDB, the ClickHouse engine (behind the warm gateway,
in its own process) and an S3 API server: 400 generated days tiered by one run, checked
day by day against the generator's truth, and kill -9 at each step of a move then a re-run.

The module has its own services (see `archive_tiers`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketstream.config import ServicesConfig
from marketstream.generate.history import HistoryConfig, generate
from marketstream.query.all_tiers import TieredQueries, ohlcv_from_trades
from marketstream.query.hot_queries import HotQueries, RangeQuery
from marketstream.schemas.arrow import to_arrow
from marketstream.schemas.checksum import key_checksum
from marketstream.schemas.columns import SPEC_BY_TABLE, TRADES
from marketstream.schemas.records import Instrument, Liquidation, OpenInterest, Record
from marketstream.tiers.days import day_of_ns, day_start_ns
from marketstream.tiers.questdb_partitions import HotTier
from tests.integration.archive_tiers import (
    DAYS,
    Tiers,
    Truth,
    archive,
    assert_tiered,
    cold_days,
    hot_days,
    load,
    merge_truth,
    start_tiers,
    symbol_day,
    utc_today,
    warm_days,
    write_hot,
)
from tests.integration.endpoints import S3Endpoint


@pytest.fixture(scope="module")
def tiers(
    services_config: ServicesConfig, tmp_path_factory: pytest.TempPathFactory, s3: S3Endpoint
) -> Iterator[Tiers]:
    yield from start_tiers(services_config, tmp_path_factory, s3, "archive-test")


def test_one_run_tiers_400_days_and_every_day_matches_the_truth(tiers: Tiers) -> None:
    history = HistoryConfig(exchanges=("binance", "okx"), symbols=("BTC-USDT",), trades_per_day=100)
    end = utc_today()
    truth = load(tiers, history, end - timedelta(days=DAYS - 1), end)

    dry = archive(tiers, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    run = archive(tiers, "--once")
    assert run.returncode == 0, run.stdout + run.stderr

    assert_tiered(tiers, truth)
    assert cold_days(tiers, TRADES), "nothing reached the cold tier"
    # A query over the whole range stitches the three tiers into the generated trades.
    first, after = day_start_ns(end - timedelta(days=DAYS - 1)), day_start_ns(end + timedelta(1))
    with HotQueries.connect(tiers.pg_url) as hot:
        queries = TieredQueries(hot, HotTier(tiers.http), tiers.warm, tiers.cold)
        trades = queries.trades("okx", "BTC-USDT", first, after, limit=1_000_000)
        candles = queries.ohlcv("okx", "BTC-USDT", "1d", first, after)
    generated = pa.concat_tables(
        day.trades.filter(pc.equal(day.trades["exchange"], pa.scalar("okx")))
        for day in generate(history, end - timedelta(days=DAYS - 1), end)
    )
    assert key_checksum(TRADES, to_arrow(TRADES, trades)) == key_checksum(TRADES, generated)
    assert [t.ts for t in trades] == sorted(t.ts for t in trades)
    expected = ohlcv_from_trades(generated, "okx", "BTC-USDT", "1d")
    assert [(c.ts, c.high, c.low, c.trades) for c in candles] == [
        (c.ts, c.high, c.low, c.trades) for c in expected
    ]
    assert [c.volume for c in candles] == pytest.approx([c.volume for c in expected])

    # The *_all views: the warm table and the cold files, every generated trade once.
    in_views = tiers.warm.client.query("SELECT count() FROM trades_all").result_rows[0][0]
    assert in_views == sum(rows for day, (rows, _) in truth["trades"].items()) - sum(
        rows for rows, _ in hot_days(tiers, TRADES).values()
    )

    status = archive(tiers, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"tier": "cold"' in status.stdout

    again = archive(tiers, "--once", "--json")
    assert again.returncode == 0
    assert '"moved": []' in again.stdout


def derivative_records(symbol: str, day: date) -> list[Record]:
    """Liquidations, open interest and an instrument refresh of one perpetual on one day, as
    the ingest would publish them: an inverse perpetual and a linear dated future."""
    t0 = day_start_ns(day) + 3_600 * 10**9 + 1  # odd nanoseconds: no generated row's time
    second = 10**9
    base, future = symbol.split("-", maxsplit=1)[0], symbol.replace("-PERP", "-20991231")
    return [
        *(Liquidation("okx", symbol, t0 + i * second, t0 + i * second + 9,
                      "buy" if i % 2 else "sell", 100.0 + i, 0.25 * (1 + i % 3))
          for i in range(12)),
        *(OpenInterest("okx", symbol, t0 + i * 300 * second, t0 + i * 300 * second + 5,
                       80_000.0 + i, None if i % 4 == 0 else (80_000.0 + i) * 100.0)
          for i in range(10)),
        *(Instrument("okx", symbol, t0 + k * 3_600 * second, f"{symbol}-NATIVE",
                     "inverse_perpetual", base, "USDT", base, 100.0, 1.0, 0.1, 1.0, None,
                     "trading")
          for k in range(2)),
        Instrument("okx", future, t0, f"{future}-NATIVE", "linear_future", base, "USDT",
                   "USDT", 0.01, 1.0, 0.1, 1.0, day_start_ns(day) + 10**17, "trading"),
    ]  # fmt: skip


@pytest.mark.parametrize("step", ["copied", "verified", "dropped"])
def test_killed_after_each_step_a_rerun_completes_with_no_loss_or_duplicate(
    tiers: Tiers, step: str, redis_url: str
) -> None:
    # Symbols of their own, on two old days: one for warm, one all the way to cold. The
    # perpetual has generated liquidations and open interest, and more of those and its
    # instruments come through Redis and the real hot writer.
    perp = f"K{step.upper()}-USDT-PERP"
    history = HistoryConfig(
        exchanges=("bybit",), symbols=(f"K{step.upper()}-USDT", perp), trades_per_day=300
    )
    today = utc_today()
    truth: Truth = {}
    old_days = (today - timedelta(days=30), today - timedelta(days=380))
    for day in old_days:
        for table, by_day in load(tiers, history, day, day).items():
            truth.setdefault(table, {}).update(by_day)
    streamed = [record for day in old_days for record in derivative_records(perp, day)]
    merge_truth(truth, write_hot(tiers, redis_url, streamed))
    symbols = (*history.symbols, perp.replace("-PERP", "-20991231"))
    assert {"liquidations", "open_interest", "instruments"} <= set(truth)

    killed = archive(tiers, "--once", failpoint=step)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    rerun = archive(tiers, "--once")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    # The readers of every tier find the streamed rows in warm and cold, in their order.
    first, after = day_start_ns(old_days[1]), day_start_ns(old_days[0] + timedelta(days=1))
    with HotQueries.connect(tiers.pg_url) as hot:
        queries = TieredQueries(hot, HotTier(tiers.http), tiers.warm, tiers.cold)
        found: list[Record] = [
            *queries.records(RangeQuery(Liquidation, "okx", perp, first, after)),
            *queries.records(RangeQuery(OpenInterest, "okx", perp, first, after)),
        ]
        latest = [i for i in queries.instruments("okx") if i.symbol in symbols]
    streamed_events = [r for r in streamed if isinstance(r, Liquidation | OpenInterest)]
    assert found == sorted(
        streamed_events, key=lambda r: (type(r).__name__ != "Liquidation", r.ts, repr(r))
    )
    newest: dict[str, Instrument] = {}  # the last read of each, on the newer day (warm)
    for record in streamed:
        if isinstance(record, Instrument) and day_of_ns(record.ts) == old_days[0]:
            newest[record.symbol] = record
    assert latest == [newest[symbol] for symbol in sorted(newest)]

    for table, days in truth.items():
        spec = SPEC_BY_TABLE[table]
        for day, expected in days.items():
            assert symbol_day(tiers, spec, day, symbols) == expected, (table, day)
            in_tier = warm_days if day > today - timedelta(days=365) else cold_days
            assert day in in_tier(tiers, spec), (table, day)
            assert day not in HotTier(tiers.http).partitions(spec), (table, day)
