"""Coinbase Exchange as the registry lists it."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from marketstream.venues.base.feed import connect_to_base
from marketstream.venues.base.venue import Sequencing, Venue
from marketstream.venues.coinbase.feed import CHANNELS, subscribe_messages
from marketstream.venues.coinbase.instruments import instrument_urls, parse_instruments
from marketstream.venues.coinbase.mapper import make_mapper
from marketstream.venues.coinbase.replay import CoinbaseDialect
from marketstream.venues.coinbase.symbols import NAME

COINBASE: Final = Venue(
    name=NAME,
    connect_url=connect_to_base,
    subscribe_messages=subscribe_messages,
    make_mapper=make_mapper,
    sequencing=Sequencing.NONE,
    channels=CHANNELS,
    dialect=CoinbaseDialect(),
    ping_message=None,
    sequential_trade_ids=True,  # `trade_id` counts up by one per product
    instrument_urls=instrument_urls,
    parse_instruments=parse_instruments,
    tardis_ids=MappingProxyType({"spot": "coinbase"}),
)
