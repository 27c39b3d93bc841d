"""Synthetic data: determinism and clinical coherence, checked in SQL on the real database."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from smarthealth.config import to_libpq_url
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.ingest.catalogs import load_catalog_files
from smarthealth.ingest.digest import table_digests
from smarthealth.ingest.seed import SeedError, seed_database
from tests.conftest import TEMPLATE_TODAY, drop_database, migrated_database


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_libpq_url(db_url))
    yield connection
    await connection.close()


def _fresh_seeded(pg: EmbeddedPostgres, name: str, seed: int) -> dict[str, str]:
    url = migrated_database(pg, name)
    try:
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


async def test_hypertensive_patients_have_higher_pressure(population: asyncpg.Connection) -> None:
    rows = await population.fetch(
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


async def test_emergency_visits_and_hospitalisations_happen_at_realistic_rates(
    population: asyncpg.Connection,
) -> None:
    """About a third of patients visit the emergency room in five years; 5–10 % of adults are
    hospitalised, the old more often than younger adults (`bench/encounter_rates.py`)."""
    row = await population.fetchrow(
        """
        WITH p AS (
          SELECT extract(year FROM age($1::date, p.birth_date))::int AS age,
                 EXISTS (SELECT 1 FROM smart_health.medical_records r WHERE r.patient_id =
                         p.patient_id AND r.record_type = 'Urgencias') AS er,
                 EXISTS (SELECT 1 FROM smart_health.medical_records r WHERE r.patient_id =
                         p.patient_id AND r.record_type = 'Hospitalización') AS hosp
          FROM smart_health.patients p)
        SELECT avg(er::int) AS er,
               avg(hosp::int) FILTER (WHERE age >= 18) AS adults_hosp,
               avg(hosp::int) FILTER (WHERE age >= 65) AS old_hosp,
               avg(hosp::int) FILTER (WHERE age BETWEEN 18 AND 64) AS younger_hosp
        FROM p
        """,
        TEMPLATE_TODAY,
    )
    assert 0.22 <= row["er"] <= 0.40, row
    assert 0.04 <= row["adults_hosp"] <= 0.12, row
    assert row["old_hosp"] > row["younger_hosp"], row


async def test_every_hospitalisation_follows_an_emergency_visit_and_ends_in_a_discharge(
    population: asyncpg.Connection,
) -> None:
    rows = await population.fetch(
        """
        SELECT h.medical_record_id, h.appointment_id, h.discharge_datetime,
               (h.registration_datetime AT TIME ZONE 'America/Bogota')::date AS admitted,
               (h.discharge_datetime AT TIME ZONE 'America/Bogota')::date AS discharged,
               (SELECT g.icd_code FROM smart_health.record_diagnoses d
                  JOIN smart_health.diagnoses g USING (diagnosis_id)
                 WHERE d.medical_record_id = h.medical_record_id
                   AND d.diagnosis_type = 'Principal') AS principal,
               (SELECT array_agg(g.icd_code) FROM smart_health.medical_records e
                  JOIN smart_health.record_diagnoses d USING (medical_record_id)
                  JOIN smart_health.diagnoses g USING (diagnosis_id)
                 WHERE e.patient_id = h.patient_id AND e.record_type = 'Urgencias'
                   AND d.diagnosis_type = 'Principal'
                   AND e.registration_datetime < h.registration_datetime
                   AND e.registration_datetime > h.registration_datetime - interval '7 hours')
                 AS emergency_principal,
               (SELECT count(*) FROM smart_health.medical_records o
                 WHERE o.patient_id = h.patient_id
                   AND o.medical_record_id <> h.medical_record_id
                   AND o.registration_datetime > h.registration_datetime
                   AND o.registration_datetime < coalesce(h.discharge_datetime, 'infinity'))
                 AS visits_during_stay
        FROM smart_health.medical_records h WHERE h.record_type = 'Hospitalización'
        """
    )
    assert len(rows) >= 20
    assert sum(r["discharge_datetime"] is not None for r in rows) >= len(rows) - 3
    for r in rows:
        assert r["appointment_id"] is None, r
        assert r["emergency_principal"] == [r["principal"]], r
        assert r["visits_during_stay"] == 0, r
        if r["discharged"] is None:  # still in hospital: admitted in the last ten days
            assert (TEMPLATE_TODAY - r["admitted"]).days <= 12, r
        else:
            assert 1 <= (r["discharged"] - r["admitted"]).days <= 10, r
            assert r["discharged"] < TEMPLATE_TODAY, r


async def test_decompensations_happen_to_patients_with_the_chronic_disease(
    population: asyncpg.Connection,
) -> None:
    rows = await population.fetch(
        """
        SELECT g.icd_code, bool_and(EXISTS (
                 SELECT 1 FROM smart_health.record_diagnoses c
                   JOIN smart_health.diagnoses cg USING (diagnosis_id)
                  WHERE c.patient_id = d.patient_id AND cg.icd_code = CASE g.icd_code
                    WHEN 'I50.1' THEN 'I50.0' WHEN 'J44.1' THEN 'J44.9' ELSE 'E11.9' END))
                 AS coherent
        FROM smart_health.record_diagnoses d JOIN smart_health.diagnoses g USING (diagnosis_id)
        WHERE g.icd_code IN ('I50.1', 'J44.1', 'E11.5', 'E16.2')
        GROUP BY 1
        """
    )
    assert len(rows) >= 2
    assert all(r["coherent"] for r in rows), rows


async def test_emergency_visits_happen_at_any_hour_with_an_emergency_doctor(
    population: asyncpg.Connection,
) -> None:
    rows = await population.fetch(
        """
        SELECT extract(hour FROM r.registration_datetime AT TIME ZONE 'America/Bogota')::int
                 AS hour, r.appointment_id,
               (SELECT s.code FROM smart_health.doctor_specialties ds
                  JOIN smart_health.specialties s USING (specialty_id)
                 WHERE ds.doctor_id = r.doctor_id AND ds.is_primary) AS specialty
        FROM smart_health.medical_records r WHERE r.record_type = 'Urgencias'
        """
    )
    hours = {r["hour"] for r in rows}
    assert len(hours) >= 20 and hours & {0, 1, 2, 3, 4, 5} and hours & {19, 20, 21, 22}
    assert all(r["appointment_id"] is None for r in rows)
    assert {r["specialty"] for r in rows} == {"MED_URGENCIAS"}


async def test_the_test_template_holds_a_hospitalisation_with_its_discharge(
    conn: asyncpg.Connection,
) -> None:
    stays = await conn.fetchval(
        "SELECT count(*) FROM smart_health.medical_records WHERE record_type = 'Hospitalización' "
        "AND discharge_datetime > registration_datetime"
    )
    emergencies = await conn.fetchval(
        "SELECT count(*) FROM smart_health.medical_records WHERE record_type = 'Urgencias'"
    )
    assert stays >= 1 and emergencies >= 3
