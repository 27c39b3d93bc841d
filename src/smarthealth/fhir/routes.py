"""FHIR routes: `POST /fhir/import` (admin) and `GET /fhir/Patient/{type}-{number}/$everything`
(clinician, admin).

The import is synchronous: the body (one Bundle, one resource, or NDJSON; up to 32 MiB) is
imported while the request waits and the report is the response (200, `status` "success", or
"partial" when a patient failed or was skipped: per-patient problems are in the report, located).
A body that is not JSON/NDJSON at all is a 400 `INVALID_JSON`; JSON that is not a FHIR resource
(no known `resourceType`, or a Bundle of a type that cannot be imported) is a 400 `INVALID_FHIR`;
over 32 MiB, the app's 413 `PAYLOAD_TOO_LARGE`; in another media type than JSON, FHIR JSON or
NDJSON, 415. The OpenAPI document states all of it (`smarthealth.fhir.schemas`). Larger loads — a
hospital's bulk export of thousands of patients — go through `smarthealth import fhir`, which
streams files from disk with a progress bar; a job queue for the API would need job state
shared by every worker, and the command line already covers that case.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from smarthealth.audit.service import ClientInfo, record_access, record_event
from smarthealth.auth.dependencies import require_roles
from smarthealth.config import to_libpq_url
from smarthealth.contract import AUTHENTICATED, error_responses, require_media_type
from smarthealth.db.session import DatabaseDep
from smarthealth.errors import AppError
from smarthealth.fhir.exporter import export_patient
from smarthealth.fhir.identity import DOCUMENT_TYPES
from smarthealth.fhir.parse import InputFileError, entries_of, is_resource_type
from smarthealth.fhir.schemas import (
    BUNDLE_OUT,
    FHIR_JSON,
    IMPORT_BODY,
    IMPORT_MEDIA_TEXT,
    IMPORT_MEDIA_TYPES,
    NDJSON_TYPES,
    ImportOut,
)
from smarthealth.fhir.service import export_event, import_event, run_import
from smarthealth.models import User

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/fhir", tags=["fhir"])
PATIENT_REF = re.compile(r"^(?P<type>[A-Za-z]{2})-(?P<number>[A-Za-z0-9-]{3,20})$")
EMPTY_BODY = "El cuerpo está vacío: envíe un Bundle FHIR."

AdminUser = Annotated[User, Depends(require_roles("admin"))]
ClinicalUser = Annotated[User, Depends(require_roles("clinician", "admin"))]


_IMPORT_ERRORS = error_responses(
    *AUTHENTICATED,
    403,
    413,
    415,
    specific={
        400: (
            "The body is not JSON/NDJSON (INVALID_JSON), or not a FHIR resource: no known "
            "`resourceType`, a Bundle of a type that cannot be imported (INVALID_FHIR)",
            "INVALID_FHIR",
            "El cuerpo no es un recurso FHIR R4 (falta resourceType).",
        ),
        413: (
            "Body over 32 MiB: PAYLOAD_TOO_LARGE",
            "PAYLOAD_TOO_LARGE",
            "La solicitud excede el tamaño máximo permitido.",
        ),
        415: (
            "Body not in a media type this route reads: UNSUPPORTED_MEDIA_TYPE",
            "UNSUPPORTED_MEDIA_TYPE",
            f"Tipo de contenido no soportado; envíe {IMPORT_MEDIA_TEXT}.",
        ),
        422: ("Empty body: INVALID_INPUT", "INVALID_INPUT", EMPTY_BODY),
    },
)


@router.post(
    "/import",
    summary="Importar datos FHIR R4 (solo administradores)",
    description="Who may call: administrators (another role is 403). The body is one Bundle "
    "(transaction, batch, collection or searchset), one resource (`application/fhir+json` or "
    "`application/json`), or NDJSON (`application/x-ndjson`, `application/fhir+ndjson`); up to "
    "32 MiB. The import is synchronous and the answer is its report: a patient with an invalid "
    "resource is not imported and the problem is located (file, entry, id, field), the others "
    'are (`status` "partial"). A body that is not JSON is 400 `INVALID_JSON`, JSON that is '
    "not a FHIR resource 400 `INVALID_FHIR`; another media type 415. Every import is audited.",
    openapi_extra={"requestBody": IMPORT_BODY},
    response_model=ImportOut,
    responses=_IMPORT_ERRORS,
)
async def import_resources(
    request: Request, user: AdminUser, database: DatabaseDep
) -> dict[str, Any]:
    require_media_type(request, IMPORT_MEDIA_TYPES, IMPORT_MEDIA_TEXT)
    body = await request.body()
    if not body.strip():
        raise AppError(422, "INVALID_INPUT", EMPTY_BODY)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    name = "request.ndjson" if kind in NDJSON_TYPES else "request.json"
    _check_body(name, body)
    report = await run_import(database.url, [(name, body)], request.app.state.settings)
    async with database.sessions() as session, session.begin():
        await record_event(
            session, import_event(report, user.user_id, ClientInfo.from_request(request))
        )
    log.info(
        "fhir_import",
        patients=report.patients_imported,
        failed=report.patients_failed,
        rows_changed=report.changed,
    )
    return {"status": "success" if not report.failed else "partial", "report": report.as_dict()}


BODY_ERRORS = {
    "INVALID_JSON": ("INVALID_JSON", "El cuerpo no es JSON ni NDJSON válido."),
    "INVALID_ENCODING": ("INVALID_JSON", "El cuerpo no está codificado en UTF-8."),
    "NOT_A_RESOURCE": ("INVALID_FHIR", "El cuerpo no es un recurso FHIR R4 (falta resourceType)."),
    "INVALID_BUNDLE": (
        "INVALID_FHIR",
        "El cuerpo es un Bundle mal formado: `entry` es una lista de objetos, cada `resource` un "
        "recurso y cada `fullUrl` texto.",
    ),
    "UNSUPPORTED_BUNDLE": (
        "INVALID_FHIR",
        "El cuerpo es un Bundle de un tipo no admitido: use transaction, batch, collection o "
        "searchset.",
    ),
}


def _check_body(name: str, body: bytes) -> None:
    """400 when the body as a whole cannot be read as FHIR: not JSON, not a resource, a
    resource type R4 does not define (anywhere in it), a Bundle of another type or shape. What
    is wrong inside a readable resource (a field, a reference, one patient) is the import
    report's business."""
    where = "line" if name.endswith(".ndjson") else "entry"
    try:
        entries = list(entries_of(name, body))
    except InputFileError as exc:
        code, message = BODY_ERRORS.get(exc.issue.code, BODY_ERRORS["INVALID_JSON"])
        details: dict[str, Any] = {"reason": exc.issue.code}
        if exc.issue.index is not None:
            details[where] = exc.issue.index
        raise AppError(400, code, message, details=details) from None
    unknown = next((e for e in entries if not is_resource_type(e.resource_type)), None)
    if unknown is not None:
        raise AppError(
            400,
            "INVALID_FHIR",
            "El cuerpo no es un recurso FHIR R4: tipo de recurso desconocido.",
            details={where: unknown.index}
            if name.endswith(".ndjson") or len(entries) > 1
            else None,
        )


def _patient_ref(ref: str) -> tuple[int, str]:
    match = PATIENT_REF.match(ref)
    code = match["type"].upper() if match else ""
    if match is None or code not in DOCUMENT_TYPES:
        raise AppError(
            422,
            "INVALID_INPUT",
            "El paciente se indica como TIPO-NÚMERO, p. ej. CC-1012345678.",
            details={"fields": [{"field": "patient", "type": "pattern"}]},
        )
    return DOCUMENT_TYPES[code], match["number"].upper()


class FHIRResponse(JSONResponse):
    media_type = FHIR_JSON


# TYPE-NUMBER: one of the 8 document type codes (any case), then a document number.
PATIENT_REF_PATTERN = (
    r"^(?:[Cc][CcEeDd]|[Tt][Ii]|[Pp][Aa]|[Rr][Cc]|[Mm][Ss]|[Aa][Ss])-[A-Za-z0-9-]{3,20}$"
)
PatientRef = Annotated[
    str,
    Path(
        description="Document type code and number: `CC-1012345678` (CC, CE, TI, PA, RC, MS, "
        "AS, CD)",
        examples=["CC-1012345678"],
        json_schema_extra={"pattern": PATIENT_REF_PATTERN},
    ),
]


@router.get(
    "/Patient/{patient_ref}/$everything",
    summary="Historia del paciente como Bundle FHIR R4 (clínicos y administradores; auditado)",
    description="Who may call: clinicians and administrators (another role is 403). The "
    "patient's record as an R4 Bundle (`application/fhir+json`); the access is audited before "
    "anything is sent (503 `AUDIT_UNAVAILABLE` and nothing shown if it cannot be). An unknown "
    "patient is 404 `PATIENT_NOT_FOUND` (audited too).",
    # A plain Response here: the document then names only the media types declared below
    # (FHIR JSON for the Bundle, JSON for the errors; FHIRResponse would claim both for all).
    response_class=Response,
    responses={
        200: {
            "description": "The patient as a FHIR R4 Bundle",
            "content": {FHIR_JSON: {"schema": BUNDLE_OUT}},
        },
        **error_responses(*AUTHENTICATED, 403, 404, 422),
    },
)
async def everything(
    patient_ref: PatientRef, request: Request, user: ClinicalUser, database: DatabaseDep
) -> FHIRResponse:
    type_id, number = _patient_ref(patient_ref)
    client = ClientInfo.from_request(request)
    conn = await asyncpg.connect(to_libpq_url(database.url))
    try:
        patient_id = await conn.fetchval(
            "SELECT patient_id FROM smart_health.patients "
            "WHERE document_type_id = $1 AND document_number = $2",
            type_id,
            number,
        )
        event = export_event(user.user_id, client, "disclosed", patient_id, type_id, number)
        if patient_id is None:
            event.outcome = "patient_not_found"
        await record_access(database, event)
        if patient_id is None:
            raise AppError(404, "PATIENT_NOT_FOUND", "No se encontró el paciente.")
        bundle = await export_patient(conn, patient_id)
    finally:
        await conn.close()
    return FHIRResponse(bundle)
