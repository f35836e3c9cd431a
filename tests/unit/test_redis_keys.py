"""Redis contract version 2 key names, and reading version-1 names during a migration."""

from __future__ import annotations

import pytest

from marketstream.services.redis_cluster import slot_ranges
from marketstream.tiers.redis_bus import (
    legacy_price_key,
    legacy_stream_key,
    parse_stream_key,
    price_key,
    slot_of,
    stream_key,
)
from marketstream.writers.hot_writer_redis import StreamEntry, is_record_stream


def test_names_are_hash_tagged_per_exchange() -> None:
    assert stream_key("trades", "binance") == "md:{binance}:trades"
    assert price_key("binance", "BTC-USDT") == "price:{binance}:BTC-USDT"
    assert legacy_stream_key("trades", "binance") == "md:trades:binance"
    assert legacy_price_key("binance", "BTC-USDT") == "price:binance:BTC-USDT"
    # every stream and price key of an exchange in one slot: one XREADGROUP on a cluster
    slots = {slot_of(stream_key(t, "okx")) for t in ("trades", "quotes", "books")}
    assert slots == {slot_of(price_key("okx", "BTC-USDT"))}


@pytest.mark.parametrize(
    ("key", "parsed"),
    [
        ("md:{binance}:trades", ("trades", "binance")),
        ("md:trades:binance", ("trades", "binance")),
        ("md:{binance-usdm}:open_interest", ("open_interest", "binance-usdm")),
        ("md:dlq", None),
        ("md:{}:trades", None),
        ("md:{a}b:trades", None),
        ("price:{binance}:BTC-USDT", None),
    ],
)
def test_both_versions_parse(key: str, parsed: tuple[str, str] | None) -> None:
    assert parse_stream_key(key) == parsed


def test_record_streams_of_the_writers_exchanges() -> None:
    assert is_record_stream("md:{okx}:trades")
    assert is_record_stream("md:trades:okx")
    assert not is_record_stream("md:{okx}:nonsense")
    assert not is_record_stream("md:dlq")
    assert is_record_stream("md:{okx}:trades", ["okx", "kraken"])
    assert not is_record_stream("md:{okx}:trades", ["kraken"])
    assert not is_record_stream("md:trades:okx", ["kraken"])
    assert StreamEntry("md:{okx}:trades", b"1-0", {}).exchange == "okx"
    assert StreamEntry("md:trades:okx", b"1-0", {}).exchange == "okx"


def test_slot_ranges_cover_every_slot_once() -> None:
    ranges = slot_ranges(3)
    assert ranges == [(0, 5460), (5461, 10921), (10922, 16383)]
    assert sum(last - first + 1 for first, last in ranges) == 16384
