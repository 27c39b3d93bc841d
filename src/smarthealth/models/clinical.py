"""Patient-scoped clinical tables. Each carries `patient_id` (indexed) directly.

Child rows of a medical record reference it through (medical_record_id, patient_id), so the
denormalised `patient_id` cannot disagree with the record's.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from smarthealth.models.base import Base

APPOINTMENT_STATUSES = ("Scheduled", "Confirmed", "Attended", "Cancelled", "NoShow")
RECORD_TYPES = ("Consulta externa", "Control", "Urgencias", "Hospitalización", "Telemedicina")
DIAGNOSIS_TYPES = ("Principal", "Secondary", "Differential")
BLOOD_TYPES = ("O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-")
ALLERGY_SEVERITIES = ("Leve", "Moderada", "Severa")
ALLERGY_CATEGORIES = ("medication", "food", "environment", "biologic")
ALLERGY_CRITICALITIES = ("low", "high", "unable-to-assess")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


class Doctor(Base):
    __tablename__ = "doctors"

    doctor_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    gender: Mapped[str] = mapped_column(String(1))
    medical_license: Mapped[str] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(160))
    phone: Mapped[str | None] = mapped_column(String(30))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")

    __table_args__ = (CheckConstraint("gender IN ('M', 'F', 'O')", name="gender"),)


class DoctorSpecialty(Base):
    __tablename__ = "doctor_specialties"

    doctor_id: Mapped[int] = mapped_column(
        ForeignKey("doctors.doctor_id", ondelete="CASCADE"), primary_key=True
    )
    specialty_id: Mapped[int] = mapped_column(
        ForeignKey("specialties.specialty_id"), primary_key=True, index=True
    )
    is_primary: Mapped[bool] = mapped_column(Boolean, server_default="false")


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("document_type_id", "document_number"),
        CheckConstraint("document_number ~ '^[A-Za-z0-9-]{3,20}$'", name="document_number_format"),
        CheckConstraint("gender IN ('M', 'F', 'O')", name="gender"),
        CheckConstraint(_in("blood_type", BLOOD_TYPES), name="blood_type"),
        CheckConstraint("birth_date > DATE '1900-01-01'", name="birth_date_range"),
        Index("ix_patients_last_names", "first_surname", "second_surname"),
    )

    patient_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_type_id: Mapped[int] = mapped_column(
        SmallInteger, ForeignKey("document_types.document_type_id")
    )
    document_number: Mapped[str] = mapped_column(String(20))
    first_name: Mapped[str] = mapped_column(String(80))
    middle_name: Mapped[str | None] = mapped_column(String(80))
    first_surname: Mapped[str] = mapped_column(String(80))
    second_surname: Mapped[str | None] = mapped_column(String(80))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(1))
    blood_type: Mapped[str | None] = mapped_column(String(3))
    email: Mapped[str | None] = mapped_column(String(160))
    phone: Mapped[str | None] = mapped_column(String(30))
    address: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    @property
    def full_name(self) -> str:
        parts = [self.first_name, self.middle_name, self.first_surname, self.second_surname]
        return " ".join(p for p in parts if p)


class PatientAllergy(Base):
    """An allergy to a catalog medication (`medication_id`) or to any substance (`substance`,
    with its code and system when known): food, environment, biologic, or a drug outside the
    catalog."""

    __tablename__ = "patient_allergies"
    __table_args__ = (
        UniqueConstraint("patient_id", "medication_id"),
        CheckConstraint(_in("severity", ALLERGY_SEVERITIES), name="severity"),
        CheckConstraint(_in("category", ALLERGY_CATEGORIES), name="category"),
        CheckConstraint(_in("criticality", ALLERGY_CRITICALITIES), name="criticality"),
        CheckConstraint("medication_id IS NOT NULL OR substance IS NOT NULL", name="what"),
    )

    allergy_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.patient_id", ondelete="CASCADE"), index=True
    )
    medication_id: Mapped[int | None] = mapped_column(
        ForeignKey("medications.medication_id"), index=True
    )
    reaction: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str | None] = mapped_column(String(10))
    noted_on: Mapped[dt.date] = mapped_column(Date)
    substance: Mapped[str | None] = mapped_column(String(200))
    substance_code: Mapped[str | None] = mapped_column(String(40))
    substance_system: Mapped[str | None] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(12), server_default="medication")
    criticality: Mapped[str | None] = mapped_column(String(20))


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("start_time < end_time", name="start_before_end"),
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status"),
        Index("ix_appointments_patient_id_start_time", "patient_id", "start_time"),
        Index("ix_appointments_doctor_id_start_time", "doctor_id", "start_time"),
    )

    appointment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.patient_id", ondelete="CASCADE"))
    doctor_id: Mapped[int] = mapped_column(ForeignKey("doctors.doctor_id"))
    specialty_id: Mapped[int] = mapped_column(ForeignKey("specialties.specialty_id"))
    start_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(Text)


class MedicalRecord(Base):
    __tablename__ = "medical_records"
    __table_args__ = (
        UniqueConstraint("medical_record_id", "patient_id"),
        CheckConstraint(_in("record_type", RECORD_TYPES), name="record_type"),
        CheckConstraint("systolic_pressure BETWEEN 50 AND 260", name="systolic_range"),
        CheckConstraint("diastolic_pressure BETWEEN 25 AND 160", name="diastolic_range"),
        CheckConstraint("diastolic_pressure < systolic_pressure", name="diastolic_below_systolic"),
        CheckConstraint("heart_rate BETWEEN 25 AND 250", name="heart_rate_range"),
        CheckConstraint("respiratory_rate BETWEEN 5 AND 80", name="respiratory_rate_range"),
        CheckConstraint("temperature_c BETWEEN 30 AND 44", name="temperature_range"),
        CheckConstraint("oxygen_saturation BETWEEN 50 AND 100", name="spo2_range"),
        CheckConstraint("weight_kg > 0 AND weight_kg < 400", name="weight_range"),
        CheckConstraint("height_cm > 20 AND height_cm < 260", name="height_range"),
        CheckConstraint(
            "discharge_datetime IS NULL OR discharge_datetime > registration_datetime",
            name="discharge_after_registration",
        ),
        Index("ix_medical_records_patient_id_registration", "patient_id", "registration_datetime"),
    )

    medical_record_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.patient_id", ondelete="CASCADE"))
    doctor_id: Mapped[int] = mapped_column(ForeignKey("doctors.doctor_id"), index=True)
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.appointment_id", ondelete="SET NULL"), index=True
    )
    record_type: Mapped[str] = mapped_column(String(20))
    registration_datetime: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    summary_text: Mapped[str] = mapped_column(Text)
    systolic_pressure: Mapped[int | None] = mapped_column(SmallInteger)
    diastolic_pressure: Mapped[int | None] = mapped_column(SmallInteger)
    heart_rate: Mapped[int | None] = mapped_column(SmallInteger)
    respiratory_rate: Mapped[int | None] = mapped_column(SmallInteger)
    temperature_c: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    oxygen_saturation: Mapped[int | None] = mapped_column(SmallInteger)
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    height_cm: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    # End of a hospitalisation; NULL for other encounters and while the patient is still admitted.
    discharge_datetime: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Where the visit took place (an imported Encounter's serviceProvider), when known.
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.organization_id", ondelete="SET NULL"), index=True
    )


def _record_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["medical_record_id", "patient_id"],
        ["medical_records.medical_record_id", "medical_records.patient_id"],
        ondelete="CASCADE",
        name=None,
    )


class RecordDiagnosis(Base):
    __tablename__ = "record_diagnoses"
    __table_args__ = (
        _record_fk(),
        UniqueConstraint("medical_record_id", "diagnosis_id"),
        CheckConstraint(_in("diagnosis_type", DIAGNOSIS_TYPES), name="diagnosis_type"),
    )

    record_diagnosis_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # NULL for an imported condition recorded outside any encounter.
    medical_record_id: Mapped[int | None] = mapped_column(BigInteger)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.patient_id", ondelete="CASCADE"), index=True
    )
    diagnosis_id: Mapped[int] = mapped_column(ForeignKey("diagnoses.diagnosis_id"), index=True)
    diagnosis_type: Mapped[str] = mapped_column(String(12))
    # An imported condition's FHIR clinical status (active, resolved, …) and its dates.
    clinical_status: Mapped[str | None] = mapped_column(String(20))
    onset_date: Mapped[dt.date | None] = mapped_column(Date)
    abatement_date: Mapped[dt.date | None] = mapped_column(Date)


class Prescription(Base):
    __tablename__ = "prescriptions"
    __table_args__ = (
        _record_fk(),
        CheckConstraint("duration_days > 0", name="duration_positive"),
        Index("ix_prescriptions_patient_id_prescription_date", "patient_id", "prescription_date"),
    )

    prescription_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # NULL for an imported prescription whose encounter is unknown.
    medical_record_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.patient_id", ondelete="CASCADE"))
    medication_id: Mapped[int] = mapped_column(ForeignKey("medications.medication_id"), index=True)
    diagnosis_id: Mapped[int | None] = mapped_column(ForeignKey("diagnoses.diagnosis_id"))
    dosage: Mapped[str] = mapped_column(String(160))
    frequency: Mapped[str] = mapped_column(String(160))
    duration_days: Mapped[int] = mapped_column(Integer)
    instruction: Mapped[str | None] = mapped_column(Text)
    prescription_date: Mapped[dt.date] = mapped_column(Date)
    # The FHIR status of an imported prescription (active, completed, stopped, …); NULL when
    # seeded, where the duration says whether it is current.
    status: Mapped[str | None] = mapped_column(String(20))
