"""Instrument answers inside recordings: which REST lines list instruments, and their records.

A recording's REST lines are book snapshots or instrument lists; a line is an instrument
answer when its path is one of the venue's `instrument_urls` on the recorded host, so every
venue that declares instrument URLs is covered without naming it here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from marketstream.replay.recording_format import RecordedFrame
from marketstream.schemas.records import Instrument
from marketstream.venues.base.venue import Venue

log = logging.getLogger(__name__)


def is_instrument_answer(venue: Venue, url: str) -> bool:
    """Whether a recorded REST URL is one the venue lists its instruments at."""
    if venue.instrument_urls is None or venue.parse_instruments is None:
        return False
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    origin = f"{parts.scheme}://{parts.netloc}"
    return parts.path in {urlsplit(u).path for u in venue.instrument_urls(origin)}


def parse_answer(venue: Venue, frame: RecordedFrame) -> list[Instrument]:
    """The instruments a recorded answer lists, read at its receive time; ValueError
    (FrameError included) naming the URL when the body is not what the venue sends."""
    parse = venue.parse_instruments
    if parse is None:
        raise ValueError(f"{venue.name} has no instrument parser for {frame.url}")
    try:
        return parse(frame.url, frame.frame, frame.recv_ns)
    except ValueError as exc:
        raise ValueError(f"{venue.name} instruments {frame.url}: {exc}") from None


def instruments_in(venue: Venue, frames: Iterable[RecordedFrame]) -> list[Instrument]:
    """Every instrument the venue's recorded answers list; an answer that cannot be read is
    logged (one line naming its URL) and skipped."""
    found: list[Instrument] = []
    for frame in frames:
        if frame.exchange != venue.name or not is_instrument_answer(venue, frame.url):
            continue
        try:
            found.extend(parse_answer(venue, frame))
        except ValueError as exc:
            log.warning("skipped a recorded instrument answer: %s", exc)
    return found
