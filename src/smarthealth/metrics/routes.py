"""`GET /metrics`: Prometheus text format, behind a bearer token of its own.

Without `SMARTHEALTH_METRICS_TOKEN` the route answers 404, as if it did not exist: metrics
describe the service's use and are not published by default. With it, a scraper sends
`Authorization: Bearer <token>`; anything else is 401.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from smarthealth.config import Settings
from smarthealth.db.session import DatabaseDep
from smarthealth.errors import AppError
from smarthealth.metrics.exposition import render
from smarthealth.metrics.snapshot import read_snapshot

router = APIRouter(tags=["system"])


def _authorize(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        raise AppError(404, "NOT_FOUND", "El recurso solicitado no existe.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise AppError(
            401,
            "UNAUTHORIZED",
            "Se requiere el token de métricas.",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get(
    "/metrics",
    summary="Métricas (Prometheus)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Formato de texto Prometheus"},
        401: {"description": "Falta el token de métricas o no es el configurado"},
        404: {"description": "Métricas desactivadas (SMARTHEALTH_METRICS_TOKEN sin definir)"},
    },
)
async def metrics(request: Request, database: DatabaseDep) -> Response:
    _authorize(request)
    embedder = getattr(request.app.state.pipeline, "embedder", None)
    snapshot = await read_snapshot(database.engine, getattr(embedder, "model_name", None))
    return Response(render(snapshot), media_type=CONTENT_TYPE_LATEST)
