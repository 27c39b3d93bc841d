"""Chunks follow the clinical tables: triggers queue the patient, the indexer applies the diff,
and unchanged meaning is never re-embedded."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from smarthealth.config import to_libpq_url
from smarthealth.rag.indexer import embed_pending, sync_queued
from tests.conftest import shared_embedder


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_libpq_url(db_url))
    yield connection
    await connection.close()


MODEL = shared_embedder().model_name


async def _drain(conn: asyncpg.Connection) -> tuple[int, int]:
    synced = await sync_queued(conn)
    embedded = await embed_pending(conn, shared_embedder())
    return synced.patients, embedded.texts_embedded


async def test_every_patient_has_chunks_and_every_chunk_an_embedding(
    conn: asyncpg.Connection,
) -> None:
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM smart_health.patients p WHERE NOT EXISTS (
                  SELECT 1 FROM smart_health.clinical_chunks c
                  WHERE c.patient_id = p.patient_id AND c.source_type = 'demographics'))
                 AS without_card,
               (SELECT count(*) FROM smart_health.clinical_chunks c WHERE NOT EXISTS (
                  SELECT 1 FROM smart_health.embedding_cache e
                  WHERE e.text_hash = c.embedding_text_hash AND e.model = $1)) AS unembedded,
               (SELECT count(*) FROM smart_health.chunk_queue) AS queued,
               (SELECT count(DISTINCT vector_dims(embedding)) FROM smart_health.embedding_cache)
                 AS dims,
               (SELECT count(*) FROM smart_health.clinical_chunks) AS chunks,
               (SELECT count(*) FROM smart_health.embedding_cache) AS vectors
        """,
        MODEL,
    )
    counts = dict(row)
    assert counts.pop("vectors") * 5 < counts.pop("chunks")  # repeated facts share a vector
    assert counts == {"without_card": 0, "unembedded": 0, "queued": 0, "dims": 1}


async def test_chunks_belong_to_the_patient_of_their_source_row(conn: asyncpg.Connection) -> None:
    mismatches = await conn.fetchval(
        """
        SELECT count(*) FROM smart_health.clinical_chunks c
        LEFT JOIN smart_health.prescriptions p
               ON c.source_type = 'prescription' AND p.prescription_id = c.source_id
        LEFT JOIN smart_health.record_diagnoses d
               ON c.source_type = 'diagnosis' AND d.record_diagnosis_id = c.source_id
        LEFT JOIN smart_health.medical_records r
               ON c.source_type IN ('note', 'vitals', 'encounter')
              AND r.medical_record_id = c.source_id
        LEFT JOIN smart_health.appointments a
               ON c.source_type = 'appointment' AND a.appointment_id = c.source_id
        LEFT JOIN smart_health.patient_allergies g
               ON c.source_type = 'allergy' AND g.allergy_id = c.source_id
        LEFT JOIN smart_health.observations o
               ON c.source_type = 'observation' AND o.observation_id = c.source_id
        LEFT JOIN smart_health.immunizations i
               ON c.source_type = 'immunization' AND i.immunization_id = c.source_id
        LEFT JOIN smart_health.procedures x
               ON c.source_type = 'procedure' AND x.procedure_id = c.source_id
        WHERE c.patient_id IS DISTINCT FROM coalesce(p.patient_id, d.patient_id, r.patient_id,
                                                     a.patient_id, g.patient_id, o.patient_id,
                                                     i.patient_id, x.patient_id, c.source_id)
        """
    )
    assert mismatches == 0
    kinds = await conn.fetch(
        "SELECT DISTINCT source_type FROM smart_health.clinical_chunks "
        "WHERE source_type IN ('observation', 'immunization', 'procedure')"
    )
    assert len(kinds) == 3  # the seeder's labs, vaccines and procedures are chunked too


async def test_prescription_chunk_carries_class_and_condition(conn: asyncpg.Connection) -> None:
    content = await conn.fetchval(
        "SELECT content FROM smart_health.clinical_chunks WHERE source_type = 'prescription' "
        "AND facts->>'icd_code' IS NOT NULL LIMIT 1"
    )
    assert "Clase terapéutica:" in content and "Indicada para" in content and "CIE-10" in content


async def test_search_text_is_accent_folded(conn: asyncpg.Connection) -> None:
    found = await conn.fetchval(
        "SELECT count(*) FROM smart_health.clinical_chunks "
        "WHERE content LIKE '%ó%' AND search_text LIKE '%ó%'"
    )
    assert found == 0


async def test_new_record_is_chunked_and_only_new_meaning_is_embedded(
    conn: asyncpg.Connection,
) -> None:
    patient = await conn.fetchrow(
        "SELECT patient_id, doctor_id FROM smart_health.medical_records ORDER BY 1 LIMIT 1"
    )
    before = await conn.fetchval(
        "SELECT count(*) FROM smart_health.clinical_chunks WHERE patient_id = $1",
        patient["patient_id"],
    )
    record_id = await conn.fetchval(
        """
        INSERT INTO smart_health.medical_records (patient_id, doctor_id, record_type,
          registration_datetime, summary_text, systolic_pressure, diastolic_pressure, heart_rate,
          respiratory_rate, temperature_c, oxygen_saturation, weight_kg, height_cm)
        VALUES ($1, $2, 'Control', $3, $4, 128, 82, 70, 16, 36.7, 97, 70.0, 168.0)
        RETURNING medical_record_id
        """,
        patient["patient_id"],
        patient["doctor_id"],
        dt.datetime(2026, 6, 10, 9, 30, tzinfo=dt.UTC),
        "MOTIVO DE CONSULTA: Dolor de rodilla tras caminata larga de montaña.",
    )
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM smart_health.chunk_queue WHERE patient_id = $1",
            patient["patient_id"],
        )
        == 1
    )
    patients, embedded = await _drain(conn)
    assert patients == 1
    # The new note's meaning and the visit's ("Control en <specialty>", a control without a
    # diagnosis, which no seeded record is); the vitals text is shared by every record.
    assert embedded == 2
    rows = await conn.fetch(
        "SELECT c.source_type, e.embedding IS NOT NULL AS has_vector "
        "FROM smart_health.clinical_chunks c LEFT JOIN smart_health.embedding_cache e "
        "ON e.text_hash = c.embedding_text_hash AND e.model = $2 "
        "WHERE c.source_id = $1 AND c.source_type IN ('note', 'vitals', 'encounter')",
        record_id,
        MODEL,
    )
    assert {(r["source_type"], r["has_vector"]) for r in rows} == {
        ("note", True),
        ("vitals", True),
        ("encounter", True),
    }
    after = await conn.fetchval(
        "SELECT count(*) FROM smart_health.clinical_chunks WHERE patient_id = $1",
        patient["patient_id"],
    )
    assert after == before + 3


async def test_changed_dose_updates_text_but_keeps_the_embedding(conn: asyncpg.Connection) -> None:
    chunk = await conn.fetchrow(
        "SELECT chunk_id, source_id, embedding_text_hash FROM smart_health.clinical_chunks "
        "WHERE source_type = 'prescription' ORDER BY chunk_id LIMIT 1"
    )
    await conn.execute(
        "UPDATE smart_health.prescriptions SET dosage = '2 tabletas' WHERE prescription_id = $1",
        chunk["source_id"],
    )
    _, embedded = await _drain(conn)
    assert embedded == 0
    after = await conn.fetchrow(
        "SELECT chunk_id, content, embedding_text_hash FROM smart_health.clinical_chunks "
        "WHERE source_type = 'prescription' AND source_id = $1",
        chunk["source_id"],
    )
    assert after["chunk_id"] == chunk["chunk_id"]
    assert "2 tabletas" in after["content"]
    assert after["embedding_text_hash"] == chunk["embedding_text_hash"]


async def test_deleted_allergy_disappears(conn: asyncpg.Connection) -> None:
    allergy = await conn.fetchval("SELECT allergy_id FROM smart_health.patient_allergies LIMIT 1")
    await conn.execute("DELETE FROM smart_health.patient_allergies WHERE allergy_id = $1", allergy)
    await _drain(conn)
    left = await conn.fetchval(
        "SELECT count(*) FROM smart_health.clinical_chunks "
        "WHERE source_type = 'allergy' AND source_id = $1",
        allergy,
    )
    assert left == 0


async def test_nothing_queued_means_nothing_to_do(conn: asyncpg.Connection) -> None:
    assert await _drain(conn) == (0, 0)


async def test_renamed_doctor_is_renamed_in_their_patients_chunks(
    conn: asyncpg.Connection,
) -> None:
    doctor = await conn.fetchrow(
        "SELECT d.doctor_id, d.first_name, d.last_name FROM smart_health.doctors d "
        "WHERE EXISTS (SELECT 1 FROM smart_health.medical_records r "
        "WHERE r.doctor_id = d.doctor_id) ORDER BY d.doctor_id LIMIT 1"
    )
    attended = {
        r["patient_id"]
        for r in await conn.fetch(
            "SELECT patient_id FROM smart_health.medical_records WHERE doctor_id = $1 UNION "
            "SELECT patient_id FROM smart_health.appointments WHERE doctor_id = $1",
            doctor["doctor_id"],
        )
    }
    old_name = f"{doctor['first_name']} {doctor['last_name']}"

    # What chunks do not show (phone, e-mail) queues nobody.
    await conn.execute(
        "UPDATE smart_health.doctors SET phone = '6011234567' WHERE doctor_id = $1",
        doctor["doctor_id"],
    )
    assert await conn.fetchval("SELECT count(*) FROM smart_health.chunk_queue") == 0

    await conn.execute(
        "UPDATE smart_health.doctors SET last_name = 'Zuluaga Restrepo' WHERE doctor_id = $1",
        doctor["doctor_id"],
    )
    queued = {
        r["patient_id"] for r in await conn.fetch("SELECT patient_id FROM smart_health.chunk_queue")
    }
    assert queued == attended
    patients, embedded = await _drain(conn)
    assert patients == len(attended) and embedded == 0  # names never reach embedding texts
    new_name = f"{doctor['first_name']} Zuluaga Restrepo"
    renamed = await conn.fetchval(
        "SELECT count(*) FROM smart_health.clinical_chunks WHERE content LIKE '%' || $1 || '%'",
        new_name,
    )
    stale = await conn.fetchval(
        "SELECT count(*) FROM smart_health.clinical_chunks WHERE content LIKE '%' || $1 || '%'",
        old_name,
    )
    assert renamed > 0 and stale == 0
