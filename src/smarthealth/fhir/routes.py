"""FHIR routes: `POST /fhir/import` (admin) and `GET /fhir/Patient/{type}-{number}/$everything`
(clinician, admin).

The import is synchronous: the body (one Bundle, one resource, or NDJSON; up to 32 MiB) is
imported while the request waits and the report is the response (200, `status` "success", or
"partial" when a patient failed or was skipped: per-patient problems are in the report, located).
A body that is not JSON/NDJSON at all is a 400 `INVALID_JSON`; JSON that is not a FHIR resource
(no known `resourceType`, or a Bundle of a type that cannot be imported) is a 400 `INVALID_FHIR`;
over 32 MiB, the app's 413 `PAYLOAD_TOO_LARGE`. Larger loads — a
hospital's bulk export of thousands of patients — go through `smarthealth import fhir`, which
streams files from disk with a progress bar; a job queue for the API would need job state
shared by every worker, and the command line already covers that case.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from smarthealth.audit.service import ClientInfo, record_event
from smarthealth.auth.dependencies import require_roles
from smarthealth.config import to_libpq_url
from smarthealth.db.session import DatabaseDep
from smarthealth.errors import AppError, is_database_unavailable
from smarthealth.fhir.exporter import export_patient
from smarthealth.fhir.identity import DOCUMENT_TYPES
from smarthealth.fhir.parse import InputFileError, entries_of, is_resource_type
from smarthealth.fhir.service import export_event, import_event, run_import
from smarthealth.models import User

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/fhir", tags=["fhir"])
FHIR_JSON = "application/fhir+json"
PATIENT_REF = re.compile(r"^(?P<type>[A-Za-z]{2})-(?P<number>[A-Za-z0-9-]{3,20})$")
NDJSON_TYPES = ("application/x-ndjson", "application/fhir+ndjson", "application/ndjson")

AdminUser = Annotated[User, Depends(require_roles("admin"))]
ClinicalUser = Annotated[User, Depends(require_roles("clinician", "admin"))]


@router.post(
    "/import",
    summary="Importar datos FHIR R4 (solo administradores)",
    description="Cuerpo: un Bundle (transaction, batch, collection o searchset), un recurso, "
    "o NDJSON (`Content-Type: application/fhir+ndjson`). Respuesta: el informe de la "
    "importación (síncrona; hasta 32 MiB). Un paciente con un recurso inválido no se importa y "
    "el error se ubica (archivo, entrada, id, campo); los demás sí.",
)
async def import_resources(
    request: Request, user: AdminUser, database: DatabaseDep
) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        raise AppError(422, "INVALID_INPUT", "El cuerpo está vacío: envíe un Bundle FHIR.")
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
    "UNSUPPORTED_BUNDLE": (
        "INVALID_FHIR",
        "El cuerpo es un Bundle de un tipo no admitido: use transaction, batch, collection o "
        "searchset.",
    ),
}


def _check_body(name: str, body: bytes) -> None:
    """400 when the body as a whole cannot be read as FHIR; what is wrong inside a readable
    body (one patient, one resource) is the import report's business."""
    try:
        entries = list(entries_of(name, body))
    except InputFileError as exc:
        code, message = BODY_ERRORS.get(exc.issue.code, BODY_ERRORS["INVALID_JSON"])
        details: dict[str, Any] = {"reason": exc.issue.code}
        if exc.issue.index is not None:
            details["line"] = exc.issue.index
        raise AppError(400, code, message, details=details) from None
    unknown = next((e for e in entries if not is_resource_type(e.resource_type)), None)
    if unknown is not None and (len(entries) == 1 or name.endswith(".ndjson")):
        raise AppError(
            400,
            "INVALID_FHIR",
            "El cuerpo no es un recurso FHIR R4: tipo de recurso desconocido.",
            details={"line": unknown.index} if name.endswith(".ndjson") else None,
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


@router.get(
    "/Patient/{patient_ref}/$everything",
    summary="Historia del paciente como Bundle FHIR R4 (clínicos y administradores; auditado)",
    response_class=JSONResponse,
)
async def everything(
    patient_ref: str, request: Request, user: ClinicalUser, database: DatabaseDep
) -> JSONResponse:
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
        try:
            async with database.sessions() as session, session.begin():
                await record_event(session, event)
        except Exception as exc:
            if is_database_unavailable(exc):
                raise
            log.error("audit_access_failed", error_type=type(exc).__name__)
            raise AppError(
                503,
                "AUDIT_UNAVAILABLE",
                "No se pudo registrar el acceso a la historia clínica; no se muestra información.",
            ) from None
        if patient_id is None:
            raise AppError(404, "PATIENT_NOT_FOUND", "No se encontró el paciente.")
        bundle = await export_patient(conn, patient_id)
    finally:
        await conn.close()
    return JSONResponse(bundle, media_type=FHIR_JSON)
