"""The seeder's labs, vaccines, procedures and non-drug allergies: consistent with the patient's
conditions, at plausible rates, and added without moving any row the seeder made before."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from smarthealth.config import to_libpq_url
from smarthealth.ingest.generator import TABLE_COLUMNS
from tests.conftest import TEMPLATE_TODAY
from tests.ingest.conftest import POPULATION

_MD5 = "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {} t"
# md5 of the columns the seeder writes, over the rows it made for the test template (40 patients,
# seed 7, 2026-06-15) before it made labs, vaccines, procedures and non-drug allergies (commit
# ab41900): the new kinds draw from their own random streams, so these rows — the evaluation's
# truths — never move.
BEFORE_RECORD_KINDS = {
    "doctors": "a51b43f90b4df01a811b10654880953b",
    "doctor_specialties": "cba142f309b0bd744cf5f2cede62939e",
    "patients": "6f0240136faf271ff78bbae3cb95e380",
    "appointments": "8fb311aba7856540fcc5c671608080eb",
    "medical_records": "d6be9665cdbaf5916b64c6442fa80038",
    "record_diagnoses": "316026f737be2c6e2c6ff06c9327cbdb",
    "prescriptions": "9a18e4f9cba1a37c1d002e6bec7cfd9f",
    "patient_allergies": "ddb5f92c3bc61243b028a78050665318",
}
DRUG_ALLERGIES = (
    "(SELECT allergy_id, patient_id, medication_id, reaction, severity, noted_on "
    "FROM smart_health.patient_allergies WHERE medication_id IS NOT NULL)"
)


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_libpq_url(db_url))
    yield connection
    await connection.close()


async def test_the_rows_seeded_before_record_kinds_are_unchanged(
    conn: asyncpg.Connection,
) -> None:
    found = {}
    for table in BEFORE_RECORD_KINDS:
        columns = ", ".join(TABLE_COLUMNS[table])
        source = (
            DRUG_ALLERGIES
            if table == "patient_allergies"
            else f"(SELECT {columns} FROM smart_health.{table})"
        )
        found[table] = await conn.fetchval(_MD5.format(source))
    assert found == BEFORE_RECORD_KINDS
    for table in ("observations", "immunizations", "procedures"):
        assert await conn.fetchval(f"SELECT count(*) FROM smart_health.{table}") > 0, table


async def test_non_drug_allergies_are_numbered_after_every_drug_allergy(
    population: asyncpg.Connection,
) -> None:
    row = await population.fetchrow(
        "SELECT max(allergy_id) FILTER (WHERE medication_id IS NOT NULL) AS drugs, "
        "min(allergy_id) FILTER (WHERE medication_id IS NULL) AS others, "
        "count(DISTINCT patient_id) FILTER (WHERE medication_id IS NULL) AS patients, "
        "bool_and(category IN ('food', 'environment')) FILTER (WHERE medication_id IS NULL) "
        "AS categories FROM smart_health.patient_allergies"
    )
    assert row["others"] > row["drugs"]
    assert 0.05 * POPULATION <= row["patients"] <= 0.2 * POPULATION, row
    assert row["categories"]


async def test_lab_flags_follow_the_reference_range(population: asyncpg.Connection) -> None:
    wrong = await population.fetchval(
        "SELECT count(*) FROM smart_health.observations WHERE interpretation <> CASE "
        "WHEN value_numeric < reference_low THEN 'L' WHEN value_numeric > reference_high THEN 'H' "
        "ELSE 'N' END"
    )
    assert wrong == 0
    flagged = await population.fetchval(
        "SELECT avg((interpretation <> 'N')::int) FROM smart_health.observations"
    )
    assert 0.1 < flagged < 0.6


async def test_diabetics_have_a_glycated_haemoglobin_series_running_high(
    population: asyncpg.Connection,
) -> None:
    rows = await population.fetch(
        """
        SELECT p.patient_id,
               EXISTS (SELECT 1 FROM smart_health.record_diagnoses d
                       JOIN smart_health.diagnoses g USING (diagnosis_id)
                       WHERE d.patient_id = p.patient_id AND g.icd_code = 'E11.9') AS diabetic,
               (SELECT count(*) FROM smart_health.observations o WHERE o.patient_id = p.patient_id
                AND o.code = '4548-4' AND o.effective_at >= $1::date - 365) AS recent,
               (SELECT avg(value_numeric) FROM smart_health.observations o
                WHERE o.patient_id = p.patient_id AND o.code = '4548-4') AS hba1c
        FROM smart_health.patients p
        """,
        TEMPLATE_TODAY,
    )
    diabetics = [r for r in rows if r["diabetic"]]
    assert len(diabetics) >= 15
    with_series = [r for r in diabetics if r["recent"] >= 2]
    assert len(with_series) >= 0.6 * len(diabetics)
    tested = [float(r["hba1c"]) for r in diabetics if r["hba1c"] is not None]
    assert sum(tested) / len(tested) > 6.5
    others = [r for r in rows if not r["diabetic"] and r["hba1c"] is not None]
    assert len(others) <= len(diabetics) // 4  # HbA1c is ordered for diabetes


async def test_lipids_and_tsh_are_ordered_for_their_conditions(
    population: asyncpg.Connection,
) -> None:
    rows = await population.fetch(
        """
        SELECT o.code, bool_and(EXISTS (
                 SELECT 1 FROM smart_health.record_diagnoses d
                 JOIN smart_health.diagnoses g USING (diagnosis_id)
                 WHERE d.medical_record_id = o.medical_record_id
                   AND g.icd_code = ANY($1::text[]))) AS for_the_condition
        FROM smart_health.observations o WHERE o.code = ANY($2::text[]) GROUP BY o.code
        """,
        ["E03.9", "E05.9", "I48", "E78.5", "I10", "I25.1", "E11.9", "Z00.0"],
        ["3016-3", "13457-7"],
    )
    assert {r["code"]: r["for_the_condition"] for r in rows} == {"3016-3": True, "13457-7": True}


async def test_a_visits_labs_are_drawn_before_it_or_during_it(
    population: asyncpg.Connection,
) -> None:
    late = await population.fetchval(
        "SELECT count(*) FROM smart_health.observations o JOIN smart_health.medical_records r "
        "USING (medical_record_id, patient_id) WHERE o.effective_at > r.registration_datetime "
        "+ interval '2 hours' OR o.effective_at < r.registration_datetime - interval '8 days'"
    )
    assert late == 0


async def test_vaccines_at_plausible_rates_and_never_in_the_future(
    population: asyncpg.Connection,
) -> None:
    row = await population.fetchrow(
        """
        SELECT avg((EXISTS (SELECT 1 FROM smart_health.immunizations i
                            WHERE i.patient_id = p.patient_id AND i.code = '141'))::int)
                 FILTER (WHERE age($1::date, p.birth_date) >= interval '65 years') AS old_flu,
               avg((EXISTS (SELECT 1 FROM smart_health.immunizations i
                            WHERE i.patient_id = p.patient_id))::int) AS any_vaccine,
               (SELECT count(*) FROM smart_health.immunizations i
                WHERE i.occurred_at::date >= $1::date) AS future,
               (SELECT count(*) FROM smart_health.immunizations i JOIN smart_health.patients q
                USING (patient_id) WHERE i.code = '165' AND q.gender <> 'F') AS hpv_in_males
        FROM smart_health.patients p
        """,
        TEMPLATE_TODAY,
    )
    assert row["old_flu"] > 0.5
    assert 0.4 < row["any_vaccine"] < 0.95
    assert (row["future"], row["hpv_in_males"]) == (0, 0)


async def test_procedures_belong_to_visits_for_their_condition_or_to_none(
    population: asyncpg.Connection,
) -> None:
    rows = await population.fetch(
        """
        SELECT x.display, x.medical_record_id IS NOT NULL AS at_visit, count(*) AS n
        FROM smart_health.procedures x GROUP BY 1, 2
        """
    )
    found = {(r["display"], r["at_visit"]): r["n"] for r in rows}
    assert found.get(("Electrocardiograma", True), 0) >= 10
    assert found.get(("Apendicectomía", False), 0) >= 3
    assert not any(display == "Apendicectomía" for display, at_visit in found if at_visit)
    ekg_for_heart = await population.fetchval(
        """
        SELECT bool_and(EXISTS (SELECT 1 FROM smart_health.record_diagnoses d
               JOIN smart_health.diagnoses g USING (diagnosis_id)
               WHERE d.medical_record_id = x.medical_record_id AND d.diagnosis_type = 'Principal'
                 AND g.icd_code IN ('I10', 'I25.1', 'I48', 'I50.0', 'I50.1')))
        FROM smart_health.procedures x WHERE x.code = '29303009'
        """
    )
    assert ekg_for_heart
