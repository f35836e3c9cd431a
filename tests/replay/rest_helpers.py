"""A small polled-source recording, written by the tests: 3 ticks x 2 request targets."""

from __future__ import annotations

from pathlib import Path

import orjson

from marketstream.replay.recording_format import RecordedFrame, RecordingWriter
from marketstream.schemas.instruments import SOURCES

SOURCE = SOURCES[0]
BASE = "https://price.example/price/v3"
MINTS = (
    "So11111111111111111111111111111111111111112",
    "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN",
)
OTHER = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
PAIR = f"/price/v3?ids={MINTS[0]},{MINTS[1]}"  # the first target: two mints in one batch
SINGLE = f"/price/v3?ids={OTHER}"  # the second target
T0 = 1_760_000_000_000_000_000
TICK_NS = 1_000_000_000
TICKS = 3


def price_of(target: str, tick: int) -> float:
    """A price that says which target and tick answered: 100 + tick, or 200 + tick."""
    return (100.0 if target == PAIR else 200.0) + tick


def body(target: str, tick: int) -> str:
    mints = MINTS if target == PAIR else (OTHER,)
    price = price_of(target, tick)
    answer = {
        mint: {"usdPrice": price, "blockId": 1000 + tick, "decimals": 6, "priceChange24h": 1.5}
        for mint in mints
    }
    return orjson.dumps(answer).decode()


def price_in(answer: bytes) -> float:
    first: dict[str, float] = next(iter(orjson.loads(answer).values()))
    return first["usdPrice"]


def rest_frames(source: str = SOURCE) -> list[RecordedFrame]:
    """Each tick's two answers, received 50 and 80 ms after the tick."""
    return [
        RecordedFrame(
            T0 + tick * TICK_NS + (50 if target == PAIR else 80) * 1_000_000,
            source,
            f"https://price.example{target}",
            body(target, tick),
            headers={"content-type": "application/json", "x-ratelimit-remaining": str(59 - tick)},
        )
        for tick in range(TICKS)
        for target in (PAIR, SINGLE)
    ]


def write_recording(path: Path, frames: list[RecordedFrame]) -> Path:
    with RecordingWriter(path) as writer:
        for frame in frames:
            writer.write(frame)
    return path


class FakeClock:
    """A monotonic clock the test moves: the replay position without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
