"""A patient's answer never contains or cites another patient's chunk, even when two records
are nearly identical (same diagnoses, drugs, notes; only the person differs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from smarthealth.rag.indexer import embed_pending, sync_queued
from tests.conftest import bearer, insert_user, lifespan_client, make_settings, shared_embedder

QUESTIONS = (
    "¿Qué medicamentos tiene prescritos?",
    "¿Tiene alergias?",
    "¿Qué diagnósticos tiene?",
    "¿Cuál fue la última presión arterial?",
    "¿Cuándo es su próxima cita?",
    "Hazme un resumen de la historia clínica",
    "¿Qué le encontraron en el examen físico?",
    "¿Cómo se llama el paciente y qué edad tiene?",
)


OBSERVATION_COLUMNS = (
    "category, code_system, code, display, value_numeric, value_unit, value_text, "
    "reference_low, reference_high, reference_text, interpretation, components, status, "
    "effective_at"
)
IMMUNIZATION_COLUMNS = "code_system, code, display, occurred_at, dose_number, lot_number, status"
PROCEDURE_COLUMNS = "code_system, code, display, performed_at, status"


async def _clone_patient(conn: asyncpg.Connection, source: int) -> tuple[int, str, str]:
    """Copy a patient's whole history to a new person; returns (id, document, full name)."""
    twin = await conn.fetchval(
        """
        INSERT INTO smart_health.patients (document_type_id, document_number, first_name,
          middle_name, first_surname, second_surname, birth_date, gender, blood_type, city)
        SELECT document_type_id, 'GEM-' || patient_id, 'Gemelina', NULL, 'Duplicada',
               'Prueba', birth_date, gender, blood_type, city
        FROM smart_health.patients WHERE patient_id = $1 RETURNING patient_id
        """,
        source,
    )
    await conn.execute(
        """
        INSERT INTO smart_health.patient_allergies (patient_id, medication_id, reaction,
          severity, noted_on, substance, substance_code, substance_system, category, criticality)
        SELECT $2, medication_id, reaction, severity, noted_on, substance, substance_code,
               substance_system, category, criticality
        FROM smart_health.patient_allergies WHERE patient_id = $1
        """,
        source,
        twin,
    )
    await conn.execute(
        """
        INSERT INTO smart_health.appointments (patient_id, doctor_id, specialty_id, start_time,
          end_time, status, reason)
        SELECT $2, doctor_id, specialty_id, start_time, end_time, status, reason
        FROM smart_health.appointments WHERE patient_id = $1
        """,
        source,
        twin,
    )
    records = await conn.fetch(
        "SELECT * FROM smart_health.medical_records WHERE patient_id = $1", source
    )
    for record in records:
        new_id = await conn.fetchval(
            """
            INSERT INTO smart_health.medical_records (patient_id, doctor_id, record_type,
              registration_datetime, summary_text, systolic_pressure, diastolic_pressure,
              heart_rate, respiratory_rate, temperature_c, oxygen_saturation, weight_kg,
              height_cm)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            RETURNING medical_record_id
            """,
            twin,
            record["doctor_id"],
            record["record_type"],
            record["registration_datetime"],
            record["summary_text"],
            record["systolic_pressure"],
            record["diastolic_pressure"],
            record["heart_rate"],
            record["respiratory_rate"],
            record["temperature_c"],
            record["oxygen_saturation"],
            record["weight_kg"],
            record["height_cm"],
        )
        for table, columns in (
            ("record_diagnoses", "diagnosis_id, diagnosis_type"),
            (
                "prescriptions",
                "medication_id, diagnosis_id, dosage, frequency, duration_days, "
                "instruction, prescription_date",
            ),
            ("observations", OBSERVATION_COLUMNS),
            ("procedures", PROCEDURE_COLUMNS),
        ):
            await conn.execute(
                f"INSERT INTO smart_health.{table} (medical_record_id, patient_id, {columns}) "
                f"SELECT $2, $3, {columns} FROM smart_health.{table} "
                "WHERE medical_record_id = $1",
                record["medical_record_id"],
                new_id,
                twin,
            )
    for table, columns in (
        ("observations", OBSERVATION_COLUMNS),
        ("immunizations", IMMUNIZATION_COLUMNS),
        ("procedures", PROCEDURE_COLUMNS),
    ):  # labs, vaccines and procedures outside a visit
        await conn.execute(
            f"INSERT INTO smart_health.{table} (patient_id, {columns}) "
            f"SELECT $2, {columns} FROM smart_health.{table} "
            "WHERE patient_id = $1 AND medical_record_id IS NULL",
            source,
            twin,
        )
    row = await conn.fetchrow(
        "SELECT document_number FROM smart_health.patients WHERE patient_id = $1", twin
    )
    return twin, row["document_number"], "Gemelina Duplicada Prueba"


@dataclass
class Pair:
    app: FastAPI
    client: httpx.AsyncClient
    patients: dict[int, tuple[int, str, str]]  # id -> (document type, number, full name)


@pytest.fixture(scope="module")
async def pair(db_url: str, password_hash: str) -> AsyncIterator[Pair]:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        source = await conn.fetchrow(
            """
            SELECT p.patient_id, p.document_type_id, p.document_number,
                   concat_ws(' ', p.first_name, p.middle_name, p.first_surname,
                             p.second_surname) AS name
            FROM smart_health.patients p
            WHERE (SELECT count(*) FROM smart_health.prescriptions r
                   WHERE r.patient_id = p.patient_id) >= 3
              AND EXISTS (SELECT 1 FROM smart_health.patient_allergies a
                          WHERE a.patient_id = p.patient_id)
            ORDER BY p.patient_id LIMIT 1
            """
        )
        if source is None:
            source = await conn.fetchrow(
                "SELECT p.patient_id, p.document_type_id, p.document_number, concat_ws(' ', "
                "p.first_name, p.middle_name, p.first_surname, p.second_surname) AS name "
                "FROM smart_health.patients p WHERE EXISTS (SELECT 1 FROM "
                "smart_health.prescriptions r WHERE r.patient_id = p.patient_id) "
                "ORDER BY p.patient_id LIMIT 1"
            )
        twin_id, twin_doc, twin_name = await _clone_patient(conn, source["patient_id"])
        await sync_queued(conn)
        await embed_pending(conn, shared_embedder())
    finally:
        await conn.close()
    app = create_app(make_settings(), database_url=db_url)
    user = await insert_user(db_url, password_hash)
    async for client in lifespan_client(app):
        client.headers.update(bearer(app, user))
        yield Pair(
            app,
            client,
            {
                source["patient_id"]: (
                    source["document_type_id"],
                    source["document_number"],
                    source["name"],
                ),
                twin_id: (source["document_type_id"], twin_doc, twin_name),
            },
        )


async def test_twin_records_are_really_nearly_identical(pair: Pair, db_url: str) -> None:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        rows = await conn.fetch(
            "SELECT patient_id, array_agg(embedding_text_hash ORDER BY embedding_text_hash) AS h "
            "FROM smart_health.clinical_chunks WHERE patient_id = ANY($1::bigint[]) "
            "AND source_type <> 'demographics' GROUP BY 1",
            list(pair.patients),
        )
    finally:
        await conn.close()
    assert len(rows) == 2 and rows[0]["h"] == rows[1]["h"]


@pytest.mark.parametrize("question", QUESTIONS)
async def test_answers_never_cross_between_twins(pair: Pair, db_url: str, question: str) -> None:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        for patient_id, (doc_type, number, name) in pair.patients.items():
            others = [v for k, v in pair.patients.items() if k != patient_id]
            response = await pair.client.post(
                "/query/",
                json={
                    "document_type_id": doc_type,
                    "document_number": number,
                    "question": question,
                },
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["patient_info"]["patient_id"] == patient_id
            assert body["patient_info"]["full_name"] == name
            chunk_ids = [s["chunk_id"] for s in body["sources"]]
            owners = await conn.fetch(
                "SELECT DISTINCT patient_id FROM smart_health.clinical_chunks "
                "WHERE chunk_id = ANY($1::bigint[])",
                chunk_ids,
            )
            assert {r["patient_id"] for r in owners} <= {patient_id}
            text = body["answer"]["text"] + " ".join(s["text"] for s in body["sources"])
            for _, other_number, other_name in others:
                assert other_number not in text
                assert other_name not in text
    finally:
        await conn.close()
