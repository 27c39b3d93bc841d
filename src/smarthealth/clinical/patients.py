"""Finding a patient by document type and number."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.models import DocumentType, Patient


async def find_patient(
    session: AsyncSession, document_type_id: int, document_number: str
) -> tuple[Patient, str] | None:
    """The patient and their document type code, or None."""
    row = (
        await session.execute(
            select(Patient, DocumentType.code)
            .join(DocumentType, DocumentType.document_type_id == Patient.document_type_id)
            .where(
                Patient.document_type_id == document_type_id,
                Patient.document_number == document_number,
            )
        )
    ).first()
    return (row[0], row[1]) if row else None
