"""The API's per-client stream slots and its paging cursor, without a server."""

from __future__ import annotations

import base64

import orjson
import pytest

from marketstream.serve.limits import LimitExceeded, Refused, StreamSlots
from marketstream.serve.pages import Cursor, RangeRequest, decode_cursor

QUERY = RangeRequest("trades", "binance", "BTC-USDT", 1_000, 9_000)


async def test_slots_held_and_released() -> None:
    slots = StreamSlots(2)
    async with slots.hold("a"):
        assert slots.held("a") == 1
        async with slots.hold("a"):
            assert slots.held("a") == 2
            async with slots.hold("b"):  # another client has slots of its own
                assert slots.held("b") == 1
        assert slots.held("a") == 1
    assert slots.held("a") == 0
    assert slots.held("b") == 0


async def test_a_slot_over_the_limit_is_refused_naming_it() -> None:
    slots = StreamSlots(1)
    async with slots.hold("a"):
        with pytest.raises(LimitExceeded) as refused:
            async with slots.hold("a"):
                pytest.fail("a second slot was granted")
        assert slots.held("a") == 1  # the refusal took no slot
    assert refused.value.status == 429
    assert refused.value.limit == "max_streams_per_client"
    assert "serve.max_streams_per_client is 1" in refused.value.message
    assert "stream 2" in refused.value.message
    async with slots.hold("a"):  # free again
        assert slots.held("a") == 1


async def test_a_slot_is_released_when_the_stream_fails() -> None:
    slots = StreamSlots(1)
    with pytest.raises(RuntimeError, match="client went away"):
        async with slots.hold("a"):
            raise RuntimeError("client went away")
    assert slots.held("a") == 0
    async with slots.hold("a"):
        assert slots.held("a") == 1


@pytest.mark.parametrize("cursor", [Cursor(1_000, 0), Cursor(5_000, 3), Cursor(9_000, 10**6)])
def test_cursor_round_trip(cursor: Cursor) -> None:
    text = cursor.encode(QUERY)
    assert decode_cursor(text, QUERY) == cursor
    assert "=" not in text  # fits a query string as is
    # the page size is not part of the query: the same cursor serves any limit
    assert decode_cursor(text, RangeRequest("trades", "binance", "BTC-USDT", 1_000, 9_000)) == (
        cursor
    )


def _raw(body: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode()


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"not json").decode(),
        _raw([1, 2]),
        _raw({"v": 99, "q": QUERY.key(), "ts": 2_000, "n": 0}),  # another version
        _raw({"v": 1, "q": QUERY.key(), "ts": "2000", "n": 0}),
        _raw({"v": 1, "q": QUERY.key(), "ts": 2_000, "n": -1}),
        _raw({"v": 1, "q": QUERY.key(), "ts": 999, "n": 0}),  # before the range
        _raw({"v": 1, "q": QUERY.key(), "ts": 9_001, "n": 0}),  # after it
    ],
)
def test_a_garbled_cursor_is_refused(text: str) -> None:
    with pytest.raises(Refused) as refused:
        decode_cursor(text, QUERY)
    assert refused.value.status == 400
    assert refused.value.message.startswith(f"cursor {text[:40]!r} is not valid")
    assert "next_cursor" in refused.value.message


@pytest.mark.parametrize(
    "other",
    [
        RangeRequest("quotes", "binance", "BTC-USDT", 1_000, 9_000),
        RangeRequest("trades", "okx", "BTC-USDT", 1_000, 9_000),
        RangeRequest("trades", "binance", "ETH-USDT", 1_000, 9_000),
        RangeRequest("trades", "binance", "BTC-USDT", 1_000, 9_001),
        RangeRequest("candles", "binance", "BTC-USDT", 1_000, 9_000, "1m"),
    ],
)
def test_a_cursor_of_another_query_is_refused(other: RangeRequest) -> None:
    text = Cursor(2_000, 1).encode(other)
    with pytest.raises(Refused) as refused:
        decode_cursor(text, QUERY)
    assert refused.value.status == 400
    assert "another query" in refused.value.message
