"""Read a vectorbt export back as its README says and backtest it with vectorbt:
`vectorbt_read.py FILE`."""

import json
import math
import sys

import pandas as pd
import vectorbt as vbt


def main() -> None:
    frame = pd.read_parquet(sys.argv[1])
    close = frame["close"].ffill()  # a minute one symbol did not trade holds its last close
    fast, slow = close.rolling(5).mean(), close.rolling(20).mean()
    portfolio = vbt.Portfolio.from_signals(close, fast > slow, fast < slow, freq="1min")
    returns = portfolio.total_return()
    symbols = list(close.columns)
    data = vbt.Data.from_data(
        {symbol: frame.xs(symbol, axis=1, level=1) for symbol in symbols}, download_kwargs={}
    )
    print(
        json.dumps(
            {
                "shape": list(frame.shape),
                "symbols": symbols,
                "tz": str(frame.index.tz),
                "bars": {s: int(frame["close"][s].notna().sum()) for s in symbols},
                "first": {s: int(frame["close"][s].first_valid_index().value) for s in symbols},
                "last": {s: int(frame["close"][s].last_valid_index().value) for s in symbols},
                "orders": {s: int(portfolio[s].orders.count()) for s in symbols},
                "returns_finite": all(math.isfinite(float(returns[s])) for s in symbols),
                "data_close_rows": {s: int(data.get("close")[s].notna().sum()) for s in symbols},
            }
        )
    )


if __name__ == "__main__":
    main()
