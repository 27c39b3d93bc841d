"""`GET /audit/`: the trail, newest first, for auditors and administrators."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import func, select

from smarthealth.auth.dependencies import require_roles
from smarthealth.contract import AUTHENTICATED, error_responses
from smarthealth.db.session import SessionDep
from smarthealth.inputs import INT4_MAX, LINE_PATTERN, LineText, Timestamp
from smarthealth.models import AuditLog, User

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    audit_log_id: int
    created_at: dt.datetime
    event_type: str
    outcome: str
    channel: str
    user_id: int | None
    patient_id: int | None
    session_id: uuid.UUID | None
    sequence_chat_id: int | None
    document_type_id: int | None
    document_number: str | None
    question: str | None
    response_json: dict[str, Any] | None
    source_ids: list[int] | None
    latency_ms: int | None
    client_address: str | None
    user_agent: str | None
    details: dict[str, Any] | None
    row_hash: str | None

    @field_validator("client_address", mode="before")
    @classmethod
    def _address_text(cls, value: object) -> str | None:
        return None if value is None else str(value)


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    page: int
    page_size: int


@router.get(
    "/",
    response_model=AuditPage,
    summary="Consultar la auditoría",
    description="Who may call: auditors and administrators. Newest first; `date_from` and "
    "`date_to` are ISO 8601 dates or date-times (`date_to` excluded).",
    responses=error_responses(*AUTHENTICATED, 403, 422),
)
async def list_audit(
    _: Annotated[User, Depends(require_roles("auditor", "admin"))],
    session: SessionDep,
    user_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
    event_type: Annotated[
        LineText | None, Query(max_length=40, json_schema_extra={"pattern": LINE_PATTERN})
    ] = None,
    document_type_id: Annotated[int | None, Query(ge=1, le=8)] = None,
    document_number: Annotated[
        str | None, Query(min_length=3, max_length=20, pattern=r"^[A-Za-z0-9-]+$")
    ] = None,
    date_from: Timestamp | None = None,
    date_to: Timestamp | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    filters: list[Any] = []
    if user_id is not None:
        filters.append(AuditLog.user_id == user_id)
    if event_type is not None:
        filters.append(AuditLog.event_type == event_type)
    if document_type_id is not None:
        filters.append(AuditLog.document_type_id == document_type_id)
    if document_number is not None:
        filters.append(AuditLog.document_number == document_number)
    if date_from is not None:
        filters.append(AuditLog.created_at >= date_from)
    if date_to is not None:
        filters.append(AuditLog.created_at < date_to)
    total = await session.scalar(select(func.count()).select_from(AuditLog).where(*filters)) or 0
    rows = await session.scalars(
        select(AuditLog)
        .where(*filters)
        .order_by(AuditLog.audit_log_id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [AuditOut.model_validate(row) for row in rows]
    return AuditPage(items=items, total=total, page=page, page_size=page_size)
