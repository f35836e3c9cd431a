"""What every export format implements: the record types it takes, where its files go, and
a writer fed one day piece at a time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from marketstream.export.reading import DayPiece
    from marketstream.export.request import ExportRequest
    from marketstream.schemas.records import Instrument


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """A writer's inputs: the request, each symbol's instrument, and `root`, the directory
    it writes into (a staging directory the runner moves into `request.out` on success)."""

    request: ExportRequest
    instruments: dict[str, Instrument]
    root: Path


class FormatWriter(Protocol):
    """Takes day pieces in day order (within a day: symbols, then types, in request order)
    and writes files under `plan.root`, which it returns on `close`."""

    TYPES: ClassVar[tuple[str, ...]]  # the record types (table names) the format holds
    DEFAULT_TYPES: ClassVar[tuple[str, ...]]  # what `--type` defaults to

    def __init__(self, plan: ExportPlan) -> None: ...

    @classmethod
    def planned(cls, plan: ExportPlan) -> list[Path]:
        """The files or directories (relative) the export will create: one that exists
        already in `request.out` refuses the export before anything is read."""
        ...

    def write(self, piece: DayPiece) -> None:
        """Write (or buffer a bounded part of) one piece."""

    def close(self) -> list[Path]:
        """Finish every file; the files written, relative to `plan.root`."""
