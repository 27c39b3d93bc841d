"""A record written while the server runs becomes answerable within seconds, by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import bearer, insert_user, lifespan_client, make_settings


async def _ask_until(
    client: httpx.AsyncClient,
    question: dict[str, Any],
    done: Callable[[dict[str, Any]], bool],
    seconds: float = 20,
) -> dict[str, Any]:
    """Ask again until the answer shows the new record (the indexer runs by itself)."""
    started = time.monotonic()
    while True:
        body: dict[str, Any] = (await client.post("/query/", json=question)).json()
        if done(body) or time.monotonic() - started > seconds:
            return body
        await asyncio.sleep(0.2)


async def test_new_allergy_is_answerable_without_a_manual_step(
    db_url: str, password_hash: str
) -> None:
    app = create_app(make_settings(), database_url=db_url)
    user = await insert_user(db_url, password_hash)
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        patient = await conn.fetchrow(
            "SELECT patient_id, document_type_id, document_number FROM smart_health.patients p "
            "WHERE NOT EXISTS (SELECT 1 FROM smart_health.patient_allergies a "
            "WHERE a.patient_id = p.patient_id) ORDER BY patient_id LIMIT 1"
        )
        drug = await conn.fetchrow(
            "SELECT medication_id, active_ingredient FROM smart_health.medications "
            "WHERE active_ingredient = 'amoxicilina' LIMIT 1"
        )
        question = {
            "document_type_id": patient["document_type_id"],
            "document_number": patient["document_number"],
            "question": "¿Tiene alergias?",
        }
        async for client in lifespan_client(app):
            client.headers.update(bearer(app, user))
            before = (await client.post("/query/", json=question)).json()
            assert before["answer"]["text"].startswith("No tiene alergias registradas")
            await conn.execute(
                "INSERT INTO smart_health.patient_allergies (patient_id, medication_id, reaction, "
                "severity, noted_on) VALUES ($1, $2, 'anafilaxia', 'Severa', '2026-06-01')",
                patient["patient_id"],
                drug["medication_id"],
            )
            started = time.monotonic()
            body = await _ask_until(
                client, question, lambda b: "amoxicilina" in b["answer"]["text"]
            )
            elapsed = time.monotonic() - started
            answer = body["answer"]["text"]
            assert "amoxicilina" in answer and "anafilaxia" in answer, answer
            assert elapsed < 10, f"took {elapsed:.1f} s"
            assert body["sources"][0]["type"] == "allergy"
    finally:
        await conn.close()


async def test_an_evening_emergency_visit_is_answered_with_its_bogota_date(
    db_url: str, password_hash: str
) -> None:
    """Registered at 19:15 in Bogotá (00:15 UTC the next day): the answer, its cited source and
    the source's date all say the local day."""
    app = create_app(make_settings(), database_url=db_url)
    user = await insert_user(db_url, password_hash)
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        patient = await conn.fetchrow(
            "SELECT patient_id, document_type_id, document_number FROM smart_health.patients p "
            "WHERE EXISTS (SELECT 1 FROM smart_health.medical_records r "
            "WHERE r.patient_id = p.patient_id) ORDER BY patient_id DESC LIMIT 1"
        )
        question = {
            "document_type_id": patient["document_type_id"],
            "document_number": patient["document_number"],
            "question": "¿Cuándo fue su última visita a urgencias?",
        }
        async for client in lifespan_client(app):
            client.headers.update(bearer(app, user))
            await conn.execute(
                "INSERT INTO smart_health.medical_records (patient_id, doctor_id, record_type, "
                "registration_datetime, summary_text) SELECT $1, min(doctor_id), 'Urgencias', "
                "timestamptz '2026-06-12 19:15:00-05', 'MOTIVO DE CONSULTA: dolor torácico.' "
                "FROM smart_health.doctors",
                patient["patient_id"],
            )
            body = await _ask_until(
                client,
                question,
                lambda b: bool(b["sources"]) and b["sources"][0]["date"] == "2026-06-12",
            )
            text = body["answer"]["text"]
            assert text.startswith("La última atención de urgencias fue el 12/06/2026 a las 19:15")
            assert "13/06/2026" not in text
            [source] = body["sources"]
            assert source["date"] == "2026-06-12" and source["type"] == "encounter"
            assert source["text"].startswith("2026-06-12 19:15")
    finally:
        await conn.close()
