"""`marketstream replay-server` and `marketstream record`: serving and capturing recordings
(development and test tools)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from marketstream.cli.common import Commands, config_of, port_number, positive_float, positive_int
from marketstream.config import redact_url
from marketstream.errors import MarketStreamError
from marketstream.gc_settings import apply_gc_settings
from marketstream.logs import setup_logging

if TYPE_CHECKING:
    from marketstream.replay.faults import FaultAnswer


def add_commands(commands: Commands) -> None:
    replay = commands.add_parser(
        "replay-server",
        help="serve a recording over a local WebSocket (or a polled source's REST answers "
        "over HTTP), as the exchange would",
    )
    replay.add_argument("--recording", required=True, type=Path, metavar="FILE")
    replay.add_argument("--host", default="127.0.0.1", help="address to listen on")
    replay.add_argument("--port", type=port_number, default=0, help="port (default: a free one)")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=positive_float, default=1.0, help="recorded gaps divided by X"
    )
    pace.add_argument("--max", action="store_true", help="send as fast as clients read")
    replay.add_argument(
        "--drop-every", type=positive_int, metavar="N", help="close each connection after N frames"
    )
    _add_rest_arguments(replay)
    replay.set_defaults(handler=_cmd_replay_server)

    record = commands.add_parser(
        "record", help="capture an exchange feed or a polled source's answers into a recording"
    )
    what = record.add_mutually_exclusive_group(required=True)
    what.add_argument("--exchange", metavar="EX")
    what.add_argument("--source", metavar="NAME", help="a polled source, polled as ingest polls it")
    record.add_argument("--out", required=True, type=Path, metavar="FILE", help="appended to")
    record.add_argument(
        "--url",
        help="WebSocket URL (default: the config's; no REST then); with --source the API's "
        "base URL (default: the config's)",
    )
    record.add_argument("--rest-url", metavar="URL", help="REST base for book snapshots")
    record.add_argument("--symbols", nargs="+", default=[], metavar="S", help="e.g. BTC-USDT")
    record.add_argument("--channels", nargs="+", default=[], metavar="C", help="e.g. trades")
    record.add_argument("--duration", type=positive_float, metavar="SECONDS", help="then stop")
    record.add_argument("--max-frames", type=positive_int, metavar="N", help="then stop")
    record.add_argument(
        "--ticks", type=positive_int, metavar="N", help="with --source: poll N ticks, then stop"
    )
    record.set_defaults(handler=_cmd_record)


# Options of REST-only replays, refused on a WebSocket recording rather than ignored.
_REST_ONLY = ("no_loop", "fail_429_every", "fail_5xx_every", "latency_every")


def _add_rest_arguments(replay: argparse.ArgumentParser) -> None:
    rest = replay.add_argument_group(
        "polled sources (REST-only recordings)",
        "faults hit every N-th replay request (0: off); GET/POST /_control/faults at run time",
    )
    rest.add_argument(
        "--no-loop",
        action="store_true",
        help="answer 410 once the recording ends (default: loop over it)",
    )
    rest.add_argument("--fail-429-every", type=count, default=0, metavar="N", help="a 429")
    rest.add_argument(
        "--retry-after",
        type=non_negative_float,
        default=1.0,
        metavar="S",
        help="the injected 429's retry delay in seconds (default 1)",
    )
    rest.add_argument("--fail-5xx-every", type=count, default=0, metavar="N", help="a 5xx")
    rest.add_argument(
        "--fail-5xx-status", type=int, default=503, metavar="CODE", help="500-599 (default 503)"
    )
    rest.add_argument(
        "--latency-every", type=count, default=0, metavar="N", help="hold the answer back"
    )
    rest.add_argument(
        "--latency-ms", type=non_negative_float, default=0.0, metavar="MS", help="by MS ms"
    )


def count(text: str) -> int:
    """An argparse type: a whole number from 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number from 0, got {text!r}")
    return int(text)


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number from 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number from 0, got {text!r}")
    return value


def _cmd_replay_server(args: argparse.Namespace) -> int:
    from marketstream.replay.rest_recording import (  # noqa: PLC0415 - load on use
        is_polled_source,
        recording_exchange,
    )

    exchange = recording_exchange(args.recording)
    if is_polled_source(exchange):
        return _serve_rest(args, exchange)
    rest_only = [f"--{name.replace('_', '-')}" for name in _REST_ONLY if vars(args)[name]]
    if rest_only:
        raise MarketStreamError(
            f"{args.recording}: {', '.join(rest_only)} only apply to a polled source's "
            f"recording; {exchange!r} is replayed over WebSocket"
        )
    from marketstream import event_loop  # noqa: PLC0415 - load on use
    from marketstream.replay.server import ReplayServer, serve_until_signal  # noqa: PLC0415
    from marketstream.venues.registry import DIALECTS  # noqa: PLC0415

    server = ReplayServer(
        args.recording,
        DIALECTS,
        host=args.host,
        port=args.port,
        speed=args.speed,
        max_speed=args.max,
        drop_every=args.drop_every,
    )
    setup_logging()
    apply_gc_settings(config_of(args).runtime)
    event_loop.run(serve_until_signal(server, lambda line: print(line, flush=True)))
    return 0


def _serve_rest(args: argparse.Namespace, source: str) -> int:
    from marketstream import event_loop  # noqa: PLC0415 - load on use
    from marketstream.replay.faults import FaultPlan  # noqa: PLC0415
    from marketstream.replay.rest_server import (  # noqa: PLC0415
        RestReplayServer,
        serve_rest_until_signal,
    )

    if args.max or args.drop_every is not None:
        raise MarketStreamError(
            f"{args.recording}: --max and --drop-every are for WebSocket recordings; "
            f"{source!r} is a polled source (REST answers, paced by --speed)"
        )
    try:
        plan = FaultPlan(
            fail_429_every=args.fail_429_every,
            retry_after_s=args.retry_after,
            fail_5xx_every=args.fail_5xx_every,
            status_5xx=args.fail_5xx_status,
            latency_every=args.latency_every,
            latency_ms=args.latency_ms,
        )
    except ValueError as exc:
        raise MarketStreamError(f"replay-server: {exc}") from None
    server = RestReplayServer(
        args.recording,
        fault_answer=fault_answer_of(source),
        host=args.host,
        port=args.port,
        speed=args.speed,
        loop=not args.no_loop,
        faults=plan,
    )
    setup_logging()
    event_loop.run(serve_rest_until_signal(server, lambda line: print(line, flush=True)))
    return 0


def fault_answer_of(source: str) -> FaultAnswer:
    """The source's own 429/5xx shape from the source registry (`SOURCE_DEFS`), else the
    `PolledSource` default (a Retry-After header, no body)."""
    from marketstream.sources.base.source import PolledSource  # noqa: PLC0415

    try:
        registry = importlib.import_module("marketstream.sources.registry")
    except ImportError:
        registry = None
    defined = getattr(registry, "SOURCE_DEFS", {})
    if source in defined:
        answer: FaultAnswer = defined[source].fault_answer
        return answer
    default = next(f for f in dataclasses.fields(PolledSource) if f.name == "fault_answer")
    fallback: FaultAnswer = default.default  # type: ignore[assignment]
    return fallback


def _cmd_record(args: argparse.Namespace) -> int:
    from marketstream.ingest.recorder import record_until_signal, resolve_target  # noqa: PLC0415

    if args.source is not None:
        return _record_source(args)
    if args.ticks is not None:
        raise MarketStreamError("--ticks applies to --source only")

    target = resolve_target(
        args.exchange,
        url=args.url,
        rest_url=args.rest_url,
        symbols=args.symbols,
        channels=args.channels,
        load_config=lambda: config_of(args),
    )
    setup_logging()
    stats = record_until_signal(
        target, args.out, duration_s=args.duration, max_frames=args.max_frames
    )
    print(
        f"recorded {stats.frames} frames, {stats.snapshots} snapshots and "
        f"{stats.instrument_lists} instrument lists from {target.url} to {args.out}"
    )
    return 0


def _record_source(args: argparse.Namespace) -> int:
    """`record --source`: the source's configured tokens (or `--symbols`), its cadence and
    limits, at `--url` or its configured URL."""
    import os  # noqa: PLC0415

    from marketstream.ingest.polling.capture import capture  # noqa: PLC0415
    from marketstream.ingest.polling.plan import plan_sources  # noqa: PLC0415
    from marketstream.signals import run_until_signal  # noqa: PLC0415

    exchange_only = {"--rest-url": args.rest_url, "--channels": args.channels,
                     "--max-frames": args.max_frames}  # fmt: skip
    given = [flag for flag, value in exchange_only.items() if value]
    if given:
        raise MarketStreamError(f"{', '.join(given)} apply to --exchange only")
    config = config_of(args)
    planned = plan_sources(config, os.environ, [args.source])[0]
    settings = planned.config
    if args.symbols:  # SOL or SOL-USD
        quote = f"-{planned.source.quote}"
        wanted = [s.removesuffix(quote) for s in args.symbols]
        unknown = [s for s in wanted if s not in settings.symbols]
        if unknown:
            raise MarketStreamError(
                f"--symbols {', '.join(unknown)}: not in sources.{args.source}.symbols "
                f"({', '.join(settings.symbols)})"
            )
        settings = settings.model_copy(update={"symbols": {s: settings.symbols[s] for s in wanted}})
    if args.ticks is not None:
        settings = settings.model_copy(update={"max_ticks": args.ticks})
    base_url = args.url or planned.base_url
    planned = dataclasses.replace(planned, config=settings, base_url=base_url)
    setup_logging()
    stats = run_until_signal(
        lambda stop: capture(
            planned,
            args.out,
            duration_s=args.duration,
            stop=stop,
            max_future_skew_ns=config.ingest.max_future_skew_ms * 1_000_000,
        )
    )
    print(
        f"recorded {stats.answers} answers ({stats.errors} errors, {stats.prices} prices, "
        f"{stats.missed} token ticks missed) from {redact_url(base_url)} to {args.out}"
    )
    return 0
