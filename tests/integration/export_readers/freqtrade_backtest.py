"""`freqtrade backtesting` over an export: `freqtrade_backtest.py ARGS...` runs freqtrade's
own command line. Backtesting asks the exchange for its markets first, through ccxt, and this
machine has no internet, so the markets of the two pairs the tests export are given here
(freqtrade's own tests do the same); the data loading and the backtest are freqtrade's."""

import sys
from unittest.mock import patch


def market(symbol, settle=None):
    swap = settle is not None
    return {
        "id": "BTCUSDT", "symbol": symbol, "base": "BTC", "quote": "USDT", "settle": settle,
        "baseId": "BTC", "quoteId": "USDT", "active": True, "type": "swap" if swap else "spot",
        "spot": not swap, "swap": swap, "future": False, "option": False, "margin": False,
        "contract": swap, "linear": True if swap else None, "inverse": False if swap else None,
        "contractSize": 1.0 if swap else None,
        "precision": {"price": 0.01, "amount": 0.00001, "cost": None},
        "limits": {
            "amount": {"min": 0.00001, "max": None}, "price": {"min": None, "max": None},
            "cost": {"min": None, "max": None}, "leverage": {"min": 1, "max": 10},
        },
        "info": {},
    }  # fmt: skip


MARKETS = {"BTC/USDT": market("BTC/USDT"), "BTC/USDT:USDT": market("BTC/USDT:USDT", "USDT")}


def offline_markets(self, force=False, *, load_leverage_tiers=True):
    self._markets = MARKETS
    for api in (self._api, self._api_async):
        api.set_markets(list(MARKETS.values()))
    self._last_markets_refresh = 1


if __name__ == "__main__":
    with patch("freqtrade.exchange.exchange.Exchange.reload_markets", offline_markets):
        from freqtrade.main import main

        main(sys.argv[1:])
