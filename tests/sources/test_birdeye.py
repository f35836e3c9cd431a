"""Birdeye /defi/multi_price: the mapper on the documented answer and on generated ones, the
classifier (rate limit, spent compute units, key), compute-unit costs, request targets and
the injected faults."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from marketstream.sources.base.source import Outcome, SourceAnswerError
from marketstream.sources.birdeye.mapper import map_answer
from marketstream.sources.birdeye.source import (
    BIRDEYE,
    QUOTA_PAUSE_S,
    classify,
    credits,
    fault_answer,
    target,
)

SOL = "So11111111111111111111111111111111111111112"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
JUP = "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SYMBOLS = {SOL: "SOL-USD", BONK: "BONK-USD", JUP: "JUP-USD"}
TICK, RECV = 1_726_673_200_000_000_000, 1_726_673_200_090_000_000
NS = 1_000_000_000

# The documentation's example answer for Solana (https://docs.birdeye.so/docs/multi_price-1,
# mirrored in kaseonedge/birdeye-api-docs docs/defi/get-defi-multi_price.md), used as test data.
DOC_EXAMPLE = b"""{"success": true, "data": {
  "So11111111111111111111111111111111111111112": {"isScaledUiToken": false,
    "value": 127.32916175338693, "updateUnixTime": 1726673192,
    "updateHumanTime": "2024-09-18T15:26:32", "priceInNative": 1,
    "priceChange24h": -5.833510393308625, "liquidity": 7026264396},
  "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263": {"isScaledUiToken": false,
    "value": 0.00001598090539282, "updateUnixTime": 1726673185,
    "updateHumanTime": "2024-09-18T15:26:25", "priceInNative": 1.2583e-7,
    "priceChange24h": -4.766925300538944, "liquidity": 1234414}}}"""


def _answer(data: dict[str, Any]) -> bytes:
    return orjson.dumps({"success": True, "data": data})


def _entry(**fields: Any) -> dict[str, Any]:
    entry = {"value": 2.5, "updateUnixTime": 1726673190, "priceChange24h": 0.5}
    return entry | fields


def test_the_documented_answer_maps_to_prices_with_the_source_time() -> None:
    mapped = map_answer(DOC_EXAMPLE, SYMBOLS, TICK, RECV)
    sol, bonk = mapped.prices
    assert (sol.exchange, sol.symbol, sol.ts, sol.recv_ts) == ("birdeye", "SOL-USD", TICK, RECV)
    assert (sol.price, sol.source_ts, sol.liquidity, sol.change_24h, sol.block) == (
        127.32916175338693,
        1726673192 * NS,
        7026264396.0,
        -5.833510393308625,
        None,
    )
    assert (bonk.symbol, bonk.price, bonk.source_ts) == (
        "BONK-USD",
        0.00001598090539282,
        1726673185 * NS,
    )
    assert mapped.unpriced == (JUP,)


def test_null_and_absent_tokens_are_unpriced_and_ids_not_asked_for_ignored() -> None:
    body = _answer(
        {
            SOL: None,  # unknown or unsupported
            BONK: _entry(value=None),  # below check_liquidity
            JUP: _entry(),  # no liquidity without include_liquidity
            USDC: _entry(value=1.0),  # not asked for
        }
    )
    mapped = map_answer(body, SYMBOLS, TICK, RECV)
    (jup,) = mapped.prices
    assert (jup.symbol, jup.price, jup.liquidity) == ("JUP-USD", 2.5, None)
    assert mapped.unpriced == (SOL, BONK)


def test_update_times_null_or_fractional() -> None:
    body = _answer({SOL: _entry(updateUnixTime=None), BONK: _entry(updateUnixTime=1726673190.25)})
    sol, bonk = map_answer(body, SYMBOLS, TICK, RECV).prices
    assert sol.source_ts is None
    assert bonk.source_ts == 1726673190_250_000_000


def test_prices_at_or_below_zero_are_kept_for_validation() -> None:
    (sol,) = map_answer(_answer({SOL: _entry(value=-1)}), SYMBOLS, TICK, RECV).prices
    assert sol.price == -1.0


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("value", True, "a number, got bool True"),
        ("value", "abc", "a number, got str 'abc'"),
        ("updateUnixTime", "yesterday", "a number, got str 'yesterday'"),
        ("updateUnixTime", False, "a number, got bool False"),
        ("liquidity", [1], "a number, got list [1]"),
        ("priceChange24h", {}, "a number, got dict {}"),
    ],
)
def test_a_field_of_the_wrong_kind_names_source_token_and_field(
    field: str, value: object, expected: str
) -> None:
    body = _answer({BONK: _entry(**{field: value})})
    with pytest.raises(
        SourceAnswerError,
        match=rf"^birdeye: token {BONK}: field '{field}': expected {re.escape(expected)}",
    ):
        map_answer(body, SYMBOLS, TICK, RECV)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"success": false, "message": "Unauthorized"}',
            r"^birdeye: the answer says success false: Unauthorized$",
        ),
        (
            orjson.dumps({"data": {SOL: _entry()}}),
            r'^birdeye: expected a JSON object \{"success": true, "data": .*got success None',
        ),
        (
            orjson.dumps({"success": True, "data": [1]}),
            r"^birdeye: expected .* and data of type list$",
        ),
        (b"[]", r"^birdeye: expected a JSON object .*got a JSON list"),
        (b"", r"^birdeye: expected a JSON object .*got not JSON"),
        (_answer({SOL: 127.3}), rf"^birdeye: token {SOL}: expected an object with value or null"),
        (_answer({SOL: {"price": 1}}), rf"^birdeye: token {SOL}: field 'value' is missing"),
    ],
)
def test_an_answer_of_the_wrong_shape_says_what_was_expected(body: bytes, message: str) -> None:
    with pytest.raises(SourceAnswerError, match=message):
        map_answer(body, SYMBOLS, TICK, RECV)


# --- requests and costs ------------------------------------------------------------------------


def test_requests_hold_at_most_100_addresses_in_the_order_given() -> None:
    ids = [f"{n:0>32}" for n in range(150)]
    batches = BIRDEYE.batches(ids)
    assert [len(batch) for batch in batches] == [100, 50]
    assert [mint for batch in batches for mint in batch] == ids
    assert target(batches[1]) == (
        "/defi/multi_price?list_address=" + ",".join(ids[100:]) + "&include_liquidity=true"
    )
    assert (BIRDEYE.key_header, BIRDEYE.key_required) == ("X-API-KEY", True)
    assert BIRDEYE.headers["x-chain"] == "solana"
    with pytest.raises(ValueError, match="at least one address"):
        target([])


@pytest.mark.parametrize(
    ("n", "units"),
    [(1, 3), (10, 19), (15, 27), (32, 48), (50, 69), (100, 120)],  # 10 -> 19: Birdeye's own
)
def test_compute_units_per_request(n: int, units: int) -> None:
    assert credits(n) == units
    assert BIRDEYE.credits(n) == units


# --- errors -------------------------------------------------------------------------------------

NOW = 1_000.0
QUOTA_BODY = b'{"success":false,"message":"Compute units usage limit exceeded"}'


def test_spent_compute_units_pause_the_source_instead_of_retrying() -> None:
    verdict = classify(400, {}, QUOTA_BODY, NOW)
    assert verdict.outcome is Outcome.QUOTA
    assert verdict.retry_after_s == QUOTA_PAUSE_S == 600.0
    assert "Compute units usage limit exceeded" in verdict.reason
    assert classify(400, {"retry-after": "30"}, QUOTA_BODY, NOW).retry_after_s == 30.0


@pytest.mark.parametrize(
    ("status", "body", "outcome", "after"),
    [
        (200, DOC_EXAMPLE, Outcome.OK, None),
        (400, b'{"success":false,"message":"list_address is invalid"}', Outcome.FATAL, None),
        (401, b'{"success":false,"message":"Unauthorized"}', Outcome.FATAL, None),
        (403, b'{"success":false,"message":"Forbidden"}', Outcome.FATAL, None),
        (429, b'{"success":false,"message":"Too many requests"}', Outcome.RETRY, 4.0),
        (500, b'{"success":false,"message":"Internal server error"}', Outcome.RETRY, 4.0),
        (503, b"<html>Service Unavailable</html>", Outcome.RETRY, 4.0),
    ],
)
def test_statuses(status: int, body: bytes, outcome: Outcome, after: float | None) -> None:
    verdict = classify(status, {"retry-after": "4"}, body, NOW)
    assert (verdict.outcome, verdict.retry_after_s) == (outcome, after)


def test_a_reason_holds_the_message_not_the_body() -> None:
    verdict = classify(401, {}, b'{"success":false,"message":"Unauthorized"}', NOW)
    assert verdict.reason.startswith("401 Unauthorized: Unauthorized (the API key")
    assert classify(429, {}, b"{}", NOW).retry_after_s is None  # Birdeye sends no Retry-After


@pytest.mark.parametrize("status", [429, 500, 502, 503])
@pytest.mark.parametrize("after", [0.25, 1.0, 3.0])
def test_an_injected_fault_classifies_as_a_retry_after_the_delay_asked(
    status: int, after: float
) -> None:
    headers, body = fault_answer(status, after, NOW)
    assert orjson.loads(body)["success"] is False
    verdict = classify(status, headers, body, NOW)
    # a 429 asks for the delay, a 5xx for none: the poller's own doubling pause applies
    asked = after if status == 429 else None
    assert (verdict.outcome, verdict.retry_after_s) == (Outcome.RETRY, asked)


def test_injected_faults_in_birdeyes_shapes() -> None:
    headers, body = fault_answer(429, 1, NOW)
    assert orjson.loads(body) == {"success": False, "message": "Too many requests"}
    assert headers["retry-after"] == "1"
    headers, body = fault_answer(400, 0, NOW)
    assert classify(400, headers, body, NOW).outcome is Outcome.QUOTA
    headers, body = fault_answer(401, 0, NOW)
    assert "retry-after" not in headers
    assert classify(401, headers, body, NOW).outcome is Outcome.FATAL
    with pytest.raises(ValueError, match="error status, got 204"):
        fault_answer(204, 0, NOW)
