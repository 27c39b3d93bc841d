"""Client-chosen session labels: `chat_sessions.client_label`.

The original chat page names its own sessions (`session-1733400000000`); such a label maps, per
user, to one server session (unique per user), created on first use.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chat_sessions",
        sa.Column("client_label", sa.String(length=128), nullable=True),
        schema="smart_health",
    )
    op.create_unique_constraint(
        "uq_chat_sessions_user_id_client_label",
        "chat_sessions",
        ["user_id", "client_label"],
        schema="smart_health",
    )


def downgrade() -> None:
    op.drop_constraint(
        "uq_chat_sessions_user_id_client_label", "chat_sessions", schema="smart_health"
    )
    op.drop_column("chat_sessions", "client_label", schema="smart_health")
