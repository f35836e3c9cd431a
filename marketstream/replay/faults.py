"""Deterministic fault injection for the REST replay: which request fails, how, and counts.

Faults are decided by the request's number since the plan was set (1, 2, 3, ...), never
by chance or by the clock, so a test knows which answer is a 429 and can count them. A
request may be both delayed and failed; when the 429 and the 5xx rule pick the same
request, it gets the 429.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

# (status, retry-after seconds, now in epoch seconds) -> (headers, body): a source's own
# shape of a 429 or 5xx answer (`PolledSource.fault_answer`), passed in by the caller.
FaultAnswer = Callable[[int, float, float], tuple[Mapping[str, str], bytes]]


def plain_fault_answer(
    status: int, retry_after_s: float, now: float
) -> tuple[dict[str, str], bytes]:
    """A bare answer for a source that has no shape of its own: `Retry-After`, empty body."""
    return {"retry-after": str(max(0, round(retry_after_s)))}, b""


class FaultPlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every N-th request (0 = never): a 429 with `retry_after_s`, a `status_5xx`, or the
    answer held back `latency_ms`. The JSON of `/_control/faults` uses these names."""

    fail_429_every: int = 0
    retry_after_s: float = 1.0
    fail_5xx_every: int = 0
    status_5xx: int = 503
    latency_every: int = 0
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fail_429_every", "fail_5xx_every", "latency_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (off) or a positive count")
        if self.retry_after_s < 0 or self.latency_ms < 0:
            raise ValueError("retry_after_s and latency_ms must not be negative")
        if not 500 <= self.status_5xx <= 599:
            raise ValueError(f"status_5xx must be 500-599, got {self.status_5xx}")

    def status(self, number: int) -> int | None:
        """The status to inject into request `number` (from 1), None to answer normally."""
        if _every(self.fail_429_every, number):
            return 429
        if _every(self.fail_5xx_every, number):
            return self.status_5xx
        return None

    def delay_s(self, number: int) -> float:
        return self.latency_ms / 1000 if _every(self.latency_every, number) else 0.0

    def to_json(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__struct_fields__}


def _every(n: int, number: int) -> bool:
    return n > 0 and number % n == 0


def parse_plan(body: bytes) -> FaultPlan:
    """A plan from a JSON object; ValueError naming the field and what was expected."""
    try:
        return msgspec.json.decode(body, type=FaultPlan)
    except msgspec.ValidationError as exc:
        raise ValueError(f"bad fault plan: {exc}") from None
    except msgspec.DecodeError:
        raise ValueError(
            "bad fault plan: expected a JSON object (see GET /_control/faults)"
        ) from None


@dataclass(slots=True)
class FaultCounters:
    """What the server did, since it started (`requests`) and since the plan was set."""

    requests: int = 0  # replay requests (not /_control), whatever their answer
    since_plan: int = 0  # requests since the plan was set: the number the plan is applied to
    answered: int = 0  # recorded answers served
    injected_429: int = 0
    injected_5xx: int = 0
    delayed: int = 0
    not_found: int = 0  # unknown targets
    ended: int = 0  # refused because the recording ended (no loop)

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)
