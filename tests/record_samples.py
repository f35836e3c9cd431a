"""Hand-written liquidation, open interest, instrument and polled price records for the store
tests: the same moment twice told apart by side only, a null value, a dated future, an inverse
swap, a price with every optional field and one with none."""

from __future__ import annotations

from marketstream.schemas.records import (
    Instrument,
    InstrumentKind,
    Liquidation,
    OpenInterest,
    Price,
    Record,
)


def derivative_samples(t0: int, later: int) -> dict[str, list[Record]]:
    """Records at `t0` and at `later` (another day, where a test wants two partitions)."""
    return {
        "liquidations": [
            Liquidation("binance-usdm", "BTC-USDT-PERP", t0, t0 + 4, "buy", 97250.0, 0.002),
            Liquidation("binance-usdm", "BTC-USDT-PERP", t0, t0 + 5, "sell", 97250.0, 0.002),
            Liquidation("okx", "BTC-USD-PERP", later, later + 6, "sell", 97100.5, 0.0103),
        ],
        "open_interest": [
            OpenInterest("bybit", "BTC-USDT-PERP", t0, t0 + 2, 52000.125, 5.06e9),
            OpenInterest("okx", "BTC-USDT-20250328", later, later + 3, 1234.56, None),
        ],
        "instruments": [
            _instrument("okx", "BTC-USD-PERP", t0, "BTC-USD-SWAP", "inverse_perpetual"),
            _instrument("okx", "BTC-USDT-20250328", t0, "BTC-USDT-250328", "linear_future"),
            _instrument("binance", "BTC-USDT", later, "BTCUSDT", "spot"),
        ],
        "prices": [
            Price("jupiter", "SOL-USD", t0, t0 + 7, 147.48, None, 348004023, 621679197.67, 1.29),
            Price("birdeye", "BONK-USD", t0, t0 + 8, 1.598090539282e-05, t0 - 10**9, None, None),
            Price("jupiter", "SOL-USD", later, later + 9, 146.01),
        ],
    }


def _instrument(
    exchange: str, symbol: str, ts: int, native: str, kind: InstrumentKind
) -> Instrument:
    quote = "USD" if kind.startswith("inverse") else "USDT"
    settle = "BTC" if kind.startswith("inverse") else quote
    return Instrument(
        exchange=exchange,
        symbol=symbol,
        ts=ts,
        native_symbol=native,
        kind=kind,
        base="BTC",
        quote=quote,
        settle=settle,
        contract_value={"inverse_perpetual": 100.0, "linear_future": 0.01}.get(kind, 1.0),
        contract_multiplier=1.0,
        tick_size=0.01 if kind == "spot" else 0.1,
        lot_size={"inverse_perpetual": 1.0, "linear_future": 0.1}.get(kind, 1e-5),
        expiry=ts + 10**15 if kind == "linear_future" else None,
        status="halted" if kind == "spot" else "trading",
    )
