"""Birdeye `/defi/multi_price` as a `PolledSource`: request, limits, errors and faults.

Facts (https://docs.birdeye.so/docs/multi_price-1, https://docs.birdeye.so/reference/
batch-token-cu-cost, https://docs.birdeye.so/docs/rate-limiting): `GET /defi/multi_price?
list_address=<mint>,...`, at most 100 addresses; `X-API-KEY` required, `x-chain: solana`.
A request costs ceil(n^0.8 x 3) compute units (CU) for n addresses, out of a monthly
allowance; the rate limit is per account. Errors are `{"success": false, "message": ...}`:
429 rate limit, 401/403 the key or the plan, 5xx the server, and a spent CU allowance is a
400 with "Compute units usage limit exceeded" (not a 429).

`include_liquidity=true` is always sent: it fills the `liquidity` column as the other
source does, and the CU cost table prices the endpoint, not its options.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

import orjson

from marketstream.http_headers import retry_after_s
from marketstream.sources.base.answers import body_text, common_verdict, phrase, retry_after_header
from marketstream.sources.base.source import Outcome, PolledSource, Verdict
from marketstream.sources.birdeye.mapper import NAME, map_answer

MAX_ADDRESSES: Final = 100
CU_BASE: Final = 3  # multi_price's base cost in the current CU reference
QUOTA_MESSAGE: Final = "Compute units usage limit exceeded"
# Birdeye's CU allowance is monthly and its 400 says when it renews nowhere. Retrying every
# tick would send a request a second that cannot succeed; stopping the source would need a
# restart once CUs are bought or the month turns. Pausing ten minutes costs six rejected
# requests an hour and resumes by itself within ten minutes of a top-up.
QUOTA_PAUSE_S: Final = 600.0


def target(ids: Sequence[str]) -> str:
    """`/defi/multi_price?list_address=a,b&include_liquidity=true` (base58: no escaping)."""
    if not ids:
        raise ValueError(f"{NAME}: a price request needs at least one address")
    return f"/defi/multi_price?list_address={','.join(ids)}&include_liquidity=true"


def credits(n: int) -> int:
    """Compute units of one request for `n` addresses: ceil(n^0.8 x 3) (10 -> 19, 100 ->
    120). Rounded to 9 places first, so that an exact power (32 -> 48) is not pushed up by
    float error."""
    return math.ceil(round(math.pow(n, 0.8) * CU_BASE, 9))


def _message(body: bytes) -> str:
    """The `message` of an error answer, else the body as text (one short line)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body_text(body)
    message = answer.get("message") if isinstance(answer, dict) else None
    return body_text(message.encode()) if isinstance(message, str) else body_text(body)


def classify(status: int, headers: Mapping[str, str], body: bytes, now_s: float) -> Verdict:
    """A 400 saying the compute units are spent is QUOTA (pause `QUOTA_PAUSE_S`, or as long
    as a `Retry-After` says); the rest as every API here (429/5xx retry, 401/403 fatal)."""
    detail = _message(body) if status >= 400 else ""
    if status == 400 and QUOTA_MESSAGE.lower() in detail.lower():
        after = retry_after_s(headers.get("retry-after"), now_s)
        return Verdict(
            Outcome.QUOTA,
            f"400 {phrase(400)}: {detail} (compute units spent: paused)",
            QUOTA_PAUSE_S if after is None else after,
        )
    return common_verdict(status, headers, detail, now_s)


def _error_body(status: int) -> bytes:
    messages = {
        400: QUOTA_MESSAGE,  # the 400 worth injecting: the spent allowance
        401: "Unauthorized",
        429: "Too many requests",
    }
    message = messages.get(status, phrase(status))
    return orjson.dumps({"success": False, "message": message})


def fault_answer(status: int, after_s: float, now_s: float) -> tuple[Mapping[str, str], bytes]:
    """What Birdeye sends for an injected error: `{"success": false, "message": ...}` (429
    "Too many requests", 400 the spent-CU message, 401 "Unauthorized"; the texts of 429 and
    401 are assumed), with `Retry-After` on a 429 only (Birdeye documents none: the poller
    must cope without it, and does on the real API)."""
    if status < 400:
        raise ValueError(f"{NAME}: an injected fault needs an error status, got {status}")
    headers = {"content-type": "application/json; charset=utf-8"}
    if status == 429:
        headers["retry-after"] = retry_after_header(after_s)
    return headers, _error_body(status)


BIRDEYE: Final = PolledSource(
    name=NAME,
    quote="USD",
    default_url="https://public-api.birdeye.so",
    max_batch=MAX_ADDRESSES,
    target=target,
    map_answer=map_answer,
    classify=classify,
    key_header="X-API-KEY",
    key_required=True,
    headers=MappingProxyType({"x-chain": "solana", "accept": "application/json"}),
    credits=credits,
    fault_answer=fault_answer,
)
