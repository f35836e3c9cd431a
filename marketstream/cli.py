"""The `marketstream` command: argument parsing and dispatch only; the work lives in the parts."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from marketstream import __version__
from marketstream.config import PipelineConfig, config_path, load_config
from marketstream.errors import MarketStreamError

if TYPE_CHECKING:
    from marketstream.services.state import ServicesStatus

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except MarketStreamError as exc:
        print(f"marketstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketstream",
        description="Tiered crypto market data pipeline: exchanges -> Redis Streams -> "
        "QuestDB (hot) -> ClickHouse (warm) -> Parquet (cold).",
    )
    parser.add_argument("--version", action="version", version=f"marketstream {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="pipeline configuration (default: $MARKETSTREAM_CONFIG or configs/pipeline.yaml)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("run", help="start the local services and the pipeline")
    _add_state_dir(run)
    run.set_defaults(handler=_cmd_run)

    config = commands.add_parser("config", help="check the configuration")
    config_commands = config.add_subparsers(title="config commands", metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a configuration file")
    check.add_argument("file", nargs="?", help="file to check (default: the --config file)")
    check.set_defaults(handler=_cmd_config_check)

    services = commands.add_parser(
        "services", help="local Redis, QuestDB, ClickHouse engine and cold storage (no Docker)"
    )
    service_commands = services.add_subparsers(title="services commands", metavar="ACTION")
    for name, help_text, handler in (
        ("start", "start every local service on free ports", _cmd_services_start),
        ("stop", "stop the services this state directory started", _cmd_services_stop),
        ("status", "print each endpoint and whether it answers", _cmd_services_status),
        ("install", "fetch the pinned QuestDB jar through Maven", _cmd_services_install),
    ):
        sub = service_commands.add_parser(name, help=help_text)
        _add_state_dir(sub)
        sub.set_defaults(handler=handler)
        if name == "status":
            sub.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where services keep data, logs and services.json (default: services.state_dir)",
    )


def _config(args: argparse.Namespace) -> PipelineConfig:
    return load_config(args.config)


def _cmd_config_check(args: argparse.Namespace) -> int:
    file = config_path(args.file or args.config, os.environ)
    config = load_config(file)
    enabled = config.enabled_exchanges()
    symbols = sum(len(ex.symbols) for ex in enabled.values())
    print(f"{file}: OK ({len(enabled)} exchanges enabled, {symbols} symbols)")
    return 0


def _cmd_services_install(args: argparse.Namespace) -> int:
    from marketstream.services.questdb_server import install_questdb  # noqa: PLC0415 - heavy, load on use

    jar = install_questdb(_config(args).services)
    print(f"QuestDB jar ready: {jar}")
    return 0


def _cmd_services_start(args: argparse.Namespace) -> int:
    from marketstream.services.manager import start_services  # noqa: PLC0415 - heavy, load on use

    status = start_services(_config(args), args.state_dir)
    _print_status(status, as_json=False)
    return 0 if status.all_answering else 1


def _cmd_services_stop(args: argparse.Namespace) -> int:
    from marketstream.services.manager import stop_services  # noqa: PLC0415 - heavy, load on use

    for line in stop_services(_config(args), args.state_dir):
        print(line)
    return 0


def _cmd_services_status(args: argparse.Namespace) -> int:
    from marketstream.services.manager import services_status  # noqa: PLC0415 - heavy, load on use

    status = services_status(_config(args), args.state_dir)
    _print_status(status, as_json=args.json)
    return 0 if status.all_answering else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from marketstream.services.manager import start_services  # noqa: PLC0415 - heavy, load on use

    status = start_services(_config(args), args.state_dir)
    _print_status(status, as_json=False)
    print(
        "services are running. The pipeline (ingest and the hot writer) is not built yet; "
        "stop the services with `marketstream services stop`."
    )
    return 0 if status.all_answering else 1


def _print_status(status: ServicesStatus, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(status.as_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        return
    for line in status.lines():
        print(line)
