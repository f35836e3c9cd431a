"""Synthetic trades, quotes, 1m candles, and for perpetuals liquidations and open interest,
for past days: pure, seeded, one day at a time.

The same seed gives the same rows for a day whatever range it is generated in, because every
random draw comes from a generator seeded by (seed, purpose, exchange, symbol, day):

- Price: per symbol, a daily log level that reverts slowly to the symbol's start price
  (BTC ~ 60000, ETH ~ 3000, others ~ 100), with day-to-day volatility clustering; within a
  day, a Brownian bridge from the day's open level to the next day's, sampled at the trade
  times of every exchange (the exchanges trade one price, plus a small basis each).
- Arrivals: trades come in bursts (cluster sizes geometric, mean `mean_burst`, milliseconds
  apart), the bursts busier in the US afternoon; the count per (exchange, symbol, day) varies
  around `trades_per_day`. Trade ids are consecutive per (exchange, symbol) across days.
- Quotes: the top of book each trade met: bid < ask a few ticks apart, the taker buying at
  the ask and selling at the bid, so bid <= price <= ask; `last_px` is the previous trade.
- Candles: exchange 1m bars, closed, from the day's trades (OHLCV and trade count), one per
  minute that has trades.
- Perpetuals (`-PERP` symbols) also get liquidations, about one per `_LIQUIDATION_EVERY`
  trades, each at the price and time of the trade it met and a few times its size, and open
  interest every `_OI_STEP_NS`: a slow random walk around `_OI_NOTIONAL` of quote currency
  in base units, its value at the last trade price. Their draws come from generators of
  their own, so the other tables are the same with or without them.
- Gaps (optional): per exchange, a few outages of minutes with no rows at all; trade ids skip
  over them, as a real feed's do after a disconnect. Spikes (optional): per symbol, a few
  sudden moves of 3-12% that decay over minutes. Either option leaves every other draw as it
  was: rows with gaps are a subset of the rows without.

A day's rows are Arrow tables in the records' own layout (`schemas.arrow.arrow_schema`),
sorted by `ts`; `from_arrow` turns them into records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from marketstream.errors import MarketStreamError
from marketstream.schemas.arrow import arrow_schema
from marketstream.schemas.checksum import key_checksum
from marketstream.schemas.columns import (
    CANDLES,
    LIQUIDATIONS,
    OPEN_INTEREST,
    QUOTES,
    SPEC_BY_TABLE,
    TRADES,
    TableSpec,
)
from marketstream.schemas.instruments import EXCHANGES, parse_symbol

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

EPOCH: Final = date(1970, 1, 1)
ANCHOR: Final = date(2010, 1, 1)  # day 0 of every daily series: the earliest day generated
HORIZON_DAYS: Final = 40_000  # daily draws per series, fixed so that a day's draws never move
NS_PER_MS: Final = 1_000_000
NS_PER_S: Final = 1_000_000_000
NS_PER_MINUTE: Final = 60 * NS_PER_S
NS_PER_DAY: Final = 86_400 * NS_PER_S
MINUTES_PER_DAY: Final = 1_440
GRID_NS: Final = 10 * NS_PER_S  # the price path's step; trade times fall between its points
GRID_POINTS: Final = NS_PER_DAY // GRID_NS

START_PRICES: Final[Mapping[str, float]] = {"BTC": 60_000.0, "ETH": 3_000.0}
DEFAULT_START_PRICE: Final = 100.0
MAX_TRADES_PER_DAY: Final = 5_000_000  # per exchange and symbol: one day is held in memory

_REVERSION: Final = math.exp(-1 / 180)  # daily level: mean reversion over about half a year
_VOL_OF_VOL: Final = 0.25  # day-to-day variation of the volatility (log-normal)
_COUNT_SPREAD: Final = 0.3  # day-to-day variation of the trade count (log-normal)
_BURST_STEP_NS: Final = 40 * NS_PER_MS  # mean time between trades of one burst
_BUSY_SHARE, _BUSY_CENTER, _BUSY_WIDTH = 0.4, 15.5 / 24, 2.5 / 24  # the US afternoon, UTC
_BASIS_SD: Final = 1e-4  # an exchange's price differs from the others' by about 1 bp
_TRADE_NOTIONAL, _QUOTE_NOTIONAL = 300.0, 20_000.0  # median trade and quote size, in quote ccy
_LATENCY_NS: Final = 15 * NS_PER_MS  # median exchange-to-receive delay
_GAP_MEAN_MINUTES: Final = 10.0
_SPIKE_SIZE, _SPIKE_DECAY_S = (0.03, 0.12), (60.0, 600.0)
_LIQUIDATION_EVERY: Final = 400  # trades per liquidation, on average
_LIQUIDATION_SIZE: Final = (1.0, 20.0)  # times the size of the trade it met
_OI_STEP_NS: Final = 5 * NS_PER_MINUTE  # open interest readings: 288 a day
_OI_NOTIONAL: Final = 2e9  # open interest around this much quote currency
_OI_STEP_SD: Final = 0.002  # log change of open interest per reading


_BOUNDS: Final = (
    ("daily_volatility", 0.0, 1.0),
    ("spread_bps", 0.0, 1_000.0),
    ("mean_burst", 1.0, 1_000.0),
    ("gaps_per_day", 0.0, 100.0),
    ("spikes_per_day", 0.0, 100.0),
)


class HistoryInputError(MarketStreamError, ValueError):
    """A generation input is not acceptable; the message names it and what was expected."""


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """What to generate. Rates are per exchange and symbol; volatility per day (log units)."""

    exchanges: tuple[str, ...] = EXCHANGES[:1]  # the schema's first exchange
    symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT")
    trades_per_day: int = 2_000
    seed: int = 0
    gaps: bool = False
    spikes: bool = False
    daily_volatility: float = 0.03
    start_prices: Mapping[str, float] = field(default_factory=dict)  # by symbol or base
    spread_bps: float = 1.0
    mean_burst: float = 4.0  # trades per burst, on average
    gaps_per_day: float = 2.0  # outages per exchange and day, on average, with `gaps`
    spikes_per_day: float = 1.0  # per symbol and day, on average, with `spikes`

    def __post_init__(self) -> None:
        _check_names(self.exchanges, "exchange", _check_exchange)
        _check_names(self.symbols, "symbol", _check_symbol)
        if not 1 <= self.trades_per_day <= MAX_TRADES_PER_DAY:
            raise HistoryInputError(
                f"trades per day {self.trades_per_day} is out of range: expected 1 to "
                f"{MAX_TRADES_PER_DAY}"
            )
        if self.seed < 0:
            raise HistoryInputError(f"seed {self.seed} is negative: expected 0 or more")
        for name, low, high in _BOUNDS:
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise HistoryInputError(
                    f"{name} {value!r} is out of range: expected a number from {low} to {high}"
                )
        for key, price in self.start_prices.items():
            if not (math.isfinite(price) and price > 0):
                raise HistoryInputError(f"start price of {key} {price!r} is not positive")

    def start_price(self, symbol: str) -> float:
        base = parse_symbol(symbol).base
        for key in (symbol, base):
            if key in self.start_prices:
                return float(self.start_prices[key])
        return START_PRICES.get(base, DEFAULT_START_PRICE)


@dataclass(frozen=True, slots=True)
class DayHistory:
    """One UTC day of every exchange and symbol: Arrow tables in the records' layout."""

    day: date
    trades: pa.Table
    quotes: pa.Table
    candles: pa.Table
    liquidations: pa.Table | None = None  # None: no perpetual symbol was asked for
    open_interest: pa.Table | None = None

    @property
    def tables(self) -> dict[str, pa.Table]:
        tables = {
            TRADES.table: self.trades,
            QUOTES.table: self.quotes,
            CANDLES.table: self.candles,
        }
        if self.liquidations is not None:
            tables[LIQUIDATIONS.table] = self.liquidations
        if self.open_interest is not None:
            tables[OPEN_INTEREST.table] = self.open_interest
        return tables

    @property
    def rows(self) -> int:
        return sum(table.num_rows for table in self.tables.values())

    def truth(self) -> dict[str, tuple[int, int]]:
        """(rows, key checksum) per table: what a tier holding this day must report."""
        return {
            name: key_checksum(SPEC_BY_TABLE[name], table) for name, table in self.tables.items()
        }


def generate(config: HistoryConfig, start: date, end: date) -> Iterator[DayHistory]:
    """The days from start to end (both included), oldest first, each made when asked for."""
    return HistoryGenerator(config).days(start, end)


class HistoryGenerator:
    """Makes any day on demand; keeps only small per-series state (daily levels and counts)."""

    def __init__(self, config: HistoryConfig) -> None:
        self.config = config
        self._levels: dict[str, _DailyLevels] = {}
        self._counts: dict[tuple[str, str], _DailyCounts] = {}

    def days(self, start: date, end: date) -> Iterator[DayHistory]:
        """Each day from start to end (both included) when asked for; the range is checked
        at once."""
        self._index(start)
        self._index(end)
        if start > end:
            raise HistoryInputError(f"start {start} is after end {end}: expected start <= end")
        return (self.day(start + timedelta(days=i)) for i in range((end - start).days + 1))

    def day(self, day: date) -> DayHistory:
        index = self._index(day)
        day_ns = (day - EPOCH).days * NS_PER_DAY
        config = self.config
        gaps = {
            exchange: _gap_minutes(_rng(config.seed, "gaps", exchange, index), config)
            for exchange in config.exchanges
            if config.gaps
        }
        pieces: list[_Piece] = []
        for s, symbol in enumerate(config.symbols):
            pieces.extend(self._symbol_day(s, symbol, index, gaps))
        return _assemble(day, day_ns, pieces, config.exchanges, config.symbols)

    def _index(self, day: date) -> int:
        index = (day - ANCHOR).days
        if not 0 <= index < HORIZON_DAYS - 1:
            last = ANCHOR + timedelta(days=HORIZON_DAYS - 2)
            raise HistoryInputError(f"day {day} is out of range: expected {ANCHOR} to {last}")
        return index

    def _symbol_day(
        self, s: int, symbol: str, index: int, gaps: Mapping[str, Mask]
    ) -> list[_Piece]:
        config = self.config
        levels = self._levels.get(symbol)
        if levels is None:
            levels = self._levels[symbol] = _DailyLevels(config, symbol)
        log_open = levels.log_level(index)
        log_close = levels.log_level(index + 1)
        market = _Market.of(config.start_price(symbol))

        # One price path for the symbol on a 10 s grid; each exchange samples it at its own
        # trade times, so an exchange's rows do not depend on which others are generated.
        grid = _bridge_grid(
            _rng(config.seed, "path", symbol, index),
            float(levels.vols[index]),
            log_close - log_open,
        )
        spikes = _Spikes.draw(_rng(config.seed, "spikes", symbol, index), config)
        pieces = []
        for e, exchange in enumerate(config.exchanges):
            counts = self._counts.get((exchange, symbol))
            if counts is None:
                counts = self._counts[exchange, symbol] = _DailyCounts(config, exchange, symbol)
            n, first_id = counts.of(index)
            rng = _rng(config.seed, "trades", exchange, symbol, index)
            arrival = _arrivals(rng, n, config.mean_burst)
            log_mid = log_open + _sample(rng, grid, arrival.t, float(levels.vols[index]))
            if config.spikes:
                log_mid += spikes.at(arrival.t)
            perp = None
            if parse_symbol(symbol).perp:
                perp = _Perp(
                    _rng(config.seed, "derivatives", exchange, symbol, index),
                    config.start_price(symbol),
                )
            pieces.append(
                _exchange_day(
                    rng,
                    arrival,
                    log_mid,
                    config,
                    market=market,
                    codes=(e, s),
                    first_id=first_id,
                    down=gaps.get(exchange),
                    perp=perp,
                )
            )
        return pieces


# --- daily series: levels and counts, a day's values fixed by (seed, series, day) -------------


class _DailyLevels:
    """The log price at each day's open: an AR(1) around the start price, volatility varying."""

    def __init__(self, config: HistoryConfig, symbol: str) -> None:
        rng = _rng(config.seed, "levels", symbol)
        shocks = rng.standard_normal(HORIZON_DAYS)
        spread = rng.standard_normal(HORIZON_DAYS)
        self.vols: F64 = config.daily_volatility * np.exp(_VOL_OF_VOL * spread - _VOL_OF_VOL**2 / 2)
        self._steps: list[float] = (self.vols * shocks).tolist()
        self._base = math.log(config.start_price(symbol))
        self._levels = [0.0]

    def log_level(self, index: int) -> float:
        levels, steps = self._levels, self._steps
        while len(levels) <= index:
            levels.append(_REVERSION * levels[-1] + steps[len(levels) - 1])
        return self._base + levels[index]


class _DailyCounts:
    """Trades per day, and so the first trade id of each day (ids count from ANCHOR)."""

    def __init__(self, config: HistoryConfig, exchange: str, symbol: str) -> None:
        rng = _rng(config.seed, "counts", exchange, symbol)
        factor = np.exp(_COUNT_SPREAD * rng.standard_normal(HORIZON_DAYS) - _COUNT_SPREAD**2 / 2)
        counts = np.maximum(1, np.rint(config.trades_per_day * factor)).astype(np.int64)
        self.counts: I64 = np.minimum(counts, MAX_TRADES_PER_DAY)
        self.first_ids: I64 = 1 + np.cumsum(self.counts) - self.counts

    def of(self, index: int) -> tuple[int, int]:
        return int(self.counts[index]), int(self.first_ids[index])


# --- one day of one symbol -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Arrivals:
    t: I64  # ns after the day's start, sorted, whole milliseconds
    burst: I64  # the burst of each trade
    bursts: int


@dataclass(frozen=True, slots=True)
class _Market:
    """Price tick and size lot of an instrument, as decimals (0.01 is 2)."""

    price_decimals: int
    size_decimals: int

    @classmethod
    def of(cls, start_price: float) -> _Market:
        magnitude = math.floor(math.log10(start_price))
        return cls(max(0, min(10, 6 - magnitude)), max(0, min(10, magnitude + 1)))

    @property
    def tick(self) -> float:
        return float(10.0**-self.price_decimals)

    @property
    def lot(self) -> float:
        return float(10.0**-self.size_decimals)


@dataclass(frozen=True, slots=True)
class _Piece:
    """One exchange's rows of one symbol for one day, as columns."""

    exchange: int
    symbol: int
    trade_ts: I64
    trade_recv: I64
    trade_id: I64
    price: F64
    size: F64
    buy: Mask
    quote_recv: I64
    bid: F64
    bid_size: F64
    ask: F64
    ask_size: F64
    last_px: F64  # NaN: none yet
    candle_ts: I64
    ohlcv: tuple[F64, F64, F64, F64, F64]
    candle_trades: I64
    liquidation: _Liquidations | None = None  # perpetuals only
    open_interest: _OpenInterest | None = None


@dataclass(frozen=True, slots=True)
class _Perp:
    """What a perpetual's derivative rows are drawn with: their own generator, so the other
    tables are the same whether or not they are made."""

    rng: np.random.Generator
    start_price: float


@dataclass(frozen=True, slots=True)
class _Liquidations:
    ts: I64
    recv: I64
    buy: Mask
    price: F64
    size: F64


@dataclass(frozen=True, slots=True)
class _OpenInterest:
    ts: I64
    recv: I64
    amount: F64
    value: F64


def _arrivals(rng: np.random.Generator, n: int, mean_burst: float) -> _Arrivals:
    """n trade times in bursts: geometric burst sizes, exponential steps within a burst."""
    p = 1.0 / mean_burst
    sizes = rng.geometric(p, size=int(n * p * 1.25) + 8)
    total = np.cumsum(sizes)
    while total[-1] < n:  # rare: draw more bursts
        sizes = np.concatenate([sizes, rng.geometric(p, size=len(sizes))])
        total = np.cumsum(sizes)
    bursts = int(np.searchsorted(total, n)) + 1
    sizes = sizes[:bursts].copy()
    sizes[-1] -= int(total[bursts - 1]) - n
    busy = rng.random(bursts) < _BUSY_SHARE
    centers = np.where(
        busy, rng.normal(_BUSY_CENTER, _BUSY_WIDTH, bursts) % 1.0, rng.random(bursts)
    )
    burst = np.repeat(np.arange(bursts, dtype=np.int64), sizes)
    firsts = np.cumsum(sizes) - sizes
    steps = rng.exponential(_BURST_STEP_NS, n)
    steps[firsts] = 0.0
    elapsed = np.cumsum(steps)
    elapsed -= elapsed[firsts][burst]
    t = (centers * NS_PER_DAY)[burst] + elapsed
    t_ms = np.clip(t // NS_PER_MS, 0, NS_PER_DAY // NS_PER_MS - 1).astype(np.int64) * NS_PER_MS
    order = np.argsort(t_ms, kind="stable")
    return _Arrivals(t_ms[order], burst[order], bursts)


def _bridge_grid(rng: np.random.Generator, vol: float, change: float) -> F64:
    """A Brownian bridge in log price from 0 at the day's start to `change` at its end, at
    every GRID_NS (GRID_POINTS + 1 values); vol is the standard deviation over a whole day."""
    steps = rng.standard_normal(GRID_POINTS) * (vol / math.sqrt(GRID_POINTS))
    walk = np.concatenate([[0.0], np.cumsum(steps)])
    u = np.arange(GRID_POINTS + 1) / GRID_POINTS
    return walk - u * (walk[-1] - change)  # type: ignore[no-any-return]


def _sample(rng: np.random.Generator, grid: F64, t: I64, vol: float) -> F64:
    """The grid path at times t (ns after the day's start): between two grid points, the line
    between them plus a bridge's own noise (largest halfway, none at the points)."""
    cell = t // GRID_NS
    frac = (t - cell * GRID_NS) / GRID_NS
    line = grid[cell] * (1.0 - frac) + grid[cell + 1] * frac
    noise = rng.standard_normal(len(t)) * vol * np.sqrt(frac * (1.0 - frac) / GRID_POINTS)
    return line + noise


@dataclass(frozen=True, slots=True)
class _Spikes:
    """Sudden moves of a symbol's price that decay back: start (ns), size (log), decay (ns)."""

    starts: F64
    sizes: F64
    decays: F64

    @classmethod
    def draw(cls, rng: np.random.Generator, config: HistoryConfig) -> _Spikes:
        count = rng.poisson(config.spikes_per_day)
        starts = rng.random(count) * NS_PER_DAY
        sizes = rng.uniform(*_SPIKE_SIZE, count) * rng.choice([-1.0, 1.0], count)
        return cls(starts, sizes, rng.uniform(*_SPIKE_DECAY_S, count) * NS_PER_S)

    def at(self, t: I64) -> F64:
        """The log-price offsets at times t."""
        offsets = np.zeros(len(t), dtype=np.float64)
        for start, size, decay in zip(self.starts, self.sizes, self.decays, strict=True):
            after = t >= start
            offsets[after] += size * np.exp(-(t[after] - start) / decay)
        return offsets


def _gap_minutes(rng: np.random.Generator, config: HistoryConfig) -> Mask:
    """The minutes of the day an exchange's feed was down."""
    count = rng.poisson(config.gaps_per_day)
    starts = rng.integers(0, MINUTES_PER_DAY, count)
    lengths = np.minimum(rng.geometric(1 / _GAP_MEAN_MINUTES, count), 120)
    down = np.zeros(MINUTES_PER_DAY, dtype=np.bool_)
    for start, length in zip(starts, lengths, strict=True):
        down[start : start + length] = True
    return down


def _exchange_day(
    rng: np.random.Generator,
    arrival: _Arrivals,
    log_mid: F64,
    config: HistoryConfig,
    *,
    market: _Market,
    codes: tuple[int, int],
    first_id: int,
    down: Mask | None,
    perp: _Perp | None = None,
) -> _Piece:
    """One exchange's trades, quotes and candles of one symbol; `down`: its gap minutes."""
    n = len(arrival.t)
    mid = np.exp(log_mid + rng.normal(0.0, _BASIS_SD))
    buy = rng.random(n) < rng.beta(2.0, 2.0, arrival.bursts)[arrival.burst]
    tick = market.tick
    spread = np.maximum(
        1.0, np.rint(config.spread_bps * 1e-4 * mid / tick * rng.uniform(0.5, 1.5, n))
    )
    bid_ticks = np.maximum(1.0, np.floor(mid / tick - spread / 2))
    ask_ticks = bid_ticks + spread
    bid = np.round(bid_ticks * tick, market.price_decimals)
    ask = np.round(ask_ticks * tick, market.price_decimals)
    price = np.where(buy, ask, bid)
    size = _sizes(rng, _TRADE_NOTIONAL, 1.2, mid, market)
    bid_size = _sizes(rng, _QUOTE_NOTIONAL, 1.0, mid, market)
    ask_size = _sizes(rng, _QUOTE_NOTIONAL, 1.0, mid, market)
    trade_recv = _receive_times(rng, arrival.t)
    quote_recv = _receive_times(rng, arrival.t)
    last_px = np.concatenate([[np.nan], price[:-1]])
    ids = first_id + np.arange(n, dtype=np.int64)
    keep = np.ones(n, np.bool_) if down is None else ~down[arrival.t // NS_PER_MINUTE]
    derivatives = (
        (None, None)
        if perp is None
        else _derivatives(perp, arrival.t, price, size, keep, down=down, market=market)
    )
    t, price, size = arrival.t[keep], price[keep], size[keep]
    candle_ts, ohlcv, candle_trades = _candles(t, price, size, market)
    return _Piece(
        exchange=codes[0],
        symbol=codes[1],
        trade_ts=t,
        trade_recv=trade_recv[keep],
        trade_id=ids[keep],
        price=price,
        size=size,
        buy=buy[keep],
        quote_recv=quote_recv[keep],
        bid=bid[keep],
        bid_size=bid_size[keep],
        ask=ask[keep],
        ask_size=ask_size[keep],
        last_px=last_px[keep],
        candle_ts=candle_ts,
        ohlcv=ohlcv,
        candle_trades=candle_trades,
        liquidation=derivatives[0],
        open_interest=derivatives[1],
    )


def _derivatives(
    perp: _Perp,
    t: I64,
    price: F64,
    size: F64,
    keep: Mask,
    *,
    down: Mask | None,
    market: _Market,
) -> tuple[_Liquidations, _OpenInterest]:
    """A perpetual's liquidations and open interest, from its trades' times and prices.

    Every draw is made for the whole day (one per trade, one per reading) before the gap
    minutes are left out, so the rows with gaps are a subset of the rows without.
    """
    rng, n = perp.rng, len(t)
    hit = rng.random(n) < 1.0 / _LIQUIDATION_EVERY
    buy = rng.random(n) < 0.5
    factor = rng.uniform(*_LIQUIDATION_SIZE, n)
    recv = _receive_times(rng, t)
    liquidated = np.maximum(market.lot, np.round(size * factor, market.size_decimals))
    hit &= keep
    liquidations = _Liquidations(t[hit], recv[hit], buy[hit], price[hit], liquidated[hit])

    readings = int(NS_PER_DAY // _OI_STEP_NS)
    ts = np.arange(readings, dtype=np.int64) * _OI_STEP_NS + _OI_STEP_NS - NS_PER_S
    walk = np.cumsum(rng.normal(0.0, _OI_STEP_SD, readings))
    amount = np.round(_OI_NOTIONAL / perp.start_price * np.exp(walk), market.size_decimals)
    oi_recv = ts + np.rint(np.exp(rng.normal(math.log(_LATENCY_NS), 0.5, readings))).astype(
        np.int64
    )
    last = np.searchsorted(t, ts, side="right") - 1  # the last trade before the reading
    value = np.round(amount * price[np.maximum(last, 0)], 2)
    shown = last >= 0
    if down is not None:
        shown &= ~down[ts // NS_PER_MINUTE]
    return liquidations, _OpenInterest(ts[shown], oi_recv[shown], amount[shown], value[shown])


def _sizes(
    rng: np.random.Generator, notional: float, sigma: float, mid: F64, market: _Market
) -> F64:
    raw = np.exp(rng.normal(math.log(notional), sigma, len(mid))) / mid
    return np.maximum(market.lot, np.round(raw, market.size_decimals))


def _receive_times(rng: np.random.Generator, t: I64) -> I64:
    """Exchange time plus a log-normal delay, strictly increasing (one connection's clock)."""
    delay = np.rint(np.exp(rng.normal(math.log(_LATENCY_NS), 0.5, len(t)))).astype(np.int64)
    steps = np.arange(len(t), dtype=np.int64)
    return np.maximum.accumulate(t + delay - steps) + steps


def _candles(
    t: I64, price: F64, size: F64, market: _Market
) -> tuple[I64, tuple[F64, F64, F64, F64, F64], I64]:
    """1m OHLCV bars of trades sorted by time: open time, (o, h, l, c, v), trade count."""
    if len(t) == 0:
        none = np.zeros(0, dtype=np.float64)
        return np.zeros(0, dtype=np.int64), (none, none, none, none, none), t
    minute = t // NS_PER_MINUTE
    starts = np.flatnonzero(np.concatenate([[True], minute[1:] != minute[:-1]]))
    ends = np.append(starts[1:], len(t))
    high: F64 = np.maximum.reduceat(price, starts)
    low: F64 = np.minimum.reduceat(price, starts)
    volume = np.asarray(np.round(np.add.reduceat(size, starts), market.size_decimals), np.float64)
    ohlcv = (price[starts], high, low, price[ends - 1], volume)
    return minute[starts] * NS_PER_MINUTE, ohlcv, (ends - starts).astype(np.int64)


# --- a day's pieces into Arrow tables -----------------------------------------------------------


def _assemble(
    day: date,
    day_ns: int,
    pieces: list[_Piece],
    exchanges: tuple[str, ...],
    symbols: tuple[str, ...],
) -> DayHistory:
    def cat(name: str) -> npt.NDArray[Any]:
        return np.concatenate([getattr(piece, name) for piece in pieces])

    def codes(attribute: str, length_of: str) -> npt.NDArray[np.int32]:
        return np.concatenate(
            [np.full(len(getattr(p, length_of)), getattr(p, attribute), np.int32) for p in pieces]
        )

    names = {"exchange": exchanges, "symbol": symbols}
    trade_ts = cat("trade_ts") + day_ns
    exchange, symbol = codes("exchange", "trade_ts"), codes("symbol", "trade_ts")
    trades = {
        "exchange": _names(exchange, names["exchange"]),
        "symbol": _names(symbol, names["symbol"]),
        "ts": _timestamps(trade_ts),
        "recv_ts": _timestamps(cat("trade_recv") + day_ns),
        "trade_id": pa.array(cat("trade_id"), pa.int64()).cast(pa.string()),
        "price": pa.array(cat("price"), pa.float64()),
        "size": pa.array(cat("size"), pa.float64()),
        "side": _names(np.where(cat("buy"), 0, 1).astype(np.int32), ("buy", "sell")),
    }
    last_px = cat("last_px")
    quotes = {
        "exchange": trades["exchange"],
        "symbol": trades["symbol"],
        "ts": trades["ts"],
        "recv_ts": _timestamps(cat("quote_recv") + day_ns),
        "bid_px": pa.array(cat("bid"), pa.float64()),
        "bid_sz": pa.array(cat("bid_size"), pa.float64()),
        "ask_px": pa.array(cat("ask"), pa.float64()),
        "ask_sz": pa.array(cat("ask_size"), pa.float64()),
        "last_px": pa.array(last_px, pa.float64(), mask=np.isnan(last_px)),
    }
    candle_ts = cat("candle_ts") + day_ns
    ohlcv = [np.concatenate([piece.ohlcv[i] for piece in pieces]) for i in range(5)]
    count = len(candle_ts)
    candles = {
        "exchange": _names(codes("exchange", "candle_ts"), names["exchange"]),
        "symbol": _names(codes("symbol", "candle_ts"), names["symbol"]),
        "interval": _names(np.zeros(count, np.int32), ("1m",)),
        "ts": _timestamps(candle_ts),
        **{
            name: pa.array(values, pa.float64())
            for name, values in zip(("open", "high", "low", "close", "volume"), ohlcv, strict=True)
        },
        "trades": pa.array(cat("candle_trades"), pa.int64()),
        "closed": pa.array(np.ones(count, dtype=np.bool_)),
    }
    history = DayHistory(
        day,
        _table(TRADES, trades, trade_ts),
        _table(QUOTES, quotes, trade_ts),
        _table(CANDLES, candles, candle_ts),
    )
    perps = [p for p in pieces if p.liquidation is not None and p.open_interest is not None]
    if not any(parse_symbol(symbol).perp for symbol in symbols):
        return history
    return dataclasses.replace(
        history,
        liquidations=_liquidation_table(day_ns, perps, exchanges, symbols),
        open_interest=_open_interest_table(day_ns, perps, exchanges, symbols),
    )


def _liquidation_table(
    day_ns: int, pieces: list[_Piece], exchanges: tuple[str, ...], symbols: tuple[str, ...]
) -> pa.Table:
    parts = [p.liquidation for p in pieces if p.liquidation is not None]
    ts = np.concatenate([np.zeros(0, np.int64), *(part.ts for part in parts)]) + day_ns
    buy = np.concatenate([np.zeros(0, np.bool_), *(part.buy for part in parts)])
    columns = {
        **_instrument_names(pieces, [len(part.ts) for part in parts], exchanges, symbols),
        "ts": _timestamps(ts),
        "recv_ts": _timestamps(_cat([part.recv for part in parts], np.int64) + day_ns),
        "side": _names(np.where(buy, 0, 1).astype(np.int32), ("buy", "sell")),
        "price": pa.array(_cat([part.price for part in parts], np.float64), pa.float64()),
        "size": pa.array(_cat([part.size for part in parts], np.float64), pa.float64()),
    }
    return _table(LIQUIDATIONS, columns, ts)


def _open_interest_table(
    day_ns: int, pieces: list[_Piece], exchanges: tuple[str, ...], symbols: tuple[str, ...]
) -> pa.Table:
    parts = [p.open_interest for p in pieces if p.open_interest is not None]
    ts = _cat([part.ts for part in parts], np.int64) + day_ns
    columns = {
        **_instrument_names(pieces, [len(part.ts) for part in parts], exchanges, symbols),
        "ts": _timestamps(ts),
        "recv_ts": _timestamps(_cat([part.recv for part in parts], np.int64) + day_ns),
        "open_interest": pa.array(_cat([p.amount for p in parts], np.float64), pa.float64()),
        "value": pa.array(_cat([part.value for part in parts], np.float64), pa.float64()),
    }
    return _table(OPEN_INTEREST, columns, ts)


def _instrument_names(
    pieces: list[_Piece], lengths: list[int], exchanges: tuple[str, ...], symbols: tuple[str, ...]
) -> dict[str, pa.Array[Any]]:
    """The exchange and symbol columns of rows made piece by piece, `lengths` rows each."""
    exchange = [np.full(n, p.exchange, np.int32) for p, n in zip(pieces, lengths, strict=True)]
    symbol = [np.full(n, p.symbol, np.int32) for p, n in zip(pieces, lengths, strict=True)]
    return {
        "exchange": _names(_cat(exchange, np.int32), exchanges),
        "symbol": _names(_cat(symbol, np.int32), symbols),
    }


def _cat(parts: list[npt.NDArray[Any]], dtype: type[np.generic]) -> npt.NDArray[Any]:
    return np.concatenate([np.zeros(0, dtype), *parts]).astype(dtype, copy=False)


def _table(spec: TableSpec, columns: Mapping[str, pa.Array[Any]], ts: I64) -> pa.Table:
    table = pa.Table.from_arrays([columns[name] for name in spec.names], schema=arrow_schema(spec))
    return table.take(np.argsort(ts, kind="stable"))


def _names(codes: npt.NDArray[np.int32], names: tuple[str, ...]) -> pa.Array[Any]:
    return pa.DictionaryArray.from_arrays(codes, pa.array(names)).cast(pa.string())


def _timestamps(ns: I64) -> pa.Array[Any]:
    return pa.array(ns, pa.int64()).view(pa.timestamp("ns", tz="UTC"))


# --- seeds and input checks ---------------------------------------------------------------------


def _rng(seed: int, *parts: str | int) -> np.random.Generator:
    """A generator for one purpose: entropy from the seed and the parts (names hashed)."""
    words = [seed] + [
        part
        if isinstance(part, int)
        else int.from_bytes(hashlib.blake2b(part.encode(), digest_size=8).digest(), "little")
        for part in parts
    ]
    return np.random.default_rng(words)


def _check_exchange(name: str) -> None:
    if name not in EXCHANGES:
        raise HistoryInputError(
            f"exchange {name!r} is not known: expected one of {', '.join(EXCHANGES)}"
        )


def _check_symbol(name: str) -> None:
    try:
        parse_symbol(name)
    except ValueError as exc:
        raise HistoryInputError(str(exc)) from None


def _check_names(names: tuple[str, ...], what: str, check: Callable[[str], None]) -> None:
    if not names:
        raise HistoryInputError(f"no {what} given: expected at least one")
    seen: set[str] = set()
    for name in names:
        check(name)
        if name in seen:
            raise HistoryInputError(f"{what} {name!r} is given twice: expected each once")
        seen.add(name)
