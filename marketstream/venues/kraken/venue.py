"""Kraken spot as the registry lists it."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from marketstream.venues.base.feed import connect_to_base
from marketstream.venues.base.venue import Sequencing, Venue
from marketstream.venues.kraken.checksum import CHECKSUM_DEPTH, checksum
from marketstream.venues.kraken.feed import (
    BOOK_DEPTH,
    CHANNELS,
    PING,
    resubscribe_book,
    subscribe_messages,
)
from marketstream.venues.kraken.instruments import instrument_urls, parse_instruments
from marketstream.venues.kraken.mapper import make_mapper
from marketstream.venues.kraken.replay import KrakenDialect
from marketstream.venues.kraken.sessions import kraken_session
from marketstream.venues.kraken.symbols import NAME

KRAKEN: Final = Venue(
    name=NAME,
    connect_url=connect_to_base,
    subscribe_messages=subscribe_messages,
    make_mapper=make_mapper,
    sequencing=Sequencing.NONE,  # no sequence numbers: the checksum is the integrity check
    channels=CHANNELS,
    dialect=KrakenDialect(),
    # Heartbeats arrive every second while subscribed; the ping keeps an idle connection
    # (all symbols quiet) open through proxies that close after a minute of silence.
    ping_message=PING,
    ping_interval_s=20.0,
    # Kraken publishes no per-second cap on public requests but disconnects floods; one a
    # second spaces the subscribe burst and the unsubscribe/subscribe pairs of resyncs.
    max_messages_per_s=1.0,
    # No published cap either; a hundred (symbol, channel) streams at book depth 25 keeps
    # one connection's traffic moderate.
    max_streams_per_connection=100,
    resubscribe_book=resubscribe_book,
    checksum=checksum,
    checksum_depth=CHECKSUM_DEPTH,
    # Kraken sends no removal for levels pushed out of the subscribed depth.
    book_depth_limit=BOOK_DEPTH,
    sequential_trade_ids=True,  # v2 `trade_id` counts up by one per pair
    instrument_urls=instrument_urls,
    parse_instruments=parse_instruments,
    session=kraken_session,
    tardis_ids=MappingProxyType(
        {
            "spot": "kraken",
            "inverse_perpetual": "cryptofacilities",
            "linear_perpetual": "cryptofacilities",
            "inverse_future": "cryptofacilities",
            "linear_future": "cryptofacilities",
        }
    ),
)
