"""`marketstream services start|stop|status|install`: the local services
(`marketstream.services`)."""

from __future__ import annotations

import argparse

from marketstream.cli.common import Commands, add_state_dir, config_of
from marketstream.cli.output import print_status


def add_commands(commands: Commands) -> None:
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
        add_state_dir(sub)
        sub.set_defaults(handler=handler)
        if name == "status":
            sub.add_argument("--json", action="store_true", help="print JSON")


def _cmd_services_install(args: argparse.Namespace) -> int:
    from marketstream.services.questdb_server import install_questdb  # noqa: PLC0415 - heavy, load on use

    jar = install_questdb(config_of(args).services)
    print(f"QuestDB jar ready: {jar}")
    return 0


def _cmd_services_start(args: argparse.Namespace) -> int:
    from marketstream.services.manager import start_services  # noqa: PLC0415 - heavy, load on use

    status = start_services(config_of(args), args.state_dir)
    print_status(status, as_json=False)
    return 0 if status.all_answering else 1


def _cmd_services_stop(args: argparse.Namespace) -> int:
    from marketstream.services.manager import stop_services  # noqa: PLC0415 - heavy, load on use

    for line in stop_services(config_of(args), args.state_dir):
        print(line)
    return 0


def _cmd_services_status(args: argparse.Namespace) -> int:
    from marketstream.services.manager import services_status  # noqa: PLC0415 - heavy, load on use

    status = services_status(config_of(args), args.state_dir)
    print_status(status, as_json=args.json)
    return 0 if status.all_answering else 1
