"""REST routes under /v1: latest prices from Redis; records of any type over every tier."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["data"])
