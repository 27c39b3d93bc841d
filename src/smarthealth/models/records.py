"""Record kinds real charts hold besides visits: laboratory and other measurements,
immunizations, procedures; and the map from imported FHIR resources to local rows.

`organizations` keeps an imported Organization's name, linked from the visit it served.

Vital signs are not observations here: they stay in `medical_records`' columns (the encounter's
row), which is where the seeder writes them and where every vital-sign question reads them.
An imported vital sign without an encounter, or outside the columns' ranges, is an observation.
Children of a record reference it through (medical_record_id, patient_id), as in clinical.py;
the record is optional (a result or a vaccine need not belong to a visit).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from smarthealth.models.base import Base


def _record_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["medical_record_id", "patient_id"],
        ["medical_records.medical_record_id", "medical_records.patient_id"],
        ondelete="CASCADE",
    )


class Observation(Base):
    """A measurement: a number with its unit, or a text/coded value; panels keep their parts
    in `components` (a list of {code, display, value, unit, text})."""

    __tablename__ = "observations"
    __table_args__ = (
        _record_fk(),
        Index("ix_observations_patient_id_effective_at", "patient_id", "effective_at"),
        Index("ix_observations_patient_id_code", "patient_id", "code"),
    )

    observation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.patient_id", ondelete="CASCADE"))
    medical_record_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    category: Mapped[str | None] = mapped_column(String(40))
    code_system: Mapped[str] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(40))
    display: Mapped[str] = mapped_column(Text)
    value_numeric: Mapped[Decimal | None] = mapped_column(Numeric)
    value_unit: Mapped[str | None] = mapped_column(String(40))
    value_text: Mapped[str | None] = mapped_column(Text)
    reference_low: Mapped[Decimal | None] = mapped_column(Numeric)
    reference_high: Mapped[Decimal | None] = mapped_column(Numeric)
    reference_text: Mapped[str | None] = mapped_column(Text)
    interpretation: Mapped[str | None] = mapped_column(String(40))
    components: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    status: Mapped[str | None] = mapped_column(String(20))
    effective_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Immunization(Base):
    __tablename__ = "immunizations"
    __table_args__ = (
        _record_fk(),
        Index("ix_immunizations_patient_id_occurred_at", "patient_id", "occurred_at"),
    )

    immunization_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.patient_id", ondelete="CASCADE"))
    medical_record_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    code_system: Mapped[str] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(40))
    display: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    dose_number: Mapped[int | None] = mapped_column(SmallInteger)
    lot_number: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str | None] = mapped_column(String(20))


class Procedure(Base):
    __tablename__ = "procedures"
    __table_args__ = (
        _record_fk(),
        Index("ix_procedures_patient_id_performed_at", "patient_id", "performed_at"),
    )

    procedure_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.patient_id", ondelete="CASCADE"))
    medical_record_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    code_system: Mapped[str] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(40))
    display: Mapped[str] = mapped_column(Text)
    performed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str | None] = mapped_column(String(20))


class Organization(Base):
    """A care organization by name only (FHIR Organization.name): where a visit took place."""

    __tablename__ = "organizations"

    organization_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class FhirExternalId(Base):
    """Which local row an imported FHIR resource became, and the digest of what was imported:
    the same resource again changes nothing; a changed one (not older) updates its row."""

    __tablename__ = "fhir_external_ids"
    __table_args__ = (Index("ix_fhir_external_ids_local", "local_table", "local_id"),)

    resource_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    local_table: Mapped[str] = mapped_column(String(40))
    local_id: Mapped[int] = mapped_column(BigInteger)
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.patient_id", ondelete="CASCADE"), index=True
    )
    content_hash: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[str | None] = mapped_column(String(64))
    last_updated: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    imported_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
