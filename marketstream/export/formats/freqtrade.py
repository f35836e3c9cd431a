"""Freqtrade's data directory (`--datadir user_data/data/<exchange>`), in its default format,
feather (Arrow IPC files, lz4), as freqtrade 2026.9 names and reads them:

- OHLCV: `BTC_USDT-1m.feather` (spot), `futures/BTC_USDT_USDT-1m-futures.feather` (pair
  `BTC/USDT:USDT`); columns date (ms, UTC; the bar open), open, high, low, close, volume.
- trades: `BTC_USDT-trades.feather`, `futures/BTC_USDT_USDT-trades.feather`; columns
  timestamp (int ms), id, type, side, price, amount, cost.

Each file is written as the days come, one record batch per day, so a year of trades never
sits in memory; freqtrade reads the batches as one table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import pyarrow as pa
import pyarrow.compute as pc

from marketstream.schemas.records import Instrument

if TYPE_CHECKING:
    from marketstream.export.formats.base import ExportPlan
    from marketstream.export.reading import DayPiece

_PRICES: Final = ("open", "high", "low", "close", "volume")
OHLCV_SCHEMA: Final = pa.schema(
    [pa.field("date", pa.timestamp("ms", tz="UTC"))] + [pa.field(n, pa.float64()) for n in _PRICES]
)
_TRADE_TYPES: Final[dict[str, pa.DataType]] = {
    "timestamp": pa.int64(),
    "id": pa.string(),
    "type": pa.string(),
    "side": pa.string(),
    "price": pa.float64(),
    "amount": pa.float64(),
    "cost": pa.float64(),
}
TRADES_SCHEMA: Final = pa.schema(_TRADE_TYPES)
_FILENAME_CHARS: Final = "/ .@$+:"  # what freqtrade's pair_to_filename turns into "_"


def pair_of(instrument: Instrument) -> str:
    """The ccxt pair freqtrade uses: `BTC/USDT` spot, `BTC/USDT:USDT` a perpetual settled in
    USDT, `BTC/USD:BTC` an inverse one, `BTC/USDT:USDT-250328` a dated future."""
    pair = f"{instrument.base}/{instrument.quote}"
    if instrument.kind == "spot":
        return pair
    pair += f":{instrument.settle}"
    if instrument.expiry is not None:
        pair += f"-{datetime.fromtimestamp(instrument.expiry // 10**9, UTC):%y%m%d}"
    return pair


def pair_file(pair: str) -> str:
    for char in _FILENAME_CHARS:
        pair = pair.replace(char, "_")
    return pair


def relative_path(instrument: Instrument, kind: str, interval: str) -> Path:
    """Where freqtrade looks for this instrument's candles or trades, under --datadir."""
    name = pair_file(pair_of(instrument))
    futures = instrument.kind != "spot"
    folder = Path("futures") if futures else Path()
    if kind == "trades":
        return folder / f"{name}-trades.feather"
    timeframe = interval.replace("M", "Mo")  # as freqtrade's timeframe_to_file spells it
    return folder / f"{name}-{timeframe}{'-futures' if futures else ''}.feather"


class FreqtradeWriter:
    """One feather file per instrument and type, appended a day at a time."""

    TYPES: ClassVar[tuple[str, ...]] = ("candles", "trades")
    DEFAULT_TYPES: ClassVar[tuple[str, ...]] = ("candles", "trades")

    def __init__(self, plan: ExportPlan) -> None:
        self.plan = plan
        self._files: dict[Path, pa.ipc.RecordBatchFileWriter] = {}

    @classmethod
    def planned(cls, plan: ExportPlan) -> list[Path]:
        request = plan.request
        return [
            relative_path(plan.instruments[symbol], kind, request.interval)
            for symbol in request.symbols
            for kind in request.types
        ]

    def write(self, piece: DayPiece) -> None:
        instrument = self.plan.instruments[piece.symbol]
        relative = relative_path(instrument, piece.type, self.plan.request.interval)
        if piece.type == "trades":
            batch, schema = trades_batch(piece.table), TRADES_SCHEMA
        else:
            batch, schema = ohlcv_batch(piece.table), OHLCV_SCHEMA
        writer = self._files.get(relative)
        if writer is None:
            path = self.plan.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            options = pa.ipc.IpcWriteOptions(compression="lz4")
            writer = pa.ipc.new_file(str(path), schema, options=options)
            self._files[relative] = writer
        if batch.num_rows:
            writer.write_batch(batch)

    def close(self) -> list[Path]:
        for writer in self._files.values():
            writer.close()
        return list(self._files)


def ohlcv_batch(bars: pa.Table) -> pa.RecordBatch:
    """Our bars (open time in ns) as freqtrade's OHLCV columns."""
    opens = pc.divide(bars.column("ts").cast(pa.int64()), 1_000_000)
    columns: list[Any] = [opens.cast(pa.timestamp("ms", tz="UTC"))]
    columns += [bars.column(name).cast(pa.float64()) for name in _PRICES]
    return _one_batch(columns, OHLCV_SCHEMA)


def trades_batch(trades: pa.Table) -> pa.RecordBatch:
    """Our trades as freqtrade's: ms timestamps, the taker side, cost = price * amount."""
    price = trades.column("price").cast(pa.float64())
    amount = trades.column("size").cast(pa.float64())
    columns: list[Any] = [
        pc.divide(trades.column("ts").cast(pa.int64()), 1_000_000),
        trades.column("trade_id").cast(pa.string()),
        pa.nulls(trades.num_rows, pa.string()),  # order type: not sent by the exchanges
        trades.column("side").cast(pa.string()),
        price,
        amount,
        pc.multiply(price, amount),
    ]
    return _one_batch(columns, TRADES_SCHEMA)


def _one_batch(columns: list[Any], schema: pa.Schema) -> pa.RecordBatch:
    table = pa.Table.from_arrays(columns, schema=schema).combine_chunks()
    batches = table.to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=schema)
