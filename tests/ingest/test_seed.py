"""Synthetic data: determinism and clinical coherence, checked in SQL on the real database."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from smarthealth.config import to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.ingest.catalogs import load_catalog_files
from smarthealth.ingest.digest import table_digests
from smarthealth.ingest.seed import SeedError, seed_database
from tests.conftest import TEMPLATE_TODAY, drop_database


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_libpq_url(db_url))
    yield connection
    await connection.close()


def _fresh_seeded(pg: EmbeddedPostgres, name: str, seed: int) -> dict[str, str]:
    pg.psql(f'CREATE DATABASE "{name}"', database="postgres")
    try:
        url = to_asyncpg_url(pg.url(name))
        migrate.upgrade(url)
        asyncio.run(seed_database(url, 40, seed, today=dt.date(2026, 3, 1)))
        return asyncio.run(table_digests(url))
    finally:
        drop_database(pg, name)


def test_same_seed_same_rows_different_seed_different_rows(pg: EmbeddedPostgres) -> None:
    first = _fresh_seeded(pg, "det_a", 11)
    second = _fresh_seeded(pg, "det_b", 11)
    other = _fresh_seeded(pg, "det_c", 12)
    assert first == second
    for table in ("patients", "medical_records", "prescriptions", "appointments"):
        assert first[table] != other[table], table


async def test_seeding_twice_is_refused_without_reset(db_url: str) -> None:
    with pytest.raises(SeedError):
        await seed_database(db_url, 5, 1)


async def test_every_prescription_belongs_to_a_record_of_the_same_patient(
    conn: asyncpg.Connection,
) -> None:
    assert await conn.fetchval("SELECT count(*) FROM smart_health.prescriptions") > 50
    mismatched = await conn.fetchval(
        "SELECT count(*) FROM smart_health.prescriptions p JOIN smart_health.medical_records r "
        "USING (medical_record_id) WHERE r.patient_id <> p.patient_id "
        "OR p.prescription_date <> (r.registration_datetime AT TIME ZONE 'America/Bogota')::date"
    )
    assert mismatched == 0


async def test_no_patient_is_prescribed_what_they_are_allergic_to(
    conn: asyncpg.Connection,
) -> None:
    allergic_patients = await conn.fetchval(
        "SELECT count(DISTINCT patient_id) FROM smart_health.patient_allergies"
    )
    assert allergic_patients >= 3
    conflicts = await conn.fetchval(
        """
        SELECT count(*) FROM smart_health.prescriptions p
        JOIN smart_health.medications pm ON pm.medication_id = p.medication_id
        JOIN smart_health.patient_allergies a ON a.patient_id = p.patient_id
        JOIN smart_health.medications am ON am.medication_id = a.medication_id
        WHERE pm.active_ingredient = am.active_ingredient OR pm.atc_code = am.atc_code
        """
    )
    assert conflicts == 0


async def test_vital_signs_are_physiological(conn: asyncpg.Connection) -> None:
    row = await conn.fetchrow(
        """
        SELECT count(*) AS total,
          count(*) FILTER (WHERE systolic_pressure NOT BETWEEN 70 AND 210
                            OR diastolic_pressure NOT BETWEEN 40 AND 125
                            OR diastolic_pressure >= systolic_pressure - 15
                            OR heart_rate NOT BETWEEN 45 AND 180
                            OR respiratory_rate NOT BETWEEN 10 AND 60
                            OR temperature_c NOT BETWEEN 35.5 AND 40.5
                            OR oxygen_saturation NOT BETWEEN 82 AND 100) AS out_of_range,
          count(*) FILTER (WHERE r.registration_datetime - p.birth_date > interval '18 years'
                            AND (weight_kg / (height_cm / 100) ^ 2) NOT BETWEEN 14 AND 55)
            AS implausible_bmi
        FROM smart_health.medical_records r JOIN smart_health.patients p USING (patient_id)
        """
    )
    assert row["total"] > 100
    assert row["out_of_range"] == 0
    assert row["implausible_bmi"] == 0


async def test_hypertensive_patients_have_higher_pressure(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        """
        SELECT (EXISTS (SELECT 1 FROM smart_health.record_diagnoses d
                        JOIN smart_health.diagnoses g USING (diagnosis_id)
                        WHERE d.patient_id = r.patient_id AND g.icd_code LIKE 'I10%')) AS hta,
               avg(systolic_pressure) AS sbp
        FROM smart_health.medical_records r JOIN smart_health.patients p USING (patient_id)
        WHERE r.registration_datetime - p.birth_date > interval '40 years'
        GROUP BY 1
        """
    )
    by_group = {r["hta"]: float(r["sbp"]) for r in rows}
    assert by_group[True] > by_group[False] + 5


async def test_notes_are_spanish_prose_that_name_their_diagnoses(
    conn: asyncpg.Connection,
) -> None:
    missing = await conn.fetchval(
        """
        SELECT count(*) FROM smart_health.record_diagnoses d
        JOIN smart_health.diagnoses g USING (diagnosis_id)
        JOIN smart_health.medical_records r USING (medical_record_id)
        WHERE position(g.icd_code IN r.summary_text) = 0
           OR position(g.description IN r.summary_text) = 0
        """
    )
    assert missing == 0
    sections = await conn.fetchval(
        "SELECT count(*) FROM smart_health.medical_records WHERE NOT (summary_text LIKE "
        "'MOTIVO DE CONSULTA:%' AND summary_text LIKE '%ENFERMEDAD ACTUAL:%' AND summary_text "
        "LIKE '%EXAMEN FÍSICO:%' AND summary_text LIKE '%ANÁLISIS Y PLAN:%')"
    )
    assert sections == 0


async def test_document_type_is_consistent_with_age(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT t.code, extract(year FROM age($1::date, p.birth_date))::int AS age "
        "FROM smart_health.patients p JOIN smart_health.document_types t USING (document_type_id)",
        TEMPLATE_TODAY,
    )
    for row in rows:
        if row["code"] in ("RC", "MS"):
            assert row["age"] < 7, row
        elif row["code"] == "TI":
            assert 7 <= row["age"] < 18, row
        else:
            assert row["age"] >= 18, row
    assert {r["code"] for r in rows} >= {"CC", "TI"}


async def test_population_includes_patients_without_allergies_or_records(
    conn: asyncpg.Connection,
) -> None:
    without_allergies = await conn.fetchval(
        "SELECT count(*) FROM smart_health.patients p WHERE NOT EXISTS "
        "(SELECT 1 FROM smart_health.patient_allergies a WHERE a.patient_id = p.patient_id)"
    )
    without_records = await conn.fetchval(
        "SELECT count(*) FROM smart_health.patients p WHERE NOT EXISTS "
        "(SELECT 1 FROM smart_health.medical_records r WHERE r.patient_id = p.patient_id)"
    )
    assert without_allergies > 0
    assert without_records > 0


async def test_prescriptions_treat_the_diagnosis_they_are_written_for(
    conn: asyncpg.Connection,
) -> None:
    treatments = {c.icd_code: set(c.treatments) for c in load_catalog_files().conditions}
    rows = await conn.fetch(
        "SELECT g.icd_code, m.atc_code FROM smart_health.prescriptions p "
        "JOIN smart_health.diagnoses g USING (diagnosis_id) "
        "JOIN smart_health.medications m USING (medication_id)"
    )
    assert rows
    wrong = [
        (r["icd_code"], r["atc_code"])
        for r in rows
        if r["atc_code"] not in treatments[r["icd_code"]]
    ]
    assert wrong == []


async def test_chronic_conditions_persist_across_visits(conn: asyncpg.Connection) -> None:
    chronic = sorted(c.icd_code for c in load_catalog_files().conditions if c.chronic)
    rows = await conn.fetch(
        """
        SELECT d.patient_id, g.icd_code, count(*) AS visits
        FROM smart_health.record_diagnoses d JOIN smart_health.diagnoses g USING (diagnosis_id)
        WHERE g.icd_code = ANY($1::text[])
        GROUP BY 1, 2
        """,
        chronic,
    )
    assert len(rows) >= 10
    recurring = sum(1 for r in rows if r["visits"] >= 2)
    assert recurring / len(rows) >= 0.8


async def test_appointments_cover_past_and_future(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT status, start_time > $1::timestamptz AS future, count(*) AS n "
        "FROM smart_health.appointments GROUP BY 1, 2",
        dt.datetime.combine(TEMPLATE_TODAY, dt.time(23, 59), dt.UTC),
    )
    seen = {(r["status"], r["future"]) for r in rows}
    assert ("Attended", False) in seen
    assert any(future for status, future in seen if status in ("Scheduled", "Confirmed"))
    assert not any(future for status, future in seen if status in ("Attended", "NoShow"))
    assert not any(not future for status, future in seen if status in ("Scheduled",))
