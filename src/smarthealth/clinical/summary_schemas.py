"""The body of `GET /patients/{document_type_id}/{document_number}/summary`.

Every item carries `chunk_id`: the row of the patient's record it states (its citation, and what
the audit row lists)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class PatientHeader(BaseModel):
    patient_id: int
    full_name: str
    document_type: str = Field(description="Código del tipo de documento (CC, TI, …)")
    document_type_id: int
    document_number: str
    birth_date: dt.date
    age: str = Field(description='"58 años"; por debajo de dos años, en meses')
    sex: str = Field(description="F, M u O")
    sex_label: str
    blood_type: str | None
    chunk_id: int | None = Field(description="La fila de datos demográficos")


class AllergyOut(BaseModel):
    ingredient: str
    reaction: str | None
    severity: str | None
    date: dt.date | None
    chunk_id: int


class ProblemOut(BaseModel):
    icd_code: str
    description: str
    date: dt.date | None = Field(description="Último registro del diagnóstico")
    chunk_id: int


class MedicationOut(BaseModel):
    ingredient: str
    commercial_name: str | None
    strength: str | None
    form: str | None
    dosage: str | None
    frequency: str | None
    start: dt.date | None
    end: dt.date | None = Field(description="Último día de la prescripción")
    chunk_id: int


class AppointmentOut(BaseModel):
    start: dt.datetime
    specialty: str | None
    doctor: str | None
    status: str
    reason: str | None
    chunk_id: int


class ProblemList(BaseModel):
    count: int
    items: list[ProblemOut]


class MedicationList(BaseModel):
    count: int
    items: list[MedicationOut]


class PatientSummary(BaseModel):
    status: Literal["success"] = "success"
    as_of: dt.datetime
    updating: bool = Field(
        description="La historia del paciente cambió y se está indexando: repita en segundos"
    )
    patient: PatientHeader
    allergies: list[AllergyOut] = Field(description="Todas las alergias registradas")
    problems: ProblemList = Field(
        description="Problemas activos: crónicos según el catálogo, o diagnosticados en los "
        "últimos 90 días (sin diagnósticos diferenciales)"
    )
    medications: MedicationList = Field(
        description="Medicamentos vigentes: la última prescripción de cada medicamento, vigente hoy"
    )
    next_appointment: AppointmentOut | None
