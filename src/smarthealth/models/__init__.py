"""ORM models of the `smart_health` schema (names follow the reference DDL)."""

from smarthealth.models.accounts import AuditLog, LoginAttempt, User
from smarthealth.models.base import SCHEMA, Base
from smarthealth.models.catalog import Diagnosis, DocumentType, Medication, Specialty
from smarthealth.models.chat import ChatSession, ChatTurn
from smarthealth.models.clinical import (
    Appointment,
    Doctor,
    DoctorSpecialty,
    MedicalRecord,
    Patient,
    PatientAllergy,
    Prescription,
    RecordDiagnosis,
)
from smarthealth.models.feedback import ChatFeedback
from smarthealth.models.records import (
    FhirExternalId,
    Immunization,
    Observation,
    Organization,
    Procedure,
)
from smarthealth.models.retrieval import ChunkQueue, ClinicalChunk, EmbeddingCache, EmbeddingText

__all__ = [
    "SCHEMA",
    "Appointment",
    "AuditLog",
    "Base",
    "ChatFeedback",
    "ChatSession",
    "ChatTurn",
    "ChunkQueue",
    "ClinicalChunk",
    "Diagnosis",
    "Doctor",
    "DoctorSpecialty",
    "DocumentType",
    "EmbeddingCache",
    "EmbeddingText",
    "FhirExternalId",
    "Immunization",
    "LoginAttempt",
    "MedicalRecord",
    "Medication",
    "Observation",
    "Organization",
    "Patient",
    "PatientAllergy",
    "Prescription",
    "Procedure",
    "RecordDiagnosis",
    "Specialty",
    "User",
]
