"""The polled REST price sources, by the name used in the configuration.

The one place outside `sources/<name>/` that names the sources: one line per source.
Everything else (ingest, recorder, replay, demo, bench) finds a source here by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from marketstream.errors import MarketStreamError
from marketstream.sources.base.sessions import AnswerBody
from marketstream.sources.base.source import PolledSource
from marketstream.sources.birdeye import sessions as birdeye_sessions
from marketstream.sources.birdeye.source import BIRDEYE
from marketstream.sources.jupiter import sessions as jupiter_sessions
from marketstream.sources.jupiter.source import JUPITER

SOURCE_DEFS: Final[Mapping[str, PolledSource]] = MappingProxyType(
    {source.name: source for source in (JUPITER, BIRDEYE)}
)
# Generated answers in each source's documented shape, for tests, the demo and the bench.
SESSIONS: Final[Mapping[str, AnswerBody]] = MappingProxyType(
    {
        JUPITER.name: jupiter_sessions.answer_body,
        BIRDEYE.name: birdeye_sessions.answer_body,
    }
)


def get_source(name: str) -> PolledSource:
    """The source named `name`; a MarketStreamError lists the known names otherwise."""
    try:
        return SOURCE_DEFS[name]
    except KeyError:
        raise MarketStreamError(
            f"unknown source {name!r}: expected one of {', '.join(SOURCE_DEFS)}"
        ) from None


def get_session(name: str) -> AnswerBody:
    """The answer generator of the source named `name` (MarketStreamError as `get_source`)."""
    return SESSIONS[get_source(name).name]
