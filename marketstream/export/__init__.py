"""Exports to the backtesting tools quants use (NautilusTrader, Freqtrade, VectorBT,
tardis.dev CSV), read day by day from the hottest tier holding each day.

From Python::

    request = ExportRequest("freqtrade", "binance", ("BTC-USDT",), ("candles",), start, end,
                            Path("user_data/data/binance"), interval="1m")
    with wiring.open_tiered(config, None) as tiered:
        summary = run_export(request, tiered)
"""

from marketstream.export.formats import FORMATS
from marketstream.export.request import EXPORT_TYPES, ExportInputError, ExportRequest
from marketstream.export.runner import ExportSummary, run_export

__all__ = [
    "EXPORT_TYPES",
    "FORMATS",
    "ExportInputError",
    "ExportRequest",
    "ExportSummary",
    "run_export",
]
