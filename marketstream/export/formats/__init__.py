"""The export formats by name; each module holds one format's writer."""

from __future__ import annotations

from typing import Final

from marketstream.export.formats.base import FormatWriter
from marketstream.export.formats.freqtrade import FreqtradeWriter
from marketstream.export.formats.nautilus import NautilusWriter
from marketstream.export.formats.tardis_csv import TardisCsvWriter
from marketstream.export.formats.vectorbt import VectorbtWriter
from marketstream.export.request import ExportInputError

FORMATS: Final[dict[str, type[FormatWriter]]] = {
    "nautilus": NautilusWriter,
    "freqtrade": FreqtradeWriter,
    "vectorbt": VectorbtWriter,
    "tardis-csv": TardisCsvWriter,
}


def writer_class(name: str, types: tuple[str, ...]) -> type[FormatWriter]:
    """The writer of format `name`, once it is known to hold every one of `types`."""
    writer = FORMATS.get(name)
    if writer is None:
        raise ExportInputError(
            f"--to {name!r} is not a known format: expected one of {', '.join(FORMATS)}"
        )
    refused = [kind for kind in types if kind not in writer.TYPES]
    if refused:
        raise ExportInputError(
            f"--to {name} does not hold {', '.join(refused)}: it holds {', '.join(writer.TYPES)}"
        )
    return writer
