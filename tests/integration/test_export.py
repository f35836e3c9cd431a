"""`marketstream export` from data spread over QuestDB, ClickHouse and the cold Parquet
(`export_bed`), each format read back with pyarrow/pandas and compared with what went in.
The libraries themselves read these exports in `make test-exports` (test_export_readers.py,
test_export_nautilus.py)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pandas as pd  # type: ignore[import-untyped]  # no stubs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest
from pyarrow import feather

from marketstream.export import ExportInputError, ExportRequest, ExportSummary, run_export
from marketstream.export.formats.tardis_csv import BOOK_LEVELS
from marketstream.query.all_tiers import ohlcv_from_trades
from marketstream.tiers.days import NS_PER_DAY, day_start_ns
from marketstream.wiring import open_tiered
from tests.integration.endpoints import REPO
from tests.integration.export_bed import EXCHANGE, PERP, SPOT, ExportBed

pytestmark = pytest.mark.integration


def export(
    export_bed: ExportBed,
    fmt: str,
    types: tuple[str, ...],
    out: Path,
    symbols: tuple[str, ...] = (SPOT, PERP),
) -> ExportSummary:
    request = ExportRequest(
        fmt, EXCHANGE, symbols, types, export_bed.start_ns, export_bed.end_ns, out
    )
    with open_tiered(export_bed.tiers.config, export_bed.tiers.state_dir) as tiered:
        return run_export(request, tiered, progress=False)


def ints(table: pa.Table, column: str = "ts") -> list[int]:
    return [int(ts or 0) for ts in table.column(column).cast(pa.int64()).to_pylist()]


def ms(table: pa.Table) -> list[int]:
    return [ts // 1_000_000 for ts in ints(table)]


def trade_bars(export_bed: ExportBed, symbol: str, low: int = 0, high: int = 2**63 - 1) -> pa.Table:
    """The 1m bars of the source trades in [low, high), as our candle layout."""
    trades = export_bed.source["trades", symbol]
    times = trades.column("ts").cast(pa.int64())
    keep = pc.and_(pc.greater_equal(times, pa.scalar(low)), pc.less(times, pa.scalar(high)))
    from marketstream.schemas.arrow import to_arrow  # noqa: PLC0415
    from marketstream.schemas.columns import CANDLES  # noqa: PLC0415

    ordered = trades.filter(keep).sort_by([("ts", "ascending"), ("trade_id", "ascending")])
    return to_arrow(CANDLES, ohlcv_from_trades(ordered, EXCHANGE, symbol, "1m"))


def expected_bars(export_bed: ExportBed, symbol: str) -> pa.Table:
    """The exchange's 1m bars, and bars from trades on the day the exchange sent none."""
    bars = export_bed.source["candles", symbol].select(trade_bars(export_bed, symbol).column_names)
    if symbol == SPOT:
        low = day_start_ns(export_bed.no_candles_day)
        bars = pa.concat_tables([bars, trade_bars(export_bed, symbol, low, low + NS_PER_DAY)])
    return bars.sort_by("ts")


def manifest_of(out: Path) -> dict[str, object]:
    (path,) = out.glob("marketstream-export-*.json")
    body: dict[str, object] = orjson.loads(path.read_bytes())
    return body


# --- freqtrade -------------------------------------------------------------------------------


def test_freqtrade_datadir_holds_every_trade_and_bar(export_bed: ExportBed, tmp_path: Path) -> None:
    out = tmp_path / "user_data" / "data" / "binance"
    summary = export(export_bed, "freqtrade", ("candles", "trades"), out)
    spot_trades = feather.read_table(out / "BTC_USDT-trades.feather")
    perp_trades = feather.read_table(out / "futures" / "BTC_USDT_USDT-trades.feather")
    assert spot_trades.column_names == [
        "timestamp",
        "id",
        "type",
        "side",
        "price",
        "amount",
        "cost",
    ]
    for table, symbol in ((spot_trades, SPOT), (perp_trades, PERP)):
        source = export_bed.source["trades", symbol]
        assert table.num_rows == source.num_rows
        assert table.column("timestamp").to_pylist() == ms(source)
        assert table.column("id").to_pylist() == source.column("trade_id").to_pylist()
        assert table.column("price").to_pylist() == source.column("price").to_pylist()
        assert table.column("amount").to_pylist() == source.column("size").to_pylist()
        assert table.column("side").to_pylist() == source.column("side").to_pylist()
    # one record batch per day: written as the days came, never the whole range at once
    with pa.ipc.open_file(str(out / "BTC_USDT-trades.feather")) as reader:
        assert reader.num_record_batches == 6
    spot_bars = feather.read_table(out / "BTC_USDT-1m.feather")
    perp_bars = feather.read_table(out / "futures" / "BTC_USDT_USDT-1m-futures.feather")
    assert spot_bars.column_names == ["date", "open", "high", "low", "close", "volume"]
    assert spot_bars.schema.field("date").type == pa.timestamp("ms", tz="UTC")
    for table, symbol in ((spot_bars, SPOT), (perp_bars, PERP)):
        expected = expected_bars(export_bed, symbol)
        assert (
            expected.num_rows == trade_bars(export_bed, symbol).num_rows
        )  # a bar per minute traded
        assert table.num_rows == expected.num_rows
        opens = table.column("date").cast(pa.int64()).to_pylist()
        assert opens == ms(expected)
        assert table.column("close").to_pylist() == pytest.approx(
            expected.column("close").to_pylist()
        )
    assert summary.rows == {
        "candles": spot_bars.num_rows + perp_bars.num_rows,
        "trades": spot_trades.num_rows + perp_trades.num_rows,
    }


def test_bars_missing_from_the_exchange_are_built_from_trades(
    export_bed: ExportBed, tmp_path: Path
) -> None:
    summary = export(export_bed, "freqtrade", ("candles",), tmp_path, symbols=(SPOT,))
    day = export_bed.no_candles_day
    low = day_start_ns(day)
    built = trade_bars(export_bed, SPOT, low, low + NS_PER_DAY)
    assert built.num_rows > 0
    assert summary.bars == {
        "exchange": trade_bars(export_bed, SPOT).num_rows - built.num_rows,
        "trades": built.num_rows,
    }
    extents = manifest_of(tmp_path)["extents"]
    by_day = extents[SPOT]["candles"]["bars_by_day"]  # type: ignore[index]
    assert by_day[day.isoformat()] == {"exchange": 0, "trades": built.num_rows}
    other = sorted(d for d in by_day if d != day.isoformat())
    assert all(by_day[d]["trades"] == 0 for d in other)
    bars = feather.read_table(tmp_path / "BTC_USDT-1m.feather")
    opens = bars.column("date").cast(pa.int64())
    mask = pc.and_(
        pc.greater_equal(opens, pa.scalar(low // 1_000_000)),
        pc.less(opens, pa.scalar((low + NS_PER_DAY) // 1_000_000)),
    )
    that_day = bars.filter(mask)
    for name in ("open", "high", "low", "close", "volume"):
        assert that_day.column(name).to_pylist() == pytest.approx(built.column(name).to_pylist())


# --- vectorbt --------------------------------------------------------------------------------


def test_vectorbt_wide_frame_has_a_column_per_symbol(export_bed: ExportBed, tmp_path: Path) -> None:
    export(export_bed, "vectorbt", ("candles",), tmp_path)
    frame = pd.read_parquet(tmp_path / "binance_ohlcv_1m.parquet")
    assert str(frame.index.tz) == "UTC"
    assert frame.index.name == "time"
    assert list(frame["close"].columns) == [SPOT, PERP]
    assert frame.index.is_monotonic_increasing
    assert frame.index.is_unique
    for symbol in (SPOT, PERP):
        expected = expected_bars(export_bed, symbol)
        close = frame["close"][symbol].dropna()
        assert len(close) == expected.num_rows
        assert [int(t.value) for t in close.index] == ints(expected)
        assert close.to_list() == pytest.approx(expected.column("close").to_pylist())
        assert frame["volume"][symbol].dropna().sum() == pytest.approx(
            pc.sum(export_bed.source["trades", symbol].column("size")).as_py()
        )


# --- tardis CSV ------------------------------------------------------------------------------


def read_csv(path: Path) -> tuple[str, pa.Table]:
    with gzip.open(path, "rt") as text:
        header = text.readline().rstrip("\n")
    return header, pa_csv.read_csv(path)


def test_tardis_files_per_day_and_type_in_tardis_layout(
    export_bed: ExportBed, tmp_path: Path
) -> None:
    types = ("trades", "quotes", "books", "funding", "open_interest", "liquidations")
    export(export_bed, "tardis-csv", types, tmp_path)
    day = export_bed.first_day.isoformat()
    names = {p.name for p in tmp_path.glob("*.csv.gz")}
    assert f"binance_trades_{day}_BTCUSDT.csv.gz" in names
    assert f"binance-futures_trades_{day}_BTCUSDT.csv.gz" in names
    assert f"binance_book_snapshot_25_{day}_BTCUSDT.csv.gz" in names
    assert f"binance-futures_derivative_ticker_{day}_BTCUSDT.csv.gz" in names
    assert f"binance-futures_liquidations_{day}_BTCUSDT.csv.gz" in names

    def whole(pattern: str) -> tuple[str, pa.Table]:
        read = [read_csv(p) for p in sorted(tmp_path.glob(pattern))]
        assert len(read) == 6, pattern  # one file per day
        return read[0][0], pa.concat_tables(t for _, t in read if t.num_rows)

    header, trades = whole("binance_trades_*_BTCUSDT.csv.gz")
    assert header == "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
    source = export_bed.source["trades", SPOT]
    assert trades.num_rows == source.num_rows
    micros = [ts // 1000 for ts in ints(source)]
    assert trades.column("timestamp").to_pylist() == micros
    local = [ts // 1000 for ts in ints(source, "recv_ts")]
    assert trades.column("local_timestamp").to_pylist() == local
    assert trades.column("price").to_pylist() == source.column("price").to_pylist()
    assert trades.column("amount").to_pylist() == source.column("size").to_pylist()
    assert set(trades.column("exchange").to_pylist()) == {"binance"}
    assert set(trades.column("symbol").to_pylist()) == {"BTCUSDT"}

    header, quotes = whole("binance_quotes_*_BTCUSDT.csv.gz")
    assert header == (
        "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount"
    )
    assert quotes.num_rows == export_bed.source["quotes", SPOT].num_rows
    assert quotes.column("bid_price").to_pylist() == (
        export_bed.source["quotes", SPOT].column("bid_px").to_pylist()
    )

    header, books = whole("binance_book_snapshot_25_*_BTCUSDT.csv.gz")
    levels = [
        f"{side}[{i}].{name}"
        for i in range(BOOK_LEVELS)
        for side in ("asks", "bids")
        for name in ("price", "amount")
    ]
    assert header.split(",") == ["exchange", "symbol", "timestamp", "local_timestamp", *levels]
    source_books = export_bed.source["books", SPOT]
    assert books.num_rows == source_books.num_rows
    prices, sizes = source_books.column("asks")[0].as_py()  # [prices, sizes], best first
    assert books.column("asks[0].price")[0].as_py() == prices[0]
    assert books.column("asks[24].amount")[0].as_py() == sizes[24]
    last_bids = source_books.column("bids")[-1].as_py()
    assert books.column("bids[3].price")[-1].as_py() == last_bids[0][3]
    assert books.column("bids[3].amount")[-1].as_py() == last_bids[1][3]

    header, ticker = whole("binance-futures_derivative_ticker_*_BTCUSDT.csv.gz")
    assert header == (
        "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
        "predicted_funding_rate,open_interest,last_price,index_price,mark_price"
    )
    funding, oi = export_bed.source["funding", PERP], export_bed.source["open_interest", PERP]
    assert ticker.num_rows == funding.num_rows + oi.num_rows
    rates = ticker.filter(pc.is_valid(ticker.column("funding_rate")))
    assert rates.column("funding_rate").to_pylist() == funding.column("rate").to_pylist()
    assert rates.column("funding_timestamp").to_pylist() == [
        ts // 1000 for ts in ints(funding, "next_ts")
    ]
    readings = ticker.filter(pc.is_valid(ticker.column("open_interest")))
    assert readings.column("open_interest").to_pylist() == oi.column("open_interest").to_pylist()
    stamps = ints(ticker, "timestamp")
    assert stamps == sorted(stamps)

    _, liquidations = whole("binance-futures_liquidations_*_BTCUSDT.csv.gz")
    assert liquidations.num_rows == export_bed.source["liquidations", PERP].num_rows


# --- refusals and the command ----------------------------------------------------------------


def test_an_export_never_overwrites_and_a_failed_one_leaves_nothing(
    export_bed: ExportBed, tmp_path: Path
) -> None:
    export(export_bed, "freqtrade", ("candles",), tmp_path, symbols=(SPOT,))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ExportInputError, match=r"already holds BTC_USDT-1m\.feather"):
        export(export_bed, "freqtrade", ("candles", "trades"), tmp_path, symbols=(SPOT,))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    with pytest.raises(ExportInputError, match="does not hold books: it holds candles"):
        export(export_bed, "vectorbt", ("books",), tmp_path / "v")
    assert not (tmp_path / "v").exists()


def test_the_command_prints_a_summary(export_bed: ExportBed, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    env |= export_bed.tiers.environ
    argv = [sys.executable, "-m", "marketstream", "export", "--to", "tardis-csv"]
    argv += ["--exchange", EXCHANGE, "--symbol", SPOT, "--type", "trades"]
    argv += [
        "--start",
        export_bed.first_day.isoformat(),
        "--end",
        str(export_bed.end_ns),
        "--out",
        str(tmp_path),
    ]
    argv += ["--state-dir", str(export_bed.tiers.state_dir)]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    rows = export_bed.source["trades", SPOT].num_rows
    assert f"exported {rows:,} rows (trades {rows:,}) to tardis-csv" in done.stdout
    assert "6 files" in done.stdout
    bad = [*argv[:5], "excel", *argv[6:]]
    done = subprocess.run(bad, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "--to 'excel' is not a known format" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_progress_bar_counts_the_days(
    export_bed: ExportBed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = ExportRequest(
        "tardis-csv",
        EXCHANGE,
        (SPOT,),
        ("trades",),
        export_bed.start_ns,
        export_bed.end_ns,
        tmp_path,
    )
    with open_tiered(export_bed.tiers.config, export_bed.tiers.state_dir) as tiered:
        run_export(request, tiered, progress=True)
    drawn = capsys.readouterr().err
    assert "export tardis-csv" in drawn
    assert "6/6" in drawn  # one step per day and symbol
    assert export_bed.last_day.isoformat() in drawn  # the day being read
