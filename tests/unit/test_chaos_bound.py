"""How much feed the chaos suite lets ingest kills lose: what they explain, no more."""

from __future__ import annotations

from typing import Any

from chaos.run import KILL_LOSS_S, ingest_loss_seconds
from marketstream.ingest.publisher import RETRY_MAX_S


def fault(kind: str, at_s: float, end_s: float) -> dict[str, Any]:
    return {"kind": kind, "at_s": at_s, "end_s": end_s, "injected": True}


def test_a_kill_alone_may_lose_its_two_seconds() -> None:
    faults = [fault("ingest_kill", 50.0, 51.0), fault("ingest_kill", 90.0, 91.0)]
    assert ingest_loss_seconds(faults, 2) == 2 * KILL_LOSS_S


def test_a_kill_during_or_just_after_a_redis_outage_may_lose_what_came_since_it_began() -> None:
    """Ingest holds what it accepted while Redis was away until its next flush succeeds."""
    during = [fault("redis_kill", 143.1, 146.2), fault("ingest_kill", 145.0, 146.0)]
    assert ingest_loss_seconds(during, 1) == KILL_LOSS_S + (145.0 - 143.1)
    after = [fault("redis_kill", 143.1, 146.2), fault("ingest_kill", 150.0, 151.0)]
    assert ingest_loss_seconds(after, 1) == KILL_LOSS_S + (150.0 - 143.1)


def test_an_outage_long_over_or_still_to_come_explains_nothing() -> None:
    long_over = 146.2 + RETRY_MAX_S + 0.1
    faults = [
        fault("redis_kill", 143.1, 146.2),
        fault("ingest_kill", long_over, long_over + 1),
        fault("ingest_kill", 100.0, 101.0),  # before the outage
    ]
    assert ingest_loss_seconds(faults, 2) == 2 * KILL_LOSS_S
