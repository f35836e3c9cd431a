"""GET JSON from an exchange's REST API within its rate limits.

Every request first takes its weight from a `TokenBucket`. HTTP 429 (too many requests) and
418 (Binance: the address is banned for a while) hold the bucket for `Retry-After` and try
again; 5xx answers and network errors are retried with exponential backoff. A pause longer
than `max_wait_s` stops the run with an error instead: a ban of hours is for a person to see.
Where the exchange reports the weight used this minute (Binance `X-MBX-USED-WEIGHT-1M`), the
bucket pauses until the next minute once 90% of the limit is used, whoever used it.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from marketstream import http_client
from marketstream.errors import MarketStreamError, ServiceError
from marketstream.http_client import HttpAnswer
from marketstream.quality.ratelimit import TokenBucket, retry_after_s, seconds_to_next_minute
from marketstream.retry import Backoff

BACK_OFF_STATUSES: Final = frozenset((418, 429))
USED_WEIGHT_SHARE_LIMIT: Final = 0.9
RETRY_INITIAL_S: Final = 1.0  # 5xx or no answer: 1, 2, 4... s, up to max_wait_s
_SHOWN_BODY: Final = 200


Transport = Callable[[str, float], HttpAnswer]


def http_transport(url: str, timeout_s: float) -> HttpAnswer:
    """One GET of JSON; an HTTP error status is an answer too. OSError when nothing came back."""
    return http_client.get(url, timeout_s, accept="application/json")


@dataclass(frozen=True, slots=True)
class RestPolicy:
    max_retries: int = 5
    max_wait_s: float = 120.0
    timeout_s: float = 10.0
    weight_limit_per_minute: int | None = None  # the exchange's own limit, for the header
    used_weight_header: str | None = None  # e.g. x-mbx-used-weight-1m


@dataclass(slots=True)
class RestClient:
    """GET JSON with a weight per request; counts requests, weight and retries."""

    exchange: str
    bucket: TokenBucket
    policy: RestPolicy
    transport: Transport = field(default=http_transport, kw_only=True)
    wall_clock: Callable[[], float] = field(default=time.time, kw_only=True)
    requests: int = field(default=0, init=False)
    weight: int = field(default=0, init=False)
    retries: int = field(default=0, init=False)

    def get_json(self, url: str, weight: int) -> Any:
        failures = 0
        while True:
            self.bucket.acquire(weight)
            self.requests += 1
            self.weight += weight
            try:
                answer = self.transport(url, self.policy.timeout_s)
            except OSError as exc:
                failures = self._back_off(failures, None, f"{_where(url)} unreachable: {exc}")
                continue
            self._observe_used_weight(answer)
            if answer.status == 200:
                return self._decode(url, answer)
            problem = f"{_where(url)} answered HTTP {answer.status}: {_body_text(answer)}"
            if answer.status in BACK_OFF_STATUSES:
                pause = retry_after_s(answer.headers.get("retry-after"), self.wall_clock())
                failures = self._back_off(failures, pause, problem)
            elif answer.status >= 500:
                failures = self._back_off(failures, None, problem)
            else:
                raise MarketStreamError(f"{self.exchange}: {problem}")

    def _back_off(self, failures: int, pause: float | None, problem: str) -> int:
        """Hold the bucket for `pause` (or 1, 2, 4... s); an error past the retry budget."""
        failures += 1
        if failures > self.policy.max_retries:
            raise ServiceError(
                f"{self.exchange}: {problem} (gave up after {self.policy.max_retries} retries)"
            )
        backoff = Backoff(RETRY_INITIAL_S, self.policy.max_wait_s)
        wait = pause if pause is not None else backoff.delay(failures - 1)
        if wait > self.policy.max_wait_s:
            raise ServiceError(
                f"{self.exchange}: {problem}; Retry-After {wait:.0f} s is longer than "
                f"quality.backfill_max_wait_s ({self.policy.max_wait_s:g} s): try again later"
            )
        self.retries += 1
        self.bucket.hold(wait)
        return failures

    def _observe_used_weight(self, answer: HttpAnswer) -> None:
        header, limit = self.policy.used_weight_header, self.policy.weight_limit_per_minute
        if header is None or limit is None:
            return
        used = answer.headers.get(header, "")
        if used.isdigit() and int(used) >= USED_WEIGHT_SHARE_LIMIT * limit:
            self.bucket.hold(seconds_to_next_minute(self.wall_clock()))

    def _decode(self, url: str, answer: HttpAnswer) -> Any:
        try:
            return orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise MarketStreamError(
                f"{self.exchange}: {_where(url)} answered with non-JSON: {_body_text(answer)}"
            ) from None


def _where(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _body_text(answer: HttpAnswer) -> str:
    text = " ".join(answer.body.decode("utf-8", errors="replace").split())
    return text[:_SHOWN_BODY] or "(empty body)"


__all__ = ["HttpAnswer", "RestClient", "RestPolicy", "Transport", "http_transport"]
