"""The venue contract: what the ingest runner, the recorder, normalize, the replay server and
quality need to know about one exchange, as data and pure functions.

Each venue package (`marketstream/venues/<name>/`) builds one `Venue` value (two for a
package serving two markets) in its `venue.py`; `marketstream.venues.registry` lists them.
The runner holds the sockets; the venue holds the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Protocol

from marketstream.replay.dialect import Dialect
from marketstream.replay.recording_format import RecordedFrame
from marketstream.schemas.instruments import Channel
from marketstream.schemas.records import Instrument, InstrumentKind, OpenInterest, Trade
from marketstream.venues.base.mapper import BookUpdate, LevelText, MakeMapper, Mapper


class Sequencing(Enum):
    """How to tell that a book delta follows the previous one (see `ingest/books.py`)."""

    NONE = "none"  # no sequence numbers: a gap cannot be seen
    FIRST_LAST = "first_last"  # next.first_seq == previous.last_seq + 1 (first and last ids)
    PREV_LAST = "prev_last"  # next.prev_seq == previous.last_seq (each names its predecessor)
    INCREMENT = "increment"  # next.last_seq == previous.last_seq + 1 (one id per delta)


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
    """A REST order book snapshot to fetch when the feed sends deltas only."""

    symbol: str
    url: str


class JsonGetter(Protocol):
    """A rate-limited REST client (`quality.rest.RestClient`): GET a URL, return its JSON."""

    def get_json(self, url: str, weight: int) -> Any: ...


class TradePages(Protocol):
    """An exchange's past trades of one instrument, in pages."""

    def by_ids(self, first: int, last: int) -> Iterator[list[Trade]]: ...

    def by_time(self, start_ns: int, end_ns: int) -> Iterator[list[Trade]]: ...


@dataclass(frozen=True, slots=True)
class TradeHistory:
    """Past trades over REST, where the venue serves them (backfill)."""

    # (symbol, REST base, client, clock in ns) -> pages of that instrument's trades.
    pages: Callable[[str, str, JsonGetter, Callable[[], int]], TradePages]
    weight_limit_per_minute: int  # the venue's request weight budget per IP
    used_weight_header: str | None = None  # where the venue reports the weight used


class MapSnapshot(Protocol):
    """A REST book snapshot's body -> the snapshot; the instruments size its levels."""

    def __call__(
        self,
        body: str | bytes,
        symbol: str,
        recv_ts: int,
        instruments: Sequence[Instrument] = (),
    ) -> BookUpdate: ...


class MapperForRecording(Protocol):
    """A recorded connection's URL (the instruments, the configured symbols: those of the
    URL's market are used) -> the mapper for its frames."""

    def __call__(
        self, url: str, instruments: Sequence[Instrument] = (), symbols: Sequence[str] = ()
    ) -> Mapper: ...


class SnapshotSymbol(Protocol):
    """A REST snapshot's URL (the instruments and configured symbols, for venues whose native
    name needs them) -> the normalized symbol it asks for."""

    def __call__(
        self, url: str, instruments: Sequence[Instrument] = (), symbols: Sequence[str] = ()
    ) -> str: ...


# (REST base URL) -> the URLs that list the venue's instruments.
InstrumentUrls = Callable[[str], list[str]]
# (URL, body, time read in ns) -> the instruments the answer lists; FrameError if malformed.
InstrumentParser = Callable[[str, str | bytes, int], list[Instrument]]
# (URL, body) of a listing answer -> the URL of its next page, None on the last; FrameError
# if the answer's paging is malformed.
NextInstrumentPage = Callable[[str, str | bytes], str | None]


# A generated session in the venue's wire format: steps -> recorded frames (test data).
SessionGenerator = Callable[..., list[RecordedFrame]]

# (body, symbol, receive time in ns, the symbol's instrument or None) -> its open interest.
OpenInterestParser = Callable[[str | bytes, str, int, Instrument | None], OpenInterest]


@dataclass(frozen=True, slots=True)
class Venue:
    """Everything venue-specific the rest of the pipeline needs, as data and pure functions."""

    name: str
    # The URL to connect to for a subscription (some venues put streams in the URL).
    connect_url: Callable[[str, Subscription], str]
    # Text frames to send after connecting, in order; the runner paces them.
    subscribe_messages: Callable[[Subscription], list[str]]
    # Symbols and instruments -> mapper; it knows the native names of these symbols.
    make_mapper: MakeMapper
    sequencing: Sequencing
    # Channels the feed offers; configuring another is an error at start.
    channels: frozenset[Channel]
    # The replay server's side of this venue's protocol.
    dialect: Dialect
    # Application-level ping (None when WebSocket pings suffice) and its period.
    ping_message: str | None = None
    ping_interval_s: float = 20.0
    # Most subscribe messages per second the exchange accepts on one connection.
    max_messages_per_s: float = 5.0
    # Most streams/topics per connection; the runner opens more connections beyond it.
    max_streams_per_connection: int = 200
    # Book snapshots fetched over REST, and how to map one (None: the feed sends them).
    snapshot_requests: Callable[[str, Sequence[str]], list[SnapshotRequest]] | None = None
    map_snapshot: MapSnapshot | None = None
    # The normalized symbol a snapshot URL asks for (to replay recorded snapshots offline).
    snapshot_symbol: SnapshotSymbol | None = None
    # Messages that make the feed send a fresh book snapshot for one symbol (unsubscribe and
    # subscribe again); None with no REST snapshots either: the runner reconnects instead.
    resubscribe_book: Callable[[str], list[str]] | None = None
    # Subscriptions the venue serves on different endpoints: one configured subscription ->
    # the parts that each need a connection, whose URL `connect_url` then picks. None: one
    # connection serves it all.
    split: Callable[[Subscription], list[Subscription]] | None = None
    # Offline (normalize, replay) the configured symbols are unknown; where a frame alone
    # cannot name its instrument (one native name on two markets) the recorded URL can.
    mapper_for_recording: MapperForRecording | None = None
    # Checksums and truncation of the book; None: sequence numbers only.
    checksum: Checksum | None = None
    checksum_depth: int = 0
    book_depth_limit: int | None = None
    # Trade ids count up by one per instrument, so a skipped id is a missed trade (quality).
    sequential_trade_ids: bool = False
    # Past trades over REST (backfill); None: not offered.
    trade_history: TradeHistory | None = None
    # Instrument metadata over REST (None: the venue is not asked; its catalog is the shipped
    # snapshot or nothing).
    instrument_urls: InstrumentUrls | None = None
    parse_instruments: InstrumentParser | None = None
    # Where a listing is paged: each answer's next page (None: every answer is whole).
    next_instrument_page: NextInstrumentPage | None = None
    # Open interest polled over REST where no stream sends it (`ingest/rest_polls.py`):
    # (REST base, symbol) -> URL, and the answer's parser; None: not polled.
    open_interest_url: Callable[[str, str], str] | None = None
    parse_open_interest: OpenInterestParser | None = None
    # A session generated in the venue's wire format, for the demo and tests where no real
    # capture ships; None: the venue has real recordings only.
    session: SessionGenerator | None = None
    # tardis.dev's exchange id for each kind of instrument the venue lists (its file names
    # and `exchange` column; `export --to tardis-csv`); a kind not here has none.
    tardis_ids: Mapping[InstrumentKind, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def book_rules(self) -> BookRules:
        return BookRules(self.sequencing, self.checksum, self.checksum_depth, self.book_depth_limit)
