"""Hot-tier query inputs are checked before any SQL runs, each with one line naming the input."""

from __future__ import annotations

from typing import Any, cast

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.rows import TupleRow

from marketstream.cli import main
from marketstream.errors import ConfigError, MarketStreamError
from marketstream.query import hot_queries as hq
from marketstream.query.hot_queries import HotQueries, QueryInputError
from marketstream.schemas.columns import SPECS
from marketstream.schemas.instruments import EXCHANGES, FEEDS
from marketstream.schemas.records import Book, Instrument, Price

D = 1_763_596_800 * 10**9  # 2025-11-20T00:00:00Z
INJECTIONS = (
    "BTC-USDT' OR '1'='1",
    "BTC-USDT'; DROP TABLE trades; --",
    'BTC-USDT" --',
    "BTC-USDT\nLATEST ON ts",
    "btc-usdt",
    "",
)


def _one_line(exc: pytest.ExceptionInfo[QueryInputError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("exchange", FEEDS)
def test_known_exchanges_and_sources_pass(exchange: str) -> None:
    """Sources own streams as exchanges do: their prices are read by the source's name."""
    assert hq.check_exchange(exchange) == exchange


@pytest.mark.parametrize("exchange", ["Binance", "ftx", "", "binance' --", "Jupiter", None])
def test_unknown_exchange_names_the_input_and_both_known_sets(exchange: Any) -> None:
    with pytest.raises(QueryInputError) as exc:
        hq.check_exchange(exchange)
    message = _one_line(exc)
    assert message == (
        f"exchange {exchange!r} is not known: expected an exchange ({', '.join(EXCHANGES)}) "
        "or a source (jupiter, birdeye)"
    )


def test_every_record_type_but_books_and_instruments_is_read_by_range() -> None:
    """Derived from the specs: a new record type (prices) is readable without a list to edit."""
    ranged = {spec.cls for spec in SPECS} - {Book, Instrument}
    assert Price in ranged
    for cls in ranged:
        assert hq.range_spec(cls).cls is cls
    for cls in (Book, Instrument):
        with pytest.raises(TypeError, match="no range reader"):
            hq.range_spec(cls)
    query = hq.RangeQuery(Price, "jupiter", "SOL-USD", D, D + 1)
    assert query.spec.table == "prices"


@pytest.mark.parametrize(
    "symbol", ["BTC-USDT", "ETH-USD", "BTC-USDT-PERP", "1INCH-USDT", "BTC-USD-20250328"]
)
def test_normalized_symbols_pass(symbol: str) -> None:
    assert hq.check_symbol(symbol) == symbol


@pytest.mark.parametrize("symbol", [*INJECTIONS, 42])
def test_other_symbols_are_rejected(symbol: Any) -> None:
    with pytest.raises(QueryInputError) as exc:
        hq.check_symbol(symbol)
    assert "is not normalized: expected BASE-QUOTE, BASE-QUOTE-PERP or BASE-QUOTE-YYYYMMDD" in (
        _one_line(exc)
    )


def test_a_long_input_is_shortened_in_the_message() -> None:
    with pytest.raises(QueryInputError) as exc:
        hq.check_symbol("X" * 10_000)
    assert len(_one_line(exc)) < 200


@pytest.mark.parametrize(
    ("interval", "step"),
    [("1s", 10**9), ("1m", 60 * 10**9), ("5m", 300 * 10**9), ("1h", 3600 * 10**9)],
)
def test_whitelisted_intervals_give_their_length(interval: str, step: int) -> None:
    assert hq.check_interval(interval) == step
    assert hq.check_interval("1d") == 86_400 * 10**9


@pytest.mark.parametrize("interval", ["7m", "1M", "1 m", "1m; DROP TABLE trades", "", None])
def test_other_intervals_are_rejected(interval: Any) -> None:
    with pytest.raises(QueryInputError) as exc:
        hq.check_interval(interval)
    assert "is not supported: expected one of 1s, 1m, 5m, 1h, 1d" in _one_line(exc)


def test_range_needs_start_before_end() -> None:
    assert hq.check_range(D, D + 1) == (D, D + 1)
    with pytest.raises(QueryInputError) as exc:
        hq.check_range(D, D)
    assert _one_line(exc) == (
        "start 2025-11-20T00:00:00.000000000Z is not before end "
        "2025-11-20T00:00:00.000000000Z: expected start < end"
    )


@pytest.mark.parametrize(
    ("start", "end", "named"),
    [(-1, D, "start -1"), (D, 2**63, "end 9223372036854775808"), (True, D, "start True")],
)
def test_range_needs_int64_nanoseconds(start: Any, end: Any, named: str) -> None:
    with pytest.raises(QueryInputError) as exc:
        hq.check_range(start, end)
    assert _one_line(exc).startswith(f"{named} is not a time: expected int nanoseconds")


def test_range_rejects_a_float() -> None:
    with pytest.raises(QueryInputError, match=r"^start 1\.5 is not a time"):
        hq.check_range(cast(int, 1.5), D)


def test_limits() -> None:
    assert hq.check_limit(1) == 1
    assert hq.parse_limit(" 500 ") == 500
    for bad in (0, hq.MAX_TRADES_LIMIT + 1, True):
        with pytest.raises(QueryInputError, match="expected an integer from 1 to 1000000"):
            hq.check_limit(bad)
    for text in ("ten", "-5", "1e3", "²"):
        with pytest.raises(QueryInputError, match=r"is not a number: expected an integer"):
            hq.parse_limit(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2025-11-20T00:00:00Z", D),
        ("2025-11-20T00:00:00.000000001Z", D + 1),
        ("2025-11-20T00:00:00.5Z", D + 500_000_000),
        ("2025-11-20T00:00:00.123456789+00:00", D + 123_456_789),
        ("2025-11-20T01:30:00+01:30", D),
        ("2025-11-19T19:00:00-0500", D),
        ("2025-11-20T00:00", D),  # no offset: UTC
        ("2025-11-20 00:00:00", D),
        ("2025-11-20", D),
        ("1763596800000000001", D + 1),
        (" 2025-11-20T00:00:00Z ", D),
    ],
)
def test_times_parse_to_exact_nanoseconds(text: str, ns: int) -> None:
    assert hq.parse_time(text) == ns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1763596800", "looks like seconds or milliseconds"),
        ("1763596800000", "looks like seconds or milliseconds"),
        ("yesterday", "is not a time: expected ISO-8601"),
        ("2025-13-01T00:00:00Z", "is not a time: expected ISO-8601"),
        ("2025-11-20T00:00:00.1234567891Z", "is not a time: expected ISO-8601"),
        ("2025-11-20Z", "is not a time: expected ISO-8601"),
        ("-1763596800000000000", "is not a time: expected ISO-8601"),
        ("99999999999999999999", "beyond the int64 nanosecond range"),
        ("1969-12-31T23:59:59Z", "is outside 1970 to 2262"),
    ],
)
def test_bad_times_name_the_argument(text: str, expected: str) -> None:
    with pytest.raises(QueryInputError) as exc:
        hq.parse_time(text, "--start")
    message = _one_line(exc)
    assert message.startswith(f"--start {text!r}")
    assert expected in message


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_format_and_parse_round_trip(ns: int) -> None:
    text = hq.format_ns(ns)
    assert text.endswith("Z")
    assert hq.parse_time(text) == ns


def test_bars_open_on_calendar_boundaries() -> None:
    minute = 60 * 10**9
    assert hq.bar_ceil(D, minute) == D
    assert hq.bar_ceil(D + 1, minute) == D + minute
    assert hq.bar_ceil(D - 1, 86_400 * 10**9) == D  # UTC midnight


def test_credentials_come_from_the_url_then_the_environment_then_questdb_defaults() -> None:
    url = "postgresql://127.0.0.1:8812/qdb"
    default = psycopg.conninfo.conninfo_to_dict(hq.pg_target(url, {}).conninfo)
    assert (default["user"], default["password"]) == ("admin", "quest")
    env = {"QDB_PG_USER": "reader", "QDB_PG_PASSWORD": "s3cret"}
    from_env = psycopg.conninfo.conninfo_to_dict(hq.pg_target(url, env).conninfo)
    assert (from_env["user"], from_env["password"]) == ("reader", "s3cret")
    own = hq.pg_target("postgresql://me:mine@127.0.0.1:8812/qdb", env)
    own_params = psycopg.conninfo.conninfo_to_dict(own.conninfo)
    assert (own_params["user"], own_params["password"]) == ("me", "mine")
    assert own.endpoint == "postgresql://127.0.0.1:8812/qdb"  # shown in errors: no password


@pytest.mark.parametrize(
    "url", ["postgresql://me:pw@/qdb", "not a url at all", "postgresql://me:pw@host/qdb"]
)
def test_an_endpoint_without_host_and_port_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as exc:
        hq.pg_target(url, {})
    assert "pw" not in str(exc.value)
    assert "expected postgresql://host:port/qdb" in str(exc.value)


class _NoSql:
    """A connection that fails the test if anything tries to run SQL on it."""

    def cursor(self) -> None:
        pytest.fail("SQL ran for an input that should have been rejected")


@pytest.mark.parametrize(
    "call",
    [
        lambda h: h.latest_trade("binance", INJECTIONS[0]),
        lambda h: h.latest_quote("binance' --", "BTC-USDT"),
        lambda h: h.latest_prices(symbol=INJECTIONS[1]),
        lambda h: h.trades("binance", "BTC-USDT", D, D - 1),
        lambda h: h.trades("binance", "BTC-USDT", D, D + 1, limit=0),
        lambda h: h.ohlcv("binance", "BTC-USDT", "1m' --", D, D + 1),
        lambda h: h.ohlcv("binance", "BTC-USDT", "1m", D, D + 1, source=cast(Any, "view")),
    ],
)
def test_bad_input_never_reaches_the_connection(call: Any) -> None:
    hot = HotQueries(cast(psycopg.Connection[TupleRow], _NoSql()), endpoint="unused")
    with pytest.raises(QueryInputError):
        call(hot)
    assert issubclass(QueryInputError, MarketStreamError)  # the CLI prints it as one line


def test_cli_prices_of_an_unknown_feed_name_exchanges_and_sources(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Checked before any service is asked: one line, exit 2, both lists named."""
    argv = ["query", "prices", "--exchange", "nosuch", "--symbol", "SOL-USD"]
    assert main([*argv, "--start", "2025-11-20", "--end", "2025-11-21"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "marketstream: error: exchange 'nosuch' is not known: expected an exchange "
        f"({', '.join(EXCHANGES)}) or a source (jupiter, birdeye)\n"
    )
