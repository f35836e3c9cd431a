"""`--to nautilus` over data spread across the three tiers, read back with nautilus_trader
itself (`ParquetDataCatalog`) and run through a real `BacktestNode`. Runs in .venv-nautilus
(`make test-nautilus`): nautilus_trader pins pandas<3, which requirements.lock does not."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec.structs
import pyarrow as pa
import pytest

from marketstream import wiring
from marketstream.export import ExportInputError, ExportRequest, ExportSummary, run_export
from marketstream.export.formats.base import ExportPlan
from marketstream.export.formats.nautilus import NautilusWriter
from marketstream.export.reading import DayPiece
from marketstream.schemas.arrow import to_arrow
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import BOOKS, TRADES
from marketstream.schemas.records import Book, Instrument, Trade
from tests.integration.export_bed import EXCHANGE, PERP, SPOT, ExportBed

pytestmark = pytest.mark.nautilus

MINUTE_NS = 60 * 10**9
TYPES = ("trades", "quotes", "candles", "books")
SPOT_ID, PERP_ID = f"{SPOT}.BINANCE", f"{PERP}.BINANCE"
SPOT_BARS = f"{SPOT_ID}-1-MINUTE-LAST-EXTERNAL"
# The export_bed's perpetual has no definition in the shipped snapshot: a linear contract of
# 0.01 BTC traded in lots of 0.001 contract, so base sizes step by 0.00001 BTC.
PERP_DEFINITION = Instrument(
    EXCHANGE, PERP, 1_600_000_000 * 10**9, "BTCUSDT", "linear_perpetual", "BTC", "USDT", "USDT",
    0.01, 1.0, 0.01, 0.001, None, "trading",
)  # fmt: skip


SPOT_DEFINITION = Instrument(
    EXCHANGE, SPOT, 1_600_000_000 * 10**9, "BTCUSDT", "spot", "BTC", "USDT", "USDT",
    1.0, 1.0, 0.01, 0.00001, None, "trading",
)  # fmt: skip
T0 = 1_700_006_400 * 10**9  # 2023-11-15 00:00 UTC
DAY_NS = 86_400 * 10**9


@dataclass
class Exported:
    export_bed: ExportBed
    out: Path
    cache: Path
    summary: ExportSummary
    manifest: dict[str, Any]


def export(export_bed: ExportBed, out: Path, cache: Path) -> ExportSummary:
    request = ExportRequest(
        "nautilus", EXCHANGE, (SPOT, PERP), TYPES, export_bed.start_ns, export_bed.end_ns, out
    )
    with wiring.open_tiered(export_bed.tiers.config, export_bed.tiers.state_dir) as tiered:
        return run_export(request, tiered, instruments_cache=cache, progress=False)


@pytest.fixture(scope="module")
def exported(export_bed: ExportBed, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("nautilus")
    cache = root / "instruments.jsonl"
    cache.write_bytes(encode_record(PERP_DEFINITION) + b"\n")
    out = root / "catalog"
    summary = export(export_bed, out, cache)
    manifest = json.loads(summary.manifest.read_bytes())
    return Exported(export_bed, out, cache, summary, manifest)


def nautilus(name: str) -> Any:
    """A nautilus_trader module (it ships no type stubs; the main venv has none of it)."""
    return importlib.import_module(f"nautilus_trader.{name}")


def catalog_at(path: str) -> Any:
    return nautilus("persistence.catalog").ParquetDataCatalog(path)


def num(value: Any) -> float:
    """A nautilus Price or Quantity as the float it stands for (its double carries noise)."""
    return round(float(value), int(value.precision))


def ns(table: pa.Table, column: str) -> list[int]:
    values: list[Any] = table.column(column).cast(pa.int64()).to_pylist()
    return values


def test_the_catalog_holds_the_instruments_with_our_precisions(exported: Exported) -> None:

    catalog = catalog_at(str(exported.out))
    found = {i.id.value: i for i in catalog.instruments()}
    assert sorted(found) == sorted([SPOT_ID, PERP_ID])
    spot, perp = found[SPOT_ID], found[PERP_ID]
    assert type(spot).__name__ == "CurrencyPair"
    assert (spot.raw_symbol.value, spot.price_precision, spot.size_precision) == ("BTCUSDT", 2, 5)
    assert (str(spot.base_currency), str(spot.quote_currency)) == ("BTC", "USDT")
    assert type(perp).__name__ == "CryptoPerpetual"
    assert (perp.raw_symbol.value, perp.is_inverse) == ("BTCUSDT", False)
    for inst in (spot, perp):  # every Price and Quantity at the instrument's precisions
        assert inst.price_increment.precision == inst.price_precision
        assert inst.size_increment.precision == inst.size_precision
    assert set(catalog.list_data_types()) == {
        "currency_pair",
        "crypto_perpetual",
        "trade_tick",
        "quote_tick",
        "bar",
        "order_book_depth10",
    }


@pytest.mark.parametrize("symbol", [SPOT, PERP])
def test_trades_and_quotes_read_back_as_the_source(exported: Exported, symbol: str) -> None:
    AggressorSide = nautilus("model.enums").AggressorSide  # noqa: N806

    catalog = catalog_at(str(exported.out))
    iid = f"{symbol}.BINANCE"
    (inst,) = catalog.instruments(instrument_ids=[iid])
    precisions = (inst.price_precision, inst.size_precision)
    px, sz = (functools.partial(round, ndigits=n) for n in precisions)  # as nautilus rounds
    trades = catalog.trade_ticks(instrument_ids=[iid])
    source = exported.export_bed.source["trades", symbol]
    assert len(trades) == source.num_rows == exported.manifest["extents"][symbol]["trades"]["rows"]
    assert sorted(t.ts_event for t in trades) == ns(source, "ts")
    by_id = {t.trade_id.value: t for t in trades}
    sides = {"buy": AggressorSide.BUYER, "sell": AggressorSide.SELLER}
    for n in (0, source.num_rows // 2, source.num_rows - 1):
        row = source.slice(n, 1).to_pylist()[0]
        tick = by_id[row["trade_id"]]
        assert (num(tick.price), num(tick.size)) == (px(row["price"]), sz(row["size"]))
        assert tick.aggressor_side == sides[row["side"]]
        times = source.slice(n, 1)
        assert [tick.ts_event, tick.ts_init] == ns(times, "ts") + ns(times, "recv_ts")
    assert {(t.price.precision, t.size.precision) for t in trades} == {precisions}

    quotes = catalog.quote_ticks(instrument_ids=[iid])
    source = exported.export_bed.source["quotes", symbol]
    assert len(quotes) == source.num_rows
    assert sorted(q.ts_event for q in quotes) == ns(source, "ts")
    assert sorted(q.ts_init for q in quotes) == sorted(ns(source, "recv_ts"))
    by_time = {(q.ts_event, q.ts_init): q for q in quotes}
    for n in (0, source.num_rows // 2, source.num_rows - 1):
        row = source.slice(n, 1).to_pylist()[0]
        times = source.slice(n, 1)
        tick = by_time[ns(times, "ts")[0], ns(times, "recv_ts")[0]]
        assert (num(tick.bid_price), num(tick.ask_price)) == (
            px(row["bid_px"]),
            px(row["ask_px"]),
        )
        assert (num(tick.bid_size), num(tick.ask_size)) == (
            sz(row["bid_sz"]),
            sz(row["ask_sz"]),
        )
    assert {(q.bid_price.precision, q.ask_size.precision) for q in quotes} == {precisions}


def test_bars_close_at_ts_event_and_fill_the_day_without_exchange_candles(
    exported: Exported,
) -> None:

    catalog = catalog_at(str(exported.out))
    bars = catalog.bars(bar_types=[SPOT_BARS])
    extent = exported.manifest["extents"][SPOT]["candles"]
    assert len(bars) == extent["rows"] > 0
    gap = exported.export_bed.no_candles_day.isoformat()
    assert extent["bars_by_day"][gap]["trades"] > 0  # that day's bars were built from trades
    source = exported.export_bed.source["candles", SPOT]  # the exchange's bars (none on `gap`)
    closes = [ts + MINUTE_NS for ts in ns(source, "ts")]
    assert (bars[0].ts_event, bars[-1].ts_event) == (closes[0], closes[-1])
    assert all(b.ts_init == b.ts_event for b in bars)
    by_close = {b.ts_event: b for b in bars}
    for n in (0, source.num_rows // 3, source.num_rows - 1):
        row = source.slice(n, 1).to_pylist()[0]
        bar = by_close[closes[n]]
        values = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        assert [num(v) for v in values] == [
            row[k] for k in ("open", "high", "low", "close", "volume")
        ]
    gap_start = int(
        dt.datetime.combine(exported.export_bed.no_candles_day, dt.time(), dt.UTC).timestamp()
    )
    in_gap = [b for b in bars if gap_start * 10**9 < b.ts_event <= (gap_start + 86_400) * 10**9]
    assert len(in_gap) == extent["bars_by_day"][gap]["trades"]
    assert {(b.open.precision, b.volume.precision) for b in bars} == {(2, 5)}


def test_books_read_back_as_depth10_of_their_top_levels(exported: Exported) -> None:

    catalog = catalog_at(str(exported.out))
    depths = catalog.query(nautilus("model.data").OrderBookDepth10, identifiers=[SPOT_ID])
    source = exported.export_bed.source["books", SPOT]
    assert len(depths) == source.num_rows
    assert [d.ts_event for d in depths] == ns(source, "ts")
    assert [d.ts_init for d in depths] == ns(source, "recv_ts")
    for depth, n in ((depths[0], 0), (depths[-1], source.num_rows - 1)):
        row = source.slice(n, 1).to_pylist()[0]
        assert depth.sequence == row["seq"]
        for orders, (prices, sizes) in ((depth.bids, row["bids"]), (depth.asks, row["asks"])):
            assert len(orders) == 10
            got = [(num(o.price), num(o.size)) for o in orders]
            assert got == list(zip(prices[:10], sizes[:10], strict=True))
        assert depth.bid_counts == depth.ask_counts == [1] * 10
    assert not catalog.query(
        nautilus("model.data").OrderBookDepth10, identifiers=[PERP_ID]
    )  # the export_bed has none


@pytest.mark.parametrize(
    ("symbol", "account", "balances"),
    [(SPOT, "CASH", ["100000 USDT", "1 BTC"]), (PERP, "MARGIN", ["100000 USDT"])],
)
def test_a_backtest_node_runs_over_the_catalog_as_is(
    exported: Exported, symbol: str, account: str, balances: list[str]
) -> None:
    config_module = nautilus("config")
    data_config = functools.partial(
        config_module.BacktestDataConfig,
        catalog_path=str(exported.out),
        instrument_id=f"{symbol}.BINANCE",
    )
    data_module = nautilus("model.data")

    data = [
        data_config(data_cls=data_module.TradeTick),
        data_config(data_cls=data_module.QuoteTick),
        data_config(data_cls=data_module.Bar, bar_spec="1-MINUTE-LAST"),
    ]
    config = config_module.BacktestRunConfig(
        engine=config_module.BacktestEngineConfig(
            logging=config_module.LoggingConfig(log_level="ERROR")
        ),
        venues=[
            config_module.BacktestVenueConfig(
                name="BINANCE",
                oms_type="NETTING",
                account_type=account,
                starting_balances=balances,
            )
        ],
        data=data,
    )
    results = nautilus("backtest.node").BacktestNode(configs=[config]).run()
    assert len(results) == 1
    extents = exported.manifest["extents"][symbol]
    expected = sum(extents[kind]["rows"] for kind in ("trades", "quotes", "candles"))
    assert results[0].iterations == expected
    first = min(
        min(ns(exported.export_bed.source[k, symbol], "recv_ts")) for k in ("trades", "quotes")
    )
    assert results[0].backtest_start == first


def test_a_second_export_into_the_same_directory_is_refused_before_writing(
    exported: Exported,
) -> None:
    before = sorted(p for p in exported.out.rglob("*"))
    with pytest.raises(
        ExportInputError, match=r"already holds data/currency_pair/BTC-USDT\.BINANCE"
    ):
        export(exported.export_bed, exported.out, exported.cache)
    assert sorted(p for p in exported.out.rglob("*")) == before


def test_short_books_are_padded_with_nautilus_null_orders(tmp_path: Path) -> None:
    request = ExportRequest("nautilus", EXCHANGE, (SPOT,), ("books",), T0, T0 + 10**9, tmp_path)
    writer = NautilusWriter(ExportPlan(request, {SPOT: SPOT_DEFINITION}, tmp_path))
    book = Book(EXCHANGE, SPOT, T0 + 5, T0 + 9, 7, [(100.5, 0.25), (100.25, 1.0)], [(101.0, 2.0)])
    writer.write(DayPiece(EXCHANGE, SPOT, "books", dt.date(2023, 11, 15), to_arrow(BOOKS, [book])))
    files = writer.close()
    assert [str(f).split("/")[1] for f in files] == ["currency_pair", "order_book_depth10"]
    (depth,) = catalog_at(str(tmp_path)).query(
        nautilus("model.data").OrderBookDepth10, identifiers=[SPOT_ID]
    )
    assert [(num(o.price), num(o.size)) for o in depth.bids[:2]] == [
        (100.5, 0.25),
        (100.25, 1.0),
    ]
    # The catalog keeps prices, sizes and counts: a null order reads back as 0 at 0, count 0.
    assert [(num(o.price), num(o.size)) for o in depth.bids[2:]] == [(0.0, 0.0)] * 8
    assert [(num(o.price), num(o.size)) for o in depth.asks[1:]] == [(0.0, 0.0)] * 9
    assert (depth.bid_counts, depth.ask_counts) == ([1, 1] + [0] * 8, [1] + [0] * 9)
    assert (depth.ts_event, depth.ts_init, depth.sequence) == (T0 + 5, T0 + 9, 7)


def test_rows_received_after_midnight_go_with_the_next_day_and_files_stay_disjoint(
    tmp_path: Path,
) -> None:
    """A catalog directory's files must cover disjoint ts_init ranges (nautilus asserts it
    after writing): day 1's last trade is received after midnight, after day 2's first."""

    request = ExportRequest(
        "nautilus", EXCHANGE, (SPOT,), ("trades",), T0, T0 + 2 * DAY_NS, tmp_path
    )
    writer = NautilusWriter(ExportPlan(request, {SPOT: SPOT_DEFINITION}, tmp_path))
    midnight = T0 + DAY_NS
    day1 = [
        Trade(EXCHANGE, SPOT, T0 + 1000, T0 + 2000, "1", 100.0, 0.5, "buy"),
        Trade(EXCHANGE, SPOT, midnight - 10, midnight + 50, "2", 101.0, 0.5, "sell"),
    ]
    day2 = [
        Trade(EXCHANGE, SPOT, midnight + 5, midnight + 20, "3", 102.0, 0.5, "buy"),
        Trade(EXCHANGE, SPOT, midnight + 9, midnight + 10, "4", 103.0, 0.5, "buy"),
        Trade(EXCHANGE, SPOT, midnight + 99, midnight + 100, "5", 104.0, 0.5, "buy"),
    ]
    for day, trades in ((dt.date(2023, 11, 15), day1), (dt.date(2023, 11, 16), day2)):
        writer.write(DayPiece(EXCHANGE, SPOT, "trades", day, to_arrow(TRADES, trades)))
    files = [f for f in writer.close() if "trade_tick" in str(f)]
    assert len(files) == 2
    ticks = catalog_at(str(tmp_path)).trade_ticks(instrument_ids=[SPOT_ID])
    assert [t.trade_id.value for t in ticks] == ["1", "4", "3", "2", "5"]  # by receive time
    assert [t.ts_init - midnight for t in ticks[1:]] == [10, 20, 50, 100]


def test_a_price_finer_than_the_instrument_s_tick_stops_the_export(tmp_path: Path) -> None:
    request = ExportRequest("nautilus", EXCHANGE, (SPOT,), ("trades",), T0, T0 + DAY_NS, tmp_path)
    writer = NautilusWriter(ExportPlan(request, {SPOT: SPOT_DEFINITION}, tmp_path))
    trade = Trade(EXCHANGE, SPOT, T0 + 1, T0 + 2, "1", 100.125, 0.5, "buy")
    piece = DayPiece(EXCHANGE, SPOT, "trades", dt.date(2023, 11, 15), to_arrow(TRADES, [trade]))
    with pytest.raises(ExportInputError, match=r"binance BTC-USDT: a price of 100\.125 has more"):
        writer.write(piece)
    fine = msgspec.structs.replace(trade, price=100.12, size=0.000015)  # 6 decimals, lot 1e-05
    piece = dataclasses.replace(piece, table=to_arrow(TRADES, [fine]))
    with pytest.raises(ExportInputError, match=r"a size of 1\.5e-05 has more than 5 decimals"):
        writer.write(piece)


# --- tardis CSV, read by nautilus_trader's TardisCSVDataLoader -------------------------------


@pytest.fixture(scope="module")
def tardis_files(export_bed: ExportBed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tardis")
    types = ("trades", "quotes", "books", "funding", "open_interest")
    request = ExportRequest(
        "tardis-csv", EXCHANGE, (SPOT, PERP), types, export_bed.start_ns, export_bed.end_ns, out
    )
    with wiring.open_tiered(export_bed.tiers.config, export_bed.tiers.state_dir) as tiered:
        run_export(request, tiered, progress=False)
    return out


def tardis_loader(instrument_id: str) -> Any:
    """The loader as nautilus documents it for tardis files, with the instrument's precisions
    given (inferred ones drop trailing zeros: 42000.10 would read as precision 1)."""
    loaders = nautilus("adapters.tardis.loaders")
    identifiers = nautilus("model.identifiers")
    return loaders.TardisCSVDataLoader(
        price_precision=2,
        size_precision=5,
        instrument_id=identifiers.InstrumentId.from_str(instrument_id),
    )


def load_days(tardis_files: Path, pattern: str, load: Any) -> list[Any]:
    files = sorted(tardis_files.glob(pattern))
    assert len(files) == 6, pattern  # a file per day
    return [item for path in files for item in load(str(path))]


def test_tardis_trades_and_quotes_load_in_nautilus(
    export_bed: ExportBed, tardis_files: Path
) -> None:
    loader = tardis_loader(SPOT_ID)
    trades = load_days(tardis_files, "binance_trades_*_BTCUSDT.csv.gz", loader.load_trades)
    source = export_bed.source["trades", SPOT]
    assert len(trades) == source.num_rows
    micros = [ts // 1000 * 1000 for ts in ns(source, "ts")]  # tardis times are microseconds
    assert [t.ts_event for t in trades] == micros
    assert [t.ts_init for t in trades] == [ts // 1000 * 1000 for ts in ns(source, "recv_ts")]
    assert [num(t.price) for t in trades[:50]] == source.column("price").to_pylist()[:50]
    assert [num(t.size) for t in trades[:50]] == source.column("size").to_pylist()[:50]
    assert [t.trade_id.value for t in trades[:5]] == source.column("trade_id").to_pylist()[:5]
    sides = {"buy": "BUYER", "sell": "SELLER"}
    assert [t.aggressor_side.name for t in trades[:50]] == [
        sides[str(side)] for side in source.column("side").to_pylist()[:50]
    ]
    quotes = load_days(tardis_files, "binance_quotes_*_BTCUSDT.csv.gz", loader.load_quotes)
    source = export_bed.source["quotes", SPOT]
    assert len(quotes) == source.num_rows
    assert [num(q.bid_price) for q in quotes[:50]] == source.column("bid_px").to_pylist()[:50]
    assert [num(q.ask_price) for q in quotes[:50]] == source.column("ask_px").to_pylist()[:50]


def test_tardis_book_snapshots_load_as_depth10(export_bed: ExportBed, tardis_files: Path) -> None:
    loader = tardis_loader(SPOT_ID)
    depths = load_days(
        tardis_files,
        "binance_book_snapshot_25_*_BTCUSDT.csv.gz",
        functools.partial(loader.load_depth10, levels=25),
    )
    source = export_bed.source["books", SPOT]
    assert len(depths) == source.num_rows
    bids, asks = source.column("bids")[0].as_py(), source.column("asks")[0].as_py()
    first = depths[0]
    assert first.ts_event == ns(source, "ts")[0] // 1000 * 1000
    assert [num(o.price) for o in first.bids] == bids[0][:10]  # [prices, sizes], best first
    assert [num(o.size) for o in first.asks] == asks[1][:10]


def test_tardis_derivative_ticker_loads_funding_rates(
    export_bed: ExportBed, tardis_files: Path
) -> None:
    loader = tardis_loader(PERP_ID)
    pattern = "binance-futures_derivative_ticker_*_BTCUSDT.csv.gz"
    rates = load_days(tardis_files, pattern, loader.load_funding_rates)
    source = export_bed.source["funding", PERP]
    assert len(rates) == source.num_rows  # open interest rows carry no rate: not funding
    assert [float(r.rate) for r in rates] == source.column("rate").to_pylist()
    assert [r.ts_event for r in rates] == [ts // 1000 * 1000 for ts in ns(source, "ts")]


def test_inverse_contracts_are_refused_before_anything_is_read(tmp_path: Path) -> None:
    inverse = Instrument(
        "bybit", "BTC-USD-PERP", T0, "BTCUSD", "inverse_perpetual", "BTC", "USD", "BTC",
        1.0, 1.0, 0.5, 1.0, None, "trading",
    )  # fmt: skip
    request = ExportRequest(
        "nautilus", "bybit", ("BTC-USD-PERP",), ("trades",), T0, T0 + DAY_NS, tmp_path
    )
    plan = ExportPlan(request, {"BTC-USD-PERP": inverse}, tmp_path / "staging")
    with pytest.raises(ExportInputError, match="BTC-USD-PERP are inverse contracts"):
        NautilusWriter.planned(plan)
    assert not (tmp_path / "staging").exists()
