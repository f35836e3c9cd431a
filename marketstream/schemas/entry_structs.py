"""Stream entries decoded straight into typed structs: the hot writer's decoding.

One msgspec Struct per record type, derived from the record Struct (same field names, order
and defaults), tagged by the entry's `type` key: a single `Decoder.decode` call per entry
checks the JSON, picks the type and validates every field, without the dict that
`codec.decode_record` builds. Symbol-like `Literal` fields (side, kind) decode as plain
strings, which is why these are not the records themselves: the writer stores what ingest
validated, it does not judge it again.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Final, Literal, Protocol, Union, cast, get_args, get_origin
from typing import get_type_hints as _hints

import msgspec
import msgspec.structs

from marketstream.schemas.codec import ENTRY_FIELD, DecodeError
from marketstream.schemas.columns import SPECS, TableSpec


class EntryRecord(Protocol):
    """What the writer reads of any decoded entry besides its columns."""

    @property
    def exchange(self) -> str: ...

    @property
    def ts(self) -> int: ...


def _plain(hint: Any) -> Any:
    """The field's type for msgspec: `Annotated` stripped, `Literal[...]` as str."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    origin = get_origin(hint)
    if origin is Literal:
        return str
    if origin in (Union, types.UnionType):
        return Union[tuple(_plain(arg) for arg in get_args(hint))]  # noqa: UP007 - built at runtime
    return hint


def _struct(spec: TableSpec) -> type[msgspec.Struct]:
    hints = _hints(spec.cls, include_extras=True)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(spec.cls):
        kind = _plain(hints[field.name])
        if field.default is msgspec.NODEFAULT:
            fields.append((field.name, kind))
        else:
            fields.append((field.name, kind, field.default))
    return msgspec.defstruct(
        f"{spec.cls.__name__}Entry",
        fields,
        tag_field="type",
        tag=spec.record_type,
        gc=False,  # flat values only: no reference cycles to collect
    )


ENTRY_STRUCTS: Final[dict[type[msgspec.Struct], TableSpec]] = {_struct(s): s for s in SPECS}
_DECODER: Final = msgspec.json.Decoder(Union[tuple(ENTRY_STRUCTS)])  # noqa: UP007


def decode_entry_data(data: bytes) -> EntryRecord:
    """The record in an entry's `d` field as its struct; DecodeError says what is wrong."""
    try:
        return cast(EntryRecord, _DECODER.decode(data))
    except msgspec.DecodeError as exc:  # ValidationError is one too
        raise DecodeError(str(exc)) from None


def decode_entry_fields(fields: dict[bytes, bytes]) -> EntryRecord:
    """The record in a stream entry's field map (XREADGROUP's reply)."""
    data = fields.get(ENTRY_FIELD)
    if data is None:
        raise DecodeError(f"stream entry has no field {ENTRY_FIELD.decode()!r}: {sorted(fields)}")
    return decode_entry_data(data)
