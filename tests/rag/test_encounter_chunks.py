"""One `encounter` chunk per medical record: the visit's type, local date and time, doctor,
specialty, principal diagnosis and discharge, in content and in facts (the contract the answer
executor reads); dates are the clinic's (America/Bogota), never UTC."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from smarthealth.config import to_libpq_url
from smarthealth.rag.indexer import embed_pending, sync_queued
from tests.conftest import shared_embedder

BOGOTA = dt.timezone(dt.timedelta(hours=-5))
LABEL = {
    "Urgencias": "Atención de urgencias",
    "Hospitalización": "Hospitalización",
    "Consulta externa": "Consulta externa",
    "Control": "Control",
    "Telemedicina": "Teleconsulta",
}
FACT_KEYS = {
    "date",
    "time",
    "record_type",
    "doctor",
    "doctor_last_name",
    "specialty",
    "icd_code",
    "principal",
    "discharge",
    "days",
    "appointment_id",
}


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_libpq_url(db_url))
    yield connection
    await connection.close()


async def _drain(conn: asyncpg.Connection) -> tuple[int, int]:
    synced = await sync_queued(conn)
    embedded = await embed_pending(conn, shared_embedder())
    return synced.patients, embedded.texts_embedded


# What every encounter chunk must say, computed independently in SQL from the clinical tables.
EXPECTED_SQL = """
SELECT r.medical_record_id, r.patient_id, r.record_type, r.appointment_id,
       to_char(r.registration_datetime AT TIME ZONE 'America/Bogota', 'YYYY-MM-DD') AS date,
       to_char(r.registration_datetime AT TIME ZONE 'America/Bogota', 'HH24:MI') AS time,
       CASE d.gender WHEN 'F' THEN 'Dra. ' ELSE 'Dr. ' END || d.first_name || ' ' || d.last_name
         AS doctor,
       d.last_name AS doctor_last_name,
       CASE WHEN r.appointment_id IS NOT NULL THEN sa.name ELSE
         (SELECT s.name FROM smart_health.doctor_specialties ds
            JOIN smart_health.specialties s USING (specialty_id)
           WHERE ds.doctor_id = d.doctor_id ORDER BY ds.is_primary DESC, s.specialty_id LIMIT 1)
       END AS specialty,
       pd.icd_code, pd.description AS principal,
       to_char(r.discharge_datetime AT TIME ZONE 'America/Bogota', 'YYYY-MM-DD') AS discharge,
       (r.discharge_datetime AT TIME ZONE 'America/Bogota')::date
         - (r.registration_datetime AT TIME ZONE 'America/Bogota')::date AS days,
       c.patient_id AS chunk_patient_id, c.record_id, c.section, c.content, c.facts,
       c.occurred_at = r.registration_datetime AS same_time,
       (SELECT t.text FROM smart_health.embedding_texts t
         WHERE t.text_hash = c.embedding_text_hash) AS embedding_text
FROM smart_health.medical_records r
JOIN smart_health.doctors d USING (doctor_id)
LEFT JOIN smart_health.appointments a ON a.appointment_id = r.appointment_id
LEFT JOIN smart_health.specialties sa ON sa.specialty_id = a.specialty_id
LEFT JOIN LATERAL (
  SELECT g.icd_code, g.description FROM smart_health.record_diagnoses rd
  JOIN smart_health.diagnoses g USING (diagnosis_id)
  WHERE rd.medical_record_id = r.medical_record_id AND rd.diagnosis_type = 'Principal'
  ORDER BY rd.record_diagnosis_id LIMIT 1) pd ON true
LEFT JOIN smart_health.clinical_chunks c
  ON c.source_type = 'encounter' AND c.source_id = r.medical_record_id
"""


def _expected_content(row: asyncpg.Record) -> str:
    stay = ""
    if row["discharge"] is not None:
        unit = "día" if row["days"] == 1 else "días"
        stay = f", egreso el {row['discharge']} ({row['days']} {unit})"
    elif row["record_type"] == "Hospitalización":
        stay = ", sin egreso registrado"
    why = (
        f"Diagnóstico principal: {row['principal']} (CIE-10 {row['icd_code']})."
        if row["icd_code"]
        else "Sin diagnóstico principal registrado."
    )
    return (
        f"{row['date']} {row['time']} · {LABEL[row['record_type']]} con {row['doctor']} "
        f"({row['specialty']}){stay}. {why}"
    )


async def test_every_record_has_one_encounter_chunk_that_matches_it(
    conn: asyncpg.Connection,
) -> None:
    rows = await conn.fetch(EXPECTED_SQL)
    assert {r["record_type"] for r in rows} == set(LABEL)  # every type is seeded
    assert sum(r["discharge"] is not None for r in rows) >= 1
    for row in rows:
        assert row["content"] is not None, row["medical_record_id"]
        facts = json.loads(row["facts"])
        assert set(facts) == FACT_KEYS
        assert facts == {key: row[key] for key in FACT_KEYS}, row["medical_record_id"]
        assert row["content"] == _expected_content(row)
        assert row["chunk_patient_id"] == row["patient_id"]
        assert (row["record_id"], row["section"], row["same_time"]) == (
            row["medical_record_id"],
            0,
            True,
        )
        meaning = f"{LABEL[row['record_type']]} en {row['specialty']} por {row['principal']}"
        assert row["embedding_text"] == meaning


async def test_encounter_meaning_has_no_dates_or_names(conn: asyncpg.Connection) -> None:
    row = await conn.fetchrow(
        """
        SELECT count(*) AS chunks, count(DISTINCT c.embedding_text_hash) AS meanings,
               count(*) FILTER (WHERE t.text ~ '[0-9]{4}-[0-9]{2}' OR t.text ~ 'Dra?\\. ')
                 AS with_date_or_name
        FROM smart_health.clinical_chunks c
        JOIN smart_health.embedding_texts t ON t.text_hash = c.embedding_text_hash
        WHERE c.source_type = 'encounter'
        """
    )
    assert row["with_date_or_name"] == 0
    assert row["meanings"] * 2 < row["chunks"]  # repeated visits share a vector


async def test_other_chunks_carry_the_doctor_surname_and_the_record_type(
    conn: asyncpg.Connection,
) -> None:
    row = await conn.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM smart_health.clinical_chunks c
             JOIN smart_health.appointments a ON a.appointment_id = c.source_id
             JOIN smart_health.doctors d USING (doctor_id)
            WHERE c.source_type = 'appointment'
              AND c.facts->>'doctor_last_name' IS DISTINCT FROM d.last_name) AS appointments,
          (SELECT count(*) FROM smart_health.clinical_chunks c
             JOIN smart_health.medical_records r ON r.medical_record_id = c.record_id
            WHERE c.source_type IN ('diagnosis', 'prescription')
              AND c.facts->>'record_type' IS DISTINCT FROM r.record_type) AS record_types,
          (SELECT count(*) FROM smart_health.clinical_chunks c
            WHERE c.source_type IN ('diagnosis', 'prescription')
              AND c.facts->>'record_type' = 'Hospitalización') AS on_the_ward
        """
    )
    assert (row["appointments"], row["record_types"]) == (0, 0)
    assert row["on_the_ward"] > 0


async def _doctor(
    conn: asyncpg.Connection, first: str, last: str, gender: str, specialty: str
) -> int:
    doctor_id = int(
        await conn.fetchval(
            "INSERT INTO smart_health.doctors (first_name, last_name, gender, medical_license) "
            "VALUES ($1, $2, $3, $4) RETURNING doctor_id",
            first,
            last,
            gender,
            f"TZ-{first[:3]}{last[:3]}",
        )
    )
    await conn.execute(
        "INSERT INTO smart_health.doctor_specialties (doctor_id, specialty_id, is_primary) "
        "SELECT $1, specialty_id, true FROM smart_health.specialties WHERE code = $2",
        doctor_id,
        specialty,
    )
    return doctor_id


RECORD = """
INSERT INTO smart_health.medical_records (patient_id, doctor_id, record_type,
  registration_datetime, discharge_datetime, summary_text, systolic_pressure, diastolic_pressure,
  heart_rate, respiratory_rate, temperature_c, oxygen_saturation, weight_kg, height_cm)
VALUES ($1, $2, $3, $4, $5, $6, 118, 76, 96, 20, 38.4, 96, 64.0, 161.0)
RETURNING medical_record_id
"""


async def _principal(conn: asyncpg.Connection, record_id: int, patient_id: int, icd: str) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO smart_health.record_diagnoses (medical_record_id, patient_id, "
            "diagnosis_id, diagnosis_type) SELECT $1, $2, diagnosis_id, 'Principal' "
            "FROM smart_health.diagnoses WHERE icd_code = $3 RETURNING record_diagnosis_id",
            record_id,
            patient_id,
            icd,
        )
    )


async def _chunk(conn: asyncpg.Connection, source_type: str, source_id: int) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT chunk_id, content, facts, embedding_text_hash, "
        "(SELECT text FROM smart_health.embedding_texts WHERE text_hash = embedding_text_hash) "
        "AS embedding_text FROM smart_health.clinical_chunks "
        "WHERE source_type = $1 AND source_id = $2",
        source_type,
        source_id,
    )
    assert row is not None, (source_type, source_id)
    return {**dict(row), "facts": json.loads(row["facts"])}


async def test_an_evening_visit_keeps_its_bogota_date_in_every_chunk(
    conn: asyncpg.Connection,
) -> None:
    """19:15 in Bogotá on 12 May is 00:15 UTC on 13 May: every chunk must say 12 May."""
    patient_id = await conn.fetchval(
        "SELECT patient_id FROM smart_health.patients ORDER BY patient_id LIMIT 1"
    )
    emergency_doctor = await _doctor(conn, "Ana", "Pérez", "F", "MED_URGENCIAS")
    ward_doctor = await _doctor(conn, "Luis", "Gómez", "M", "MED_INTERNA")
    arrival = dt.datetime(2025, 5, 12, 19, 15, tzinfo=BOGOTA)
    assert arrival.astimezone(dt.UTC).date() == dt.date(2025, 5, 13)
    emergency = await conn.fetchval(
        RECORD,
        patient_id,
        emergency_doctor,
        "Urgencias",
        arrival,
        None,
        "MOTIVO DE CONSULTA: Dolor de garganta y fiebre desde ayer.",
    )
    diagnosis = await _principal(conn, emergency, patient_id, "J02.9")
    prescription = await conn.fetchval(
        "INSERT INTO smart_health.prescriptions (medical_record_id, patient_id, medication_id, "
        "diagnosis_id, dosage, frequency, duration_days, prescription_date) "
        "SELECT $1, $2, m.medication_id, g.diagnosis_id, '1 tableta', 'cada 8 horas', 3, $3 "
        "FROM smart_health.medications m, smart_health.diagnoses g "
        "WHERE m.active_ingredient = 'acetaminofén' AND g.icd_code = 'J02.9' "
        "ORDER BY m.medication_id LIMIT 1 RETURNING prescription_id",
        emergency,
        patient_id,
        dt.date(2025, 5, 12),
    )
    admission = dt.datetime(2025, 5, 12, 21, 40, tzinfo=BOGOTA)
    discharge = dt.datetime(2025, 5, 16, 20, 30, tzinfo=BOGOTA)  # 01:30 UTC on 17 May
    ward = await conn.fetchval(
        RECORD,
        patient_id,
        ward_doctor,
        "Hospitalización",
        admission,
        discharge,
        "MOTIVO DE CONSULTA: Fiebre persistente y dificultad para respirar.",
    )
    await _principal(conn, ward, patient_id, "J18.9")
    assert await _drain(conn) != (0, 0)

    visit = await _chunk(conn, "encounter", emergency)
    assert visit["content"] == (
        "2025-05-12 19:15 · Atención de urgencias con Dra. Ana Pérez (Medicina de urgencias). "
        "Diagnóstico principal: Faringitis aguda, no especificada (CIE-10 J02.9)."
    )
    assert visit["facts"] == {
        "date": "2025-05-12",
        "time": "19:15",
        "record_type": "Urgencias",
        "doctor": "Dra. Ana Pérez",
        "doctor_last_name": "Pérez",
        "specialty": "Medicina de urgencias",
        "icd_code": "J02.9",
        "principal": "Faringitis aguda, no especificada",
        "discharge": None,
        "days": None,
        "appointment_id": None,
    }
    assert visit["embedding_text"] == (
        "Atención de urgencias en Medicina de urgencias por Faringitis aguda, no especificada"
    )
    stay = await _chunk(conn, "encounter", ward)
    assert stay["content"] == (
        "2025-05-12 21:40 · Hospitalización con Dr. Luis Gómez (Medicina interna), egreso el "
        "2025-05-16 (4 días). Diagnóstico principal: Neumonía, no especificada (CIE-10 J18.9)."
    )
    assert (stay["facts"]["date"], stay["facts"]["discharge"], stay["facts"]["days"]) == (
        "2025-05-12",
        "2025-05-16",
        4,
    )

    vitals = await _chunk(conn, "vitals", emergency)
    assert vitals["content"].startswith(
        "2025-05-12 · Signos vitales (Urgencias, Dra. Ana Pérez, Medicina de urgencias)"
    )
    assert vitals["facts"]["date"] == "2025-05-12"
    dx = await _chunk(conn, "diagnosis", diagnosis)
    assert dx["content"].startswith("2025-05-12 · Diagnóstico principal: Faringitis aguda")
    assert (dx["facts"]["date"], dx["facts"]["record_type"]) == ("2025-05-12", "Urgencias")
    rx = await _chunk(conn, "prescription", prescription)
    assert rx["content"].startswith("2025-05-12 · Prescripción: acetaminofén")
    assert (rx["facts"]["start"], rx["facts"]["record_type"]) == ("2025-05-12", "Urgencias")
    note = await conn.fetchval(
        "SELECT content FROM smart_health.clinical_chunks WHERE source_type = 'note' "
        "AND source_id = $1",
        emergency,
    )
    assert note.startswith("2025-05-12 · Nota de urgencias")
    leaked = await conn.fetchval(
        "SELECT count(*) FROM smart_health.clinical_chunks WHERE record_id = ANY($1::bigint[]) "
        "AND (content LIKE '%2025-05-13%' OR facts::text LIKE '%2025-05-13%')",
        [emergency, ward],
    )
    assert leaked == 0


async def test_a_discharge_written_later_rechunks_the_stay(conn: asyncpg.Connection) -> None:
    stay = await conn.fetchrow(
        "SELECT medical_record_id, patient_id, discharge_datetime, "
        "(registration_datetime AT TIME ZONE 'America/Bogota')::date AS admitted "
        "FROM smart_health.medical_records WHERE record_type = 'Hospitalización' "
        "AND discharge_datetime IS NOT NULL ORDER BY medical_record_id LIMIT 1"
    )
    before = await _chunk(conn, "encounter", stay["medical_record_id"])
    await _drain(conn)

    later = stay["discharge_datetime"] + dt.timedelta(days=1)
    await conn.execute(
        "UPDATE smart_health.medical_records SET discharge_datetime = $2 "
        "WHERE medical_record_id = $1",
        stay["medical_record_id"],
        later,
    )
    queued = await conn.fetch("SELECT patient_id FROM smart_health.chunk_queue")
    assert [r["patient_id"] for r in queued] == [stay["patient_id"]]
    patients, embedded = await _drain(conn)
    assert (patients, embedded) == (1, 0)  # same meaning, same vector
    after = await _chunk(conn, "encounter", stay["medical_record_id"])
    day = later.astimezone(BOGOTA).date()
    days = (day - stay["admitted"]).days
    assert after["chunk_id"] == before["chunk_id"]
    assert after["embedding_text_hash"] == before["embedding_text_hash"]
    assert f"egreso el {day.isoformat()} ({days} días)" in after["content"]
    assert (after["facts"]["discharge"], after["facts"]["days"]) == (day.isoformat(), days)
    assert days == before["facts"]["days"] + 1

    await conn.execute(
        "UPDATE smart_health.medical_records SET discharge_datetime = NULL "
        "WHERE medical_record_id = $1",
        stay["medical_record_id"],
    )
    await _drain(conn)
    still = await _chunk(conn, "encounter", stay["medical_record_id"])
    assert ", sin egreso registrado." in still["content"]
    assert (still["facts"]["discharge"], still["facts"]["days"]) == (None, None)


async def test_chunks_written_before_the_new_facts_get_them_when_requeued(
    conn: asyncpg.Connection,
) -> None:
    """What migration 0005 relies on: chunks whose text did not change still get new facts."""
    patient_id = await conn.fetchval(
        "SELECT patient_id FROM smart_health.prescriptions ORDER BY patient_id LIMIT 1"
    )
    # Chunks as the previous version wrote them: no encounter, facts without the new keys, and
    # the hash of the text alone.
    await conn.execute(
        "DELETE FROM smart_health.clinical_chunks WHERE patient_id = $1 "
        "AND source_type = 'encounter'",
        patient_id,
    )
    await conn.execute(
        "UPDATE smart_health.clinical_chunks SET facts = facts - 'record_type' - "
        "'doctor_last_name', content_hash = encode(sha256(convert_to(content, 'UTF8')), 'hex') "
        "WHERE patient_id = $1",
        patient_id,
    )
    await conn.execute("INSERT INTO smart_health.chunk_queue (patient_id) VALUES ($1)", patient_id)
    await _drain(conn)
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE source_type = 'encounter') AS encounters,
               (SELECT count(*) FROM smart_health.medical_records WHERE patient_id = $1)
                 AS records,
               count(*) FILTER (WHERE source_type IN ('diagnosis', 'prescription')
                                  AND NOT facts ? 'record_type') AS without_record_type,
               count(*) FILTER (WHERE source_type = 'appointment'
                                  AND NOT facts ? 'doctor_last_name') AS without_surname
        FROM smart_health.clinical_chunks WHERE patient_id = $1
        """,
        patient_id,
    )
    assert row["encounters"] == row["records"] > 0
    assert (row["without_record_type"], row["without_surname"]) == (0, 0)
