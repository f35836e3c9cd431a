"""What every command group shares: the handler type, `--state-dir` and the configuration."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from marketstream.config import PipelineConfig, load_config

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
        "--metrics-port", type=int, metavar="N", help="/metrics and /healthz port (0: any free)"
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


def positive_int(text: str) -> int:
    """An argparse type: a whole number from 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)
