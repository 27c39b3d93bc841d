"""A record written while the server runs becomes answerable within seconds, by itself."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import bearer, insert_user, lifespan_client, make_settings


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
            answer = ""
            while time.monotonic() - started < 20:
                body = (await client.post("/query/", json=question)).json()
                answer = body["answer"]["text"]
                if "amoxicilina" in answer:
                    break
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
            assert "amoxicilina" in answer and "anafilaxia" in answer, answer
            assert elapsed < 10, f"took {elapsed:.1f} s"
            assert body["sources"][0]["type"] == "allergy"
    finally:
        await conn.close()
