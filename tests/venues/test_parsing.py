"""Shared pieces of the exchanges package: the frame parsing helpers and the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketstream.venues.base.mapper import FrameError
from marketstream.venues.base.parsing import (
    _parse_iso_ns,
    flag,
    integer,
    iso_time,
    iso_to_ns,
    levels,
    load_object,
    mapping,
    millis,
    ms_to_ns,
    number,
    optional_number,
    show,
    text,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_ms_to_ns() -> None:
    assert ms_to_ns(1626992741421) == 1626992741421000000


@pytest.mark.parametrize(
    ("text_time", "ns"),
    [
        ("2021-04-17T16:43:30.244075Z", 1618677810244075000),
        # Through a float this is ...30.123456768: exactness needs integer arithmetic.
        ("2021-04-17T16:43:30.123456789Z", 1618677810123456789),
        ("2021-04-17T16:43:30.1234567891Z", 1618677810123456789),
        ("2021-04-17T16:43:30.5Z", 1618677810500000000),
        ("2021-04-17T16:43:30Z", 1618677810000000000),
        ("2021-04-17T18:43:30.1234567+02:00", 1618677810123456700),
        ("1970-01-01T00:00:00.000000001Z", 1),
    ],
)
def test_iso_to_ns_is_exact(text_time: str, ns: int) -> None:
    assert iso_to_ns(text_time) == ns


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_iso_to_ns_agrees_with_datetime_arithmetic(moment: datetime) -> None:
    text_time = moment.isoformat(timespec="microseconds") + "Z"
    exact = (moment.replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1) * 1000
    assert iso_to_ns(text_time) == exact


@pytest.mark.parametrize("bad", ["2021-04-17T16:43:30.244075", "2021-04-17", "yesterday", ""])
def test_iso_to_ns_refuses_times_without_offset_or_digits(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        iso_to_ns(bad)


@pytest.mark.parametrize(
    "lookalike",
    [
        "2021-04-17T16:43:30.24407٣Z",  # a non-ASCII digit
        "2021-04-17T16:43:30.+44075Z",
        "2021-04-17T16:43:60.244075Z",  # no 60th second
        "2021-13-17T16:43:30.244075Z",
        "2021-04-17 16:43:30.244075Z",  # a space for the T: the general parse takes it
        "20210417T164330.1.244075Z",
        "2021-04-17T16:43:30.244075+",
    ],
)
def test_iso_to_ns_short_cut_never_differs_from_the_general_parse(lookalike: str) -> None:
    """The Coinbase-form short cut yields to the general parse on anything else."""
    try:
        expected: int | type[Exception] = _parse_iso_ns(lookalike)
    except ValueError:
        expected = ValueError
    try:
        got: int | type[Exception] = iso_to_ns(lookalike)
    except ValueError:
        got = ValueError
    assert got == expected


def test_iso_time_names_field_and_value() -> None:
    assert iso_time({"time": "2021-04-17T16:43:30Z"}, "time", "match") == 1618677810000000000
    with pytest.raises(FrameError, match="match: time 12 is not an ISO-8601 UTC time"):
        iso_time({"time": 12}, "time", "match")


def test_load_object() -> None:
    assert load_object(b'{"a": 1}') == {"a": 1}
    assert load_object('{"a": 1}') == {"a": 1}
    with pytest.raises(FrameError, match=r"^not JSON: .*'\{\"a\": '$"):
        load_object('{"a": ')
    with pytest.raises(FrameError, match=r"expected a JSON object, got list: \[1\]"):
        load_object("[1]")
    with pytest.raises(FrameError, match="expected a JSON object, got str"):
        load_object('"x"')


def test_number() -> None:
    assert number({"p": "7.6110"}, "p", "aggTrade") == 7.611
    assert number({"p": 3}, "p", "aggTrade") == 3.0
    with pytest.raises(FrameError, match=r"^aggTrade: field 'p' is missing$"):
        number({}, "p", "aggTrade")
    with pytest.raises(FrameError, match=r"^aggTrade: p 'abc' is not a decimal number$"):
        number({"p": "abc"}, "p", "aggTrade")
    with pytest.raises(FrameError, match=r"^aggTrade: p \[1\] is not a decimal number$"):
        number({"p": [1]}, "p", "aggTrade")


def test_optional_number_never_invents_a_value() -> None:
    assert optional_number({}, "best_bid_size", "ticker") is None
    assert optional_number({"best_bid_size": None}, "best_bid_size", "ticker") is None
    assert optional_number({"best_bid_size": "0.5"}, "best_bid_size", "ticker") == 0.5
    with pytest.raises(FrameError, match="ticker: best_bid_size '' is not a decimal number"):
        optional_number({"best_bid_size": ""}, "best_bid_size", "ticker")


@pytest.mark.parametrize(
    ("value", "message"),
    [("1", "u '1' is not an integer"), (1.0, "u 1.0 is not an integer"), (True, "u True is")],
)
def test_integer_accepts_json_integers_only(value: Any, message: str) -> None:
    assert integer({"u": 160}, "u", "depthUpdate") == 160
    with pytest.raises(FrameError, match=f"depthUpdate: {message}"):
        integer({"u": value}, "u", "depthUpdate")


def test_millis_returns_nanoseconds() -> None:
    assert millis({"T": 1626992741421}, "T", "aggTrade") == 1626992741421000000
    with pytest.raises(FrameError, match=r"aggTrade: T 1.5 is not an integer time in milliseconds"):
        millis({"T": 1.5}, "T", "aggTrade")


def test_text_flag_mapping() -> None:
    assert text({"s": "BTCUSDT"}, "s", "kline") == "BTCUSDT"
    assert flag({"x": False}, "x", "kline") is False
    assert mapping({"k": {"i": "1m"}}, "k", "kline") == {"i": "1m"}
    with pytest.raises(FrameError, match="kline: s None is not a string"):
        text({"s": None}, "s", "kline")
    with pytest.raises(FrameError, match="kline: x 0 is not true or false"):
        flag({"x": 0}, "x", "kline")
    with pytest.raises(FrameError, match="kline: k 'x' is not a JSON object"):
        mapping({"k": "x"}, "k", "kline")
    with pytest.raises(FrameError, match="kline: field 'k' is missing"):
        mapping({}, "k", "kline")


def test_levels() -> None:
    assert levels({"b": [["7.5", "813"], ["7.6", "0"]]}, "b", "depth") == [(7.5, 813.0), (7.6, 0.0)]
    assert levels({"b": []}, "b", "depth") == []
    for bad in ([["7.5"]], [["7.5", "1", "2"]], [["x", "1"]], "7.5", None, [None]):
        with pytest.raises(FrameError, match=r"depth: b .* is not a list of \[price, size\]"):
            levels({"b": bad}, "b", "depth")
    with pytest.raises(FrameError, match="depth: field 'b' is missing"):
        levels({}, "b", "depth")


def test_show_cuts_long_values() -> None:
    assert show("abc") == "'abc'"
    shown = show("x" * 1000)
    assert len(shown) < 100
    assert shown.endswith("...")
