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
from smarthealth.contract import AUTHENTICATED, JSON_BODY, MediaTypeRoute, error_responses
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

router = APIRouter(prefix="/feedback", tags=["feedback"], route_class=MediaTypeRoute)

Reader = Annotated[User, Depends(require_roles("auditor", "admin"))]


@router.post(
    "",
    response_model=FeedbackOut,
    status_code=201,
    summary="Valorar una respuesta (👍 / 👎)",
    description="Who may call: the owner of the turn (any signed-in user, on their own "
    "answers). 201 for a new rating, 200 when it replaces the turn's earlier one. `reason` "
    'only with `rating` "down". A turn that does not exist, or is another user\'s, is 404 '
    "`TURN_NOT_FOUND`; one that did not end in an answer is 409 `TURN_NOT_ANSWERED`.",
    responses={
        200: {"model": FeedbackOut, "description": "Rating changed (the turn had one)"},
        **error_responses(
            *AUTHENTICATED,
            *JSON_BODY,
            specific={
                404: (
                    "No such turn among the caller's own: TURN_NOT_FOUND",
                    "TURN_NOT_FOUND",
                    "La respuesta que intenta valorar no existe.",
                ),
                409: (
                    "The turn did not end in an answer: TURN_NOT_ANSWERED",
                    "TURN_NOT_ANSWERED",
                    "Solo se pueden valorar respuestas completas.",
                ),
            },
        ),
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
    description="Who may call: auditors and administrators (another role is 403). Newest "
    "change first; `date_from` ≤ the rating's last change < `date_to` (ISO 8601). JSON pages, or "
    "with `format=csv` the whole selection as a CSV file (`page` and `page_size` then ignored). "
    "Every read is audited before anything is shown.",
    responses={
        200: {
            "description": "A page of rated answers (JSON), or all of them as CSV (`format=csv`)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **error_responses(*AUTHENTICATED, 403, 422),
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
