"""`marketstream archive`: the archiver's commands (parsing and printing; the work is in
`marketstream.archiver`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from marketstream.cli.common import Commands, add_command, add_daemon, config_of
from marketstream.cli.output import print_json
from marketstream.signals import run_until_signal

if TYPE_CHECKING:
    from marketstream.archiver.runner import Archiver, RunReport
    from marketstream.config import PipelineConfig


def add_commands(commands: Commands) -> None:
    archive = add_daemon(
        commands,
        "archive",
        _cmd_archive,
        "move day partitions past a horizon down a tier: QuestDB -> ClickHouse -> Parquet",
        description="Without --once: run every night at archive.schedule_utc until stopped.",
    )
    archive.add_argument("--once", action="store_true", help="one run now, then exit")
    archive.add_argument(
        "--dry-run", action="store_true", help="list the moves a run would make; change nothing"
    )
    archive.add_argument("--json", action="store_true", help="print the report as JSON")
    sub = archive.add_subparsers(title="archive commands", metavar="WHAT")
    status = add_command(
        sub,
        "status",
        _cmd_archive_status,
        "partitions per tier and the last moves",
        state_dir=True,
    )
    status.add_argument("--json", action="store_true", help="print as JSON")
    status.add_argument("--moves", type=int, default=10, metavar="N", help="last N move steps")


def _cmd_archive(args: argparse.Namespace) -> int:
    from marketstream.archiver.lock import archiver_lock  # noqa: PLC0415
    from marketstream.services.state import state_root  # noqa: PLC0415
    from marketstream.wiring import build_archiver  # noqa: PLC0415

    config = config_of(args)
    if args.dry_run:  # changes nothing: no lock needed
        archiver = build_archiver(config, args.state_dir)
        archiver.prepare()
        _print_report(archiver.run_once(dry_run=True), dry_run=True, as_json=args.json)
        return 0
    # The lock comes first: the second archiver touches no store (prepare creates tables).
    with archiver_lock(state_root(config, args.state_dir)):
        archiver = build_archiver(config, args.state_dir)
        archiver.prepare()
        if args.once:
            report = archiver.run_once()
            _print_report(report, dry_run=False, as_json=args.json)
            return 1 if report.failed else 0
        return _run_nightly(archiver, config, args.metrics_port)


def _run_nightly(archiver: Archiver, config: PipelineConfig, metrics_port: int | None) -> int:
    """Serve /metrics and /healthz and run every night until SIGINT/SIGTERM: 0. If the loop
    dies (it outlives failed runs, so only a bug ends it), the cause is logged and 1."""
    import logging  # noqa: PLC0415

    from marketstream.logs import setup_logging  # noqa: PLC0415
    from marketstream.metrics_server import serve_metrics  # noqa: PLC0415

    setup_logging()
    log = logging.getLogger("marketstream.archiver")
    settings = config.archive
    died: list[BaseException] = []

    def health() -> tuple[bool, dict[str, Any]]:
        ok, detail = archiver.health.snapshot()
        return ok, {"schedule_utc": settings.schedule_utc, **detail}

    async def job(stop: asyncio.Event) -> None:
        port = settings.metrics_port if metrics_port is None else metrics_port
        server = await serve_metrics(archiver.metrics.registry, health, settings.metrics_host, port)
        try:
            await archiver.run_nightly(stop)
        except Exception as exc:
            log.critical("the archiver's nightly loop died: %s", exc, exc_info=True)
            died.append(exc)
        finally:
            server.close()
            await server.wait_closed()

    run_until_signal(job)
    return 1 if died else 0


def _print_report(report: RunReport, *, dry_run: bool, as_json: bool) -> None:
    if as_json:
        body: dict[str, Any] = {
            "planned": [
                {"hop": m.hop, "table": m.table, "day": m.day.isoformat(), "rows": m.rows}
                for m in report.planned
            ],
            "dry_run": dry_run,
        }
        if not dry_run:
            body |= {
                "moved": [
                    {
                        "hop": m.hop,
                        "table": m.table,
                        "day": m.day.isoformat(),
                        "rows": m.rows,
                        "checksum": f"{m.checksum:016x}",
                        "seconds": round(m.seconds, 3),
                        "dropped": m.dropped,
                        "note": m.note,
                    }
                    for m in report.moved
                ],
                "failed": [
                    {"hop": f.hop, "table": f.table, "day": f.day, "error": f.error}
                    for f in report.failed
                ],
                "seconds": round(report.seconds, 3),
            }
        print_json(body)
        return
    if dry_run:
        for move in report.planned:
            print(f"would move  {move.hop:<10}  {move.table:<8}  {move.day}  {move.rows:>10,} rows")
        print(f"{len(report.planned)} moves due (dry run: nothing changed)")
        return
    for result in report.moved:
        kept = "" if result.dropped else f"  (source kept: {result.note})"
        print(
            f"moved  {result.hop:<10}  {result.table:<8}  {result.day}  {result.rows:>10,} rows  "
            f"{result.seconds * 1000:8.1f} ms{kept}"
        )
    for failure in report.failed:
        print(
            f"FAILED {failure.hop:<10}  {failure.table:<8}  {failure.day or '-':<10}  "
            f"{failure.error}",
            file=sys.stderr,
        )
    print(f"{len(report.moved)} moved, {len(report.failed)} failed in {report.seconds:.1f} s")


def _cmd_archive_status(args: argparse.Namespace) -> int:
    from marketstream.archiver.health import MAX_LISTED, load_last_run  # noqa: PLC0415
    from marketstream.archiver.status import status_dict  # noqa: PLC0415
    from marketstream.wiring import build_archiver  # noqa: PLC0415

    config = config_of(args)
    archiver = build_archiver(config, args.state_dir)
    archiver.prepare()
    if args.json:
        print_json(status_dict(archiver, args.moves))
        return 0
    tiers = archiver.tiers()
    moves = archiver.recent_moves(args.moves)
    path = archiver.health.path
    last_run = load_last_run(path) if path is not None else None
    print(
        f"{'tier':<5} {'table':<8} {'days':>5}  {'first':<10}  {'last':<10}  {'rows / bytes':>14}"
    )
    for t in tiers:
        amount = f"{t.rows:,} rows" if t.rows is not None else f"{t.bytes or 0:,} B"
        first = t.first.isoformat() if t.first else "-"
        last = t.last.isoformat() if t.last else "-"
        print(f"{t.tier:<5} {t.table:<8} {t.days:>5}  {first:<10}  {last:<10}  {amount:>14}")
    if last_run is None:
        print("\nlast run: none recorded")
    else:
        outcome = "ok" if last_run.ok else "FAILED"
        print(
            f"\nlast run: {last_run.run_id} started {last_run.started_at}, "
            f"finished {last_run.finished_at or '-'}: {last_run.moved} moved, "
            f"{len(last_run.failures)} failed, {outcome} (failed days are retried next run)"
        )
        if last_run.error:
            print(f"  run error: {last_run.error}")
        for failure in last_run.failures[:MAX_LISTED]:
            print(f"  FAILED {failure.hop:<10}  {failure.table:<8}  {failure.day or '-':<10}  "
                  f"{failure.error}")  # fmt: skip
    if moves:
        print("\nlast moves:")
    for m in moves:
        print(
            f"  {m.at:%Y-%m-%d %H:%M:%S}  {m.hop:<10}  {m.table:<8}  {m.day}  {m.step:<8}  "
            f"{m.rows:,} rows"
        )
    return 0
