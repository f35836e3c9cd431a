"""Jupiter Price API v3 as a `PolledSource`: request, limits, errors and faults.

Facts (https://dev.jup.ag/docs/price-api/v3, https://dev.jup.ag/portal/rate-limits,
https://dev.jup.ag/portal/responses): `GET /price/v3?ids=<mint>,...`, at most 50 ids; the
`x-api-key` header is optional (without it the request is keyless, 0.5 RPS; the free key
gives 1 RPS). Limits are a 60 s sliding window per account, every request one credit. A 429
carries `x-ratelimit-remaining`, `x-ratelimit-current` and `x-ratelimit-reset` (absolute Unix
seconds when a slot frees) and the text body `[API Gateway] Too many requests`; no
`Retry-After` is documented, but one sent wins over the reset header. 401/403 mean the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

from marketstream.http_headers import retry_after_s
from marketstream.sources.base.answers import body_text, common_verdict, phrase, retry_after_header
from marketstream.sources.base.source import Outcome, PolledSource, Verdict
from marketstream.sources.jupiter.mapper import NAME, map_answer

MAX_IDS: Final = 50
TOO_MANY: Final = b"[API Gateway] Too many requests"
_RATE_LIMIT_PER_MINUTE: Final = 60  # the free tier's window, shown in injected 429s


def target(ids: Sequence[str]) -> str:
    """`/price/v3?ids=a,b`: mints are base58, so nothing needs escaping."""
    if not ids:
        raise ValueError(f"{NAME}: a price request needs at least one mint")
    return f"/price/v3?ids={','.join(ids)}"


def _reset_in_s(headers: Mapping[str, str], now_s: float) -> float | None:
    """`x-ratelimit-reset` (absolute Unix seconds) as seconds from now; None if absent/bad."""
    value = headers.get("x-ratelimit-reset")
    if value is None:
        return None
    try:
        reset = float(value)
    except ValueError:
        return None
    return max(0.0, reset - now_s) if math.isfinite(reset) else None


def classify(status: int, headers: Mapping[str, str], body: bytes, now_s: float) -> Verdict:
    """429: retry after `Retry-After` if sent, else when `x-ratelimit-reset` says a slot
    frees; otherwise as every API here (5xx retry, 401/403 and other 4xx fatal)."""
    detail = body_text(body) if status >= 400 else ""
    if status == 429:
        after = retry_after_s(headers.get("retry-after"), now_s)
        if after is None:
            after = _reset_in_s(headers, now_s)
        return Verdict(
            Outcome.RETRY, f"429 {phrase(429)}" + (f": {detail}" if detail else ""), after
        )
    return common_verdict(status, headers, detail, now_s)


def fault_answer(status: int, after_s: float, now_s: float) -> tuple[Mapping[str, str], bytes]:
    """What the gateway sends for an injected error: the documented 429 (text body and
    `x-ratelimit-*` headers, plus a `Retry-After` so both backoff paths are exercised); other
    errors a text body in the gateway's style (assumed: 5xx bodies are not documented) and no
    delay header, as the gateway documents its rate-limit headers on 200 and 429 only."""
    if status < 400:
        raise ValueError(f"{NAME}: an injected fault needs an error status, got {status}")
    headers = {
        "content-type": "text/plain; charset=utf-8",
        "x-api-gateway-request-id": f"{int(now_s * 1000):016x}",
    }
    if status == 429:
        headers |= {
            "retry-after": retry_after_header(after_s),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-current": str(_RATE_LIMIT_PER_MINUTE),
            "x-ratelimit-reset": str(math.ceil(now_s + max(0.0, after_s))),
        }
        return headers, TOO_MANY
    return headers, f"[API Gateway] {phrase(status)}".encode()


JUPITER: Final = PolledSource(
    name=NAME,
    quote="USD",
    default_url="https://api.jup.ag",
    max_batch=MAX_IDS,
    target=target,
    map_answer=map_answer,
    classify=classify,
    key_header="x-api-key",
    key_required=False,
    headers=MappingProxyType({"accept": "application/json"}),
    credits=lambda n: 1,  # one credit per request, whatever the number of ids
    fault_answer=fault_answer,
)
