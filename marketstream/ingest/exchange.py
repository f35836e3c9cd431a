"""The contract between an exchange module and the shared connection runner.

Each exchange module (`marketstream/ingest/exchanges/<name>.py`) exposes one `Exchange`
value: how to subscribe and keep the connection alive, how to map its frames, and how its
order book updates are sequenced. The runner holds the sockets; the module holds the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from marketstream.ingest.events import BookUpdate, LevelText, Mapper
from marketstream.schemas.instruments import Channel


class Sequencing(Enum):
    """How to tell that a book delta follows the previous one (see `books.py`)."""

    NONE = "none"  # no sequence numbers: a gap cannot be seen (Coinbase level2)
    FIRST_LAST = "first_last"  # next.first_seq == previous.last_seq + 1 (Binance spot U/u)
    PREV_LAST = "prev_last"  # next.prev_seq == previous.last_seq (Binance futures pu, OKX)
    INCREMENT = "increment"  # next.last_seq == previous.last_seq + 1 (Bybit u)


# The exchange's checksum over the top levels' text: (bids best first, asks best first) -> int.
Checksum = Callable[[list[LevelText], list[LevelText]], int]


@dataclass(frozen=True, slots=True)
class BookRules:
    """How a feed's order book is kept besides its sequence numbers."""

    sequencing: Sequencing
    checksum: Checksum | None = None  # verified after every update that carries one
    checksum_depth: int = 0  # levels per side the checksum covers
    depth_limit: int | None = None  # the feed keeps only this many levels: truncate to it


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one connection asks for: normalized symbols and channels."""

    symbols: tuple[str, ...]
    channels: tuple[Channel, ...]


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """A REST order book snapshot to fetch when the feed sends deltas only (Binance)."""

    symbol: str
    url: str


@dataclass(frozen=True, slots=True)
class Exchange:
    """Everything exchange-specific the runner needs, as data and pure functions."""

    name: str
    # The URL to connect to for a subscription (Binance puts streams in the URL).
    connect_url: Callable[[str, Subscription], str]
    # Text frames to send after connecting, in order; the runner paces them.
    subscribe_messages: Callable[[Subscription], list[str]]
    # Symbols -> mapper; the mapper knows the native names of exactly these symbols.
    make_mapper: Callable[[Sequence[str]], Mapper]
    sequencing: Sequencing
    # Channels the feed offers; configuring another is an error at start.
    channels: frozenset[Channel]
    # Application-level ping (None when WebSocket pings suffice) and its period.
    ping_message: str | None = None
    ping_interval_s: float = 20.0
    # Most subscribe messages per second the exchange accepts on one connection.
    max_messages_per_s: float = 5.0
    # Most streams/topics per connection; the runner opens more connections beyond it.
    max_streams_per_connection: int = 200
    # Book snapshots fetched over REST, and how to map one (None: the feed sends them).
    snapshot_requests: Callable[[str, Sequence[str]], list[SnapshotRequest]] | None = None
    map_snapshot: Callable[[str | bytes, str, int], BookUpdate] | None = None
    # The normalized symbol a snapshot URL asks for (to replay recorded snapshots offline).
    snapshot_symbol: Callable[[str], str] | None = None
    # Messages that make the feed send a fresh book snapshot for one symbol (unsubscribe and
    # subscribe again); None with no REST snapshots either: the runner reconnects instead.
    resubscribe_book: Callable[[str], list[str]] | None = None
    # Subscriptions the exchange serves on different endpoints (OKX candles, Bybit spot vs
    # linear): one configured subscription -> the parts that each need a connection, whose
    # URL `connect_url` then picks. None: one connection serves it all.
    split: Callable[[Subscription], list[Subscription]] | None = None
    # Offline (normalize, replay) the configured symbols are unknown; where a frame alone
    # cannot name its instrument (Bybit BTCUSDT: spot or perp?) the recorded URL can.
    mapper_for_recording: Callable[[str], Mapper] | None = None
    # Checksums and truncation of the book; None: sequence numbers only.
    checksum: Checksum | None = None
    checksum_depth: int = 0
    book_depth_limit: int | None = None

    @property
    def book_rules(self) -> BookRules:
        return BookRules(self.sequencing, self.checksum, self.checksum_depth, self.book_depth_limit)
