"""`GET /patients/{document_type_id}/{document_number}/summary`: the chart header (clinicians
and administrators; audited as an access to the record, like a question)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from smarthealth.audit.service import AuditEvent, ClientInfo
from smarthealth.auth.dependencies import CurrentUser, forbidden
from smarthealth.chat.pipeline import QuestionPipeline
from smarthealth.chat.schemas import QUERY_ROLES, DocumentNumber
from smarthealth.clinical.summary import EVENT, patient_summary, record_refusal
from smarthealth.clinical.summary_schemas import PatientSummary
from smarthealth.contract import AUTHENTICATED, error_responses

router = APIRouter(prefix="/patients", tags=["patients"])


@router.get(
    "/{document_type_id}/{document_number}/summary",
    response_model=PatientSummary,
    summary="Encabezado de la historia clínica de un paciente",
    description=(
        "Who may call: clinicians and administrators (another role is 403, and audited). Name, "
        "document, age and sex, blood type, allergies, active problems, current medications and "
        "the next appointment. Every read is audited (with the rows shown) before anything is "
        "sent: if it cannot be, 503 `AUDIT_UNAVAILABLE` and nothing shown. An unknown patient "
        "is 404 `PATIENT_NOT_FOUND`."
    ),
    responses=error_responses(*AUTHENTICATED, 403, 404, 422),
)
async def summary(
    request: Request,
    user: CurrentUser,
    document_type_id: Annotated[int, Path(ge=1, le=8)],
    document_number: Annotated[DocumentNumber, Path()],
) -> PatientSummary:
    client = ClientInfo.from_request(request)
    if user.role not in QUERY_ROLES:
        refused = AuditEvent(
            EVENT,
            client,
            user_id=user.user_id,
            document_type_id=document_type_id,
            document_number=document_number,
        )
        await record_refusal(request.app.state.database, refused, "forbidden")
        raise forbidden()
    pipeline: QuestionPipeline = request.app.state.pipeline  # its clock says what "today" is
    return await patient_summary(
        request.app.state.database,
        user.user_id,
        document_type_id,
        document_number,
        client,
        pipeline.clock,
    )
