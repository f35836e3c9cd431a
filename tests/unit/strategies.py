"""Hypothesis strategies that build valid normalized records."""

from __future__ import annotations

from hypothesis import strategies as st

from marketstream.schemas.columns import SPECS, TableSpec
from marketstream.schemas.instruments import EXCHANGES, SOURCES
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Instrument,
    Level,
    Liquidation,
    OpenInterest,
    Price,
    Quote,
    Record,
    Trade,
)

NOW_NS = 1_700_000_000_000_000_000

exchanges = st.sampled_from(EXCHANGES)
symbols = st.sampled_from(["BTC-USDT", "ETH-USD", "BTC-USDT-PERP", "SOL-EUR"])
timestamps = st.integers(min_value=1, max_value=NOW_NS)
prices = st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False)
opt_prices = st.none() | prices
ids = st.text(alphabet="0123456789abcdef-", min_size=1, max_size=36)


@st.composite
def candles(draw: st.DrawFn) -> Candle:
    ohlc = sorted(draw(st.lists(prices, min_size=4, max_size=4)))
    low, high = ohlc[0], ohlc[3]
    open_, close = draw(st.permutations([ohlc[1], ohlc[2]]))
    return Candle(
        exchange=draw(exchanges),
        symbol=draw(symbols),
        interval=draw(st.sampled_from(["1s", "1m", "5m", "1h", "1d"])),
        ts=draw(timestamps),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=draw(st.floats(min_value=0, max_value=1e9)),
        trades=draw(st.none() | st.integers(min_value=0, max_value=10**9)),
        closed=draw(st.booleans()),
    )


def _side(draw: st.DrawFn, descending: bool) -> list[Level]:
    levels = draw(st.lists(prices, max_size=25, unique=True))
    levels.sort(reverse=descending)
    return [(price, draw(prices)) for price in levels]


@st.composite
def books(draw: st.DrawFn) -> Book:
    bids = _side(draw, descending=True)
    floor = (bids[0][0] if bids else 0.0) + 1.0
    shifted = {p + floor: s for p, s in _side(draw, False)}  # shifting can merge tiny gaps
    asks = sorted(shifted.items())
    return Book(
        exchange=draw(exchanges),
        symbol=draw(symbols),
        ts=draw(timestamps),
        recv_ts=draw(timestamps),
        seq=draw(st.integers(min_value=0, max_value=2**62)),
        bids=bids,
        asks=asks,
        is_snapshot=draw(st.booleans()),
    )


trades = st.builds(
    Trade,
    exchange=exchanges,
    symbol=symbols,
    ts=timestamps,
    recv_ts=timestamps,
    trade_id=ids,
    price=prices,
    size=prices,
    side=st.sampled_from(["buy", "sell"]),
)
quotes = st.builds(
    Quote,
    exchange=exchanges,
    symbol=symbols,
    ts=timestamps,
    recv_ts=timestamps,
    bid_px=prices,
    bid_sz=opt_prices,
    ask_px=prices,
    ask_sz=opt_prices,
    last_px=opt_prices,
)
fundings = st.builds(
    Funding,
    exchange=exchanges,
    symbol=symbols,
    ts=timestamps,
    rate=st.floats(min_value=-0.1, max_value=0.1),
    mark_px=opt_prices,
    index_px=opt_prices,
    next_ts=st.none() | timestamps,
)

liquidations = st.builds(
    Liquidation,
    exchange=exchanges,
    symbol=symbols,
    ts=timestamps,
    recv_ts=timestamps,
    side=st.sampled_from(["buy", "sell"]),
    price=prices,
    size=prices,
)

open_interests = st.builds(
    OpenInterest,
    exchange=exchanges,
    symbol=symbols,
    ts=timestamps,
    recv_ts=timestamps,
    open_interest=st.floats(min_value=0, max_value=1e12),
    value=st.none() | st.floats(min_value=0, max_value=1e15),
)

instruments = st.builds(
    Instrument,
    exchange=exchanges,
    symbol=symbols,
    ts=timestamps,
    native_symbol=st.sampled_from(["BTCUSDT", "BTC-USD-SWAP", "XBT/USD", "BTCUSD_250328"]),
    kind=st.sampled_from(
        ["spot", "linear_perpetual", "inverse_perpetual", "linear_future", "inverse_future"]
    ),
    base=st.sampled_from(["BTC", "ETH"]),
    quote=st.sampled_from(["USDT", "USD"]),
    settle=st.sampled_from(["USDT", "BTC"]),
    contract_value=prices,
    contract_multiplier=prices,
    tick_size=prices,
    lot_size=prices,
    expiry=st.none() | timestamps,
    status=st.sampled_from(["trading", "halted"]),
)

price_records = st.builds(
    Price,
    exchange=st.sampled_from(SOURCES),
    symbol=st.sampled_from(["SOL-USD", "BONK-USD", "JITOSOL-USD"]),
    ts=timestamps,
    recv_ts=timestamps,
    price=prices,
    source_ts=st.none() | timestamps,
    block=st.none() | st.integers(min_value=0, max_value=2**53),
    liquidity=st.none() | st.floats(min_value=0, max_value=1e12),
    change_24h=st.none() | st.floats(min_value=-100, max_value=1e6),
)

records: st.SearchStrategy[Record] = st.one_of(
    trades,
    quotes,
    candles(),
    books(),
    fundings,
    liquidations,
    open_interests,
    instruments,
    price_records,
)

# One strategy per table, in SPECS order (a new record type without one fails at import).
BY_SPEC: dict[TableSpec, st.SearchStrategy[Record]] = dict(
    zip(
        SPECS,
        (
            trades,
            quotes,
            candles(),
            books(),
            fundings,
            liquidations,
            open_interests,
            instruments,
            price_records,
        ),
        strict=True,
    )
)
