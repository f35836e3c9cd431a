"""The polled-source contract: what the poller, the recorder and the replay server need to
know about one REST price source, as data and pure functions.

Each source package (`marketstream/sources/<name>/`) builds one `PolledSource` in its
`source.py`; `marketstream.sources.registry` lists them. The poller holds the connections,
the clock and the limits; the source holds the API's rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from marketstream.schemas.records import Price


class SourceAnswerError(ValueError):
    """An answer that is not what the API documents; the message names the source and the
    field, and the poller sends the body to the dead-letter stream."""


class Outcome(Enum):
    """What to do with an HTTP answer."""

    OK = "ok"  # map the body
    RETRY = "retry"  # transient (429, 5xx): try again within the tick, after `retry_after_s`
    QUOTA = "quota"  # the account's credits are spent: pause until `retry_after_s`, degraded
    FATAL = "fatal"  # a request that will never succeed (bad key, bad request): stop the source


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str  # one line for logs and /healthz; never holds a key
    retry_after_s: float | None = None  # from Retry-After or the API's own reset header


@dataclass(frozen=True, slots=True)
class Mapped:
    """A 200 answer mapped: the prices, and the ids the answer held no price for (a token the
    source does not price right now: not a failed poll, counted and logged apart)."""

    prices: list[Price]
    unpriced: tuple[str, ...] = ()


# (body, token id -> normalized symbol of the ids asked for, tick ns, receive ns) -> Mapped;
# raises SourceAnswerError on an answer that is not the documented shape.
MapAnswer = Callable[[bytes, Mapping[str, str], int, int], Mapped]
# (status, headers with lower-case names, body, now in epoch seconds) -> Verdict.
Classify = Callable[[int, Mapping[str, str], bytes, float], Verdict]


@dataclass(frozen=True, slots=True)
class PolledSource:
    """One REST price source."""

    name: str  # as in `schemas.instruments.SOURCES`, the `exchange` column of its records
    quote: str  # what its prices are in: the symbol is `<SYMBOL>-<quote>`
    default_url: str  # the API's base URL; config `sources.<name>.url` may point elsewhere
    max_batch: int  # token ids per request the API allows
    # (token ids) -> the request target (path and query) appended to the base URL
    target: Callable[[Sequence[str]], str]
    map_answer: MapAnswer
    classify: Classify
    key_header: str  # the header that carries the API key
    key_required: bool  # False: the API answers without a key (at a lower rate)
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The API's cost of one request for n ids, in its own credits (1 where it counts requests)
    credits: Callable[[int], int] = lambda n: 1
    # What the replay server answers when told to inject a 429 or a 5xx: status, headers,
    # body, in the API's own shapes, so that the classifier is exercised as in production.
    # (status, retry-after seconds, now in epoch seconds) -> (headers, body)
    fault_answer: Callable[[int, float, float], tuple[Mapping[str, str], bytes]] = (
        lambda status, after, now: ({"retry-after": str(max(0, round(after)))}, b"")
    )

    def batches(self, ids: Sequence[str]) -> list[tuple[str, ...]]:
        """The ids in requests of at most `max_batch`, in the order given (so a recording
        and its replay agree on every request target)."""
        step = self.max_batch
        return [tuple(ids[i : i + step]) for i in range(0, len(ids), step)]
