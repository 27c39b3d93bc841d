"""Catalog routes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from smarthealth.auth.dependencies import CurrentUser
from smarthealth.contract import AUTHENTICATED, error_responses
from smarthealth.db.session import SessionDep
from smarthealth.models import DocumentType

router = APIRouter(prefix="/catalog", tags=["catalog"])


class DocumentTypeOut(BaseModel):
    document_type_id: int
    code: str
    name: str


@router.get(
    "/document-types",
    summary="Tipos de documento",
    description="Who may call: any signed-in user. The 8 Colombian document types.",
    response_model=list[DocumentTypeOut],
    responses=error_responses(*AUTHENTICATED),
)
async def document_types(_: CurrentUser, session: SessionDep) -> list[DocumentTypeOut]:
    rows = await session.scalars(select(DocumentType).order_by(DocumentType.document_type_id))
    return [
        DocumentTypeOut(document_type_id=r.document_type_id, code=r.code, name=r.name) for r in rows
    ]
