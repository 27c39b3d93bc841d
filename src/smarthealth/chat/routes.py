"""`POST /query/` (clinicians, admins) and `/history/` (the owner's own sessions)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from sqlalchemy import func, select

from smarthealth.audit.service import ClientInfo
from smarthealth.auth.dependencies import CurrentUser, forbidden
from smarthealth.chat.pipeline import QueryRequest, QuestionPipeline, record_refusal
from smarthealth.chat.schemas import (
    QUERY_ROLES,
    QueryIn,
    QueryOut,
    SessionDetail,
    SessionList,
    SessionSummary,
    TurnFeedback,
    TurnOut,
)
from smarthealth.chat.sessions import session_not_found
from smarthealth.contract import (
    AUTHENTICATED,
    JSON_BODY,
    MediaTypeRoute,
    error_responses,
    require_json,
)
from smarthealth.db.session import SessionDep
from smarthealth.errors import AppError, field_errors
from smarthealth.inputs import parse_json
from smarthealth.models import (
    ChatFeedback,
    ChatSession,
    ChatTurn,
    DocumentType,
    Patient,
    User,
)

router = APIRouter(tags=["chat"], route_class=MediaTypeRoute)


async def _refuse(
    request: Request, user: User, outcome: str, error: AppError, body: dict[str, Any] | None = None
) -> AppError:
    """Audit a refused question (one row per call, failed or not) and return the error."""
    await record_refusal(
        request.app.state.database,
        ClientInfo.from_request(request),
        user.user_id,
        outcome,
        error.code,
        (body or {}).get("question"),
    )
    return error


@router.post(
    "/query/",
    summary="Hacer una pregunta sobre la historia clínica de un paciente",
    description="Who may call: clinicians and administrators (another role is 403). The "
    "patient is found by document type and number (404 `PATIENT_NOT_FOUND`); `session_id` "
    "continues a session (404 `SESSION_NOT_FOUND` when it is not the caller's, 409 "
    "`SESSION_PATIENT_MISMATCH` when it is another patient's). Every question, answered or "
    "refused, is audited; if the access cannot be audited nothing is shown (503 "
    "`AUDIT_UNAVAILABLE`).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": QueryIn.model_json_schema()}},
        }
    },
    response_model=None,
    responses={
        200: {"model": QueryOut, "description": "The cited answer"},
        **error_responses(*AUTHENTICATED, *JSON_BODY, 403, 404, 409),
    },
)
async def query(request: Request, user: CurrentUser) -> dict[str, Any]:
    raw = await request.body()
    try:  # bounded nesting: 100k nested arrays are invalid JSON here, not a RecursionError
        payload, parsed = (parse_json(raw) if raw else None), True
    except ValueError:
        payload, parsed = None, False
    if user.role not in QUERY_ROLES:
        raise await _refuse(
            request, user, "forbidden", forbidden(), payload if isinstance(payload, dict) else None
        )
    try:
        require_json(request)
    except AppError as error:
        raise await _refuse(request, user, "invalid_input", error) from None
    if not parsed:
        raise await _refuse(
            request,
            user,
            "invalid_input",
            AppError(400, "INVALID_INPUT", "El cuerpo de la solicitud no es JSON válido."),
        )
    try:
        body = QueryIn.model_validate(payload)
    except ValidationError as exc:
        fields = field_errors(exc.errors())
        raise await _refuse(
            request,
            user,
            "invalid_input",
            AppError(
                422, "INVALID_INPUT", "Los datos enviados no son válidos.", {"fields": fields}
            ),
            payload if isinstance(payload, dict) else None,
        ) from None
    pipeline: QuestionPipeline = request.app.state.pipeline
    complete: dict[str, Any] | None = None
    async for event in pipeline.run(
        QueryRequest(
            user_id=user.user_id,
            document_type_id=body.document_type_id,
            document_number=body.document_number,
            question=body.question,
            client=ClientInfo.from_request(request),
            session_id=body.session_id,
        )
    ):
        if event.type == "complete":
            complete = event.data
    if complete is None:
        raise AppError(500, "INTERNAL_ERROR", "Error interno del servidor.")
    return complete


def _summary(
    chat: ChatSession, patient: Patient, code: str, first: str | None, turns: int
) -> SessionSummary:
    return SessionSummary(
        session_id=chat.session_id,
        patient_id=patient.patient_id,
        patient_name=patient.full_name,
        document_type=code,
        document_type_id=patient.document_type_id,
        document_number=patient.document_number,
        first_question=first,
        turns=turns,
        created_at=chat.created_at,
        last_activity_at=chat.last_activity_at,
    )


_FIRST_QUESTION = (
    select(ChatTurn.question)
    .where(ChatTurn.session_id == ChatSession.session_id)
    .order_by(ChatTurn.sequence_chat_id)
    .limit(1)
    .scalar_subquery()
)
_TURNS = select(func.count()).where(ChatTurn.session_id == ChatSession.session_id).scalar_subquery()


@router.get(
    "/history/",
    response_model=SessionList,
    summary="Mis sesiones de chat",
    description="Who may call: any signed-in user; only their own sessions, newest first.",
    responses=error_responses(*AUTHENTICATED, 422),
)
async def history(
    user: CurrentUser,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SessionList:
    total = (
        await session.scalar(
            select(func.count()).select_from(ChatSession).where(ChatSession.user_id == user.user_id)
        )
        or 0
    )
    rows = await session.execute(
        select(ChatSession, Patient, DocumentType.code, _FIRST_QUESTION, _TURNS)
        .join(Patient, Patient.patient_id == ChatSession.patient_id)
        .join(DocumentType, DocumentType.document_type_id == Patient.document_type_id)
        .where(ChatSession.user_id == user.user_id)
        .order_by(ChatSession.last_activity_at.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [_summary(c, p, code, first, turns) for c, p, code, first, turns in rows]
    return SessionList(items=items, total=total, page=page, page_size=page_size)


@router.get(
    "/history/sessions/{session_id}",
    response_model=SessionDetail,
    summary="Los turnos de una de mis sesiones",
    description="Who may call: the session's owner (anyone else's session is 404).",
    responses=error_responses(*AUTHENTICATED, 404, 422),
)
async def session_detail(
    session_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> SessionDetail:
    row = (
        await session.execute(
            select(ChatSession, Patient, DocumentType.code, _FIRST_QUESTION, _TURNS)
            .join(Patient, Patient.patient_id == ChatSession.patient_id)
            .join(DocumentType, DocumentType.document_type_id == Patient.document_type_id)
            .where(ChatSession.session_id == session_id, ChatSession.user_id == user.user_id)
        )
    ).first()
    if row is None:
        raise session_not_found()
    turns = await session.scalars(
        select(ChatTurn)
        .where(ChatTurn.session_id == session_id)
        .order_by(ChatTurn.sequence_chat_id)
    )
    rated = {
        f.sequence_chat_id: TurnFeedback(rating=f.rating, reason=f.reason, comment=f.comment)
        for f in await session.scalars(
            select(ChatFeedback).where(ChatFeedback.session_id == session_id)
        )
    }
    return SessionDetail(
        session=_summary(*row),
        turns=[
            TurnOut(
                sequence_chat_id=t.sequence_chat_id,
                question=t.question,
                answer=t.answer_text,
                status=t.status,
                created_at=t.created_at,
                response=t.response_json,
                feedback=rated.get(t.sequence_chat_id),
            )
            for t in turns
        ],
    )
