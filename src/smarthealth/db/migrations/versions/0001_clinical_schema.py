"""Clinical schema: catalogs, patients and their records, users, audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DOCUMENT_TYPES = [
    (1, "CC", "Cédula de ciudadanía"),
    (2, "CE", "Cédula de extranjería"),
    (3, "TI", "Tarjeta de identidad"),
    (4, "PA", "Pasaporte"),
    (5, "RC", "Registro civil"),
    (6, "MS", "Menor sin identificación"),
    (7, "AS", "Adulto sin identificación"),
    (8, "CD", "Carné diplomático"),
]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "diagnoses",
        sa.Column("diagnosis_id", sa.Integer(), nullable=False),
        sa.Column("icd_code", sa.String(length=8), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "icd_code ~ '^[A-Z][0-9]{2}(\\.[0-9A-Z]{1,2})?$'",
            name=op.f("ck_diagnoses_icd_code_format"),
        ),
        sa.PrimaryKeyConstraint("diagnosis_id", name=op.f("pk_diagnoses")),
        sa.UniqueConstraint("icd_code", name=op.f("uq_diagnoses_icd_code")),
        schema="smart_health",
    )
    op.create_table(
        "doctors",
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=False),
        sa.Column("last_name", sa.String(length=80), nullable=False),
        sa.Column("gender", sa.String(length=1), nullable=False),
        sa.Column("medical_license", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=160), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.CheckConstraint("gender IN ('M', 'F', 'O')", name=op.f("ck_doctors_gender")),
        sa.PrimaryKeyConstraint("doctor_id", name=op.f("pk_doctors")),
        sa.UniqueConstraint("medical_license", name=op.f("uq_doctors_medical_license")),
        schema="smart_health",
    )
    op.create_table(
        "document_types",
        sa.Column("document_type_id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(length=4), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("document_type_id", name=op.f("pk_document_types")),
        sa.UniqueConstraint("code", name=op.f("uq_document_types_code")),
        schema="smart_health",
    )
    op.create_table(
        "medications",
        sa.Column("medication_id", sa.Integer(), nullable=False),
        sa.Column("atc_code", sa.String(length=7), nullable=False),
        sa.Column("commercial_name", sa.String(length=120), nullable=False),
        sa.Column("active_ingredient", sa.String(length=160), nullable=False),
        sa.Column("strength", sa.String(length=80), nullable=False),
        sa.Column("form", sa.String(length=80), nullable=False),
        sa.Column("presentation", sa.String(length=200), nullable=False),
        sa.Column("therapeutic_class", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=40), nullable=False),
        sa.Column("default_dose", sa.String(length=160), nullable=False),
        sa.Column("default_frequency", sa.String(length=160), nullable=False),
        sa.Column("default_duration_days", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "atc_code ~ '^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$'",
            name=op.f("ck_medications_atc_code_format"),
        ),
        sa.CheckConstraint(
            "default_duration_days > 0", name=op.f("ck_medications_default_duration_positive")
        ),
        sa.PrimaryKeyConstraint("medication_id", name=op.f("pk_medications")),
        sa.UniqueConstraint(
            "atc_code", "strength", "form", name=op.f("uq_medications_atc_code_strength_form")
        ),
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_medications_active_ingredient"),
        "medications",
        ["active_ingredient"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_medications_atc_code"),
        "medications",
        ["atc_code"],
        unique=False,
        schema="smart_health",
    )
    op.create_table(
        "specialties",
        sa.Column("specialty_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("specialty_id", name=op.f("pk_specialties")),
        sa.UniqueConstraint("code", name=op.f("uq_specialties_code")),
        sa.UniqueConstraint("name", name=op.f("uq_specialties_name")),
        schema="smart_health",
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("full_name", sa.String(length=160), nullable=False),
        sa.Column("role", sa.String(length=12), server_default="clinician", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'clinician', 'auditor')", name=op.f("ck_users_role")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        schema="smart_health",
    )
    op.create_table(
        "audit_logs",
        sa.Column("audit_log_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.UUID(), nullable=True),
        sa.Column("sequence_chat_id", sa.Integer(), nullable=True),
        sa.Column("document_type_id", sa.SmallInteger(), nullable=True),
        sa.Column("document_number", sa.String(length=20), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("response_json", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=8), server_default="rest", nullable=False),
        sa.Column("client_address", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.Column("outcome", sa.String(length=40), server_default="success", nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("source_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=True),
        sa.Column("row_hash", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "channel IN ('rest', 'ws', 'cli', 'system')", name=op.f("ck_audit_logs_channel")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["smart_health.users.user_id"], name=op.f("fk_audit_logs_user_id_users")
        ),
        sa.PrimaryKeyConstraint("audit_log_id", name=op.f("pk_audit_logs")),
        schema="smart_health",
    )
    op.create_index(
        "ix_audit_logs_created_at",
        "audit_logs",
        ["created_at"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        "ix_audit_logs_document",
        "audit_logs",
        ["document_type_id", "document_number"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_audit_logs_event_type"),
        "audit_logs",
        ["event_type"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_audit_logs_patient_id"),
        "audit_logs",
        ["patient_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_audit_logs_session_id"),
        "audit_logs",
        ["session_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        "ix_audit_logs_user_id_created_at",
        "audit_logs",
        ["user_id", "created_at"],
        unique=False,
        schema="smart_health",
    )
    op.create_table(
        "doctor_specialties",
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("specialty_id", sa.Integer(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["smart_health.doctors.doctor_id"],
            name=op.f("fk_doctor_specialties_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["specialty_id"],
            ["smart_health.specialties.specialty_id"],
            name=op.f("fk_doctor_specialties_specialty_id_specialties"),
        ),
        sa.PrimaryKeyConstraint("doctor_id", "specialty_id", name=op.f("pk_doctor_specialties")),
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_doctor_specialties_specialty_id"),
        "doctor_specialties",
        ["specialty_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("document_type_id", sa.SmallInteger(), nullable=False),
        sa.Column("document_number", sa.String(length=20), nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=False),
        sa.Column("middle_name", sa.String(length=80), nullable=True),
        sa.Column("first_surname", sa.String(length=80), nullable=False),
        sa.Column("second_surname", sa.String(length=80), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("gender", sa.String(length=1), nullable=False),
        sa.Column("blood_type", sa.String(length=3), nullable=True),
        sa.Column("email", sa.String(length=160), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=80), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "birth_date > DATE '1900-01-01'", name=op.f("ck_patients_birth_date_range")
        ),
        sa.CheckConstraint(
            "blood_type IN ('O+', 'O-', 'A+', 'A-', 'B+', 'B-', 'AB+', 'AB-')",
            name=op.f("ck_patients_blood_type"),
        ),
        sa.CheckConstraint(
            "document_number ~ '^[A-Za-z0-9-]{3,20}$'",
            name=op.f("ck_patients_document_number_format"),
        ),
        sa.CheckConstraint("gender IN ('M', 'F', 'O')", name=op.f("ck_patients_gender")),
        sa.ForeignKeyConstraint(
            ["document_type_id"],
            ["smart_health.document_types.document_type_id"],
            name=op.f("fk_patients_document_type_id_document_types"),
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_patients")),
        sa.UniqueConstraint(
            "document_type_id",
            "document_number",
            name=op.f("uq_patients_document_type_id_document_number"),
        ),
        schema="smart_health",
    )
    op.create_index(
        "ix_patients_last_names",
        "patients",
        ["first_surname", "second_surname"],
        unique=False,
        schema="smart_health",
    )
    op.create_table(
        "appointments",
        sa.Column("appointment_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("specialty_id", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('Scheduled', 'Confirmed', 'Attended', 'Cancelled', 'NoShow')",
            name=op.f("ck_appointments_status"),
        ),
        sa.CheckConstraint("start_time < end_time", name=op.f("ck_appointments_start_before_end")),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["smart_health.doctors.doctor_id"],
            name=op.f("fk_appointments_doctor_id_doctors"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["smart_health.patients.patient_id"],
            name=op.f("fk_appointments_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["specialty_id"],
            ["smart_health.specialties.specialty_id"],
            name=op.f("fk_appointments_specialty_id_specialties"),
        ),
        sa.PrimaryKeyConstraint("appointment_id", name=op.f("pk_appointments")),
        schema="smart_health",
    )
    op.create_index(
        "ix_appointments_doctor_id_start_time",
        "appointments",
        ["doctor_id", "start_time"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        "ix_appointments_patient_id_start_time",
        "appointments",
        ["patient_id", "start_time"],
        unique=False,
        schema="smart_health",
    )
    op.create_table(
        "patient_allergies",
        sa.Column("allergy_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("medication_id", sa.Integer(), nullable=False),
        sa.Column("reaction", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("noted_on", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "severity IN ('Leve', 'Moderada', 'Severa')", name=op.f("ck_patient_allergies_severity")
        ),
        sa.ForeignKeyConstraint(
            ["medication_id"],
            ["smart_health.medications.medication_id"],
            name=op.f("fk_patient_allergies_medication_id_medications"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["smart_health.patients.patient_id"],
            name=op.f("fk_patient_allergies_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("allergy_id", name=op.f("pk_patient_allergies")),
        sa.UniqueConstraint(
            "patient_id",
            "medication_id",
            name=op.f("uq_patient_allergies_patient_id_medication_id"),
        ),
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_patient_allergies_medication_id"),
        "patient_allergies",
        ["medication_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_patient_allergies_patient_id"),
        "patient_allergies",
        ["patient_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_table(
        "medical_records",
        sa.Column("medical_record_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.BigInteger(), nullable=True),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("registration_datetime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary_text", sa.Text(), nullable=False),
        sa.Column("systolic_pressure", sa.SmallInteger(), nullable=True),
        sa.Column("diastolic_pressure", sa.SmallInteger(), nullable=True),
        sa.Column("heart_rate", sa.SmallInteger(), nullable=True),
        sa.Column("respiratory_rate", sa.SmallInteger(), nullable=True),
        sa.Column("temperature_c", sa.Numeric(precision=4, scale=1), nullable=True),
        sa.Column("oxygen_saturation", sa.SmallInteger(), nullable=True),
        sa.Column("weight_kg", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.Column("height_cm", sa.Numeric(precision=4, scale=1), nullable=True),
        sa.CheckConstraint(
            "record_type IN ('Consulta externa', 'Control', 'Urgencias', 'Hospitalización', "
            "'Telemedicina')",
            name=op.f("ck_medical_records_record_type"),
        ),
        sa.CheckConstraint(
            "diastolic_pressure < systolic_pressure",
            name=op.f("ck_medical_records_diastolic_below_systolic"),
        ),
        sa.CheckConstraint(
            "diastolic_pressure BETWEEN 25 AND 160", name=op.f("ck_medical_records_diastolic_range")
        ),
        sa.CheckConstraint(
            "heart_rate BETWEEN 25 AND 250", name=op.f("ck_medical_records_heart_rate_range")
        ),
        sa.CheckConstraint(
            "height_cm > 20 AND height_cm < 260", name=op.f("ck_medical_records_height_range")
        ),
        sa.CheckConstraint(
            "oxygen_saturation BETWEEN 50 AND 100", name=op.f("ck_medical_records_spo2_range")
        ),
        sa.CheckConstraint(
            "respiratory_rate BETWEEN 5 AND 80",
            name=op.f("ck_medical_records_respiratory_rate_range"),
        ),
        sa.CheckConstraint(
            "systolic_pressure BETWEEN 50 AND 260", name=op.f("ck_medical_records_systolic_range")
        ),
        sa.CheckConstraint(
            "temperature_c BETWEEN 30 AND 44", name=op.f("ck_medical_records_temperature_range")
        ),
        sa.CheckConstraint(
            "weight_kg > 0 AND weight_kg < 400", name=op.f("ck_medical_records_weight_range")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["smart_health.appointments.appointment_id"],
            name=op.f("fk_medical_records_appointment_id_appointments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["smart_health.doctors.doctor_id"],
            name=op.f("fk_medical_records_doctor_id_doctors"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["smart_health.patients.patient_id"],
            name=op.f("fk_medical_records_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("medical_record_id", name=op.f("pk_medical_records")),
        sa.UniqueConstraint(
            "medical_record_id",
            "patient_id",
            name=op.f("uq_medical_records_medical_record_id_patient_id"),
        ),
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_medical_records_appointment_id"),
        "medical_records",
        ["appointment_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_medical_records_doctor_id"),
        "medical_records",
        ["doctor_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        "ix_medical_records_patient_id_registration",
        "medical_records",
        ["patient_id", "registration_datetime"],
        unique=False,
        schema="smart_health",
    )
    op.create_table(
        "prescriptions",
        sa.Column("prescription_id", sa.BigInteger(), nullable=False),
        sa.Column("medical_record_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("medication_id", sa.Integer(), nullable=False),
        sa.Column("diagnosis_id", sa.Integer(), nullable=True),
        sa.Column("dosage", sa.String(length=160), nullable=False),
        sa.Column("frequency", sa.String(length=160), nullable=False),
        sa.Column("duration_days", sa.Integer(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=True),
        sa.Column("prescription_date", sa.Date(), nullable=False),
        sa.CheckConstraint("duration_days > 0", name=op.f("ck_prescriptions_duration_positive")),
        sa.ForeignKeyConstraint(
            ["diagnosis_id"],
            ["smart_health.diagnoses.diagnosis_id"],
            name=op.f("fk_prescriptions_diagnosis_id_diagnoses"),
        ),
        sa.ForeignKeyConstraint(
            ["medical_record_id", "patient_id"],
            [
                "smart_health.medical_records.medical_record_id",
                "smart_health.medical_records.patient_id",
            ],
            name=op.f("fk_prescriptions_medical_record_id_medical_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["medication_id"],
            ["smart_health.medications.medication_id"],
            name=op.f("fk_prescriptions_medication_id_medications"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["smart_health.patients.patient_id"],
            name=op.f("fk_prescriptions_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("prescription_id", name=op.f("pk_prescriptions")),
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_prescriptions_medical_record_id"),
        "prescriptions",
        ["medical_record_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_prescriptions_medication_id"),
        "prescriptions",
        ["medication_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        "ix_prescriptions_patient_id_prescription_date",
        "prescriptions",
        ["patient_id", "prescription_date"],
        unique=False,
        schema="smart_health",
    )
    op.create_table(
        "record_diagnoses",
        sa.Column("record_diagnosis_id", sa.BigInteger(), nullable=False),
        sa.Column("medical_record_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("diagnosis_id", sa.Integer(), nullable=False),
        sa.Column("diagnosis_type", sa.String(length=12), nullable=False),
        sa.CheckConstraint(
            "diagnosis_type IN ('Principal', 'Secondary', 'Differential')",
            name=op.f("ck_record_diagnoses_diagnosis_type"),
        ),
        sa.ForeignKeyConstraint(
            ["diagnosis_id"],
            ["smart_health.diagnoses.diagnosis_id"],
            name=op.f("fk_record_diagnoses_diagnosis_id_diagnoses"),
        ),
        sa.ForeignKeyConstraint(
            ["medical_record_id", "patient_id"],
            [
                "smart_health.medical_records.medical_record_id",
                "smart_health.medical_records.patient_id",
            ],
            name=op.f("fk_record_diagnoses_medical_record_id_medical_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["smart_health.patients.patient_id"],
            name=op.f("fk_record_diagnoses_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("record_diagnosis_id", name=op.f("pk_record_diagnoses")),
        sa.UniqueConstraint(
            "medical_record_id",
            "diagnosis_id",
            name=op.f("uq_record_diagnoses_medical_record_id_diagnosis_id"),
        ),
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_record_diagnoses_diagnosis_id"),
        "record_diagnoses",
        ["diagnosis_id"],
        unique=False,
        schema="smart_health",
    )
    op.create_index(
        op.f("ix_record_diagnoses_patient_id"),
        "record_diagnoses",
        ["patient_id"],
        unique=False,
        schema="smart_health",
    )
    document_types = sa.table(
        "document_types",
        sa.column("document_type_id", sa.SmallInteger),
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        schema="smart_health",
    )
    op.bulk_insert(
        document_types,
        [{"document_type_id": i, "code": c, "name": n} for i, c, n in DOCUMENT_TYPES],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_record_diagnoses_patient_id"), table_name="record_diagnoses", schema="smart_health"
    )
    op.drop_index(
        op.f("ix_record_diagnoses_diagnosis_id"),
        table_name="record_diagnoses",
        schema="smart_health",
    )
    op.drop_table("record_diagnoses", schema="smart_health")
    op.drop_index(
        "ix_prescriptions_patient_id_prescription_date",
        table_name="prescriptions",
        schema="smart_health",
    )
    op.drop_index(
        op.f("ix_prescriptions_medication_id"), table_name="prescriptions", schema="smart_health"
    )
    op.drop_index(
        op.f("ix_prescriptions_medical_record_id"),
        table_name="prescriptions",
        schema="smart_health",
    )
    op.drop_table("prescriptions", schema="smart_health")
    op.drop_index(
        "ix_medical_records_patient_id_registration",
        table_name="medical_records",
        schema="smart_health",
    )
    op.drop_index(
        op.f("ix_medical_records_doctor_id"), table_name="medical_records", schema="smart_health"
    )
    op.drop_index(
        op.f("ix_medical_records_appointment_id"),
        table_name="medical_records",
        schema="smart_health",
    )
    op.drop_table("medical_records", schema="smart_health")
    op.drop_index(
        op.f("ix_patient_allergies_patient_id"),
        table_name="patient_allergies",
        schema="smart_health",
    )
    op.drop_index(
        op.f("ix_patient_allergies_medication_id"),
        table_name="patient_allergies",
        schema="smart_health",
    )
    op.drop_table("patient_allergies", schema="smart_health")
    op.drop_index(
        "ix_appointments_patient_id_start_time", table_name="appointments", schema="smart_health"
    )
    op.drop_index(
        "ix_appointments_doctor_id_start_time", table_name="appointments", schema="smart_health"
    )
    op.drop_table("appointments", schema="smart_health")
    op.drop_index("ix_patients_last_names", table_name="patients", schema="smart_health")
    op.drop_table("patients", schema="smart_health")
    op.drop_index(
        op.f("ix_doctor_specialties_specialty_id"),
        table_name="doctor_specialties",
        schema="smart_health",
    )
    op.drop_table("doctor_specialties", schema="smart_health")
    op.drop_index(
        "ix_audit_logs_user_id_created_at", table_name="audit_logs", schema="smart_health"
    )
    op.drop_index(op.f("ix_audit_logs_session_id"), table_name="audit_logs", schema="smart_health")
    op.drop_index(op.f("ix_audit_logs_patient_id"), table_name="audit_logs", schema="smart_health")
    op.drop_index(op.f("ix_audit_logs_event_type"), table_name="audit_logs", schema="smart_health")
    op.drop_index("ix_audit_logs_document", table_name="audit_logs", schema="smart_health")
    op.drop_index("ix_audit_logs_created_at", table_name="audit_logs", schema="smart_health")
    op.drop_table("audit_logs", schema="smart_health")
    op.drop_table("users", schema="smart_health")
    op.drop_table("specialties", schema="smart_health")
    op.drop_index(op.f("ix_medications_atc_code"), table_name="medications", schema="smart_health")
    op.drop_index(
        op.f("ix_medications_active_ingredient"), table_name="medications", schema="smart_health"
    )
    op.drop_table("medications", schema="smart_health")
    op.drop_table("document_types", schema="smart_health")
    op.drop_table("doctors", schema="smart_health")
    op.drop_table("diagnoses", schema="smart_health")
