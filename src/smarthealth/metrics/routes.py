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
from smarthealth.contract import error_responses
from smarthealth.db.session import DatabaseDep
from smarthealth.errors import AppError
from smarthealth.metrics.exposition import render
from smarthealth.metrics.snapshot import read_snapshot

router = APIRouter(tags=["system"])
NOT_FOUND = "El recurso solicitado no existe."
MISSING_METRICS_CREDENTIAL = "Se requiere el token de métricas."


def _authorize(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        raise AppError(404, "NOT_FOUND", NOT_FOUND)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise AppError(
            401,
            "UNAUTHORIZED",
            MISSING_METRICS_CREDENTIAL,
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get(
    "/metrics",
    summary="Métricas (Prometheus)",
    description="Who may call: whoever holds `SMARTHEALTH_METRICS_TOKEN`, as `Authorization: "
    "Bearer <token>` (a user's access token is not it: 401). Without that setting the route is "
    "404, as if it did not exist. Prometheus text format; no patient data in any label. A "
    "scrape answers even with the database down (its figures are then missing).",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(
            specific={
                401: (
                    "No metrics token, or not the configured one: UNAUTHORIZED",
                    "UNAUTHORIZED",
                    MISSING_METRICS_CREDENTIAL,
                ),
                404: (
                    "Metrics are off (SMARTHEALTH_METRICS_TOKEN unset): NOT_FOUND",
                    "NOT_FOUND",
                    NOT_FOUND,
                ),
            }
        ),
    },
)
async def metrics(request: Request, database: DatabaseDep) -> Response:
    _authorize(request)
    embedder = getattr(request.app.state.pipeline, "embedder", None)
    snapshot = await read_snapshot(database.engine, getattr(embedder, "model_name", None))
    return Response(render(snapshot), media_type=CONTENT_TYPE_LATEST)
