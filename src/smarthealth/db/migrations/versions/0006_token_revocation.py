"""Tokens issued before a password, role or active-flag change stop working.

- `users.tokens_valid_from`: an access token whose `iat` is earlier than this instant is refused
  (401). Set by the application, with microseconds, whenever an account's password, role or
  active flag changes; NULL (every existing account) means no token has been revoked, so an
  upgrade does not end anyone's session.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("tokens_valid_from", sa.DateTime(timezone=True), nullable=True),
        schema="smart_health",
    )


def downgrade() -> None:
    op.drop_column("users", "tokens_valid_from", schema="smart_health")
