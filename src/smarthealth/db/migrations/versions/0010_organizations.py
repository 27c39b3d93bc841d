"""Organizations by name: the service provider of a visit (FHIR Encounter.serviceProvider).

- `organizations`: one row per name (an imported Organization keeps only its name, issue 11).
- `medical_records.organization_id`: the organization the visit took place at, when known.
  The seeder writes none; the visit's chunk names the organization when there is one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
S = "smart_health"


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
        schema=S,
    )
    op.add_column(
        "medical_records",
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        schema=S,
    )
    op.create_foreign_key(
        op.f("fk_medical_records_organization_id_organizations"),
        "medical_records",
        "organizations",
        ["organization_id"],
        ["organization_id"],
        source_schema=S,
        referent_schema=S,
        ondelete="SET NULL",
    )
    op.create_index(
        op.f("ix_medical_records_organization_id"),
        "medical_records",
        ["organization_id"],
        schema=S,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_medical_records_organization_id"), "medical_records", schema=S)
    op.drop_constraint(
        op.f("fk_medical_records_organization_id_organizations"),
        "medical_records",
        schema=S,
        type_="foreignkey",
    )
    op.drop_column("medical_records", "organization_id", schema=S)
    op.drop_table("organizations", schema=S)
