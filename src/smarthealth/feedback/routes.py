"""`POST /feedback` (the turn's owner) and `GET /feedback` (auditors, administrators; JSON
pages or the whole selection as CSV)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from smarthealth.audit.service import ClientInfo
from smarthealth.auth.dependencies import CurrentUser, require_roles
from smarthealth.db.session import Database, DatabaseDep, SessionDep
from smarthealth.feedback import csv_export
from smarthealth.feedback.schemas import FeedbackIn, FeedbackOut, FeedbackPage, Rating, Reason
from smarthealth.feedback.service import (
    FeedbackFilter,
    count_feedback,
    list_feedback,
    record_read,
    stream_feedback,
    submit_feedback,
)
from smarthealth.inputs import INT4_MAX, Timestamp
from smarthealth.metrics import instruments
from smarthealth.models import User

router = APIRouter(prefix="/feedback", tags=["feedback"])

Reader = Annotated[User, Depends(require_roles("auditor", "admin"))]


@router.post(
    "",
    response_model=FeedbackOut,
    status_code=201,
    summary="Valorar una respuesta (👍 / 👎)",
    responses={
        200: {"description": "Valoración cambiada (la respuesta ya tenía una)"},
        404: {"description": "El turno no existe o no es de quien valora"},
        409: {"description": "El turno no terminó con una respuesta"},
        422: {"description": "Solicitud inválida"},
    },
)
async def submit(
    body: FeedbackIn, user: CurrentUser, session: SessionDep, request: Request, response: Response
) -> FeedbackOut:
    stored, created = await submit_feedback(
        session, user.user_id, body, ClientInfo.from_request(request)
    )
    instruments.count_feedback(stored.rating, stored.reason)
    if not created:
        response.status_code = 200
    return stored


def _filter(
    date_from: Timestamp | None = None,
    date_to: Timestamp | None = None,
    rating: Rating | None = None,
    reason: Reason | None = None,
    user_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
) -> FeedbackFilter:
    return FeedbackFilter(date_from, date_to, rating, reason, user_id)


Filter = Annotated[FeedbackFilter, Depends(_filter)]


@router.get(
    "",
    response_model=FeedbackPage,
    summary="Valoraciones de las respuestas (auditoría)",
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, o CSV con `format=csv`"},
        403: {"description": "Solo auditores y administradores"},
    },
)
async def list_(
    user: Reader,
    where: Filter,
    session: SessionDep,
    database: DatabaseDep,
    request: Request,
    format: Literal["json", "csv"] = "json",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FeedbackPage | StreamingResponse:
    """Newest change first. `date_from` ≤ the rating's last change < `date_to`. Every read is
    an audit row (`feedback.read`), written before anything is shown."""
    total = await count_feedback(session, where)
    client = ClientInfo.from_request(request)
    if format == "csv":
        await record_read(session, user.user_id, client, where, total, "csv")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        return StreamingResponse(
            _csv(database, where),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="feedback-{stamp}.csv"',
                "Cache-Control": "no-store",
            },
        )
    items = await list_feedback(session, where, (page - 1) * page_size, page_size)
    await record_read(session, user.user_id, client, where, len(items), "json")
    return FeedbackPage(items=items, total=total, page=page, page_size=page_size)


async def _csv(database: Database, where: FeedbackFilter) -> AsyncIterator[str]:
    yield csv_export.header()
    async with database.sessions() as session:
        async for item, _ in stream_feedback(session, where):
            yield csv_export.row(item)
