"""Pure helpers the source mappers and classifiers share: JSON loading, typed field access
and the verdicts every REST API here gives alike.

A field of the wrong kind raises `SourceAnswerError` naming the source, the token and the
field, so that a dead-lettered answer explains itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any, Final

import orjson

from marketstream.http_headers import retry_after_s
from marketstream.sources.base.source import Outcome, SourceAnswerError, Verdict

_SHOWN_CHARS: Final = 80  # enough of a bad value to recognise it, never a whole answer
NS_PER_S: Final = 1_000_000_000


def show(value: object) -> str:
    """A value's repr cut short, for error messages."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}..."


def load_object(source: str, body: bytes, expected: str) -> dict[str, Any]:
    """The answer as a JSON object; SourceAnswerError says what `expected` and what came."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SourceAnswerError(
            f"{source}: expected {expected}, got not JSON: {show(body)}"
        ) from None
    if type(value) is not dict:
        raise SourceAnswerError(
            f"{source}: expected {expected}, got a JSON {type(value).__name__}: {show(value)}"
        )
    return value


def priced(
    source: str,
    by_token: Mapping[str, object],
    symbols_by_id: Mapping[str, str],
    price_field: str,
    unpriced: list[str],
) -> Iterator[tuple[str, str, dict[str, Any], object]]:
    """(token, symbol, its object, its price field) of each token asked for, in that order,
    that the answer prices; a token left out, null or with a null price goes to `unpriced`
    (a token the source does not price now, not a bad answer). Tokens not asked for are
    ignored."""
    for token, symbol in symbols_by_id.items():
        entry = by_token.get(token)
        if entry is None:
            unpriced.append(token)
            continue
        if type(entry) is not dict:
            raise SourceAnswerError(
                f"{source}: token {token}: expected an object with {price_field} or null, "
                f"got {type(entry).__name__}"
            )
        if price_field not in entry:
            raise SourceAnswerError(f"{source}: token {token}: field {price_field!r} is missing")
        raw = entry[price_field]
        if raw is None:
            unpriced.append(token)
            continue
        yield token, symbol, entry, raw


def _wrong(source: str, token: str, field: str, expected: str, value: object) -> SourceAnswerError:
    return SourceAnswerError(
        f"{source}: token {token}: field {field!r}: expected {expected}, "
        f"got {type(value).__name__} {show(value)}"
    )


def number(source: str, token: str, field: str, value: object) -> float:
    """A JSON number as a float. A decimal string ("147.48") is read too: some clients have
    seen these APIs quote numbers; a bool, null or anything else is an error."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _wrong(source, token, field, "a number", value)


def optional_number(source: str, token: str, field: str, value: object) -> float | None:
    """`number`, with null (or a missing field, passed as None) read as no value."""
    return None if value is None else number(source, token, field, value)


def optional_int(source: str, token: str, field: str, value: object) -> int | None:
    """A JSON integer (or a string of digits), null as None; bool and floats are errors."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise _wrong(source, token, field, "an integer or null", value)


def phrase(status: int) -> str:
    """The reason phrase of a status (`Too Many Requests`), or `HTTP <status>`."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def common_verdict(status: int, headers: Mapping[str, str], detail: str, now_s: float) -> Verdict:
    """What any of these APIs means by a status: 2xx OK; 408, 429 and 5xx transient (after
    `Retry-After` when sent); every other status a request that will never succeed as sent
    (401/403: the key; 400/404: the request). `detail` is a short, key-free line from the
    body. Sources refine it first (an API's own reset header, a quota message)."""
    reason = f"{status} {phrase(status)}" + (f": {detail}" if detail else "")
    if 200 <= status < 300:
        return Verdict(Outcome.OK, reason)
    after = retry_after_s(headers.get("retry-after"), now_s)
    if status in (408, 429) or status >= 500:
        return Verdict(Outcome.RETRY, reason, after)
    if status in (401, 403):
        return Verdict(Outcome.FATAL, f"{reason} (the API key was refused or lacks access)")
    return Verdict(Outcome.FATAL, reason)


def body_text(body: bytes) -> str:
    """A body as one short line for a reason (never a whole answer)."""
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}..."


def retry_after_header(after_s: float) -> str:
    """`Retry-After` for a delay: whole seconds as an integer (as servers send it), a
    fraction kept as a decimal so that the replay server can ask for sub-second backoffs."""
    after = max(0.0, after_s)
    return str(int(after)) if after == int(after) else f"{after:.3f}".rstrip("0")
