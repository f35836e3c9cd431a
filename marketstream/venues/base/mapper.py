"""The mapper contract: what a venue's mapper returns besides records, and the error it raises.

Mappers are pure: one frame in, items out; no I/O, no clock, no globals. Book updates are not
published as they are; the stateful book keeper applies them (checking sequence numbers) and
emits top-N `Book` records at a cadence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import msgspec

from marketstream.schemas.records import Instrument, Level, Record

LevelText = tuple[str, str]  # (price, size) exactly as the exchange wrote them


class FrameError(ValueError):
    """A frame that cannot be mapped; the message names what was expected and what came.

    The connection runner sends the raw frame with this reason to `md:dlq` and goes on.
    """


def in_venue(venue: str, error: FrameError) -> FrameError:
    """The error again, its message led by the venue (and market) whose frame it is about.

    Every mapper raises it once, where a frame leaves it: `raise in_venue(NAME, exc) from None`,
    so the parts inside name only the field they read.
    """
    return FrameError(f"{venue}: {error}")


@contextmanager
def answer_of(venue: str, url: str) -> Iterator[None]:
    """A REST answer being read: a FrameError raised inside comes out led by the venue and the
    answer's URL (`venue: url: reason`)."""
    try:
        yield
    except FrameError as exc:
        raise in_venue(venue, FrameError(f"{url}: {exc}")) from None


class BookUpdate(msgspec.Struct, gc=False):
    """An order book change as the exchange sent it: a full snapshot or a delta.

    In a delta a size of 0 removes the level. The sequence fields carry whatever the
    exchange numbers its updates with; None where the feed has no such number.
    A msgspec Struct, not a dataclass: one is made per book frame, and a Struct is made in C
    (a third of the time). `gc=False`: it holds lists of levels, never itself.
    """

    exchange: str
    symbol: str
    ts: int
    recv_ts: int
    bids: list[Level]
    asks: list[Level]
    is_snapshot: bool
    first_seq: int | None = None  # first update id in this event (e.g. a `U` field)
    last_seq: int | None = None  # last update id in this event (e.g. `u`, `seqId`)
    prev_seq: int | None = None  # last update id of the previous event (e.g. `pu`)
    checksum: int | None = None  # CRC32 the exchange computed over its top levels
    # The levels' exact text as sent, aligned with bids/asks, for exchanges whose checksum is
    # computed over the text: floats cannot give back "0.10" or "1.00000000".
    bid_texts: list[LevelText] | None = None
    ask_texts: list[LevelText] | None = None
    # The depth the feed keeps for this book when the frame says so (a channel named `book-10`):
    # overrides the exchange's default book_depth_limit for truncation.
    depth_limit: int | None = None


Item = Record | BookUpdate

# A mapper: (raw text frame, local receive time in ns) -> items. Raises FrameError.
Mapper = Callable[[str | bytes, int], list[Item]]


class MakeMapper(Protocol):
    """Configured symbols and the venue's instrument metadata -> the venue's mapper.

    With no instruments given the mapper still maps what needs no metadata (spot sizes are
    coins) and refuses, with a FrameError naming the instrument, what would need it.
    """

    def __call__(
        self, symbols: Sequence[str], instruments: Sequence[Instrument] = ()
    ) -> Mapper: ...


def frame_only(mapper: Mapper, native_symbol: Callable[[str], str]) -> MakeMapper:
    """`make_mapper` for a venue whose frames name their normalized symbol themselves: the
    configured symbols are only checked (`native_symbol` raises ConfigError for one the
    venue does not list), and the one pure mapper serves every subscription."""

    def make_mapper(symbols: Sequence[str], instruments: Sequence[Instrument] = ()) -> Mapper:
        for symbol in symbols:
            native_symbol(symbol)
        return mapper

    return make_mapper
