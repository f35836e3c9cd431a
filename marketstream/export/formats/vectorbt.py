"""VectorBT's input: wide OHLCV frames, one column per symbol, indexed by UTC time, in one
Parquet file per export (`<exchange>_ohlcv_<interval>.parquet`): columns are a pandas
MultiIndex (field, symbol), so `pd.read_parquet(path)["close"]` is the close of every symbol
and `vbt.Portfolio.from_signals(close, ...)` takes it as is. No pickle: Parquet with pandas'
own metadata. A bar time at which one symbol has no bar holds NaN for it (never filled in:
that is the backtest's choice). Each day is one row group, so memory stays at a day's bars.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

import pandas as pd  # type: ignore[import-untyped]  # no stubs
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from marketstream.export.formats.base import ExportPlan
    from marketstream.export.reading import DayPiece

FIELDS: Final = ("open", "high", "low", "close", "volume")
INDEX_NAME: Final = "time"


def file_name(exchange: str, interval: str) -> str:
    return f"{exchange}_ohlcv_{interval}.parquet"


class VectorbtWriter:
    """Buffers one day's bars of every symbol, then writes them as one row group."""

    TYPES: ClassVar[tuple[str, ...]] = ("candles",)
    DEFAULT_TYPES: ClassVar[tuple[str, ...]] = ("candles",)

    def __init__(self, plan: ExportPlan) -> None:
        self.plan = plan
        request = plan.request
        self.relative = Path(file_name(request.exchange, request.interval))
        self.columns = pd.MultiIndex.from_product(
            [FIELDS, request.symbols], names=["field", "symbol"]
        )
        empty = pd.DataFrame(
            {column: pd.Series([], dtype="float64") for column in self.columns},
            index=pd.DatetimeIndex([], tz="UTC", name=INDEX_NAME, dtype="datetime64[ns, UTC]"),
        )
        empty.columns = self.columns
        self.schema = pa.Table.from_pandas(empty).schema
        self._day: date | None = None
        self._bars: dict[str, pa.Table] = {}
        self._writer: pq.ParquetWriter | None = None

    @classmethod
    def planned(cls, plan: ExportPlan) -> list[Path]:
        return [Path(file_name(plan.request.exchange, plan.request.interval))]

    def write(self, piece: DayPiece) -> None:
        if piece.day != self._day:
            self._flush()
            self._day = piece.day
        if piece.table.num_rows:
            self._bars[piece.symbol] = piece.table

    def close(self) -> list[Path]:
        self._flush()
        if self._writer is None:  # no bars at all: still a file the loader reads
            self._open().write_table(self.schema.empty_table())
        assert self._writer is not None
        self._writer.close()
        return [self.relative]

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            path = self.plan.root / self.relative
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        return self._writer

    def _flush(self) -> None:
        if not self._bars:
            return
        frames = {
            symbol: pd.DataFrame(
                {name: bars.column(name).to_numpy() for name in FIELDS},
                index=pd.to_datetime(bars.column("ts").cast(pa.int64()).to_numpy(), utc=True),
            )
            for symbol, bars in self._bars.items()
        }
        wide = pd.concat(frames, axis=1, sort=True).swaplevel(axis=1)
        wide = wide.reindex(columns=self.columns)
        wide = wide.sort_index().astype("float64")
        wide.index = wide.index.as_unit("ns").rename(INDEX_NAME)
        table = pa.Table.from_pandas(wide)
        if self._writer is None:  # the first day's layout (pandas' metadata) is the file's
            self.schema = table.schema
        self._open().write_table(table.cast(self.schema))
        self._bars = {}
