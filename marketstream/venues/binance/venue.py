"""Binance spot and USD-M futures as the registry lists them: one package, two venues.

The two markets share the stream protocol, the mapper, the REST calls and the replay dialect,
and differ only in the data of a `Market` (`markets.py`); two packages would either copy the
code or make one venue import the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import Final

from marketstream.schemas.records import InstrumentKind
from marketstream.venues.base.feed import connect_to_base
from marketstream.venues.base.venue import TradeHistory, Venue
from marketstream.venues.binance import feed, instruments, mapper, open_interest, rest
from marketstream.venues.binance.markets import SPOT, USDM, Market
from marketstream.venues.binance.replay import BinanceDialect

# tardis.dev names Binance's markets apart: spot, USDT-margined and coin-margined futures.
TARDIS_IDS: Final[Mapping[InstrumentKind, str]] = MappingProxyType(
    {
        "spot": "binance",
        "linear_perpetual": "binance-futures",
        "linear_future": "binance-futures",
        "inverse_perpetual": "binance-delivery",
        "inverse_future": "binance-delivery",
    }
)


def _venue(market: Market) -> Venue:
    return Venue(
        name=market.name,
        connect_url=connect_to_base,
        subscribe_messages=partial(feed.subscribe_messages, market),
        make_mapper=partial(mapper.make_mapper, market),
        sequencing=market.sequencing,
        channels=market.channels,
        dialect=BinanceDialect(),
        ping_message=None,  # Binance pings at the WebSocket level; the client pongs
        max_messages_per_s=market.max_messages_per_s,
        max_streams_per_connection=market.max_streams,
        snapshot_requests=partial(rest.snapshot_requests, market),
        map_snapshot=partial(rest.map_snapshot, market),
        snapshot_symbol=partial(rest.snapshot_symbol, market),
        sequential_trade_ids=True,  # aggTrade ids `a` count up by one per symbol
        trade_history=TradeHistory(
            pages=partial(rest.BinanceTrades, market),
            weight_limit_per_minute=market.weight_limit_per_minute,
            used_weight_header=rest.USED_WEIGHT_HEADER,
        ),
        instrument_urls=partial(instruments.instrument_urls, market),
        parse_instruments=partial(instruments.parse_instruments, market),
        open_interest_url=(
            partial(open_interest.open_interest_url, market)
            if market.open_interest_path is not None
            else None
        ),
        parse_open_interest=(
            partial(open_interest.parse_open_interest, market)
            if market.open_interest_path is not None
            else None
        ),
        tardis_ids=TARDIS_IDS,
    )


BINANCE: Final = _venue(SPOT)
BINANCE_USDM: Final = _venue(USDM)
