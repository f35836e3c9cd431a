"""`/healthz` (every store the API reads, asked now) and `/metrics` (Prometheus text)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.responses import JSONResponse, Response

from marketstream.errors import MarketStreamError
from marketstream.serve.context import ServeContext, context_of

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT_S = 10.0


@router.get("/healthz", summary="Redis, QuestDB, warm and cold reachable: 200, else 503")
async def healthz(request: Request) -> JSONResponse:
    """Each store asked now; the body names the one that failed and why. Never needs a token."""
    context = context_of(request)
    checks: dict[str, dict[str, Any]] = {"redis": await _redis(context)}
    stores = {"questdb": _questdb, "warm": _warm, "cold": _cold}
    results = await asyncio.gather(*(_blocking(check, context) for check in stores.values()))
    checks.update(zip(stores, results, strict=True))
    ok = all(check["ok"] for check in checks.values())
    return JSONResponse({"ok": ok, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics: requests and latency by route")
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def _redis(context: ServeContext) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await context.redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        return {"ok": False, "error": f"Redis: {type(exc).__name__}: {exc}"}
    return {"ok": True}


async def _blocking(check: Callable[[ServeContext], None], context: ServeContext) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await asyncio.to_thread(check, context)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_S:g} s"}
    except (MarketStreamError, OSError) as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


def _questdb(context: ServeContext) -> None:
    from marketstream.wiring import hot_queries, questdb_http  # noqa: PLC0415

    questdb_http(context.config, context.state_dir).exec("SELECT 1")
    with hot_queries(context.config, context.state_dir):  # the PG wire the reads use
        pass


def _warm(context: ServeContext) -> None:
    from marketstream.tiers import clickhouse  # noqa: PLC0415
    from marketstream.wiring import endpoint  # noqa: PLC0415

    client = clickhouse.connect(endpoint(context.config, context.state_dir, "clickhouse"))
    try:
        client.query("SELECT 1")
    finally:
        client.close()


def _cold(context: ServeContext) -> None:
    from marketstream.wiring import cold_store  # noqa: PLC0415

    cold_store(context.config, context.state_dir).check()
