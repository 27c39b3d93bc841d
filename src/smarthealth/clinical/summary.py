"""The chart header of one patient: who they are, allergies, active problems, current
medications and the next appointment — the executor's definitions over the patient's chunks
(`rag.executor.summarize`), never a second reading of the clinical tables.

Audited like a question: the access row (who, whom, the chunk ids about to be shown) is
committed before anything is returned; if it cannot be written, nothing is shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import text

from smarthealth.audit.service import AuditEvent, ClientInfo, record_access, record_event
from smarthealth.clinical.patients import find_patient
from smarthealth.clinical.summary_schemas import (
    AllergyOut,
    AppointmentOut,
    MedicationList,
    MedicationOut,
    PatientHeader,
    PatientSummary,
    ProblemList,
    ProblemOut,
)
from smarthealth.db.session import Database
from smarthealth.errors import AppError
from smarthealth.models import Patient
from smarthealth.rag.engines.redaction import age_phrase
from smarthealth.rag.executor import BOGOTA, SUMMARY_PLAN, RecordSummary, Row, load_rows, summarize

log = structlog.get_logger(__name__)

EVENT = "patient.summary"
SEX = {"F": "Femenino", "M": "Masculino", "O": "Otro"}
PENDING_SQL = text("SELECT EXISTS (SELECT 1 FROM smart_health.chunk_queue WHERE patient_id = :p)")


def patient_not_found() -> AppError:
    return AppError(
        404, "PATIENT_NOT_FOUND", "No existe un paciente con ese tipo y número de documento."
    )


async def record_refusal(database: Database, event: AuditEvent, outcome: str) -> None:
    """One row for a refused request; a failure to write it never masks the refusal."""
    event.outcome = outcome
    try:
        async with database.sessions() as session, session.begin():
            await record_event(session, event)
    except Exception as exc:
        log.error("audit_write_failed", error_type=type(exc).__name__)


async def patient_summary(
    database: Database,
    user_id: int,
    document_type_id: int,
    document_number: str,
    client: ClientInfo,
    now: Callable[[], dt.datetime],
) -> PatientSummary:
    event = AuditEvent(
        EVENT,
        client,
        user_id=user_id,
        document_type_id=document_type_id,
        document_number=document_number,
    )
    async with database.sessions() as session:
        found = await find_patient(session, document_type_id, document_number)
        if found is None:
            await record_refusal(database, event, "patient_not_found")
            raise patient_not_found()
        patient, code = found
        moment = now()
        summary = summarize(await load_rows(session, patient.patient_id, SUMMARY_PLAN), moment)
        pending = bool(await session.scalar(PENDING_SQL, {"p": patient.patient_id}))
    event.patient_id = patient.patient_id
    event.source_ids = [r.chunk_id for r in summary.rows]
    event.outcome = "disclosed"
    await record_access(database, event)
    return build_summary(patient, code, summary, moment, pending)


def build_summary(
    patient: Patient, code: str, summary: RecordSummary, now: dt.datetime, pending: bool
) -> PatientSummary:
    today = now.astimezone(BOGOTA).date()
    card = summary.demographics
    header = PatientHeader(
        patient_id=patient.patient_id,
        full_name=patient.full_name,
        document_type=code,
        document_type_id=patient.document_type_id,
        document_number=patient.document_number,
        birth_date=patient.birth_date,
        age=age_phrase(patient.birth_date, today),
        sex=patient.gender,
        sex_label=SEX.get(patient.gender, patient.gender),
        blood_type=patient.blood_type,
        chunk_id=card.chunk_id if card is not None else None,
    )
    coming = summary.next_appointment
    return PatientSummary(
        as_of=now,
        updating=pending,
        patient=header,
        allergies=[_allergy(r) for r in summary.allergies],
        problems=ProblemList(
            count=len(summary.problems), items=[_problem(r) for r in summary.problems]
        ),
        medications=MedicationList(
            count=len(summary.medications), items=[_medication(r) for r in summary.medications]
        ),
        next_appointment=_appointment(coming) if coming is not None else None,
    )


def _fact(row: Row, key: str) -> Any:
    return row.facts.get(key)


def _allergy(r: Row) -> AllergyOut:
    return AllergyOut(
        ingredient=_fact(r, "ingredient"),
        reaction=_fact(r, "reaction"),
        severity=_fact(r, "severity"),
        date=r.day,
        chunk_id=r.chunk_id,
    )


def _problem(r: Row) -> ProblemOut:
    return ProblemOut(
        icd_code=_fact(r, "icd_code"),
        description=_fact(r, "description"),
        date=r.day,
        chunk_id=r.chunk_id,
    )


def _medication(r: Row) -> MedicationOut:
    return MedicationOut(
        ingredient=_fact(r, "ingredient"),
        commercial_name=_fact(r, "commercial_name"),
        strength=_fact(r, "strength"),
        form=_fact(r, "form"),
        dosage=_fact(r, "dosage"),
        frequency=_fact(r, "frequency"),
        start=_fact(r, "start"),
        end=_fact(r, "end"),
        chunk_id=r.chunk_id,
    )


def _appointment(r: Row) -> AppointmentOut:
    return AppointmentOut(
        start=r.moment,
        specialty=_fact(r, "specialty"),
        doctor=_fact(r, "doctor"),
        status=_fact(r, "status"),
        reason=_fact(r, "reason"),
        chunk_id=r.chunk_id,
    )
