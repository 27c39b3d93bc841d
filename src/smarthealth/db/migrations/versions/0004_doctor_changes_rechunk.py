"""A doctor's name or specialties changing re-chunks the patients they attended.

Chunks name the doctor of each visit, prescription and appointment ("con Dra. Milena Cardozo
(Medicina general)"); 0003 only watched patient-scoped tables, so a corrected name kept the old
one in answers until `embed --rebuild`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statement-level, like 0003: one queue row per patient however many rows a statement touches.
ENQUEUE_FUNCTIONS = (
    """
CREATE FUNCTION smart_health.enqueue_patients_of_doctors(ids integer[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO smart_health.chunk_queue (patient_id)
    SELECT patient_id FROM smart_health.medical_records WHERE doctor_id = ANY(ids)
    UNION
    SELECT patient_id FROM smart_health.appointments WHERE doctor_id = ANY(ids)
  ON CONFLICT (patient_id) DO UPDATE SET enqueued_at = now();
  SELECT pg_notify('smart_health_chunk_queue', '') WHERE cardinality(ids) > 0;
$$
""",
    """
CREATE FUNCTION smart_health.enqueue_changed_doctors() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'doctors' THEN  -- only what chunks show: the name and its title
    PERFORM smart_health.enqueue_patients_of_doctors(ARRAY(
      SELECT n.doctor_id FROM new_rows n JOIN old_rows o USING (doctor_id)
      WHERE (n.first_name, n.last_name, n.gender)
        IS DISTINCT FROM (o.first_name, o.last_name, o.gender)));
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM smart_health.enqueue_patients_of_doctors(ARRAY(SELECT doctor_id FROM new_rows));
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM smart_health.enqueue_patients_of_doctors(ARRAY(SELECT doctor_id FROM old_rows));
  ELSE
    PERFORM smart_health.enqueue_patients_of_doctors(ARRAY(
      SELECT doctor_id FROM new_rows UNION SELECT doctor_id FROM old_rows));
  END IF;
  RETURN NULL;
END $$
""",
)

TRIGGERS = {
    "doctors_chunks_upd": (
        "doctors",
        "UPDATE",
        "REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows",
    ),
    "doctor_specialties_chunks_ins": (
        "doctor_specialties",
        "INSERT",
        "REFERENCING NEW TABLE AS new_rows",
    ),
    "doctor_specialties_chunks_upd": (
        "doctor_specialties",
        "UPDATE",
        "REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows",
    ),
    "doctor_specialties_chunks_del": (
        "doctor_specialties",
        "DELETE",
        "REFERENCING OLD TABLE AS old_rows",
    ),
}


def upgrade() -> None:
    for function in ENQUEUE_FUNCTIONS:
        op.execute(function)
    for name, (table, event, transition) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON smart_health.{table} {transition} "
            "FOR EACH STATEMENT EXECUTE FUNCTION smart_health.enqueue_changed_doctors()"
        )


def downgrade() -> None:
    for name, (table, _, _) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON smart_health.{table}")
    op.execute("DROP FUNCTION IF EXISTS smart_health.enqueue_changed_doctors()")
    op.execute("DROP FUNCTION IF EXISTS smart_health.enqueue_patients_of_doctors(integer[])")
