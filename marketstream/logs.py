"""Logs of the long-running commands: JSON lines for machines, text for people.

Not on a terminal (a service's log file, a container's output), each record is one JSON
object on one line, so that Loki, Elasticsearch or `jq` can filter by exchange, symbol,
stream, table... On a terminal, the same record is a line of text with its context at the
end. Context arrives as `extra=` keys, or from a `context_logger` that adds its own to every
record it emits (a connection's logger carries its exchange).

Environment: MARKETSTREAM_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR; default INFO) and
MARKETSTREAM_LOG_FORMAT (`json`, `text`, or `auto`: JSON unless the stream is a terminal).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, TextIO

import orjson

from marketstream.errors import ConfigError

LEVEL_ENV: Final = "MARKETSTREAM_LOG_LEVEL"
FORMAT_ENV: Final = "MARKETSTREAM_LOG_FORMAT"

# The context a pipeline record may carry, written first and in this order.
CONTEXT_FIELDS: Final = ("exchange", "symbol", "stream", "table", "consumer", "hop", "day")
_CORE_FIELDS: Final = frozenset({"ts", "level", "logger", "msg", "exc", "stack"})
# What every LogRecord has: whatever else a record holds came from `extra=`.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose context (e.g. exchange=...) goes into every record's `extra`; a call's
    own `extra=` adds to it (and wins on a clash)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        context = self.extra or {}
        extra = kwargs.get("extra")
        kwargs["extra"] = {**context, **extra} if extra else context
        return msg, kwargs

    def bind(self, **context: object) -> ContextLogger:
        """The same logger with more context."""
        return ContextLogger(self.logger, {**(self.extra or {}), **context})


def context_logger(name: str | logging.Logger, **context: object) -> ContextLogger:
    """`context_logger(__name__, exchange="binance")`: every record it emits carries the context."""
    logger = logging.getLogger(name) if isinstance(name, str) else name
    return ContextLogger(logger, context)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, the context, then exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": utc_timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record_context(record).items():
            entry[f"{key}_" if key in _CORE_FIELDS else key] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _dumps(entry)


class TextFormatter(logging.Formatter):
    """`2024-05-01 12:00:00,123 WARNING marketstream.ingest.runner: ... [exchange=okx]`."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        context = record_context(record)
        if not context:
            return line
        pairs = " ".join(f"{key}={_as_text(value)}" for key, value in context.items())
        return f"{line} [{pairs}]"


def record_context(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra=` keys: the known context fields first, then the others."""
    found = {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }
    ordered: dict[str, Any] = {key: found.pop(key) for key in CONTEXT_FIELDS if key in found}
    ordered.update(found)
    return ordered


def utc_timestamp(record: logging.LogRecord) -> str:
    """ISO-8601 UTC with milliseconds: 2024-05-01T12:00:00.123Z."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def setup_logging(
    level: str | int = "INFO",
    *,
    stream: TextIO | None = None,
    json_format: bool | None = None,
) -> logging.Handler:
    """Send every log record to `stream` (default: stderr), as JSON or text; returns the handler.

    The level is MARKETSTREAM_LOG_LEVEL when set, else `level`. The format is `json_format`
    when given, else MARKETSTREAM_LOG_FORMAT (json, text, auto), else JSON unless `stream` is
    a terminal. Calling it again replaces the handler it installed before.
    """
    target = sys.stderr if stream is None else stream
    env_level = os.environ.get(LEVEL_ENV, "").strip()
    resolved = parse_level(env_level, LEVEL_ENV) if env_level else parse_level(level, "level")
    if json_format is None:
        json_format = _json_from_env(target)
    handler = _Handler(target)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(resolved)
    # websockets logs every HTTP request and connection at INFO (the replay server's control
    # polls among them): only its warnings, unless DEBUG was asked for
    logging.getLogger("websockets").setLevel(max(resolved, logging.WARNING))
    return handler


def parse_level(value: str | int, source: str) -> int:
    """A level name (any case) or number; ConfigError naming `source` otherwise."""
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text.isdigit():
        return int(text)
    levels = logging.getLevelNamesMapping()
    if text not in levels:
        raise ConfigError(
            f"{source}={value!r}: expected a log level, one of DEBUG, INFO, WARNING, ERROR, "
            "CRITICAL"
        )
    return levels[text]


class _Handler(logging.StreamHandler[TextIO]):
    """The handler setup_logging installs (and replaces on a second call)."""


def _json_from_env(stream: TextIO) -> bool:
    choice = os.environ.get(FORMAT_ENV, "").strip().lower()
    if choice == "json":
        return True
    if choice == "text":
        return False
    if choice not in ("", "auto"):
        raise ConfigError(f"{FORMAT_ENV}={choice!r}: expected json, text or auto")
    return not _is_terminal(stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _dumps(entry: Mapping[str, Any]) -> str:
    try:
        return orjson.dumps(entry, default=_as_text, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits: the offending value as text
        safe = {key: _json_safe(value) for key, value in entry.items()}
        return orjson.dumps(safe, default=_as_text, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_safe(value: Any) -> Any:
    try:
        orjson.dumps(value, default=_as_text, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return _as_text(value)
    return value


def _as_text(value: Any) -> str:
    """What orjson cannot serialize goes out as its str(): a log line is never lost to it."""
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the log line
        return f"<unprintable {type(value).__name__}>"
