"""Bybit v5 (spot, linear and inverse contracts) as the registry lists it."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from marketstream.venues.base.venue import Sequencing, Venue
from marketstream.venues.bybit.feed import (
    BOOK_DEPTH,
    CHANNELS,
    MAX_MESSAGES_PER_S,
    MAX_TOPICS_PER_CONNECTION,
    PING,
    PING_INTERVAL_S,
    connect_url,
    resubscribe_book,
    split,
    subscribe_messages,
)
from marketstream.venues.bybit.instruments import instrument_urls, next_page, parse_instruments
from marketstream.venues.bybit.mapper import make_mapper, mapper_for_recording
from marketstream.venues.bybit.markets import NAME
from marketstream.venues.bybit.replay import BybitDialect
from marketstream.venues.bybit.sessions import bybit_session

BYBIT: Final = Venue(
    name=NAME,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    make_mapper=make_mapper,
    sequencing=Sequencing.INCREMENT,
    channels=CHANNELS,
    dialect=BybitDialect(),
    ping_message=PING,
    ping_interval_s=PING_INTERVAL_S,
    max_messages_per_s=MAX_MESSAGES_PER_S,
    max_streams_per_connection=MAX_TOPICS_PER_CONNECTION,
    resubscribe_book=resubscribe_book,
    split=split,
    mapper_for_recording=mapper_for_recording,
    # The feed keeps 50 levels a side; a level pushed out of them may get no removal.
    book_depth_limit=BOOK_DEPTH,
    # UUIDs (linear) or sparse numbers (spot): trade ids skip by design.
    sequential_trade_ids=False,
    instrument_urls=instrument_urls,
    parse_instruments=parse_instruments,
    next_instrument_page=next_page,
    session=bybit_session,
    tardis_ids=MappingProxyType(
        {
            "spot": "bybit-spot",
            "linear_perpetual": "bybit",
            "inverse_perpetual": "bybit",
            "linear_future": "bybit",
            "inverse_future": "bybit",
        }
    ),
)
