"""What differs between Binance spot and USD-M futures: names, channels, paths and limits.

Both markets speak the same stream protocol; they differ in event details (USD-M stamps
bookTicker and depth with a transaction time `T` and links depth updates with `pu`), in
limits and in their REST paths. One `Market` value holds those differences; the mapper, the
feed rules and the REST calls take it as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import Channel, parse_symbol
from marketstream.venues.base.venue import Sequencing


@dataclass(frozen=True, slots=True)
class Market:
    name: str
    perp: bool
    channels: frozenset[Channel]
    sequencing: Sequencing
    max_messages_per_s: float  # subscribe requests per second on one connection
    max_streams: int  # streams per connection
    depth_path: str  # REST order book snapshot
    trades_path: str  # REST aggTrades
    trades_weight: int  # request weight of one aggTrades request
    weight_limit_per_minute: int  # REQUEST_WEIGHT per IP
    exchange_info_path: str  # REST instrument metadata
    open_interest_path: str | None  # REST open interest of one symbol (derivatives)

    def native(self, symbol: str) -> str:
        """The native name of a configured symbol, refusing the other market's symbols:
        BTC-USDT and BTC-USDT-PERP -> BTCUSDT, BTC-USDT-20210924 -> BTCUSDT_210924 (exact:
        Binance names its quarterly contracts by the delivery day)."""
        parts = parse_symbol(symbol)
        if parts.derivative != self.perp:
            kind, example = (
                ("derivatives", "BTC-USDT-PERP or BTC-USDT-20250328")
                if self.perp
                else ("spot", "BTC-USDT")
            )
            raise ConfigError(
                f"{self.name}: symbol {symbol!r} is not listed here: {self.name} lists "
                f"{kind} symbols like {example}"
            )
        joined = f"{parts.base}{parts.quote}"
        return joined if parts.expiry is None else f"{joined}_{parts.expiry[2:]}"


_SPOT_CHANNELS: Final[frozenset[Channel]] = frozenset(("trades", "quotes", "candles", "books"))

SPOT: Final = Market(
    name="binance",
    perp=False,
    channels=_SPOT_CHANNELS,
    sequencing=Sequencing.FIRST_LAST,  # U == previous u + 1
    max_messages_per_s=5,
    max_streams=1024,
    depth_path="/api/v3/depth",
    trades_path="/api/v3/aggTrades",
    trades_weight=4,
    weight_limit_per_minute=6000,
    exchange_info_path="/api/v3/exchangeInfo",
    open_interest_path=None,
)

USDM: Final = Market(
    name="binance-usdm",
    perp=True,
    # open_interest is polled over REST (`/fapi/v1/openInterest`): no stream sends it
    channels=_SPOT_CHANNELS | {"funding", "liquidations", "open_interest"},
    sequencing=Sequencing.PREV_LAST,  # pu == previous u
    max_messages_per_s=10,
    max_streams=200,
    depth_path="/fapi/v1/depth",
    trades_path="/fapi/v1/aggTrades",
    trades_weight=20,
    weight_limit_per_minute=2400,
    exchange_info_path="/fapi/v1/exchangeInfo",
    open_interest_path="/fapi/v1/openInterest",
)

MARKETS: Final = {market.name: market for market in (SPOT, USDM)}
