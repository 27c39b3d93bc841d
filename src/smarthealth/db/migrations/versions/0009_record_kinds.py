"""The record kinds real charts hold, and codes of other systems (issue 11).

- `observations` (laboratory results and other measurements), `immunizations`, `procedures`:
  patient-scoped, the encounter's record optional; watched by the chunk triggers of 0003.
- `patient_allergies`: an allergy to any substance (`substance`, its code and system), with its
  `category` (medication, food, environment, biologic) and `criticality`; `medication_id`,
  `reaction` and `severity` become optional. Existing rows are catalog medications.
- `diagnoses` and `medications` carry `code_system`, `code` (a code of a system other than
  ICD-10 / ATC) and `display`; ICD-10 and ATC rows keep their codes and format checks.
- `record_diagnoses.medical_record_id` becomes optional (a condition recorded outside a visit);
  `clinical_status`, `onset_date` and `abatement_date` keep an imported condition's state.
- `prescriptions.medical_record_id` becomes optional (an imported order without its encounter)
  and `prescriptions.status` keeps an imported order's FHIR status.
- `fhir_external_ids`: imported FHIR resource → local row, with the digest of what was
  imported (re-importing the same file changes nothing).
- `clinical_chunks.source_type` admits 'observation', 'immunization' and 'procedure'.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_TABLES = ("observations", "immunizations", "procedures")
_OLD_SOURCE_TYPES = (
    "'demographics', 'allergy', 'diagnosis', 'prescription', 'appointment', 'vitals', 'note', "
    "'encounter'"
)
_NEW_SOURCE_TYPES = _OLD_SOURCE_TYPES + ", 'observation', 'immunization', 'procedure'"
S = "smart_health"


def _source_type_check(types: str) -> None:
    op.drop_constraint(
        op.f("ck_clinical_chunks_source_type"), "clinical_chunks", schema=S, type_="check"
    )
    op.create_check_constraint(
        op.f("ck_clinical_chunks_source_type"),
        "clinical_chunks",
        f"source_type IN ({types})",
        schema=S,
    )


def _record_children(name: str, id_column: str, columns: list[sa.Column[Any]], when: str) -> None:
    op.create_table(
        name,
        sa.Column(id_column, sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("medical_record_id", sa.BigInteger(), nullable=True),
        *columns,
        sa.ForeignKeyConstraint(
            ["medical_record_id", "patient_id"],
            [f"{S}.medical_records.medical_record_id", f"{S}.medical_records.patient_id"],
            name=op.f(f"fk_{name}_medical_record_id_medical_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            [f"{S}.patients.patient_id"],
            name=op.f(f"fk_{name}_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(id_column, name=op.f(f"pk_{name}")),
        schema=S,
    )
    op.create_index(op.f(f"ix_{name}_medical_record_id"), name, ["medical_record_id"], schema=S)
    op.create_index(f"ix_{name}_patient_id_{when}", name, ["patient_id", when], schema=S)


def _coded() -> list[sa.Column[Any]]:
    return [
        sa.Column("code_system", sa.String(length=120), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("display", sa.Text(), nullable=False),
    ]


def _triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_chunks_ins AFTER INSERT ON {S}.{table} "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {S}.enqueue_changed_patients()",
        f"CREATE TRIGGER {table}_chunks_upd AFTER UPDATE ON {S}.{table} "
        "REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {S}.enqueue_changed_patients()",
        f"CREATE TRIGGER {table}_chunks_del AFTER DELETE ON {S}.{table} "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {S}.enqueue_changed_patients()",
    ]


def _code_systems(table: str, default: str, catalog_column: str) -> None:
    op.add_column(
        table,
        sa.Column("code_system", sa.String(length=20), server_default=default, nullable=False),
        schema=S,
    )
    op.add_column(table, sa.Column("code", sa.String(length=40), nullable=True), schema=S)
    op.add_column(table, sa.Column("display", sa.Text(), nullable=True), schema=S)
    op.alter_column(table, catalog_column, nullable=True, schema=S)
    op.create_check_constraint(
        op.f(f"ck_{table}_code_system"),
        table,
        f"(code_system = '{default}') = ({catalog_column} IS NOT NULL) "
        f"AND (code_system = '{default}') = (code IS NULL)",
        schema=S,
    )
    op.create_unique_constraint(
        op.f(f"uq_{table}_code_system_code"), table, ["code_system", "code"], schema=S
    )


def upgrade() -> None:
    _record_children(
        "observations",
        "observation_id",
        [
            sa.Column("category", sa.String(length=40), nullable=True),
            *_coded(),
            sa.Column("value_numeric", sa.Numeric(), nullable=True),
            sa.Column("value_unit", sa.String(length=40), nullable=True),
            sa.Column("value_text", sa.Text(), nullable=True),
            sa.Column("reference_low", sa.Numeric(), nullable=True),
            sa.Column("reference_high", sa.Numeric(), nullable=True),
            sa.Column("reference_text", sa.Text(), nullable=True),
            sa.Column("interpretation", sa.String(length=40), nullable=True),
            sa.Column("components", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
            sa.Column("status", sa.String(length=20), nullable=True),
            sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        ],
        "effective_at",
    )
    op.create_index(
        "ix_observations_patient_id_code", "observations", ["patient_id", "code"], schema=S
    )
    _record_children(
        "immunizations",
        "immunization_id",
        [
            *_coded(),
            sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("dose_number", sa.SmallInteger(), nullable=True),
            sa.Column("lot_number", sa.String(length=40), nullable=True),
            sa.Column("status", sa.String(length=20), nullable=True),
        ],
        "occurred_at",
    )
    _record_children(
        "procedures",
        "procedure_id",
        [
            *_coded(),
            sa.Column("performed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=True),
        ],
        "performed_at",
    )
    op.create_table(
        "fhir_external_ids",
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("local_table", sa.String(length=40), nullable=False),
        sa.Column("local_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=True),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "imported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            [f"{S}.patients.patient_id"],
            name=op.f("fk_fhir_external_ids_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_type", "external_id", name=op.f("pk_fhir_external_ids")),
        schema=S,
    )
    op.create_index(
        "ix_fhir_external_ids_local", "fhir_external_ids", ["local_table", "local_id"], schema=S
    )
    op.create_index(
        op.f("ix_fhir_external_ids_patient_id"), "fhir_external_ids", ["patient_id"], schema=S
    )

    # Allergies to anything.
    a = "patient_allergies"
    op.alter_column(a, "medication_id", nullable=True, schema=S)
    op.alter_column(a, "reaction", nullable=True, schema=S)
    op.alter_column(a, "severity", nullable=True, schema=S)
    op.add_column(a, sa.Column("substance", sa.String(length=200), nullable=True), schema=S)
    op.add_column(a, sa.Column("substance_code", sa.String(length=40), nullable=True), schema=S)
    op.add_column(a, sa.Column("substance_system", sa.String(length=120), nullable=True), schema=S)
    op.add_column(
        a,
        sa.Column("category", sa.String(length=12), server_default="medication", nullable=False),
        schema=S,
    )
    op.add_column(a, sa.Column("criticality", sa.String(length=20), nullable=True), schema=S)
    op.create_check_constraint(
        op.f("ck_patient_allergies_category"),
        a,
        "category IN ('medication', 'food', 'environment', 'biologic')",
        schema=S,
    )
    op.create_check_constraint(
        op.f("ck_patient_allergies_criticality"),
        a,
        "criticality IN ('low', 'high', 'unable-to-assess')",
        schema=S,
    )
    op.create_check_constraint(
        op.f("ck_patient_allergies_what"),
        a,
        "medication_id IS NOT NULL OR substance IS NOT NULL",
        schema=S,
    )

    _code_systems("diagnoses", "ICD-10", "icd_code")
    _code_systems("medications", "ATC", "atc_code")

    op.alter_column("prescriptions", "medical_record_id", nullable=True, schema=S)
    op.alter_column("record_diagnoses", "medical_record_id", nullable=True, schema=S)
    op.add_column(
        "record_diagnoses",
        sa.Column("clinical_status", sa.String(length=20), nullable=True),
        schema=S,
    )
    for column in ("onset_date", "abatement_date"):
        op.add_column("record_diagnoses", sa.Column(column, sa.Date(), nullable=True), schema=S)
    op.add_column(
        "prescriptions", sa.Column("status", sa.String(length=20), nullable=True), schema=S
    )

    _source_type_check(_NEW_SOURCE_TYPES)
    for table in NEW_TABLES:
        for statement in _triggers(table):
            op.execute(statement)


def downgrade() -> None:
    for table in NEW_TABLES:
        for suffix in ("ins", "upd", "del"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_chunks_{suffix} ON {S}.{table}")
    op.execute(
        f"DELETE FROM {S}.clinical_chunks "
        "WHERE source_type IN ('observation', 'immunization', 'procedure')"
    )
    _source_type_check(_OLD_SOURCE_TYPES)
    # Rows the old schema cannot hold go (imported ones, and the seeder's non-drug allergies).
    op.execute(f"DELETE FROM {S}.prescriptions WHERE medical_record_id IS NULL")
    op.execute(
        f"DELETE FROM {S}.record_diagnoses WHERE diagnosis_id IN "
        f"(SELECT diagnosis_id FROM {S}.diagnoses WHERE icd_code IS NULL)"
    )
    op.execute(
        f"DELETE FROM {S}.prescriptions WHERE diagnosis_id IN "
        f"(SELECT diagnosis_id FROM {S}.diagnoses WHERE icd_code IS NULL)"
    )
    op.execute(
        f"DELETE FROM {S}.prescriptions WHERE medication_id IN "
        f"(SELECT medication_id FROM {S}.medications WHERE atc_code IS NULL)"
    )
    op.execute(
        f"DELETE FROM {S}.patient_allergies WHERE medication_id IS NULL "
        "OR reaction IS NULL OR severity IS NULL OR medication_id IN "
        f"(SELECT medication_id FROM {S}.medications WHERE atc_code IS NULL)"
    )
    op.execute(f"DELETE FROM {S}.diagnoses WHERE icd_code IS NULL")
    op.execute(f"DELETE FROM {S}.medications WHERE atc_code IS NULL")
    op.execute(f"DELETE FROM {S}.record_diagnoses WHERE medical_record_id IS NULL")
    for column in ("abatement_date", "onset_date", "clinical_status"):
        op.drop_column("record_diagnoses", column, schema=S)
    op.alter_column("record_diagnoses", "medical_record_id", nullable=False, schema=S)
    op.drop_column("prescriptions", "status", schema=S)
    op.alter_column("prescriptions", "medical_record_id", nullable=False, schema=S)
    for table, column in (("diagnoses", "icd_code"), ("medications", "atc_code")):
        op.drop_constraint(op.f(f"uq_{table}_code_system_code"), table, schema=S)
        op.drop_constraint(op.f(f"ck_{table}_code_system"), table, schema=S, type_="check")
        for dropped in ("display", "code", "code_system"):
            op.drop_column(table, dropped, schema=S)
        op.alter_column(table, column, nullable=False, schema=S)
    a = "patient_allergies"
    for name in ("what", "criticality", "category"):
        op.drop_constraint(op.f(f"ck_{a}_{name}"), a, schema=S, type_="check")
    for dropped in ("criticality", "category", "substance_system", "substance_code", "substance"):
        op.drop_column(a, dropped, schema=S)
    for column in ("severity", "reaction", "medication_id"):
        op.alter_column(a, column, nullable=False, schema=S)
    op.drop_table("fhir_external_ids", schema=S)
    for table in reversed(NEW_TABLES):
        op.drop_table(table, schema=S)
