"""What every command group shares: the handler type, `--state-dir` and the configuration."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from marketstream.config import PipelineConfig, load_config
from marketstream.schemas.instruments import EXCHANGES, FEEDS, SOURCES

Handler = Callable[[argparse.Namespace], int]
# What `add_subparsers` returns; each command group adds its commands to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where services keep data, logs and services.json (default: services.state_dir)",
    )


def add_metrics_port(parser: argparse.ArgumentParser) -> None:
    """For the daemons (ingest, write-hot, archive): where they serve /metrics and /healthz."""
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="N",
        help="/metrics and /healthz port (0: any free)",
    )


def add_command(
    commands: Commands,
    name: str,
    handler: Handler,
    help: str,
    *,
    state_dir: bool = False,
    metrics_port: bool = False,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A command that runs `handler`: with `--state-dir` when it reaches local services, with
    `--metrics-port` when it is a daemon."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.set_defaults(handler=handler)
    if metrics_port:
        add_metrics_port(parser)
    if state_dir:
        add_state_dir(parser)
    return parser


def add_daemon(
    commands: Commands,
    name: str,
    handler: Handler,
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A long-running command (ingest, write-hot, archive): local services and /metrics."""
    return add_command(
        commands, name, handler, help, state_dir=True, metrics_port=True, description=description
    )


def config_of(args: argparse.Namespace) -> PipelineConfig:
    """The configuration the top-level `--config` names (or the default one)."""
    return load_config(args.config)


def positive_float(text: str) -> float:
    """An argparse type: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def positive_int(text: str) -> int:
    """An argparse type: a whole number from 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def exchange_name(text: str) -> str:
    """An argparse type: the name of an exchange MarketStream knows (a venue: instruments)."""
    if text not in EXCHANGES:
        raise argparse.ArgumentTypeError(
            f"unknown exchange {text!r}: expected one of {', '.join(EXCHANGES)}"
        )
    return text


def feed_name(text: str) -> str:
    """An argparse type: the name of a stream owner, an exchange or a polled price source
    (both own streams `md:{<name>}:<table>` and price keys)."""
    if text not in FEEDS:
        raise argparse.ArgumentTypeError(
            f"unknown exchange or source {text!r}: expected an exchange "
            f"({', '.join(EXCHANGES)}) or a source ({', '.join(SOURCES)})"
        )
    return text


def shard_text(text: str) -> str:
    """An argparse type: `I/N` with 1 <= I <= N (`write-hot --shard`)."""
    from marketstream.writers.stream_shard import StreamShard  # noqa: PLC0415 - a light module

    try:
        return str(StreamShard.parse(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def feed_names(text: str) -> list[str]:
    """An argparse type: comma-separated stream owners (exchanges or sources), at least one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected one or more exchange or source names, got {text!r}"
        )
    return [feed_name(name) for name in names]
