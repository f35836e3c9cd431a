"""Pure helpers the venue mappers share: JSON loading, typed field access, time units.

Every helper takes the decoded frame's dict as it is (no schema library on the hot path)
and, when the field is missing or of the wrong kind, raises `FrameError` naming the field
and the value found, so that a dead-lettered frame explains itself. `what` names the part of
the frame being read (e.g. "aggTrade"); the mapper prefixes the exchange once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, TypeVar

import msgspec
import orjson

from marketstream.schemas.records import Level
from marketstream.venues.base.mapper import FrameError, LevelText

JsonObject = dict[str, Any]
T = TypeVar("T")

NS_PER_MS: Final = 1_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS: Final = "0123456789"
_ZULU_MICROS_LENGTH: Final = len("2021-04-17T16:43:30.244075Z")
_SECOND_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_SECONDS_CACHED: Final = 4096  # distinct whole seconds remembered (about an hour of feed)
# A candle's fields, where the feed names them so (`ohlcv`).
OHLCV: Final[tuple[str, str, str, str, str]] = ("open", "high", "low", "close", "volume")
_SHOWN_CHARS: Final = 80  # enough of a bad value to recognise it, never a whole frame


def show(value: object) -> str:
    """A value's repr cut short, for error messages."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}..."


def _missing(key: str, what: str) -> FrameError:
    return FrameError(f"{what}: field {key!r} is missing")


def _loader(kind: type[T], noun: str) -> Callable[[str | bytes], T]:
    """The decoder of a frame or answer that must be one JSON value of `kind`."""

    def load(frame: str | bytes) -> T:
        try:
            value = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise FrameError(f"not JSON: {exc}: {show(frame)}") from None
        if type(value) is not kind:
            raise FrameError(f"expected {noun}, got {type(value).__name__}: {show(value)}")
        return value

    return load


load_object: Final[Callable[[str | bytes], JsonObject]] = _loader(dict, "a JSON object")
load_list: Final[Callable[[str | bytes], list[Any]]] = _loader(list, "a JSON list")


def ms_to_ns(ms: int) -> int:
    return ms * NS_PER_MS


def iso_to_ns(text: str) -> int:
    """`2021-04-17T16:43:30.244075Z` -> int ns, exactly: no float passes through.

    `datetime` parses in C but keeps microseconds only, so fraction digits 7-9 are added
    from the text; digits beyond nanoseconds are cut. No UTC offset: ValueError.

    The form some feeds send on every message (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) takes a short
    cut: its whole seconds are parsed once per second and remembered, the microseconds read
    as an integer; every other form goes the general way.
    """
    if len(text) == _ZULU_MICROS_LENGTH and text[26] == "Z" and text[19] == ".":
        micros = text[20:26]
        if micros.isascii() and micros.isdigit():
            second_ns = _utc_second_ns(text[:19])
            if second_ns is not None:
                return second_ns + int(micros) * 1_000
    return _parse_iso_ns(text)


@lru_cache(maxsize=_SECONDS_CACHED)
def _utc_second_ns(prefix: str) -> int | None:
    """`YYYY-MM-DDTHH:MM:SS` read as UTC, in ns; None if it is not exactly a valid such time."""
    if _SECOND_RE.fullmatch(prefix) is None:
        return None
    try:
        return _parse_iso_ns(prefix + "Z")
    except ValueError:
        return None


def _parse_iso_ns(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"no UTC offset in {text!r}")
    delta = moment - _EPOCH
    ns = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000
    dot = text.find(".")
    if dot != -1:
        below_micros = text[dot + 7 : dot + 10]
        count = len(below_micros) - len(below_micros.lstrip(_DIGITS))
        if count:
            ns += int(below_micros[:count].ljust(3, "0"))
    return ns


def field(obj: JsonObject, key: str, what: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise _missing(key, what) from None


def objects(obj: JsonObject, key: str, what: str) -> list[JsonObject]:
    """`obj[key]` as a list of JSON objects (the entries of a REST answer)."""
    return each_object(field(obj, key, what), f"{what}: {key}")


def each_object(value: object, what: str) -> list[JsonObject]:
    """`value` as a list of JSON objects; `what` names it in the error."""
    if type(value) is not list or not all(type(entry) is dict for entry in value):
        raise FrameError(f"{what} {show(value)} is not a list of objects")
    return value


# The helpers below read `obj[key]` themselves rather than through `field`: they run for
# every field of every frame, and a call less each is measurable.


def _typed(kind: type[T], noun: str) -> Callable[[JsonObject, str, str], T]:
    """The accessor of a field that must be exactly of `kind` (`noun` names it in errors)."""

    def get(obj: JsonObject, key: str, what: str) -> T:
        try:
            value = obj[key]
        except KeyError:
            raise _missing(key, what) from None
        if type(value) is not kind:
            raise FrameError(f"{what}: {key} {show(value)} is not {noun}")
        return value

    return get


mapping: Final[Callable[[JsonObject, str, str], JsonObject]] = _typed(dict, "a JSON object")
text: Final = _typed(str, "a string")
integer: Final = _typed(int, "an integer")
flag: Final = _typed(bool, "true or false")


def number(obj: JsonObject, key: str, what: str) -> float:
    """A decimal string (or JSON number) as float."""
    try:
        return float(obj[key])
    except KeyError:
        raise _missing(key, what) from None
    except (TypeError, ValueError):
        raise FrameError(f"{what}: {key} {show(obj[key])} is not a decimal number") from None


def optional_number(obj: JsonObject, key: str, what: str) -> float | None:
    """None when the feed leaves the field out (or null): never a made-up value."""
    value = obj.get(key)
    return None if value is None else number(obj, key, what)


def millis(obj: JsonObject, key: str, what: str) -> int:
    """An integer time in milliseconds, returned in nanoseconds."""
    try:
        value = obj[key]
    except KeyError:
        raise _missing(key, what) from None
    if type(value) is not int:
        raise FrameError(f"{what}: {key} {show(value)} is not an integer time in milliseconds")
    return value * NS_PER_MS


def iso_time(obj: JsonObject, key: str, what: str) -> int:
    """An ISO-8601 UTC time string, returned in nanoseconds."""
    try:
        value = obj[key]
    except KeyError:
        raise _missing(key, what) from None
    try:
        return iso_to_ns(value)
    except (AttributeError, TypeError, ValueError):
        raise FrameError(f"{what}: {key} {show(value)} is not an ISO-8601 UTC time") from None


def iso_time_or(obj: JsonObject, key: str, what: str, default: int) -> int:
    """`iso_time` where the feed sends the field, else `default` (the receive time, say)."""
    return iso_time(obj, key, what) if key in obj else default


def one_of(obj: JsonObject, key: str, what: str, table: Mapping[str, T], expected: str) -> T:
    """A string field looked up in `table` (a side, an interval name); `expected` says what
    the table holds, for the error (`'buy' or 'sell'`)."""
    value = text(obj, key, what)
    found = table.get(value)
    if found is None:
        raise FrameError(f"{what}: {key} {show(value)} is not {expected}")
    return found


def ohlcv(
    obj: JsonObject, what: str, keys: tuple[str, str, str, str, str] = OHLCV
) -> tuple[float, float, float, float, float]:
    """A candle's open, high, low, close and volume: feeds name them differently (`keys`, in
    that order), the reading is the same."""
    o, h, l, c, v = keys  # noqa: E741
    return (
        number(obj, o, what),
        number(obj, h, what),
        number(obj, l, what),
        number(obj, c, what),
        number(obj, v, what),
    )


def levels(obj: JsonObject, key: str, what: str) -> list[Level]:
    """`[["price", "size"], ...]` as float pairs, in the order sent."""
    try:
        return [(float(price), float(size)) for price, size in obj[key]]
    except KeyError:
        raise _missing(key, what) from None
    except (TypeError, ValueError):
        raise FrameError(
            f"{what}: {key} {show(obj[key])} is not a list of [price, size] decimal pairs"
        ) from None


def text_levels(
    obj: JsonObject, key: str, what: str, pick: Callable[[Any], tuple[Any, Any]], form: str
) -> tuple[list[Level], list[LevelText]]:
    """Levels whose price and size arrive as text, as floats and as that exact text (for
    checksums over it). `pick` takes (price, size) out of one entry (an `itemgetter`); `form`
    says what a level looks like, for the error."""
    entries = field(obj, key, what)
    levels: list[Level] = []
    texts: list[LevelText] = []
    try:
        for entry in entries:
            price, size = pick(entry)
            if type(price) is not str or type(size) is not str:
                raise TypeError
            levels.append((float(price), float(size)))
            texts.append((price, size))
    except (KeyError, IndexError, TypeError, ValueError):
        raise FrameError(f"{what}: {key} {show(entries)} is not a list of {form}") from None
    return levels, texts


# --- msgspec: a payload the typed decoders refused, explained as the helpers above would ---


class UntypedError(Exception):
    """A payload a mapper's typed path does not read exactly as its JSON path would: the
    mapper reads the frame as JSON instead, which names what is wrong. Raised before the
    mapper's state changes."""


# What sends a frame from the typed path to the JSON path: the typed decoders' refusals too.
NOT_TYPED: Final = (msgspec.ValidationError, msgspec.DecodeError, UntypedError)
_ORJSON_INTS: Final = range(-(2**63), 2**64)  # the integers orjson reads as integers


def typed_int(value: Any) -> int:
    """`value` if it is an integer the JSON path reads as one (not a bool; orjson reads a
    wider one as a float), else UntypedError."""
    if type(value) is not int or value not in _ORJSON_INTS:
        raise UntypedError
    return value


_MSGSPEC_NOUNS: Final = {
    "float": "a decimal number",
    "int": "an integer",
    "str": "a string",
    "bool": "true or false",
    "object": "a JSON object",
    "array": "a list of the documented form",
}
_MISSING_RE: Final = re.compile(r"Object missing required field `([^`]+)`")
_EXPECTED_RE: Final = re.compile(r"Expected `([a-z]+)(?: \| null)?`")
_AT_RE: Final = re.compile(r" - at `\$((?:\.[^.\[`]+|\[[0-9]+\])*)`$")
_STEP_RE: Final = re.compile(r"\.([^.\[`]+)|\[([0-9]+)\]")


def converted(data: JsonObject, kind: Any, what: str) -> Any:
    """An already-decoded payload as the msgspec type `kind` (lax: decimal strings become
    floats); a payload that does not fit raises FrameError naming the field, its value and
    what was expected (`aggTrade: p 'abc' is not a decimal number`)."""
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise FrameError(f"{what}: {_explained(data, str(exc))}") from None


def _explained(data: JsonObject, message: str) -> str:
    at = _AT_RE.search(message)
    path = at.group(1) if at else ""
    inner = message[: at.start()] if at else message
    missing = _MISSING_RE.fullmatch(inner)
    if missing:
        where = path.lstrip(".")
        return f"field {missing.group(1)!r} is missing" + (f" in {where}" if where else "")
    value: Any = data
    try:
        for key, index in _STEP_RE.findall(path):
            value = value[key] if key else value[int(index)]
    except (KeyError, IndexError, TypeError):
        return f"{inner}, in {show(data)}"
    expected = _EXPECTED_RE.match(inner)
    if expected:
        noun = _MSGSPEC_NOUNS.get(expected.group(1))
    else:  # a Literal: msgspec says "Invalid enum value"
        noun = "one of the documented values" if inner.startswith("Invalid enum") else None
    name = path.lstrip(".") or "the payload"
    if noun is None:
        return f"{name} {show(value)}: {inner}"
    return f"{name} {show(value)} is not {noun}"
