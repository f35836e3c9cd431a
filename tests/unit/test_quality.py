"""The pure parts of the quality report and the backfill: gaps, completeness, trade-id gaps,
dead letter counts, book counters, the rate limiter, REST retries, plans and rendering."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketstream import cli
from marketstream.config import IngestConfig
from marketstream.errors import ConfigError, MarketStreamError, ServiceError
from marketstream.quality import backfill as bf
from marketstream.quality.book_counters import (
    BookCounters,
    BookCounts,
    default_metrics_urls,
    metrics_url,
    parse_book_counts,
    read_book_counters,
)
from marketstream.quality.dead_letters import count_dead_letters, id_bounds, reason_kind
from marketstream.quality.gaps import (
    MINUTE_NS,
    IdBreak,
    IdRange,
    Interval,
    id_gaps,
    minute_coverage,
)
from marketstream.quality.ratelimit import TokenBucket, retry_after_s, seconds_to_next_minute
from marketstream.quality.render import report_dict, report_lines
from marketstream.quality.report import (
    IdFigure,
    ReportInputs,
    TradeSummary,
    assemble,
    check_min_completeness,
)
from marketstream.quality.rest import HttpAnswer, RestClient, RestPolicy
from marketstream.quality.window import parse_moment, parse_window
from marketstream.query.hot_queries import QueryInputError
from marketstream.schemas.records import Trade
from marketstream.venues.binance.markets import MARKETS
from marketstream.venues.binance.rest import BinanceTrades

S = 10**9
M = MINUTE_NS
D = 1_330_560_000 * S  # 2012-03-01T00:00:00Z
NOW = D + 86_400 * S


# --- minutes without a trade ------------------------------------------------------------------


def test_missing_minutes_are_merged_into_intervals() -> None:
    present = [D + i * M for i in (0, 1, 2, 5, 6, 9)]
    coverage = minute_coverage(present, D, D + 10 * M, first_trade_ns=D + 3 * S)
    assert coverage.missing == (Interval(D + 3 * M, D + 5 * M), Interval(D + 7 * M, D + 9 * M))
    assert (coverage.expected, coverage.with_trades, coverage.missing_minutes) == (10, 6, 4)
    assert coverage.completeness == 0.6
    assert [i.minutes for i in coverage.missing] == [2, 2]


def test_counting_starts_at_the_first_trade_and_stops_before_a_running_minute() -> None:
    present = [D + 4 * M, D + 5 * M, D + 7 * M]  # first trade at 00:04:30
    coverage = minute_coverage(present, D, D + 8 * M + 30 * S, first_trade_ns=D + 4 * M + 30 * S)
    assert coverage.expected == 4  # 00:04 .. 00:07; 00:08 is still running at the end
    assert coverage.missing == (Interval(D + 6 * M, D + 7 * M),)


def test_trailing_minutes_without_a_trade_are_missing() -> None:
    coverage = minute_coverage([D, D + M], D, D + 5 * M, first_trade_ns=D)
    assert coverage.missing == (Interval(D + 2 * M, D + 5 * M),)
    assert coverage.completeness == 0.4


def test_no_trade_at_all_expects_every_whole_minute_of_the_range() -> None:
    coverage = minute_coverage([], D + 10 * S, D + 5 * M, first_trade_ns=None)
    assert coverage.expected == 4  # 00:01 .. 00:04: 00:00 is not whole in the range
    assert coverage.completeness == 0.0
    assert coverage.missing == (Interval(D + M, D + 5 * M),)


def test_no_whole_minute_expected_has_no_completeness() -> None:
    coverage = minute_coverage([D], D, D + 30 * S, first_trade_ns=D + S)
    assert coverage.expected == 0
    assert coverage.completeness is None


def test_duplicates_and_minutes_outside_are_ignored() -> None:
    coverage = minute_coverage([D, D, D + M, D + 99 * M, D - M], D, D + 2 * M, first_trade_ns=D)
    assert (coverage.expected, coverage.with_trades, coverage.missing) == (2, 2, ())


# --- trade-id gaps -----------------------------------------------------------------------------


def breaks_of(ids: list[int]) -> list[IdBreak]:
    """What the SQL returns: rows where id != previous + 1, and the first and the last."""
    rows = []
    for i, trade_id in enumerate(ids):
        previous = ids[i - 1] if i else None
        following = ids[i + 1] if i + 1 < len(ids) else None
        if previous is None or following is None or trade_id != previous + 1:
            rows.append(IdBreak(trade_id, previous, following))
    return rows


def test_id_gaps_from_the_breaks_only() -> None:
    ids = [1, 2, 3, 4, 6, 7, 10, 11, 12, 9, 13]  # 9 arrives late (same timestamp as 12)
    gaps = id_gaps(breaks_of(ids))
    assert gaps is not None
    assert gaps.missing == (IdRange(5, 5), IdRange(8, 8))
    assert (gaps.lowest, gaps.highest, gaps.missing_ids) == (1, 13, 2)


def test_contiguous_ids_and_a_single_trade_have_no_gap() -> None:
    assert id_gaps(breaks_of(list(range(100, 200)))) == _gaps(100, 199)
    assert id_gaps(breaks_of([7])) == _gaps(7, 7)
    assert id_gaps([]) is None


def test_a_run_of_missing_ids_is_one_range() -> None:
    gaps = id_gaps(breaks_of([*range(1, 11), *range(1001, 1011)]))
    assert gaps is not None
    assert gaps.missing == (IdRange(11, 1000),)
    assert gaps.missing_ids == 990


def _gaps(lowest: int, highest: int) -> Any:
    from marketstream.quality.gaps import IdGaps  # noqa: PLC0415

    return IdGaps(lowest, highest, ())


@given(
    st.sets(st.integers(min_value=0, max_value=300), min_size=1, max_size=120),
    st.randoms(use_true_random=False),
)
def test_id_gaps_equal_the_set_difference_whatever_the_order(
    present: set[int], rng: random.Random
) -> None:
    ids = sorted(present)
    for _ in range(len(ids) // 3):  # trades of one timestamp may come back in any order
        i = rng.randrange(len(ids))
        j = min(len(ids) - 1, i + rng.randrange(1, 4))
        ids[i], ids[j] = ids[j], ids[i]
    if ids and rng.random() < 0.3:
        ids.insert(rng.randrange(len(ids)), rng.choice(ids))  # a repeated id
    gaps = id_gaps(breaks_of(ids))
    assert gaps is not None
    missing = {i for r in gaps.missing for i in range(r.first, r.last + 1)}
    assert missing == set(range(min(present), max(present) + 1)) - present
    assert all(a.last + 1 < b.first for a, b in zip(gaps.missing, gaps.missing[1:], strict=False))


# --- completeness threshold and the assembled report -------------------------------------------


@pytest.mark.parametrize(("text", "share"), [("0.99", 0.99), ("99%", 0.99), ("1", 1.0), ("0", 0.0)])
def test_min_completeness_as_share_or_percentage(text: str, share: float) -> None:
    assert check_min_completeness(text) == pytest.approx(share)


@pytest.mark.parametrize("text", ["1.5", "-0.1", "high", "nan", "120%", ""])
def test_a_bad_min_completeness_names_the_value(text: str) -> None:
    with pytest.raises(QueryInputError, match=r"--min-completeness .* expected a number from 0"):
        check_min_completeness(text)


def summary(exchange: str, symbol: str, first: int, last: int, trades: int = 10) -> TradeSummary:
    return TradeSummary(exchange, symbol, trades, first, last, 250_000_000, 120_000_000.0)


def sample_report() -> Any:
    dead = count_dead_letters(
        [
            {b"exchange": b"binance", b"reason": b"binance: unknown event type 'x'"},
            {
                b"exchange": b"binance",
                b"reason": b"price -1.0 is not a positive finite number",
                b"record": orjson.dumps({"type": "trade", "symbol": "QUAL-USDT"}),
            },
        ]
    )
    books = BookCounters(counts={("binance", "QUAL-USDT"): BookCounts(2, 2, 0)}, sources=["u"])
    inputs = ReportInputs(
        min_completeness=0.9,
        expected=[("binance", "QUAL-USDT"), ("coinbase", "QUAL-USD")],
        dead_letters=dead,
        books=books,
        notes=["a note"],
    )
    return assemble(
        D,
        D + 10 * M,
        inputs,
        summaries=[
            summary("binance", "QUAL-USDT", D, D + 9 * M),
            summary("bybit", "QUAL-USDT", D, D + 9 * M + 5 * S),
        ],
        minutes={
            ("binance", "QUAL-USDT"): [D + i * M for i in (0, 1, 2, 3, 6, 7, 8, 9)],
            ("bybit", "QUAL-USDT"): [D + i * M for i in range(10)],
        },
        ids={("binance", "QUAL-USDT"): IdFigure(id_gaps(breaks_of([1, 2, 3, 7, 8])))},
    )


def test_the_report_has_traded_and_expected_instruments_and_a_verdict() -> None:
    report = sample_report()
    rows = {(r.exchange, r.symbol): r for r in report.instruments}
    assert list(rows) == [
        ("binance", "QUAL-USDT"),
        ("bybit", "QUAL-USDT"),
        ("coinbase", "QUAL-USD"),
    ]
    binance, bybit, coinbase = rows.values()
    assert binance.completeness == 0.8
    assert not binance.passed
    assert binance.ids is not None
    assert binance.ids.gaps is not None
    assert binance.ids.gaps.missing == (IdRange(4, 6),)
    assert binance.book == BookCounts(2, 2, 0)
    assert binance.dead_letters == 1
    assert bybit.passed
    assert bybit.ids is None
    assert bybit.book == BookCounts()  # the ingest answered: nothing counted
    assert coinbase.trades == 0
    assert coinbase.completeness == 0.0
    assert not coinbase.passed
    assert not report.passed
    assert [i.symbol for i in report.failing] == ["QUAL-USDT", "QUAL-USD"]


def test_the_report_as_json_and_as_a_table() -> None:
    report = sample_report()
    body = report_dict(report)
    assert orjson.loads(orjson.dumps(body)) == body
    first = body["instruments"][0]
    assert first["missing_minutes"] == [
        {"start": "2012-03-01T00:04:00.000000000Z", "end": "2012-03-01T00:06:00.000000000Z",
         "minutes": 2}
    ]  # fmt: skip
    assert first["trade_ids"] == {
        "first": 1, "last": 8, "missing": 3, "ranges": [[4, 6]], "cut_short": False
    }  # fmt: skip
    assert first["freshness_worst_ms"] == 250.0
    assert body["dead_letters"] == [
        {"exchange": "binance", "total": 2, "reasons": {"price": 1, "unknown": 1}}
    ]
    lines = report_lines(report)
    header, binance, bybit, coinbase = lines[:4]
    assert header.split()[:6] == ["exchange", "symbol", "trades", "minutes", "missing", "complete"]
    assert binance.split() == [
        "binance", "QUAL-USDT", "10", "10", "2", "80.00%", "1", "3", "2", "1", "250.0", "120.0",
        "FAIL",
    ]  # fmt: skip
    assert bybit.split()[6:9] == ["-", "-", "0"]
    assert coinbase.split()[-1] == "FAIL"
    status_at = header.index("status")  # aligned: the last column starts at one place
    assert [line[status_at:] for line in lines[1:4]] == ["FAIL", "ok", "FAIL"]
    text = "\n".join(lines)
    assert (
        "binance QUAL-USDT: minutes without a trade: 2012-03-01T00:04Z..2012-03-01T00:06Z" in text
    )
    assert "binance QUAL-USDT: trade ids missing: 4-6" in text
    assert "  binance: 2 (price 1, unknown 1)" in text
    assert "note: a note" in text
    assert lines[-1] == "2 of 3 instruments below 90.00%: binance QUAL-USDT, coinbase QUAL-USD"


# --- dead letters and book counters --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("binance: unknown event type 'foo'", "unknown"),
        ("symbol 'X-Y' is not configured for binance", "symbol"),
        ("QuestDB rejected the row: bad value", "QuestDB"),
        ("trades: tradeId 9 is not a string", "trades"),
        ("", "?"),
    ],
)
def test_reason_kind_is_the_first_word_after_the_exchange(reason: str, kind: str) -> None:
    assert reason_kind(reason, "binance") == kind


def test_dead_letters_counted_per_exchange_and_instrument() -> None:
    record = orjson.dumps({"type": "trade", "exchange": "okx", "symbol": "BTC-USDT"})
    entries = [
        {b"exchange": b"okx", b"reason": b"price 0 is not positive", b"record": record},
        {b"exchange": b"okx", b"reason": b"okx: not JSON", b"record": b"{bad"},
        {b"exchange": b"kraken", b"reason": b"side 'x' is not 'buy' or 'sell'"},
        {b"reason": b"no exchange at all"},
    ]
    counts = count_dead_letters(entries)
    assert {k: (v.total, v.reasons) for k, v in counts.exchanges.items()} == {
        "okx": (2, {"price": 1, "not": 1}),
        "kraken": (1, {"side": 1}),
        "?": (1, {"no": 1}),
    }
    assert counts.instruments == {("okx", "BTC-USDT"): 1}
    assert set(count_dead_letters(entries, "kraken").exchanges) == {"kraken"}


def test_dead_letter_ids_cover_whole_milliseconds_of_the_range() -> None:
    assert id_bounds(D, D + S) == (f"{D // 10**6}-0", str(D // 10**6 + 999))
    assert id_bounds(D + 1, D + S + 1) == (f"{D // 10**6 + 1}-0", str(D // 10**6 + 1000))


METRICS_TEXT = """\
# TYPE marketstream_ingest_book_gaps_total counter
marketstream_ingest_book_gaps_total{exchange="binance",symbol="BTC-USDT"} 3.0
marketstream_ingest_book_gaps_created{exchange="binance",symbol="BTC-USDT"} 1.7e9
# TYPE marketstream_ingest_book_resyncs_total counter
marketstream_ingest_book_resyncs_total{exchange="binance",symbol="BTC-USDT"} 3.0
marketstream_ingest_book_resyncs_total{exchange="okx",symbol="ETH-USDT"} 1.0
# TYPE marketstream_ingest_book_checksum_failures_total counter
marketstream_ingest_book_checksum_failures_total{exchange="okx",symbol="ETH-USDT"} 1.0
# TYPE marketstream_ingest_frames_total counter
marketstream_ingest_frames_total{exchange="okx"} 99.0
"""


def test_book_counters_from_prometheus_text() -> None:
    assert parse_book_counts(METRICS_TEXT) == {
        ("binance", "BTC-USDT"): BookCounts(3, 3, 0),
        ("okx", "ETH-USDT"): BookCounts(0, 1, 1),
    }


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("127.0.0.1:9101", "http://127.0.0.1:9101/metrics"),
        ("http://ingest:9101", "http://ingest:9101/metrics"),
        ("http://ingest:9101/other", "http://ingest:9101/other"),
    ],
)
def test_metrics_addresses(text: str, url: str) -> None:
    assert metrics_url(text) == url


@pytest.mark.parametrize("text", ["ingest", "ftp://x:1", "http://:9", "host:port"])
def test_a_bad_metrics_address_names_it(text: str) -> None:
    with pytest.raises(QueryInputError, match=r"--ingest-metrics .* expected host:port"):
        metrics_url(text)


def test_default_metrics_address_from_the_ingest_settings() -> None:
    assert default_metrics_urls(IngestConfig()) == ["http://127.0.0.1:9101/metrics"]
    assert default_metrics_urls(IngestConfig(metrics_host="0.0.0.0", metrics_port=9)) == [  # noqa: S104
        "http://127.0.0.1:9/metrics"
    ]
    assert default_metrics_urls(IngestConfig(metrics_port=0)) == []
    unread = read_book_counters([])
    assert unread.counts is None
    assert "pass --ingest-metrics" in unread.notes[0]


# --- time range -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - 86_400 * S),
        ("90s", NOW - 90 * S),
        ("30m", NOW - 30 * M),
        ("2d", NOW - 2 * 86_400 * S),
        ("2012-03-01", D),
        ("2012-03-01T00:00:01Z", D + S),
        (str(D + 5), D + 5),
    ],
)
def test_since_as_a_duration_or_a_time(text: str, expected: int) -> None:
    assert parse_moment(text, "--since", NOW) == expected


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("yesterday", None, "--since 'yesterday' is not a time: expected a duration back from now"),
        ("0h", None, "--since '0h' is not a usable duration"),
        ("1330560000", None, "looks like seconds"),
        ("24h", "2012-02-01", "is not before --until"),
        ("24h", "soon", "--until 'soon' is not a time"),
        ("24w", None, "--since '24w' is not a time"),
    ],
)
def test_a_bad_range_is_one_line_naming_the_value(
    since: str, until: str | None, message: str
) -> None:
    with pytest.raises(QueryInputError) as exc:
        parse_window(since, until, NOW)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_until_defaults_to_now() -> None:
    assert parse_window("1h", None, NOW) == (NOW - 3600 * S, NOW)


# --- rate limiter -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2.0, capacity=4.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        assert bucket.acquire(1) == 0.0
    start = clock.now
    for _ in range(10):
        bucket.acquire(1)
    assert clock.now - start == pytest.approx(5.0)  # 10 tokens at 2 a second


def test_weight_per_minute_is_honoured_over_a_long_run() -> None:
    clock = FakeClock()
    bucket = TokenBucket.per_minute(1200, clock=clock, sleep=clock.sleep)  # 20 weight a second
    start = clock.now
    for _ in range(600):
        bucket.acquire(4)  # Binance spot aggTrades
    spent = 600 * 4 - bucket.capacity  # the first burst is free
    assert clock.now - start == pytest.approx(spent / 20.0)
    assert bucket.waited_s == pytest.approx(clock.now - start)


def test_a_request_heavier_than_the_burst_is_paced_not_refused() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, capacity=5.0, clock=clock, sleep=clock.sleep)
    bucket.acquire(20)  # allowed once full, leaving a debt of 15
    assert clock.now == 1000.0
    bucket.acquire(1)
    assert clock.now == pytest.approx(1016.0)


def test_hold_stops_every_request_until_it_ends() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10.0, capacity=10.0, clock=clock, sleep=clock.sleep)
    bucket.hold(30)
    bucket.acquire(1)
    assert clock.now >= 1030.0
    assert clock.now < 1030.2  # emptied, so the first request waits one token more at most


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("Thu, 01 Jan 1970 00:20:00 GMT", 200.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_as_seconds_or_a_date(value: str | None, seconds: float | None) -> None:
    assert retry_after_s(value, now_s=1000.0) == seconds


def test_the_next_weight_minute() -> None:
    assert seconds_to_next_minute(120.0) == 60.0
    assert seconds_to_next_minute(179.5) == 0.5


# --- REST client: retries and backoff ---------------------------------------------------------


class FakeExchange:
    """Answers in order, recording the URLs asked and the clock at each request."""

    def __init__(self, clock: FakeClock, answers: list[HttpAnswer | OSError]) -> None:
        self.clock = clock
        self.answers = answers
        self.calls: list[tuple[str, float]] = []

    def __call__(self, url: str, timeout_s: float) -> HttpAnswer:
        self.calls.append((url, self.clock.now))
        answer = self.answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer


def ok(body: Any, **headers: str) -> HttpAnswer:
    return HttpAnswer(200, headers, orjson.dumps(body))


def rest_client(
    answers: list[HttpAnswer | OSError], **policy: Any
) -> tuple[RestClient, FakeExchange, FakeClock]:
    clock = FakeClock()
    exchange = FakeExchange(clock, answers)
    bucket = TokenBucket(100.0, 100.0, clock=clock, sleep=clock.sleep)
    client = RestClient(
        "binance", bucket, RestPolicy(**policy), transport=exchange, wall_clock=clock
    )
    return client, exchange, clock


def test_429_waits_for_retry_after_then_retries() -> None:
    client, exchange, _ = rest_client(
        [HttpAnswer(429, {"retry-after": "7"}, b'{"code":-1003}'), ok([1])]
    )
    assert client.get_json("http://x/api/v3/aggTrades?symbol=A", 4) == [1]
    (_, first), (_, second) = exchange.calls
    assert second - first >= 7.0
    assert (client.requests, client.weight, client.retries) == (2, 8, 1)


def test_a_ban_longer_than_the_wait_limit_stops_with_the_reason() -> None:
    client, _, _ = rest_client(
        [HttpAnswer(418, {"retry-after": "3600"}, b'{"code":-1003,"msg":"banned"}')],
        max_wait_s=120,
    )
    with pytest.raises(ServiceError) as exc:
        client.get_json("http://x/api/v3/aggTrades?symbol=A", 4)
    message = str(exc.value)
    assert message.startswith("binance: http://x/api/v3/aggTrades answered HTTP 418: ")
    assert "Retry-After 3600 s is longer than quality.backfill_max_wait_s (120 s)" in message


def test_server_errors_and_network_errors_back_off_exponentially_then_give_up() -> None:
    answers: list[HttpAnswer | OSError] = [
        HttpAnswer(503, {}, b"busy"),
        OSError("connection reset"),
        HttpAnswer(502, {}, b""),
    ]
    client, exchange, _ = rest_client(answers, max_retries=2)
    with pytest.raises(ServiceError, match=r"answered HTTP 502: \(empty body\) \(gave up after 2"):
        client.get_json("http://x/p", 1)
    times = [at for _, at in exchange.calls]
    assert times[1] - times[0] >= 1.0
    assert times[2] - times[1] >= 2.0


def test_a_client_error_is_reported_at_once_with_the_exchange_message() -> None:
    client, exchange, _ = rest_client(
        [HttpAnswer(400, {}, b'{"code":-1121,"msg":"Invalid symbol."}')]
    )
    with pytest.raises(MarketStreamError, match=r'HTTP 400: \{"code":-1121,"msg":"Invalid symbol'):
        client.get_json("http://x/api/v3/aggTrades?symbol=NOPE", 4)
    assert len(exchange.calls) == 1


def test_a_nearly_used_weight_limit_pauses_until_the_next_minute() -> None:
    client, exchange, clock = rest_client(
        [ok([], **{"x-mbx-used-weight-1m": "5500"}), ok([])],
        weight_limit_per_minute=6000,
        used_weight_header="x-mbx-used-weight-1m",
    )
    clock.now = 1210.0  # 10 s into a minute
    client.get_json("http://x/p", 4)
    client.get_json("http://x/p", 4)
    assert exchange.calls[1][1] >= 1260.0


# --- Binance aggTrades by id and by time --------------------------------------------------------


def agg(trade_id: int, ms: int, *, maker: bool = False) -> dict[str, Any]:
    return {"a": trade_id, "p": "10.5", "q": "0.25", "f": trade_id, "l": trade_id, "T": ms,
            "m": maker, "M": True}  # fmt: skip


class AggTradesExchange:
    """Serves aggTrades from a list, as Binance pages them (limit 1000, or less here)."""

    def __init__(self, trades: list[dict[str, Any]], limit: int = 1000) -> None:
        self.trades = trades
        self.limit = limit
        self.queries: list[dict[str, int]] = []

    def __call__(self, url: str, timeout_s: float) -> HttpAnswer:
        from urllib.parse import parse_qsl, urlsplit  # noqa: PLC0415

        params = dict(parse_qsl(urlsplit(url).query))
        assert params.pop("symbol") == "QUALUSDT"
        query = {k: int(v) for k, v in params.items()}
        self.queries.append(query)
        limit = min(query["limit"], self.limit)
        if "fromId" in query:
            found = [t for t in self.trades if t["a"] >= query["fromId"]]
        else:
            assert query["endTime"] - query["startTime"] < 3_600_000
            found = [t for t in self.trades if query["startTime"] <= t["T"] <= query["endTime"]]
        return ok(found[:limit])


def binance_trades(exchange: AggTradesExchange, symbol: str = "QUAL-USDT") -> BinanceTrades:
    clock = FakeClock()
    bucket = TokenBucket(1000.0, 1000.0, clock=clock, sleep=clock.sleep)
    client = RestClient("binance", bucket, RestPolicy(), transport=exchange, wall_clock=clock)
    return BinanceTrades(MARKETS["binance"], symbol, "http://x/", client, lambda: NOW)


MS = D // 10**6


def test_by_ids_pages_from_the_first_missing_id_to_the_last() -> None:
    exchange = AggTradesExchange([agg(i, MS + i) for i in range(1, 3000)], limit=1000)
    pages = list(binance_trades(exchange).by_ids(500, 2100))
    ids = [int(t.trade_id) for page in pages for t in page]
    assert ids == list(range(500, 2101))
    assert [q["fromId"] for q in exchange.queries] == [500, 1500]
    first = pages[0][0]
    assert first == Trade("binance", "QUAL-USDT", (MS + 500) * 10**6, NOW, "500", 10.5, 0.25, "buy")


def test_by_ids_stops_at_the_newest_trade() -> None:
    exchange = AggTradesExchange([agg(i, MS + i) for i in range(1, 50)])
    ids = [int(t.trade_id) for page in binance_trades(exchange).by_ids(40, 100) for t in page]
    assert ids == list(range(40, 50))
    assert len(exchange.queries) == 1


def test_by_time_looks_an_hour_at_a_time_then_pages_by_id() -> None:
    hour = 3_600_000
    trades = [agg(i, MS + 2 * hour + i * 10) for i in range(1, 2500)]  # from 02:00 on
    exchange = AggTradesExchange(trades, limit=1000)
    start, end = D, D + (2 * hour + 15_000) * 10**6  # up to 02:00:15
    got = [t for page in binance_trades(exchange).by_time(start, end) for t in page]
    assert [int(t.trade_id) for t in got] == list(range(1, 1500))
    assert all(start <= t.ts < end for t in got)
    windows = [q for q in exchange.queries if "startTime" in q]
    assert [(q["startTime"], q["endTime"]) for q in windows] == [
        (MS, MS + hour - 1),
        (MS + hour, MS + 2 * hour - 1),
        (MS + 2 * hour, MS + 2 * hour + 14_999),
    ]
    assert [q["fromId"] for q in exchange.queries if "fromId" in q] == [1001]


def test_by_time_with_no_trade_at_all_asks_each_hour_once() -> None:
    exchange = AggTradesExchange([])
    assert list(binance_trades(exchange).by_time(D, D + 3 * 3600 * S)) == []
    assert len(exchange.queries) == 3


def test_a_symbol_of_the_other_market_is_refused() -> None:
    with pytest.raises(ConfigError, match="'QUAL-USDT-PERP' is not listed here"):
        binance_trades(AggTradesExchange([]), "QUAL-USDT-PERP")


def test_a_malformed_answer_names_the_field() -> None:
    exchange = AggTradesExchange([{"a": 1, "p": "x", "q": "1", "T": MS, "m": False}])
    with pytest.raises(MarketStreamError, match="/api/v3/aggTrades: binance: aggTrade"):
        list(binance_trades(exchange).by_ids(1, 1))


# --- backfill plan and run ----------------------------------------------------------------------


def quality_row(
    minutes: list[int], breaks: list[int] | None, first: int | None, last: int | None
) -> Any:
    key = ("binance", "QUAL-USDT")
    summaries = [] if first is None or last is None else [summary(*key, first, last)]
    ids = {} if breaks is None else {key: IdFigure(id_gaps(breaks_of(breaks)))}
    report = assemble(
        D,
        D + 10 * M,
        ReportInputs(min_completeness=0.99, expected=[key]),
        summaries=summaries,
        minutes={key: [D + i * M for i in minutes]},
        ids=ids,
    )
    return report.instruments[0]


def test_plan_with_sequential_ids_fetches_missing_ids_and_the_tail() -> None:
    row = quality_row([0, 1, 2, 5, 6, 7], [1, 2, 3, 9, 10], D + 5 * S, D + 7 * M + 5 * S)
    tasks = bf.plan_backfill(row, D, D + 10 * M, sequential_ids=True)
    assert tasks == [
        bf.FetchTask("ids", 4, 8, "missing ids"),
        bf.FetchTask("time", D + 7 * M + 5 * S, D + 10 * M,
                     "no trade after the last stored one", min_id=11),
    ]  # fmt: skip
    assert "ids from 11" in tasks[1].describe()


def test_plan_fetches_a_whole_minute_before_the_first_stored_trade() -> None:
    row = quality_row([3, 4, 5, 6, 7, 8, 9], [1, 2], D + 3 * M + 1, D + 9 * M + 59 * S)
    tasks = bf.plan_backfill(row, D, D + 10 * M, sequential_ids=True)
    assert tasks == [bf.FetchTask("time", D, D + 3 * M + 1, "before the first stored trade")]


def test_plan_without_ids_fetches_each_minute_without_a_trade() -> None:
    row = quality_row([0, 3, 4, 8], None, D, D + 8 * M + S)
    tasks = bf.plan_backfill(row, D, D + 10 * M, sequential_ids=False)
    assert [(t.low, t.high) for t in tasks] == [
        (D + M, D + 3 * M),
        (D + 5 * M, D + 8 * M),
        (D + 8 * M + S + 1, D + 10 * M),
    ]


def test_plan_with_nothing_stored_fetches_the_range() -> None:
    row = quality_row([], None, None, None)
    assert bf.plan_backfill(row, D, D + 10 * M, sequential_ids=True) == [
        bf.FetchTask("time", D, D + 10 * M, "no trade stored in the range")
    ]


class ListSource:
    def __init__(self, trades: list[Trade]) -> None:
        self.trades = trades

    def by_ids(self, first: int, last: int) -> Iterator[list[Trade]]:
        yield [t for t in self.trades if first <= int(t.trade_id) <= last]

    def by_time(self, start_ns: int, end_ns: int) -> Iterator[list[Trade]]:
        yield [t for t in self.trades if start_ns <= t.ts < end_ns]


class ListSink:
    def __init__(self) -> None:
        self.written: list[Trade] = []

    def write(self, trades: list[Trade]) -> int:
        self.written.extend(trades)
        return len(trades)


def test_run_checks_each_trade_and_leaves_out_stored_ids() -> None:
    trades = [
        Trade("binance", "QUAL-USDT", D + i * S, NOW, str(i), 10.0, 1.0, "buy") for i in range(10)
    ]
    trades[3] = Trade("binance", "QUAL-USDT", D + 3 * S, NOW, "3", -1.0, 1.0, "buy")
    tasks = [
        bf.FetchTask("ids", 2, 4, "missing ids"),
        bf.FetchTask("time", D + 6 * S, D + 20 * S, "tail", min_id=8),
    ]
    sink = ListSink()
    result = bf.run_backfill(tasks, ListSource(trades), sink, max_future_skew_ns=5 * S)
    assert [t.trade_id for t in sink.written] == ["2", "4", "8", "9"]
    assert (result.fetched, result.stored, result.written, result.rejected) == (7, 2, 4, 1)
    assert result.rejections == ["trade 3: price -1.0 is not a positive finite number"]


def test_backfill_ranges_are_checked() -> None:
    bf.check_backfill_range(NOW - 86_400 * S, NOW, NOW, hot_days=7)
    with pytest.raises(MarketStreamError, match="backfill covers at most one day per run"):
        bf.check_backfill_range(NOW - 86_401 * S, NOW, NOW, hot_days=7)
    with pytest.raises(MarketStreamError, match=r"older than the hot tier's horizon \(7 days"):
        bf.check_backfill_range(NOW - 8 * 86_400 * S, NOW - 7 * 86_400 * S - S, NOW, hot_days=7)


# --- the command line: bad input is one line and exit 2, before any store is asked ---------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", "--exchange", "okx", "--symbol", "BTC-USDT"],
         "backfill is not implemented for okx: expected one of binance, binance-usdm"),
        (["backfill", "--exchange", "nasdaq", "--symbol", "BTC-USDT"],
         "exchange 'nasdaq' is not known"),
        (["backfill", "--exchange", "binance", "--symbol", "btc"],
         "symbol 'btc' is not normalized"),
        (["backfill", "--exchange", "binance", "--symbol", "BTC-USDT", "--since", "2d"],
         "backfill covers at most one day per run"),
        (["quality", "report", "--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["quality", "report", "--format", "csv"], "--format 'csv' is not known"),
        (["quality", "report", "--min-completeness", "2"], "--min-completeness '2' is not a share"),
        (["quality", "report", "--ingest-metrics", "nowhere"], "--ingest-metrics 'nowhere'"),
        (["quality", "report", "--exchange", "ftx"], "exchange 'ftx' is not known"),
    ],
)  # fmt: skip
def test_cli_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("marketstream: error: ")
    assert message in captured.err
