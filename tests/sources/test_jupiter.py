"""Jupiter Price API v3: the mapper on the documented answers and on generated ones, the
classifier per status and header, the request targets and the injected faults."""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
import pytest

from marketstream.sources.base.source import Outcome, SourceAnswerError
from marketstream.sources.jupiter.mapper import map_answer
from marketstream.sources.jupiter.source import JUPITER, TOO_MANY, classify, fault_answer, target

SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
JUP = "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
SYMBOLS = {SOL: "SOL-USD", USDC: "USDC-USD", JUP: "JUP-USD"}
TICK, RECV = 1_750_000_000_000_000_000, 1_750_000_000_080_000_000

# The documentation's example answer (https://dev.jup.ag/docs/price-api/v3, the OpenAPI spec
# openapi-spec/price/v3/price.yaml of jup-ag/docs), used as test data.
DOC_EXAMPLE = b"""{
  "So11111111111111111111111111111111111111112": {"createdAt": "2024-06-05T08:55:25.527Z",
    "liquidity": 621679197.67, "usdPrice": 147.48, "blockId": 348004023, "decimals": 9,
    "priceChange24h": 1.29},
  "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v": {"createdAt": "2024-06-05T08:55:25.527Z",
    "liquidity": 522175174.66, "usdPrice": 0.9999, "blockId": 348004025, "decimals": 6,
    "priceChange24h": -0.003}
}"""
# The same page's older example (no createdAt, no liquidity).
OLDER_DOC_EXAMPLE = b"""{"JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN": {
  "usdPrice": 0.4056018512541055, "blockId": 348004026, "decimals": 6,
  "priceChange24h": 0.5292887924920519}}"""


def _entry(**fields: Any) -> dict[str, Any]:
    entry = {
        "createdAt": "2024-06-05T08:55:25.527Z",
        "liquidity": 1000.5,
        "usdPrice": 2.5,
        "blockId": 7,
        "decimals": 6,
        "priceChange24h": 0.1,
    }
    return entry | fields


def test_the_documented_answer_maps_to_prices_at_the_tick() -> None:
    mapped = map_answer(DOC_EXAMPLE, SYMBOLS, TICK, RECV)
    sol, usdc = mapped.prices
    assert (sol.exchange, sol.symbol, sol.ts, sol.recv_ts) == ("jupiter", "SOL-USD", TICK, RECV)
    assert (sol.price, sol.block, sol.liquidity, sol.change_24h) == (
        147.48,
        348004023,
        621679197.67,
        1.29,
    )
    assert sol.source_ts is None  # the answer holds no price time
    assert (usdc.symbol, usdc.price, usdc.block, usdc.change_24h) == (
        "USDC-USD",
        0.9999,
        348004025,
        -0.003,
    )
    assert mapped.unpriced == (JUP,)  # asked for, left out of the answer: no price, no error


def test_the_older_documented_answer_has_no_liquidity() -> None:
    (jup,) = map_answer(OLDER_DOC_EXAMPLE, {JUP: "JUP-USD"}, TICK, RECV).prices
    assert (jup.price, jup.block, jup.liquidity) == (0.4056018512541055, 348004026, None)


def test_null_entries_null_fields_and_ids_not_asked_for() -> None:
    body = orjson.dumps(
        {
            SOL: None,  # older answers: a key with null
            USDC: _entry(usdPrice=None),  # a null price: no price either
            JUP: _entry(blockId=None, priceChange24h=None, liquidity=None),
            BONK: _entry(usdPrice=9.0),  # not asked for: ignored
        }
    )
    mapped = map_answer(body, SYMBOLS, TICK, RECV)
    (jup,) = mapped.prices
    assert (jup.symbol, jup.block, jup.change_24h, jup.liquidity) == ("JUP-USD", None, None, None)
    assert mapped.unpriced == (SOL, USDC)
    assert map_answer(b"{}", SYMBOLS, TICK, RECV).unpriced == (SOL, USDC, JUP)


def test_numbers_as_strings_are_read_and_prices_at_or_below_zero_kept() -> None:
    body = orjson.dumps(
        {SOL: _entry(usdPrice="147.48", blockId="348004023"), USDC: _entry(usdPrice=0)}
    )
    sol, usdc = map_answer(body, SYMBOLS, TICK, RECV).prices
    assert (sol.price, sol.block) == (147.48, 348004023)
    assert usdc.price == 0.0  # validation dead-letters it, with its own reason


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("usdPrice", True, "a number, got bool True"),
        ("usdPrice", "n/a", "a number, got str 'n/a'"),
        ("usdPrice", [1.0], "a number, got list [1.0]"),
        ("blockId", 1.5, "an integer or null, got float 1.5"),
        ("blockId", False, "an integer or null, got bool False"),
        ("liquidity", {"usd": 1}, "a number, got dict"),
        ("priceChange24h", "up", "a number, got str 'up'"),
    ],
)
def test_a_field_of_the_wrong_kind_names_source_token_and_field(
    field: str, value: object, expected: str
) -> None:
    body = orjson.dumps({SOL: _entry(**{field: value})})
    with pytest.raises(
        SourceAnswerError,
        match=rf"^jupiter: token {SOL}: field '{field}': expected {re.escape(expected)}",
    ):
        map_answer(body, SYMBOLS, TICK, RECV)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", r"^jupiter: expected a JSON object keyed by mint, got a JSON list"),
        (b"<html>", r"^jupiter: expected a JSON object keyed by mint, got not JSON"),
        (orjson.dumps({SOL: [147.48]}), rf"^jupiter: token {SOL}: expected an object"),
        (orjson.dumps({SOL: {"price": 1.0}}), rf"^jupiter: token {SOL}: field 'usdPrice' is miss"),
    ],
)
def test_an_answer_of_the_wrong_shape_says_what_was_expected(body: bytes, message: str) -> None:
    with pytest.raises(SourceAnswerError, match=message):
        map_answer(body, SYMBOLS, TICK, RECV)


# --- requests -----------------------------------------------------------------------------------


def test_requests_hold_at_most_50_mints_in_the_order_given() -> None:
    ids = [f"{n:0>32}" for n in range(120)]
    batches = JUPITER.batches(ids)
    assert [len(batch) for batch in batches] == [50, 50, 20]
    assert [mint for batch in batches for mint in batch] == ids
    assert target(batches[2]) == "/price/v3?ids=" + ",".join(ids[100:])
    assert (JUPITER.key_header, JUPITER.key_required, JUPITER.credits(50)) == (
        "x-api-key",
        False,
        1,
    )
    with pytest.raises(ValueError, match="at least one mint"):
        target([])


# --- errors -------------------------------------------------------------------------------------

NOW = 1_000.5


@pytest.mark.parametrize(
    ("headers", "after"),
    [
        ({"retry-after": "3", "x-ratelimit-reset": "1010"}, 3.0),  # Retry-After wins
        ({"retry-after": "Thu, 01 Jan 1970 00:17:00 GMT", "x-ratelimit-reset": "1010"}, 19.5),
        ({"x-ratelimit-reset": "1010", "x-ratelimit-remaining": "-2"}, 9.5),  # absolute seconds
        ({"x-ratelimit-reset": "990"}, 0.0),  # already past: at once
        ({"retry-after": "soon", "x-ratelimit-reset": "1002"}, 1.5),  # unreadable: the reset
        ({}, None),  # nothing said: the poller's own backoff
    ],
)
def test_a_429_retries_after_retry_after_else_the_rate_limit_reset(
    headers: dict[str, str], after: float | None
) -> None:
    verdict = classify(429, headers, TOO_MANY, NOW)
    assert verdict.outcome is Outcome.RETRY
    assert verdict.retry_after_s == after
    assert verdict.reason == "429 Too Many Requests: [API Gateway] Too many requests"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
        (408, Outcome.RETRY),
        (400, Outcome.FATAL),
        (401, Outcome.FATAL),
        (403, Outcome.FATAL),
        (404, Outcome.FATAL),
    ],
)
def test_statuses(status: int, outcome: Outcome) -> None:
    verdict = classify(status, {"retry-after": "2"}, b"[API Gateway] whatever", NOW)
    assert verdict.outcome is outcome
    if outcome is Outcome.RETRY:
        assert verdict.retry_after_s == 2.0
    if status in (401, 403):
        assert "API key" in verdict.reason


def test_a_reason_is_one_short_line_of_the_body() -> None:
    verdict = classify(500, {}, b"line one\nline two " + b"x" * 500, NOW)
    assert verdict.reason.startswith("500 Internal Server Error: line one line two xxx")
    assert "\n" not in verdict.reason
    assert len(verdict.reason) < 130


@pytest.mark.parametrize("status", [429, 500, 502, 503])
@pytest.mark.parametrize("after", [0.25, 1.0, 2.0, 7.5])
def test_an_injected_fault_classifies_as_a_retry_after_the_delay_asked(
    status: int, after: float
) -> None:
    headers, body = fault_answer(status, after, NOW)
    verdict = classify(status, {k.lower(): v for k, v in headers.items()}, body, NOW)
    assert verdict.outcome is Outcome.RETRY
    # a 429 asks for the delay; a 5xx asks for none (the API sends no delay header with
    # it), so the poller's own doubling pause applies
    assert verdict.retry_after_s == (after if status == 429 else None)


def test_an_injected_429_is_the_gateways_and_its_reset_alone_backs_off_long_enough() -> None:
    headers, body = fault_answer(429, 1.25, NOW)
    assert body == b"[API Gateway] Too many requests"
    assert headers["x-ratelimit-remaining"] == "0"
    assert headers["x-ratelimit-reset"] == str(math.ceil(NOW + 1.25))
    without = {k: v for k, v in headers.items() if k != "retry-after"}
    verdict = classify(429, without, body, NOW)
    assert verdict.retry_after_s is not None
    assert 1.25 <= verdict.retry_after_s < 2.25


def test_injected_faults_without_delay_and_other_statuses() -> None:
    headers, body = fault_answer(500, 0, NOW)
    assert "retry-after" not in headers
    assert classify(500, headers, body, NOW).retry_after_s is None
    headers, body = fault_answer(401, 0, NOW)
    assert classify(401, headers, body, NOW).outcome is Outcome.FATAL
    with pytest.raises(ValueError, match="error status, got 200"):
        fault_answer(200, 0, NOW)


def test_a_429_without_a_body_has_a_clean_reason() -> None:
    assert classify(429, {}, b"", NOW).reason == "429 Too Many Requests"
