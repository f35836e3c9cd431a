"""`/v1/stream` channels and resume ids: what is accepted, and that errors name the input."""

from __future__ import annotations

import pytest

from marketstream.serve.channels import (
    Channel,
    ChannelError,
    explicit_streams,
    parse_channel,
    parse_channels,
    parse_last_ids,
    parse_last_ids_param,
    symbol_filter,
    wildcard_tables,
)
from marketstream.serve.replay_merge import SourceKey
from marketstream.serve.replay_ws import parse_request


def test_a_channel_names_table_exchange_and_symbol_with_wildcards() -> None:
    assert parse_channel("trades:binance:BTC-USDT") == Channel("trades", "binance", "BTC-USDT")
    assert parse_channel("trade:okx:*") == Channel("trades", "okx", None)  # the record type
    assert parse_channel("quotes:*:ETH-USDT") == Channel("quotes", None, "ETH-USDT")
    assert parse_channel("books:*:*").text == "books:*:*"


def test_a_sources_prices_are_a_channel_of_its_own_stream() -> None:
    """A polled source owns `md:{jupiter}:prices`: live and replayed like any record type."""
    channel = parse_channel("prices:jupiter:SOL-USD")
    assert channel == Channel("prices", "jupiter", "SOL-USD")
    assert parse_channel("price:birdeye:*") == Channel("prices", "birdeye", None)
    assert channel.matches_stream("md:{jupiter}:prices")
    assert not channel.matches_stream("md:{birdeye}:prices")
    assert explicit_streams([channel]) == {"md:{jupiter}:prices"}
    replay = parse_request(
        {"exchanges": "jupiter,birdeye", "symbols": "SOL-USD", "types": "prices"}
        | {"start": "2025-11-20", "end": "2025-11-21"},
        max_speed=100,
        max_range_days=31,
    )
    assert replay.sources == (
        SourceKey("prices", "jupiter", "SOL-USD"),
        SourceKey("prices", "birdeye", "SOL-USD"),
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("trades:binance", "is not type:exchange:symbol"),
        ("trades:binance:BTC-USDT:x", "is not type:exchange:symbol"),
        ("fills:binance:BTC-USDT", "type 'fills' is not streamed"),
        ("instruments:binance:BTC-USDT", "type 'instruments' is not streamed"),
        ("trades:nasdaq:BTC-USDT", "exchange 'nasdaq' is not known"),
        ("trades:binance:btcusdt", "symbol 'btcusdt' is not normalized"),
    ],
)
def test_a_bad_channel_is_refused_naming_it(text: str, named: str) -> None:
    with pytest.raises(ChannelError) as caught:
        parse_channel(text)
    assert repr(text) in str(caught.value)
    assert named in str(caught.value)


def test_channels_are_deduplicated_and_at_least_one_is_needed() -> None:
    found = parse_channels(["trades:binance:BTC-USDT", " ", "trade:binance:BTC-USDT"])
    assert found == (Channel("trades", "binance", "BTC-USDT"),)
    with pytest.raises(ChannelError, match="no channel given"):
        parse_channels(["", " "])


def test_streams_and_symbol_filters_of_a_subscription() -> None:
    channels = parse_channels(
        ["trades:binance:BTC-USDT", "trades:binance:ETH-USDT", "quotes:*:BTC-USDT", "books:okx:*"]
    )
    assert explicit_streams(channels) == {"md:{binance}:trades", "md:{okx}:books"}
    assert wildcard_tables(channels) == {"quotes"}
    assert symbol_filter(channels, "md:{binance}:trades") == frozenset({"BTC-USDT", "ETH-USDT"})
    assert symbol_filter(channels, "md:{kraken}:quotes") == frozenset({"BTC-USDT"})
    assert symbol_filter(channels, "md:{okx}:books") is None  # every symbol
    assert symbol_filter(channels, "md:{okx}:trades") == frozenset()
    assert symbol_filter(channels, "md:quotes:kraken") == frozenset()  # version 1: not served


def test_last_ids_as_object_or_query_parameter() -> None:
    wanted = {"md:{binance}:trades": "1700000000000-0", "md:{okx}:quotes": "1700000000001-12"}
    assert parse_last_ids(wanted) == wanted
    text = "md:{binance}:trades=1700000000000-0,md:{okx}:quotes=1700000000001-12"
    assert parse_last_ids_param(text) == wanted
    assert parse_last_ids_param(None) == {}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"md:{binance}:trades": "12"}, "'12' of stream 'md:{binance}:trades' is not a stream"),
        ({"md:dlq": "1-0"}, "'md:dlq', which is not a record stream"),
        ({"price:{binance}:BTC-USDT": "1-0"}, "which is not a record stream"),
        ({"md:{binance}:trades": 5}, "last id 5 of stream"),
    ],
)
def test_bad_last_ids_are_refused_naming_them(raw: dict[str, str], named: str) -> None:
    with pytest.raises(ChannelError) as caught:
        parse_last_ids(raw)
    assert named in str(caught.value)


def test_a_last_ids_item_without_an_id_is_refused() -> None:
    with pytest.raises(ChannelError, match="is not stream=id"):
        parse_last_ids_param("md:{binance}:trades")
