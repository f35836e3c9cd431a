"""`marketstream config check|show`: the configuration file, its overrides and the result."""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from marketstream.cli.common import Commands
from marketstream.config import config_path, load_config, load_config_source, shown_config


def add_commands(commands: Commands) -> None:
    config = commands.add_parser("config", help="check or show the configuration")
    config_commands = config.add_subparsers(title="config commands", metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a configuration file")
    check.add_argument("file", nargs="?", help="file to check (default: the --config file)")
    check.set_defaults(handler=_cmd_config_check)
    show = config_commands.add_parser(
        "show", help="which file and environment overrides are in effect, and the result"
    )
    show.set_defaults(handler=_cmd_config_show)


def _cmd_config_check(args: argparse.Namespace) -> int:
    file = config_path(args.file or args.config, os.environ)
    config = load_config(file)
    # A polled source's key (from the environment) and its limits are checked as `ingest`
    # checks them at start: a cadence its account cannot carry is a config error too.
    from marketstream.ingest.polling.plan import plan_sources  # noqa: PLC0415

    sources = plan_sources(config, os.environ)
    enabled = config.enabled_exchanges()
    symbols = sum(len(ex.symbols) for ex in enabled.values())
    tokens = sum(len(planned.config.symbols) for planned in sources)
    print(
        f"{file}: OK ({len(enabled)} exchanges enabled, {symbols} symbols; "
        f"{len(sources)} polled sources, {tokens} tokens)"
    )
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    config, source = load_config_source(args.config)
    print(f"# file: {source.file.absolute()} (chosen by {source.chosen_by})")
    if source.overrides:
        print("# environment overrides:")
        for key, variable in sorted(source.overrides.items()):
            print(f"#   {key} <- {variable}")
    else:
        print("# environment overrides: none")
    sys.stdout.write(yaml.safe_dump(shown_config(config), sort_keys=False))
    return 0
