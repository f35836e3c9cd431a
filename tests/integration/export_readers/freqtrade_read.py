"""Read a freqtrade export back with freqtrade's own loaders: `freqtrade_read.py DATADIR`."""

import json
import sys
from pathlib import Path

from freqtrade.data.history import load_pair_history
from freqtrade.data.history.datahandlers import get_datahandler
from freqtrade.enums import CandleType, TradingMode


def extent(frame, column):
    times = frame[column]
    first, last = (times.iloc[0], times.iloc[-1]) if len(frame) else (None, None)
    as_ms = (lambda t: int(t.value // 1_000_000)) if column == "date" else int
    return {
        "rows": len(frame),
        "first": None if first is None else as_ms(first),
        "last": None if last is None else as_ms(last),
    }


def main() -> None:
    datadir = Path(sys.argv[1])
    found = {}
    for name, pair, candle_type in (
        ("spot", "BTC/USDT", CandleType.SPOT),
        ("futures", "BTC/USDT:USDT", CandleType.FUTURES),
    ):
        bars = load_pair_history(
            pair, "1m", datadir, data_format="feather", candle_type=candle_type,
            fill_up_missing=False,
        )  # fmt: skip
        found[f"{name}_ohlcv"] = extent(bars, "date") | {"close": bars["close"].tolist()}
    handler = get_datahandler(datadir, "feather")
    for name, pair, mode in (
        ("spot", "BTC/USDT", TradingMode.SPOT),
        ("futures", "BTC/USDT:USDT", TradingMode.FUTURES),
    ):
        trades = handler.trades_load(pair, mode)
        found[f"{name}_trades"] = extent(trades, "timestamp") | {
            "ids": trades["id"].tolist()[:3],
            "sides": sorted(set(trades["side"])),
        }
    found["available"] = sorted(
        f"{pair} {timeframe} {kind}"
        for mode in (TradingMode.SPOT, TradingMode.FUTURES)
        for pair, timeframe, kind in handler.ohlcv_get_available_data(datadir, mode)
    )
    print(json.dumps(found))


if __name__ == "__main__":
    main()
