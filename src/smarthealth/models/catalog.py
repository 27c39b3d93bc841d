"""Reference data shared by every patient: document types, specialties, diagnoses, medications.

Diagnoses and medications are ICD-10 and ATC catalog entries, or (imported from FHIR) codes of
another system: `code_system` says which; an ICD-10 row keeps its code in `icd_code` (format
checked), an ATC row in `atc_code`, any other in `code`. `display` is the source's own wording.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smarthealth.models.base import Base


class DocumentType(Base):
    __tablename__ = "document_types"

    document_type_id: Mapped[int] = mapped_column(
        SmallInteger, primary_key=True, autoincrement=False
    )
    code: Mapped[str] = mapped_column(String(4), unique=True)
    name: Mapped[str] = mapped_column(String(60))


class Specialty(Base):
    __tablename__ = "specialties"

    specialty_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


DIAGNOSIS_SYSTEMS_CHECK = (
    "(code_system = 'ICD-10') = (icd_code IS NOT NULL) "
    "AND (code_system = 'ICD-10') = (code IS NULL)"
)
MEDICATION_SYSTEMS_CHECK = (
    "(code_system = 'ATC') = (atc_code IS NOT NULL) AND (code_system = 'ATC') = (code IS NULL)"
)


class Diagnosis(Base):
    __tablename__ = "diagnoses"
    __table_args__ = (
        CheckConstraint(r"icd_code ~ '^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$'", name="icd_code_format"),
        CheckConstraint(DIAGNOSIS_SYSTEMS_CHECK, name="code_system"),
        UniqueConstraint("code_system", "code"),
    )

    diagnosis_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    icd_code: Mapped[str | None] = mapped_column(String(8), unique=True)
    description: Mapped[str] = mapped_column(Text)
    code_system: Mapped[str] = mapped_column(String(20), server_default="ICD-10")
    code: Mapped[str | None] = mapped_column(String(40))
    display: Mapped[str | None] = mapped_column(Text)


class Medication(Base):
    __tablename__ = "medications"
    __table_args__ = (
        UniqueConstraint("atc_code", "strength", "form"),
        CheckConstraint("atc_code ~ '^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$'", name="atc_code_format"),
        CheckConstraint("default_duration_days > 0", name="default_duration_positive"),
        CheckConstraint(MEDICATION_SYSTEMS_CHECK, name="code_system"),
        UniqueConstraint("code_system", "code"),
    )

    medication_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    atc_code: Mapped[str | None] = mapped_column(String(7), index=True)
    commercial_name: Mapped[str] = mapped_column(String(120))
    active_ingredient: Mapped[str] = mapped_column(String(160), index=True)
    strength: Mapped[str] = mapped_column(String(80))
    form: Mapped[str] = mapped_column(String(80))
    presentation: Mapped[str] = mapped_column(String(200))
    therapeutic_class: Mapped[str] = mapped_column(String(200))
    route: Mapped[str] = mapped_column(String(40))
    default_dose: Mapped[str] = mapped_column(String(160))
    default_frequency: Mapped[str] = mapped_column(String(160))
    default_duration_days: Mapped[int] = mapped_column(Integer)
    code_system: Mapped[str] = mapped_column(String(20), server_default="ATC")
    code: Mapped[str | None] = mapped_column(String(40))
    display: Mapped[str | None] = mapped_column(Text)
