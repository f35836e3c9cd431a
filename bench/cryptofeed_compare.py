"""Side by side with cryptofeed: the same recorded frames through its parsers and through ours.

For each real recording (Binance spot, Binance USD-M, Coinbase), one frame list is built and
given to both sides, one core, from memory, after a warm-up pass:

- ours: `FrameProcessor` (mapper, book keeper, validation) as `bench.ingest` builds it;
- cryptofeed: its exchange feed (`Binance`, `BinanceFutures`, `Coinbase`) with no-op counting
  callbacks, its `message_handler(text, conn, receipt_time)` coroutine awaited per frame in
  one event loop, as its connection handler does with each frame read from the socket.

Nothing reaches the network. cryptofeed reads an exchange's symbol list over REST when a feed
is created: that list is seeded instead (through cryptofeed's own `_parse_symbol_data`) with
the symbols of the recording. Binance depth updates would make cryptofeed fetch a REST book
snapshot first; the recordings hold none, so depth frames are left out on both sides and the
Binance figures cover trades, tickers and candles. Coinbase sends its book snapshots in the
feed, so its frames are all kept. The feed's HTTP connection is replaced by one that raises,
so a REST call that slipped through would show as an error, never as traffic.

Records: each side counts what it hands on (our records; cryptofeed's callbacks). They differ
where the two designs differ, and the result says how (see `_NOTES`).

Then the issue's own measure on the same frames repeated: `marketstream normalize` against
cryptofeed's `playback()`, whole processes (`bench/cryptofeed_process.py`).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from bench import cryptofeed_process
from bench.ingest import _processor
from marketstream.ingest.processor import FrameProcessor
from marketstream.instruments.snapshot import load_shipped
from marketstream.replay.recording_format import RecordedFrame, read_recording
from tests.conftest import recordings_path

REPEATS = 5  # timed blocks per side, interleaved ours / cryptofeed; the best of each is kept
MIN_SECONDS = 0.5  # each timed block runs whole passes over the frames for at least this long
# The long comparison: the recording's frames repeated to at least this many, one pass a block
# (as a whole-process run over a big recording would see them), interleaved, best of LONG_REPEATS.
LONG_FRAMES = 300_000
LONG_REPEATS = 3
INSTALL_LOG = Path(sys.prefix) / "bench-deps.log"  # where `make bench-deps` keeps pip's output


@dataclass(frozen=True, slots=True)
class _Feed:
    recording: str
    cryptofeed_class: str
    channels: tuple[str, ...]  # cryptofeed's channel names (cryptofeed.defines values)
    excluded: tuple[str, ...] = ()  # frame kinds left out on both sides
    why_excluded: str = ""


_BINANCE_DEPTH = (
    "depth updates make cryptofeed fetch a REST book snapshot first (Binance._snapshot); "
    "the recording holds no snapshot, so depth frames are left out on both sides"
)
FEEDS = (
    _Feed(
        "binance-spot.jsonl",
        "Binance",
        ("trades", "ticker", "candles"),
        ("depthUpdate",),
        _BINANCE_DEPTH,
    ),
    _Feed(
        "binance-usdm.jsonl",
        "BinanceFutures",
        ("trades", "ticker", "candles"),
        ("depthUpdate",),
        _BINANCE_DEPTH,
    ),
    _Feed("coinbase.jsonl", "Coinbase", ("l2_book", "trades", "ticker")),
)

_NOTES = [
    "ours: FrameProcessor (mapper, BookKeeper, validation) as bench.ingest builds it; "
    "cryptofeed: the exchange feed's message_handler awaited per frame in one event loop",
    "cryptofeed parses with yapic.json into Decimal and builds its Cython types; ours parses "
    "with orjson into floats and validates every record",
    "cryptofeed is created with candle_closed_only=False so that, like ours, it emits every "
    "kline update, not only closed candles",
    "books (Coinbase): cryptofeed calls back on every snapshot and update with its live book "
    "object; ours keeps the book on every update but publishes a top-N Book record at most "
    "once a second of exchange time per symbol, so it counts far fewer book records; "
    "'ours_book_per_update' is our side made to publish a top-N Book record (a copy) on every "
    "update with a new exchange time, which cryptofeed does not do either (it hands over its "
    "live book, copying nothing)",
    "the symbol list cryptofeed reads over REST when a feed is created is seeded from the "
    "recording's symbols (tick sizes unknown: '0'); no call reaches the network",
    "time per frame is the same work on both sides each pass; records/s is the records "
    "counted in the timed passes over their time",
]


def run() -> dict[str, Any]:
    try:  # an optional dependency: imported by name, so that neither ruff nor mypy needs it
        importlib.import_module("cryptofeed")
    except ImportError as exc:
        reason = f"cryptofeed is not importable ({exc}); `make bench` installs it"
        if INSTALL_LOG.is_file():
            tail = INSTALL_LOG.read_text(errors="replace").strip().splitlines()[-5:]
            if tail:
                reason += "; pip said: " + " | ".join(tail)
        print(f"  skipped: {reason}")
        return {"skipped": reason}
    recordings = recordings_path()
    if not recordings.is_dir():
        print(f"  skipped: no recordings at {recordings}")
        return {"skipped": f"no recordings at {recordings}"}
    results: dict[str, Any] = {
        "cryptofeed_version": metadata.version("cryptofeed"),
        "repeats": REPEATS,
        "min_seconds": MIN_SECONDS,
        "notes": _NOTES,
    }
    logger = logging.getLogger("feedhandler")  # cryptofeed logs unhandled messages here
    warnings = _WarningCounter()
    logger.addHandler(warnings)
    try:
        for feed in FEEDS:
            path = recordings / feed.recording
            if not path.is_file():
                results[feed.recording] = {"skipped": f"no recording at {path}"}
                continue
            results[feed.recording] = _compare(feed, path, warnings)
    finally:
        logger.removeHandler(warnings)
    return results


def _compare(feed: _Feed, path: Path, warnings: _WarningCounter) -> dict[str, Any]:
    recorded = [f for f in read_recording(path) if not f.is_rest]
    exchange, url = recorded[0].exchange, recorded[0].url
    kinds = [_kind(f.frame) for f in recorded]
    frames = [f for f, kind in zip(recorded, kinds, strict=True) if kind not in feed.excluded]
    excluded = Counter(kind for kind in kinds if kind in feed.excluded)
    result: dict[str, Any] = {
        "exchange": exchange,
        "cryptofeed_feed": feed.cryptofeed_class,
        "channels": list(feed.channels),
        "frames_in_recording": len(recorded),
        "frames": len(frames),
    }
    if excluded:
        result["excluded_frames"] = dict(excluded)
        result["why_excluded"] = feed.why_excluded

    loop = asyncio.new_event_loop()
    try:
        try:
            theirs = _Cryptofeed(feed, recorded, frames, loop)
            theirs.warm_up()
        except Exception as exc:  # the exact failure is the result, never a number
            result["cryptofeed"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  {exchange:13s} cryptofeed failed: {type(exc).__name__}: {exc}")
            return result
        theirs.warnings = warnings.take()
        ours = _Ours(exchange, url, frames)
        ours_per_update = _Ours(exchange, url, frames, book_per_update=True)
        ours_rate, theirs_rate, per_update_rate = _Rate(), _Rate(), _Rate()
        for _ in range(REPEATS):  # interleaved, so that a busy spell hits both sides alike
            ours_rate.keep(ours.timed())
            theirs_rate.keep(loop.run_until_complete(theirs.timed()))
            if ours_per_update.books:
                per_update_rate.keep(ours_per_update.timed())
    finally:
        loop.close()
    if not theirs.records:
        result["cryptofeed"] = {
            "error": "cryptofeed produced no records from these frames (not understood)",
            "warnings": theirs.warnings,
        }
        return result

    result["ours"] = ours_rate.report(ours.records)
    result["cryptofeed"] = theirs_rate.report(theirs.records) | {"warnings": theirs.warnings}
    result["ratio_frames_per_s"] = round(ours_rate.frames_per_s / theirs_rate.frames_per_s, 2)
    if ours_per_update.books:
        result["ours_book_per_update"] = per_update_rate.report(ours_per_update.records)
    _print(exchange, len(frames), ours_rate, theirs_rate, result["ratio_frames_per_s"])
    result["long"] = _compare_long(feed, recorded, frames, exchange, url)
    result["whole_process"] = _compare_processes(feed, recorded, frames, theirs.cls)
    return result


def _compare_processes(
    feed: _Feed, recorded: list[RecordedFrame], frames: list[RecordedFrame], cls: Any
) -> dict[str, Any]:
    """`marketstream normalize` against cryptofeed's `playback()`, whole processes."""
    exchange = recorded[0].exchange
    natives = _native_symbols(recorded)
    std = _std_symbols(cls, natives)
    subscription = {channel: std for channel in feed.channels}
    try:
        result = cryptofeed_process.compare(
            cls.id, exchange, frames, _symbol_data(exchange, natives), subscription
        )
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
        print(f"  {exchange:13s} whole processes failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}
    ours, theirs = result["ours"], result["cryptofeed"]
    print(
        f"  {exchange:13s} {result['frames']:>7,} frames, whole processes: ours "
        f"{ours['frames_per_s']:>9,} frames/s ({ours['seconds']} s, start-up "
        f"{ours['startup_s']} s)  cryptofeed playback {theirs['frames_per_s']:>9,} frames/s "
        f"({theirs['seconds']} s, start-up {theirs['startup_s']} s)  ratio "
        f"{result['ratio_frames_per_s']}; counts {result['counts']}"
    )
    return result


def _print(exchange: str, frames: int, ours: _Rate, theirs: _Rate, ratio: float) -> None:
    print(
        f"  {exchange:13s} {frames:>7,} frames  ours {ours.frames_per_s:>9,.0f} "
        f"frames/s  cryptofeed {theirs.frames_per_s:>9,.0f} frames/s  ratio {ratio}"
    )


def _compare_long(
    feed: _Feed, recorded: list[RecordedFrame], frames: list[RecordedFrame], exchange: str, url: str
) -> dict[str, Any]:
    """The same comparison on the frames repeated to at least LONG_FRAMES: both sides checked
    to have produced records from them."""
    long_frames = frames * -(-LONG_FRAMES // len(frames))
    loop = asyncio.new_event_loop()
    try:
        theirs = _Cryptofeed(feed, recorded, long_frames, loop)
        theirs.warm_up()
        ours = _Ours(exchange, url, long_frames)
        ours_rate, theirs_rate = _Rate(), _Rate()
        for _ in range(LONG_REPEATS):
            ours_rate.keep(ours.timed())
            theirs_rate.keep(loop.run_until_complete(theirs.timed()))
    finally:
        loop.close()
    if not ours.records or not theirs.records:
        side = "ours" if not ours.records else "cryptofeed"
        return {"frames": len(long_frames), "error": f"{side} produced no records"}
    ratio = round(ours_rate.frames_per_s / theirs_rate.frames_per_s, 2)
    _print(exchange, len(long_frames), ours_rate, theirs_rate, ratio)
    return {
        "frames": len(long_frames),
        "repeats": LONG_REPEATS,
        "ours": ours_rate.report(ours.records),
        "cryptofeed": theirs_rate.report(theirs.records),
        "ratio_frames_per_s": ratio,
    }


def _kind(frame: str) -> str:
    """The message kind: Binance's event type `e`, Coinbase's `type` (or bookTicker)."""
    value = orjson.loads(frame)
    data = value.get("data", value) if isinstance(value, dict) else None
    if not isinstance(data, dict):
        return "other"
    return str(data.get("e") or data.get("type") or ("bookTicker" if "A" in data else "other"))


@dataclass(slots=True)
class _Rate:
    """The best timed block: frames/s and the records/s of that same block."""

    frames_per_s: float = 0.0
    records_per_s: float = 0.0

    def keep(self, block: tuple[int, int, float]) -> None:
        frames, records, elapsed = block
        if frames / elapsed > self.frames_per_s:
            self.frames_per_s, self.records_per_s = frames / elapsed, records / elapsed

    def report(self, records: Counter[str]) -> dict[str, Any]:
        return {
            "frames_per_s": round(self.frames_per_s),
            "records_per_s": round(self.records_per_s),
            "records": sum(records.values()),
            "records_by_kind": dict(sorted(records.items())),
        }


class _Ours:
    def __init__(
        self, exchange: str, url: str, frames: list[RecordedFrame], *, book_per_update: bool = False
    ) -> None:
        self.frames = frames
        self.exchange, self.url = exchange, url
        self.book_per_update = book_per_update
        processor = self._processor()  # a fresh one for the counting (warm-up) pass
        self.records: Counter[str] = Counter()
        for frame in frames:
            for record in processor.process(frame.frame, frame.recv_ns).records:
                self.records[type(record).__name__] += 1
        self.books = self.records["Book"] > 0
        self.processor = self._processor()
        self.timed_pass()  # warm the timed processor's books

    def _processor(self) -> FrameProcessor:
        processor = _processor(self.exchange, self.url)
        if self.book_per_update:
            processor.books.interval_ns = 1  # books are created on first sight: all get it
        return processor

    def timed_pass(self) -> int:
        process = self.processor.process
        return sum(len(process(f.frame, f.recv_ns).records) for f in self.frames)

    def timed(self) -> tuple[int, int, float]:
        frames = records = 0
        start = time.perf_counter()
        while True:
            records += self.timed_pass()
            frames += len(self.frames)
            elapsed = time.perf_counter() - start
            if elapsed >= MIN_SECONDS:
                return frames, records, elapsed


class _Cryptofeed:
    """One cryptofeed exchange feed, fed recorded frames as its connection handler would."""

    def __init__(
        self,
        feed: _Feed,
        recorded: list[RecordedFrame],
        frames: list[RecordedFrame],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        exchange, url = recorded[0].exchange, recorded[0].url
        exchanges = importlib.import_module("cryptofeed.exchanges")
        connection = importlib.import_module("cryptofeed.connection")
        self.cls: Any = getattr(exchanges, feed.cryptofeed_class)
        self.loop = loop
        natives = _native_symbols(recorded)
        _seed_symbols(self.cls, exchange, natives)
        self.counts: Counter[str] = Counter()
        self.feed = self._feed(feed, natives)
        # The frame and the receive time the connection handler would pass (seconds, float).
        self.frames = [(f.frame, f.recv_ns / 1e9) for f in frames]
        self.conn: Any = connection.WSAsyncConn(url, self.cls.id)  # never opened: only handed along
        self.records: Counter[str] = Counter()
        self.warnings: dict[str, Any] = {}

    def _feed(self, feed: _Feed, natives: list[str]) -> Any:
        counts = self.counts

        def counter(channel: str) -> Callable[[Any, float], Coroutine[Any, Any, None]]:
            async def callback(_: Any, __: float) -> None:
                counts[channel] += 1

            return callback

        instance: Any = self.cls(
            config={},
            symbols=_std_symbols(self.cls, natives),
            channels=list(feed.channels),
            callbacks={channel: counter(channel) for channel in feed.channels},
            candle_closed_only=False,
        )
        instance.http_conn = _NoNetwork()
        return instance

    def warm_up(self) -> None:
        """The first pass, on a fresh feed: counts its records; raises what cryptofeed raises."""
        self.loop.run_until_complete(self._pass())
        self.records = Counter(self.counts)

    async def _pass(self) -> None:
        handler, conn = self.feed.message_handler, self.conn
        for text, timestamp in self.frames:
            await handler(text, conn, timestamp)

    async def timed(self) -> tuple[int, int, float]:
        frames = 0
        before = sum(self.counts.values())
        start = time.perf_counter()
        while True:
            await self._pass()
            frames += len(self.frames)
            elapsed = time.perf_counter() - start
            if elapsed >= MIN_SECONDS:
                return frames, sum(self.counts.values()) - before, elapsed


class _NoNetwork:
    """Stands for the feed's HTTP connection: the bench must never reach an exchange."""

    async def read(self, address: str, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError(f"cryptofeed asked for {address}: the bench has no network")

    async def close(self) -> None:
        return None


class _WarningCounter(logging.Handler):
    """Counts what cryptofeed logs at WARNING and above (unhandled or unexpected messages)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = record.getMessage()[:300]

    def take(self) -> dict[str, Any]:
        taken: dict[str, Any] = {"count": self.count}
        if self.first is not None:
            taken["first"] = self.first
        self.count, self.first = 0, None
        return taken


def _native_symbols(recorded: list[RecordedFrame]) -> list[str]:
    """The exchange's own symbols in the recording: Binance stream names, Coinbase products."""
    seen: dict[str, None] = {}
    for frame in recorded:
        value = orjson.loads(frame.frame)
        if not isinstance(value, dict):
            continue
        if isinstance(value.get("stream"), str):
            seen[value["stream"].split("@", 1)[0].upper()] = None
        elif isinstance(value.get("product_id"), str):
            seen[value["product_id"]] = None
    return list(seen)


def _seed_symbols(cls: Any, exchange: str, natives: list[str]) -> None:
    """What cryptofeed would read from the exchange's symbol endpoint, for these symbols only,
    parsed by cryptofeed's own `_parse_symbol_data`: its symbol normalization is its own."""
    symbols, info = cls._parse_symbol_data(_symbol_data(exchange, natives))
    importlib.import_module("cryptofeed.symbols").Symbols.set(cls.id, symbols, info)


def _symbol_data(exchange: str, natives: list[str]) -> Any:
    """The symbol endpoint's answer in its own format, with these symbols only; our shipped
    instrument snapshot only tells base from quote."""
    if exchange.startswith("binance"):
        perp = exchange == "binance-usdm"
        listed = {i.native_symbol: i for i in load_shipped() if i.exchange == exchange}
        entries = []
        for native in natives:
            if native not in listed:
                raise RuntimeError(f"{exchange}: {native!r} is not in the shipped instruments")
            base, quote = listed[native].base, listed[native].quote
            entry: dict[str, Any] = {
                "symbol": native,
                "baseAsset": base,
                "quoteAsset": quote,
                "status": "TRADING",
                "filters": [{"tickSize": "0"}],
            }
            if perp:
                entry["contractType"] = "PERPETUAL"
            entries.append(entry)
        return {"symbols": entries}
    if exchange == "coinbase":
        return [{"id": native, "quote_increment": "0"} for native in natives]
    raise ValueError(f"no symbol list for {exchange}")


def _std_symbols(cls: Any, natives: list[str]) -> list[str]:
    """cryptofeed's normalized names of the recording's symbols (from the seeded list)."""
    mapping = importlib.import_module("cryptofeed.symbols").Symbols.get(cls.id)[0]
    to_std = {native: std for std, native in mapping.items()}
    return [to_std[native] for native in natives]
