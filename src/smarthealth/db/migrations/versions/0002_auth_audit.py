"""Login throttling table; audit trail made append-only and hash-chained in the database.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The canonical text of an audit row: every column but the hashes, timestamps in UTC, so the
# digest does not depend on the session's TimeZone. `audit verify` recomputes it the same way.
AUDIT_FUNCTIONS = [
    r"""
CREATE FUNCTION smart_health.audit_row_content(r smart_health.audit_logs) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(
    'id', r.audit_log_id, 'user_id', r.user_id, 'session_id', r.session_id,
    'sequence_chat_id', r.sequence_chat_id, 'document_type_id', r.document_type_id,
    'document_number', r.document_number, 'question', r.question,
    'response_json', r.response_json,
    'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'event_type', r.event_type, 'patient_id', r.patient_id, 'channel', r.channel,
    'client_address', host(r.client_address), 'user_agent', r.user_agent,
    'outcome', r.outcome, 'latency_ms', r.latency_ms, 'source_ids', r.source_ids,
    'details', r.details
  )::text
$$""",
    r"""
CREATE FUNCTION smart_health.audit_row_hash(r smart_health.audit_logs) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(coalesce(r.prev_hash, '') || '|' ||
                                  smart_health.audit_row_content(r), 'UTF8')), 'hex')
$$""",
    r"""
CREATE FUNCTION smart_health.audit_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- One writer at a time extends the chain (held until the transaction ends).
  PERFORM pg_advisory_xact_lock(hashtext('smart_health.audit_logs'));
  -- Ids are taken under the lock, so id order is chain order even with concurrent writers.
  NEW.audit_log_id := nextval(pg_get_serial_sequence('smart_health.audit_logs', 'audit_log_id'));
  NEW.created_at := clock_timestamp();
  SELECT row_hash INTO NEW.prev_hash FROM smart_health.audit_logs
    ORDER BY audit_log_id DESC LIMIT 1;
  NEW.row_hash := smart_health.audit_row_hash(NEW);
  RETURN NEW;
END $$""",
    r"""
CREATE FUNCTION smart_health.audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$""",
    """CREATE TRIGGER audit_logs_chain BEFORE INSERT ON smart_health.audit_logs
  FOR EACH ROW EXECUTE FUNCTION smart_health.audit_chain()""",
    """CREATE TRIGGER audit_logs_no_update BEFORE UPDATE OR DELETE ON smart_health.audit_logs
  FOR EACH ROW EXECUTE FUNCTION smart_health.audit_refuse_change()""",
    """CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON smart_health.audit_logs
  FOR EACH STATEMENT EXECUTE FUNCTION smart_health.audit_refuse_change()""",
]
DROP_AUDIT_FUNCTIONS = [
    "DROP TRIGGER IF EXISTS audit_logs_no_truncate ON smart_health.audit_logs",
    "DROP TRIGGER IF EXISTS audit_logs_no_update ON smart_health.audit_logs",
    "DROP TRIGGER IF EXISTS audit_logs_chain ON smart_health.audit_logs",
    "DROP FUNCTION IF EXISTS smart_health.audit_refuse_change()",
    "DROP FUNCTION IF EXISTS smart_health.audit_chain()",
    "DROP FUNCTION IF EXISTS smart_health.audit_row_hash(smart_health.audit_logs)",
    "DROP FUNCTION IF EXISTS smart_health.audit_row_content(smart_health.audit_logs)",
]


def upgrade() -> None:
    op.add_column(
        "audit_logs",
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="smart_health",
    )
    op.create_table(
        "login_attempts",
        sa.Column("login_attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("client_address", postgresql.INET(), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column(
            "attempted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("login_attempt_id", name=op.f("pk_login_attempts")),
        schema="smart_health",
    )
    op.create_index(
        "ix_login_attempts_email_attempted_at",
        "login_attempts",
        ["email", "attempted_at"],
        schema="smart_health",
    )
    op.create_index(
        "ix_login_attempts_client_address_attempted_at",
        "login_attempts",
        ["client_address", "attempted_at"],
        schema="smart_health",
    )
    for statement in AUDIT_FUNCTIONS:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_AUDIT_FUNCTIONS:
        op.execute(statement)
    op.drop_index(
        "ix_login_attempts_client_address_attempted_at",
        table_name="login_attempts",
        schema="smart_health",
    )
    op.drop_index(
        "ix_login_attempts_email_attempted_at", table_name="login_attempts", schema="smart_health"
    )
    op.drop_table("login_attempts", schema="smart_health")
    op.drop_column("audit_logs", "details", schema="smart_health")
