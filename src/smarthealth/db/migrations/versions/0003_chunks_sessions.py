"""Retrieval chunks kept in sync by triggers, embeddings per distinct text, chat sessions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables whose changes alter a patient's chunks. Statement-level triggers with transition tables
# queue each touched patient once per statement, so a COPY of thousands of rows costs one insert
# per patient, not one per row.
WATCHED = (
    "patients",
    "patient_allergies",
    "appointments",
    "medical_records",
    "record_diagnoses",
    "prescriptions",
)

ENQUEUE_FUNCTION = """
CREATE FUNCTION smart_health.enqueue_changed_patients() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO smart_health.chunk_queue (patient_id)
      SELECT DISTINCT patient_id FROM new_rows
      ON CONFLICT (patient_id) DO UPDATE SET enqueued_at = now();
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO smart_health.chunk_queue (patient_id)
      SELECT DISTINCT o.patient_id FROM old_rows o
      WHERE EXISTS (SELECT 1 FROM smart_health.patients p WHERE p.patient_id = o.patient_id)
      ON CONFLICT (patient_id) DO UPDATE SET enqueued_at = now();
  END IF;
  PERFORM pg_notify('smart_health_chunk_queue', '');
  RETURN NULL;
END $$
"""


def _triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_chunks_ins AFTER INSERT ON smart_health.{table} "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION smart_health.enqueue_changed_patients()",
        f"CREATE TRIGGER {table}_chunks_upd AFTER UPDATE ON smart_health.{table} "
        "REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION smart_health.enqueue_changed_patients()",
        f"CREATE TRIGGER {table}_chunks_del AFTER DELETE ON smart_health.{table} "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION smart_health.enqueue_changed_patients()",
    ]


def upgrade() -> None:
    op.create_table(
        "clinical_chunks",
        sa.Column("chunk_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("source_type", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("section", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("facts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column(
            "search_tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('spanish'::regconfig, search_text)", persisted=True),
            nullable=False,
        ),
        sa.Column("embedding_text_hash", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "source_type IN ('demographics', 'allergy', 'diagnosis', 'prescription', "
            "'appointment', 'vitals', 'note')",
            name=op.f("ck_clinical_chunks_source_type"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["smart_health.patients.patient_id"],
            name=op.f("fk_clinical_chunks_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("chunk_id", name=op.f("pk_clinical_chunks")),
        sa.UniqueConstraint(
            "source_type",
            "source_id",
            "section",
            name=op.f("uq_clinical_chunks_source_type_source_id_section"),
        ),
        schema="smart_health",
    )
    op.create_index(
        "ix_clinical_chunks_patient_id", "clinical_chunks", ["patient_id"], schema="smart_health"
    )
    op.create_index(
        "ix_clinical_chunks_search_tsv",
        "clinical_chunks",
        ["search_tsv"],
        postgresql_using="gin",
        schema="smart_health",
    )
    op.create_table(
        "chunk_queue",
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "enqueued_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_chunk_queue")),
        schema="smart_health",
    )
    op.create_table(
        "embedding_texts",
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("text_hash", name=op.f("pk_embedding_texts")),
        schema="smart_health",
    )
    op.create_table(
        "embedding_cache",
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=False),
        sa.Column("embedding", Vector(), nullable=False),
        sa.PrimaryKeyConstraint("text_hash", "model", name=op.f("pk_embedding_cache")),
        schema="smart_health",
    )
    op.create_table(
        "chat_sessions",
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_activity_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["smart_health.users.user_id"],
            name=op.f("fk_chat_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["smart_health.patients.patient_id"],
            name=op.f("fk_chat_sessions_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_chat_sessions")),
        schema="smart_health",
    )
    op.create_index(
        "ix_chat_sessions_user_id_last_activity",
        "chat_sessions",
        ["user_id", "last_activity_at"],
        schema="smart_health",
    )
    op.create_index(
        "ix_chat_sessions_patient_id", "chat_sessions", ["patient_id"], schema="smart_health"
    )
    op.create_table(
        "chat_turns",
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("sequence_chat_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer_text", sa.Text(), nullable=True),
        sa.Column("intent", sa.String(length=120), nullable=True),
        sa.Column("status", sa.String(length=12), server_default="answered", nullable=False),
        sa.Column("response_json", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["smart_health.chat_sessions.session_id"],
            name=op.f("fk_chat_turns_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "sequence_chat_id", name=op.f("pk_chat_turns")),
        schema="smart_health",
    )
    op.create_index("ix_chat_turns_patient_id", "chat_turns", ["patient_id"], schema="smart_health")
    op.execute(ENQUEUE_FUNCTION)
    for table in WATCHED:
        for statement in _triggers(table):
            op.execute(statement)
    # Patients that already exist get chunks on the next indexer run.
    op.execute(
        "INSERT INTO smart_health.chunk_queue (patient_id) "
        "SELECT patient_id FROM smart_health.patients"
    )


def downgrade() -> None:
    for table in WATCHED:
        for suffix in ("ins", "upd", "del"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_chunks_{suffix} ON smart_health.{table}")
    op.execute("DROP FUNCTION IF EXISTS smart_health.enqueue_changed_patients()")
    op.drop_index("ix_chat_turns_patient_id", table_name="chat_turns", schema="smart_health")
    op.drop_table("chat_turns", schema="smart_health")
    op.drop_index("ix_chat_sessions_patient_id", table_name="chat_sessions", schema="smart_health")
    op.drop_index(
        "ix_chat_sessions_user_id_last_activity",
        table_name="chat_sessions",
        schema="smart_health",
    )
    op.drop_table("chat_sessions", schema="smart_health")
    op.drop_table("embedding_cache", schema="smart_health")
    op.drop_table("embedding_texts", schema="smart_health")
    op.drop_table("chunk_queue", schema="smart_health")
    op.drop_index(
        "ix_clinical_chunks_search_tsv", table_name="clinical_chunks", schema="smart_health"
    )
    op.drop_index(
        "ix_clinical_chunks_patient_id", table_name="clinical_chunks", schema="smart_health"
    )
    op.drop_table("clinical_chunks", schema="smart_health")
