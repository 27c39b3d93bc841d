"""Feedback on answers: `chat_feedback`, one 👍 / 👎 per chat turn.

A turn's owner rates it (`rating` up or down), optionally with a reason (only for down:
incorrect, incomplete, wrong_source, other) and a comment; rating it again replaces the row
(`updated_at`), and every change is also an audit row. Deleting a turn deletes its feedback.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_feedback",
        sa.Column("session_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("sequence_chat_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("rating", sa.String(length=4), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("rating IN ('up', 'down')", name="ck_chat_feedback_rating"),
        sa.CheckConstraint(
            "reason IS NULL OR reason IN ('incorrect', 'incomplete', 'wrong_source', 'other')",
            name="ck_chat_feedback_reason",
        ),
        sa.CheckConstraint(
            "reason IS NULL OR rating = 'down'", name="ck_chat_feedback_reason_only_down"
        ),
        sa.ForeignKeyConstraint(
            ["session_id", "sequence_chat_id"],
            ["smart_health.chat_turns.session_id", "smart_health.chat_turns.sequence_chat_id"],
            name="fk_chat_feedback_turn",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["smart_health.users.user_id"],
            name="fk_chat_feedback_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "sequence_chat_id", name="pk_chat_feedback"),
        schema="smart_health",
    )
    op.create_index(
        "ix_chat_feedback_updated_at", "chat_feedback", ["updated_at"], schema="smart_health"
    )
    op.create_index("ix_chat_feedback_user_id", "chat_feedback", ["user_id"], schema="smart_health")
    op.create_index(
        "ix_chat_feedback_patient_id", "chat_feedback", ["patient_id"], schema="smart_health"
    )


def downgrade() -> None:
    op.drop_table("chat_feedback", schema="smart_health")
