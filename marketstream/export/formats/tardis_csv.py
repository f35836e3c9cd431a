"""tardis.dev's downloadable CSV files: gzip, one file per exchange, data type, UTC day and
symbol, named and laid out as tardis documents them, so readers of tardis files
(NautilusTrader's TardisCSVDataLoader, hftbacktest's converters) take ours unchanged:

- `trades`: exchange,symbol,timestamp,local_timestamp,id,side,price,amount
- `quotes`: exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
- `book_snapshot_25` (from our books): the header above up to local_timestamp, then per
  level i in 0..24: asks[i].price,asks[i].amount,bids[i].price,bids[i].amount
- `derivative_ticker` (from funding and open interest): ...,funding_timestamp,funding_rate,
  predicted_funding_rate,open_interest,last_price,index_price,mark_price
- `liquidations`: exchange,symbol,timestamp,local_timestamp,id,side,price,amount

Times are microseconds since the epoch (exchange time, then our receive time; a reading
without a receive time repeats its exchange time). `exchange` is tardis' exchange id and
`symbol` the exchange's own, upper case. A value we do not have is an empty cell, as in
tardis files. Amounts are in base units, as everywhere in MarketStream.
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from marketstream.export.request import ExportInputError
from marketstream.schemas.records import Instrument
from marketstream.venues.registry import get_venue

if TYPE_CHECKING:
    from marketstream.export.formats.base import ExportPlan
    from marketstream.export.reading import DayPiece

BOOK_LEVELS: Final = 25
# gzip level 3: a day of 827k trades compresses in 0.6 s instead of pyarrow's default level's
# 4.5 s, for a file 10% bigger than the gzip tool's default (level 6, 1.0 s)
GZIP_LEVEL: Final = 3
# Our record type -> tardis data type (funding and open interest share derivative_ticker).
DATA_TYPES: Final = {
    "trades": "trades",
    "quotes": "quotes",
    "books": f"book_snapshot_{BOOK_LEVELS}",
    "funding": "derivative_ticker",
    "open_interest": "derivative_ticker",
    "liquidations": "liquidations",
}
HEAD: Final = ("exchange", "symbol", "timestamp", "local_timestamp")
TICKER_FIELDS: Final = (
    "funding_timestamp",
    "funding_rate",
    "predicted_funding_rate",
    "open_interest",
    "last_price",
    "index_price",
    "mark_price",
)


def tardis_exchange(instrument: Instrument) -> str:
    """tardis' exchange id, which depends on the market as well as the venue (binance's
    USDT-margined futures are `binance-futures`, its coin-margined ones `binance-delivery`):
    each venue lists its own (`Venue.tardis_ids`)."""
    tardis_id = get_venue(instrument.exchange).tardis_ids.get(instrument.kind)
    if tardis_id is None:
        raise ExportInputError(
            f"{instrument.exchange} {instrument.symbol}: tardis.dev has no exchange id for a "
            f"{instrument.kind} instrument of {instrument.exchange}"
        )
    return tardis_id


def tardis_symbol(instrument: Instrument) -> str:
    return instrument.native_symbol.upper()


def file_name(instrument: Instrument, data_type: str, day: date) -> str:
    """`binance-futures_trades_2024-01-01_BTCUSDT.csv.gz`, as tardis names its files."""
    symbol = tardis_symbol(instrument).replace("/", "-").replace(":", "-")
    return f"{tardis_exchange(instrument)}_{data_type}_{day.isoformat()}_{symbol}.csv.gz"


class TardisCsvWriter:
    """A file per piece; funding and open interest of a day are merged into one
    derivative_ticker file in time order, so they are buffered until the day ends."""

    TYPES: ClassVar[tuple[str, ...]] = tuple(DATA_TYPES)
    DEFAULT_TYPES: ClassVar[tuple[str, ...]] = ("trades", "quotes", "books")

    def __init__(self, plan: ExportPlan) -> None:
        self.plan = plan
        self._written: list[Path] = []
        self._tickers: dict[tuple[str, date], list[pa.Table]] = {}

    @classmethod
    def planned(cls, plan: ExportPlan) -> list[Path]:
        from marketstream.export.reading import request_days  # noqa: PLC0415 - no cycle

        request = plan.request
        names = {
            Path(file_name(plan.instruments[symbol], DATA_TYPES[kind], day))
            for day, _, _ in request_days(request)
            for symbol in request.symbols
            for kind in request.types
        }
        return sorted(names)

    def write(self, piece: DayPiece) -> None:
        for key in [k for k in self._tickers if k[1] != piece.day]:
            self._write_tickers(*key)
        instrument = self.plan.instruments[piece.symbol]
        if piece.type in ("funding", "open_interest"):
            rows = ticker_rows(piece.table, piece.type, instrument)
            self._tickers.setdefault((piece.symbol, piece.day), []).append(rows)
            return
        table = {
            "trades": trade_rows,
            "liquidations": trade_rows,
            "quotes": quote_rows,
            "books": book_rows,
        }[piece.type](piece.table, instrument)
        self._save(table, instrument, DATA_TYPES[piece.type], piece.day)

    def close(self) -> list[Path]:
        for key in list(self._tickers):
            self._write_tickers(*key)
        return self._written

    def _write_tickers(self, symbol: str, day: date) -> None:
        parts = self._tickers.pop((symbol, day))
        table = pa.concat_tables(parts).sort_by("timestamp")
        self._save(table, self.plan.instruments[symbol], "derivative_ticker", day)

    def _save(self, table: pa.Table, instrument: Instrument, data_type: str, day: date) -> None:
        relative = Path(file_name(instrument, data_type, day))
        path = self.plan.root / relative
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        with gzip.open(path, "wb", compresslevel=GZIP_LEVEL) as sink:
            sink.write((",".join(table.column_names) + "\n").encode())
            if table.num_rows:
                pa_csv.write_csv(table, pa.PythonFile(sink, mode="w"), options)
        self._written.append(relative)


def _head(table: pa.Table, instrument: Instrument, local: str | None) -> dict[str, Any]:
    """exchange, symbol and the two microsecond times of every row."""
    n = table.num_rows
    micros = pc.divide(table.column("ts").cast(pa.int64()), 1000)
    return {
        "exchange": pa.array([tardis_exchange(instrument)] * n, pa.string()),
        "symbol": pa.array([tardis_symbol(instrument)] * n, pa.string()),
        "timestamp": micros,
        "local_timestamp": micros
        if local is None
        else pc.divide(table.column(local).cast(pa.int64()), 1000),
    }


def trade_rows(table: pa.Table, instrument: Instrument) -> pa.Table:
    """Trades (taker side) or liquidations (the liquidation order's side; no id)."""
    columns = _head(table, instrument, "recv_ts")
    ids = (
        table.column("trade_id").cast(pa.string())
        if "trade_id" in table.column_names
        else pa.nulls(table.num_rows, pa.string())
    )
    columns |= {
        "id": ids,
        "side": table.column("side").cast(pa.string()),
        "price": table.column("price").cast(pa.float64()),
        "amount": table.column("size").cast(pa.float64()),
    }
    return pa.table(columns)


def quote_rows(table: pa.Table, instrument: Instrument) -> pa.Table:
    columns = _head(table, instrument, "recv_ts")
    columns |= {
        "ask_amount": table.column("ask_sz").cast(pa.float64()),
        "ask_price": table.column("ask_px").cast(pa.float64()),
        "bid_price": table.column("bid_px").cast(pa.float64()),
        "bid_amount": table.column("bid_sz").cast(pa.float64()),
    }
    return pa.table(columns)


def book_rows(table: pa.Table, instrument: Instrument) -> pa.Table:
    """Top 25 levels per side, interleaved per level as asks then bids; missing levels empty.
    Our level columns hold [prices, sizes] per row (best first)."""
    columns = _head(table, instrument, "recv_ts")
    sides = {side: table.column(side).combine_chunks() for side in ("asks", "bids")}
    for level in range(BOOK_LEVELS):
        for side in ("asks", "bids"):
            for slot, name in ((0, "price"), (1, "amount")):
                values = pc.list_element(sides[side], slot)  # this side's prices or sizes
                one = pc.list_slice(values, level, level + 1, return_fixed_size_list=True)
                columns[f"{side}[{level}].{name}"] = one.flatten().cast(pa.float64())
    return pa.table(columns)


def ticker_rows(table: pa.Table, kind: str, instrument: Instrument) -> pa.Table:
    """Funding (rate, next funding time, mark and index price) or open interest readings as
    derivative_ticker rows; the other fields of each row are empty."""
    n = table.num_rows
    columns = _head(table, instrument, "recv_ts" if kind == "open_interest" else None)
    empty = pa.nulls(n, pa.float64())
    fields: dict[str, Any] = dict.fromkeys(TICKER_FIELDS, empty)
    fields["funding_timestamp"] = pa.nulls(n, pa.int64())
    if kind == "funding":
        fields["funding_timestamp"] = pc.divide(table.column("next_ts").cast(pa.int64()), 1000)
        fields["funding_rate"] = table.column("rate").cast(pa.float64())
        fields["index_price"] = table.column("index_px").cast(pa.float64())
        fields["mark_price"] = table.column("mark_px").cast(pa.float64())
    else:
        fields["open_interest"] = table.column("open_interest").cast(pa.float64())
    return pa.table(columns | fields)
