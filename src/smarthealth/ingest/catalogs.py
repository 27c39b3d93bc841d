"""The shipped catalogs (CSV/JSON under `ingest/data`) and their idempotent load into the database.

Catalog ids are assigned in file order, so the same files always give the same ids.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import asyncpg

SCHEMA = "smart_health"


@dataclass(frozen=True)
class SpecialtyRow:
    code: str
    name: str


@dataclass(frozen=True)
class DiagnosisRow:
    icd_code: str
    description: str


@dataclass(frozen=True)
class MedicationRow:
    atc_code: str
    commercial_name: str
    active_ingredient: str
    strength: str
    form: str
    presentation: str
    therapeutic_class: str
    route: str
    default_dose: str
    default_frequency: str
    default_duration_days: int


@dataclass(frozen=True)
class Vitals:
    systolic: float
    diastolic: float
    heart_rate: float
    respiratory_rate: float
    temperature: float
    spo2: float
    weight_kg: float


@dataclass(frozen=True)
class Condition:
    """Clinical knowledge used to generate coherent histories for one ICD-10 code."""

    icd_code: str
    label: str  # the common name ("dislipidemia" for "Hiperlipidemia no especificada")
    chronic: bool
    specialty: str
    min_age: int
    max_age: int
    sex: str | None
    weight: float
    treatments: tuple[str, ...]
    treats_label: str
    reasons: tuple[str, ...]
    history: tuple[str, ...]
    findings: tuple[str, ...]
    plan: tuple[str, ...]
    vitals: Vitals
    aliases: tuple[str, ...] = ()  # other names clinicians use ("colesterol alto")


@dataclass(frozen=True)
class Catalogs:
    specialties: tuple[SpecialtyRow, ...]
    diagnoses: tuple[DiagnosisRow, ...]
    medications: tuple[MedicationRow, ...]
    conditions: tuple[Condition, ...]

    @property
    def diagnosis_by_code(self) -> dict[str, DiagnosisRow]:
        return {d.icd_code: d for d in self.diagnoses}


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("smarthealth.ingest").joinpath("data", name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def _condition(raw: dict[str, Any]) -> Condition:
    v = raw["vitals"]
    return Condition(
        icd_code=raw["icd_code"],
        label=raw["label"],
        chronic=bool(raw["chronic"]),
        specialty=raw["specialty"],
        min_age=int(raw["min_age"]),
        max_age=int(raw["max_age"]),
        sex=raw.get("sex"),
        weight=float(raw["weight"]),
        treatments=tuple(raw["treatments"]),
        treats_label=raw["treats_label"],
        reasons=tuple(raw["reasons"]),
        history=tuple(raw["history"]),
        findings=tuple(raw["findings"]),
        plan=tuple(raw["plan"]),
        aliases=tuple(raw.get("aliases", ())),
        vitals=Vitals(
            systolic=float(v["systolic"]),
            diastolic=float(v["diastolic"]),
            heart_rate=float(v["heart_rate"]),
            respiratory_rate=float(v["respiratory_rate"]),
            temperature=float(v["temperature"]),
            spo2=float(v["spo2"]),
            weight_kg=float(v["weight_kg"]),
        ),
    )


@cache
def load_catalog_files() -> Catalogs:
    """Parse the shipped files once per process."""
    specialties = tuple(SpecialtyRow(r["code"], r["name"]) for r in _read_csv("specialties.csv"))
    diagnoses = tuple(
        DiagnosisRow(r["icd_code"], r["description"]) for r in _read_csv("diagnoses.csv")
    )
    medications = tuple(
        MedicationRow(
            atc_code=r["atc_code"],
            commercial_name=r["commercial_name"],
            active_ingredient=r["active_ingredient"],
            strength=r["strength"],
            form=r["form"],
            presentation=r["presentation"],
            therapeutic_class=r["therapeutic_class"],
            route=r["route"],
            default_dose=r["default_dose"],
            default_frequency=r["default_frequency"],
            default_duration_days=int(r["default_duration_days"]),
        )
        for r in _read_csv("medications.csv")
    )
    raw_conditions = json.loads(
        resources.files("smarthealth.ingest").joinpath("data", "conditions.json").read_text("utf-8")
    )
    conditions = tuple(_condition(c) for c in raw_conditions)
    return Catalogs(specialties, diagnoses, medications, conditions)


async def _upsert(
    conn: asyncpg.Connection,
    table: str,
    key: tuple[str, ...],
    columns: list[str],
    rows: list[tuple[Any, ...]],
) -> None:
    """Insert new rows and update changed ones, matching on the natural key (code, not id).

    On an empty database ids follow file order, so a fresh load always gives the same ids.
    """
    staging = f"_stage_{table}"
    await conn.execute(
        f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS "
        f"SELECT {', '.join(columns)} FROM {SCHEMA}.{table} WITH NO DATA"
    )
    await conn.copy_records_to_table(staging, records=rows, columns=columns)
    others = [c for c in columns if c not in key]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
    current = ", ".join(f"{table}.{c}" for c in others)
    incoming = ", ".join(f"EXCLUDED.{c}" for c in others)
    column_list = ", ".join(columns)
    await conn.execute(
        f"INSERT INTO {SCHEMA}.{table} AS {table} ({column_list}) "
        f"SELECT {column_list} FROM {staging} ORDER BY ctid "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} "
        f"WHERE ({current}) IS DISTINCT FROM ({incoming})"
    )


MEDICATION_COLUMNS = [
    "atc_code",
    "commercial_name",
    "active_ingredient",
    "strength",
    "form",
    "presentation",
    "therapeutic_class",
    "route",
    "default_dose",
    "default_frequency",
    "default_duration_days",
]


async def load_catalogs(conn: asyncpg.Connection) -> CatalogIds:
    """Write specialties, diagnoses and medications (idempotent, one transaction) and return
    the database ids of every catalog entry."""
    catalogs = load_catalog_files()
    async with conn.transaction():
        await _upsert(
            conn,
            "specialties",
            ("code",),
            ["code", "name"],
            [(s.code, s.name) for s in catalogs.specialties],
        )
        await _upsert(
            conn,
            "diagnoses",
            ("icd_code",),
            ["icd_code", "description"],
            [(d.icd_code, d.description) for d in catalogs.diagnoses],
        )
        await _upsert(
            conn,
            "medications",
            ("atc_code", "strength", "form"),
            MEDICATION_COLUMNS,
            [tuple(getattr(m, c) for c in MEDICATION_COLUMNS) for m in catalogs.medications],
        )
    return await read_catalog_ids(conn)


@dataclass(frozen=True)
class CatalogIds:
    specialty: dict[str, int]
    diagnosis: dict[str, int]
    medication: dict[tuple[str, str, str], int]


async def read_catalog_ids(conn: asyncpg.Connection) -> CatalogIds:
    specialty = {
        r["code"]: r["specialty_id"]
        for r in await conn.fetch(f"SELECT code, specialty_id FROM {SCHEMA}.specialties")
    }
    diagnosis = {
        r["icd_code"]: r["diagnosis_id"]
        for r in await conn.fetch(f"SELECT icd_code, diagnosis_id FROM {SCHEMA}.diagnoses")
    }
    medication = {
        (r["atc_code"], r["strength"], r["form"]): r["medication_id"]
        for r in await conn.fetch(
            f"SELECT atc_code, strength, form, medication_id FROM {SCHEMA}.medications"
        )
    }
    return CatalogIds(specialty, diagnosis, medication)
