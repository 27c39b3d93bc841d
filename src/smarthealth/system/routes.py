"""`GET /` (what this API is, where to go) and `GET /health` (does the database answer)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from smarthealth import __version__
from smarthealth.contract import error_responses
from smarthealth.db.session import DatabaseDep
from smarthealth.errors import error_body

router = APIRouter(tags=["system"])

HEALTH_TIMEOUT_S = 2.0


@router.get("/", summary="Información de la API", description="Who may call: anyone.")
async def api_info() -> dict[str, Any]:
    return {
        "name": "SmartHealth",
        "description": "Preguntas clínicas en español sobre la historia de un paciente, "
        "con respuestas citadas.",
        "version": __version__,
        "links": {
            "chat": "/chat",
            "docs": "/docs",
            "redoc": "/redoc",
            "openapi": "/openapi.json",
            "health": "/health",
        },
    }


@router.get(
    "/health",
    summary="Estado del servicio",
    description="Who may call: anyone. 200 when the database answers, 503 "
    "`DATABASE_UNAVAILABLE` (with `version` and `database.status`) otherwise.",
    responses=error_responses(503),
)
async def health(database: DatabaseDep) -> JSONResponse:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S), database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        body = error_body(
            "DATABASE_UNAVAILABLE", "La base de datos no está disponible; intente más tarde."
        )
        body.update(version=__version__, database={"status": "down"})
        return JSONResponse(body, status_code=503)
    latency = round((time.perf_counter() - started) * 1000, 1)
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "database": {"status": "up", "latency_ms": latency},
        }
    )
