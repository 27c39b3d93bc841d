"""Hospital discharges, and one `encounter` chunk per medical record.

- `medical_records.discharge_datetime`: when a hospitalisation ended (NULL for other record
  types and for a patient still in hospital); it cannot precede the admission.
- `clinical_chunks.source_type` admits 'encounter': one chunk per visit saying what kind of
  encounter it was, when (local time), with whom and why ("¿cuándo estuvo hospitalizado?",
  "¿quién lo atendió en urgencias?").
- Every patient is queued for re-chunking, so an existing database gains the new chunks (and the
  new keys of the appointment, diagnosis and prescription facts) on the next indexer pass.

The triggers of 0003 already queue a patient on any UPDATE of `medical_records`, so a discharge
written later re-chunks its patient without new triggers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_SOURCE_TYPES = "'demographics', 'allergy', 'diagnosis', 'prescription', 'appointment', " + (
    "'vitals', 'note'"
)
_NEW_SOURCE_TYPES = _OLD_SOURCE_TYPES + ", 'encounter'"


def _source_type_check(types: str) -> None:
    op.drop_constraint(
        op.f("ck_clinical_chunks_source_type"),
        "clinical_chunks",
        schema="smart_health",
        type_="check",
    )
    op.create_check_constraint(
        op.f("ck_clinical_chunks_source_type"),
        "clinical_chunks",
        f"source_type IN ({types})",
        schema="smart_health",
    )


def upgrade() -> None:
    op.add_column(
        "medical_records",
        sa.Column("discharge_datetime", sa.DateTime(timezone=True), nullable=True),
        schema="smart_health",
    )
    op.create_check_constraint(
        op.f("ck_medical_records_discharge_after_registration"),
        "medical_records",
        "discharge_datetime IS NULL OR discharge_datetime > registration_datetime",
        schema="smart_health",
    )
    _source_type_check(_NEW_SOURCE_TYPES)
    op.execute(
        "INSERT INTO smart_health.chunk_queue (patient_id) "
        "SELECT patient_id FROM smart_health.patients "
        "ON CONFLICT (patient_id) DO UPDATE SET enqueued_at = now()"
    )


def downgrade() -> None:
    op.execute("DELETE FROM smart_health.clinical_chunks WHERE source_type = 'encounter'")
    _source_type_check(_OLD_SOURCE_TYPES)
    op.drop_constraint(
        op.f("ck_medical_records_discharge_after_registration"),
        "medical_records",
        schema="smart_health",
        type_="check",
    )
    op.drop_column("medical_records", "discharge_datetime", schema="smart_health")
