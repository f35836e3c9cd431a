"""What every generated session shares: the simulated book, the frame collector, the clock.

The repository ships real captures of some venues only (`tests/data/recordings`), and
exchanges cannot be reached offline to capture more. A venue without one generates sessions in
its documented wire format (its `sessions.py`, the venue's `session`), which stand in for it
in `marketstream demo`, the end-to-end tests and the benchmarks: a random-walk order book
whose levels keep their exact text (checksums are computed over it with the venue's own
function), trades, quotes, candles and funding, stamped like the exchange stamps them.
`gap_at` removes one book delta and sends a fresh snapshot `resnapshot_after` steps later, as
the exchange would after a resubscribe.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from marketstream.replay.recording_format import RecordedFrame

T0_MS = 1_763_000_000_000  # 2025-11-13, in milliseconds
STEP_MS = 100
RECV_DELAY_NS = 3_000_000

Text = tuple[str, str]


@dataclass
class SimBook:
    """A book of exact price/size texts that moves a little every step."""

    rng: random.Random
    mid: float
    tick: float
    price_places: int
    size_places: int
    depth: int = 30
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for k in range(1, self.depth + 1):
            self.bids[self._price(self.mid - k * self.tick)] = self._size()
            self.asks[self._price(self.mid + k * self.tick)] = self._size()

    def _price(self, value: float) -> str:
        return f"{value:.{self.price_places}f}"

    def _size(self) -> str:
        return f"{self.rng.uniform(0.001, 5):.{self.size_places}f}"

    def zero(self) -> str:
        return f"{0:.{self.size_places}f}"

    def step(self, *, touch_top: bool = False) -> tuple[list[Text], list[Text]]:
        """Change a few levels; return the changes per side (size zero removes a level).

        `touch_top` also changes the best bid, so that losing this update is visible to a
        checksum over the top levels (a missed deep-level change is not, on a real feed either).
        """
        changes: tuple[list[Text], list[Text]] = ([], [])
        if touch_top:
            best = max(self.bids, key=float)
            self.bids[best] = self._size()
            changes[0].append((best, self.bids[best]))
        for side, levels, sign in ((0, self.bids, -1), (1, self.asks, 1)):
            for _ in range(self.rng.randint(1, 3)):
                k = self.rng.randint(1, self.depth + 2)
                price = self._price(self.mid + sign * k * self.tick)
                if price in levels and self.rng.random() < 0.3:
                    del levels[price]
                    changes[side].append((price, self.zero()))
                else:
                    levels[price] = self._size()
                    changes[side].append((price, levels[price]))
        return changes

    def top(self, n: int) -> tuple[list[Text], list[Text]]:
        bids = sorted(self.bids.items(), key=lambda level: -float(level[0]))[:n]
        asks = sorted(self.asks.items(), key=lambda level: float(level[0]))[:n]
        return bids, asks

    def best(self) -> tuple[Text, Text]:
        bids, asks = self.top(1)
        return bids[0], asks[0]


@dataclass
class GeneratedSession:
    """The frames of one generated session, in order, as a recorder would have written them."""

    frames: list[RecordedFrame] = field(default_factory=list)

    def add(self, exchange: str, url: str, at_ms: int, frame: str | bytes) -> None:
        text = frame.decode() if isinstance(frame, bytes) else frame
        self.frames.append(RecordedFrame(at_ms * 1_000_000 + RECV_DELAY_NS, exchange, url, text))


class Tick(NamedTuple):
    """One book's move at one step, and what the feed makes of it."""

    step: int
    ms: int
    key: str  # the book's key: a URL, a pair, an instId
    book: SimBook
    bids: list[Text]
    asks: list[Text]
    lost: bool  # the gapped book's update at `gap_at`: it never arrives
    resnapshot: bool  # `resnapshot_after` steps later a snapshot comes instead of the update


def book_ticks(
    books: Mapping[str, SimBook],
    steps: int,
    gap_at: int | None,
    resnapshot_after: int,
    gapped: str,
) -> Iterator[Tick]:
    """Every book's move at every step after T0, in order; the book keyed `gapped` loses its
    update at `gap_at` and gets a snapshot `resnapshot_after` steps later (a resubscribe)."""
    for step in range(1, steps + 1):
        ms = T0_MS + step * STEP_MS
        for key, book in books.items():
            bids, asks = book.step(touch_top=gap_at == step)
            gapped_here = gap_at is not None and key == gapped
            yield Tick(
                step,
                ms,
                key,
                book,
                bids,
                asks,
                lost=gapped_here and step == gap_at,
                resnapshot=gapped_here and step == (gap_at or 0) + resnapshot_after,
            )


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as `2025-11-13T02:13:20.100000Z`."""
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}000Z"


def write_session(path: str, frames: list[RecordedFrame]) -> None:
    with open(path, "wb") as out:
        for frame in frames:
            out.write(frame.to_json_line())
