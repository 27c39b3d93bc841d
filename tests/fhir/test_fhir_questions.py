"""Spanish questions about a patient imported from FHIR (English SNOMED CT and LOINC displays):
the planner bridges the languages and the new record kinds (labs, vaccines, procedures, a food
allergy) are answered from the record with citations, through the real `/query/` endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from smarthealth.fhir.importer import import_fhir
from smarthealth.rag.indexer import sync_queued
from tests.conftest import bearer, insert_user, lifespan_client, make_settings
from tests.fhir.synthea_like import patient_bundle

DOCUMENT = "999-00-0007"  # patient_bundle(7): the SSN maps to a cédula (document type 1)


@dataclass
class Asker:
    client: httpx.AsyncClient
    headers: dict[str, str]
    chunks: dict[int, str]

    async def ask(self, question: str) -> tuple[str, list[str]]:
        body = {"document_type_id": 1, "document_number": DOCUMENT, "question": question}
        response = await self.client.post("/query/", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        cited = [self.chunks[s["chunk_id"]] for s in data["sources"]]
        return data["answer"]["text"], cited


@pytest.fixture(scope="module")
async def asker(db_url: str, password_hash: str) -> AsyncIterator[Asker]:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        report = await import_fhir(conn, [("p7.json", json.dumps(patient_bundle(7)).encode())])
        assert report.patients_imported == 1
        await sync_queued(conn)
        chunks = {
            r["chunk_id"]: r["content"]
            for r in await conn.fetch(
                "SELECT c.chunk_id, c.content FROM smart_health.clinical_chunks c "
                "JOIN smart_health.patients p USING (patient_id) WHERE p.document_number = $1",
                DOCUMENT,
            )
        }
    finally:
        await conn.close()
    app: FastAPI = create_app(make_settings(), database_url=db_url)
    user = await insert_user(db_url, password_hash, "clinician")
    async for client in lifespan_client(app):
        yield Asker(client, bearer(app, user), chunks)


async def test_a_snomed_condition_in_english_answers_a_spanish_question(asker: Asker) -> None:
    text, cited = await asker.ask("¿Tiene hipertensión?")
    assert text.startswith("Sí") and "hypertension" in text.lower() and "None" not in text
    assert any("SNOMED CT 59621000" in c for c in cited)
    text, _ = await asker.ask("¿Tiene asma?")
    assert text.startswith("No")


async def test_a_food_allergy(asker: Asker) -> None:
    text, cited = await asker.ask("¿Es alérgico al maní?")
    assert text.startswith("Sí") and "peanut" in text.lower() and cited
    text, _ = await asker.ask("¿Tiene alergia a los mariscos?")
    assert text.startswith("No") and "peanut" in text.lower()  # what the record does hold


async def test_latest_value_and_series_of_a_lab(asker: Asker) -> None:
    text, cited = await asker.ask("¿Cuál fue la última hemoglobina glicosilada?")
    assert "7.1 %" in text and "20/01/2025" in text and "fuera de rango" in text
    assert len(cited) == 1 and "4548-4" in cited[0]
    text, cited = await asker.ask("¿Cómo ha evolucionado la HbA1c?")
    assert "7.9 %" in text and "7.1 %" in text and len(cited) == 2


async def test_vaccines_and_procedures(asker: Asker) -> None:
    text, cited = await asker.ask("¿Qué vacunas tiene?")
    assert "Influenza" in text and cited
    text, _ = await asker.ask("¿Tiene la vacuna de la influenza?")
    assert text.startswith("Sí")
    text, cited = await asker.ask("¿Le han hecho cirugías?")
    assert "Appendectomy" in text and cited
    text, _ = await asker.ask("¿Le hicieron una apendicectomía?")
    assert text.startswith("Sí")


async def test_medications_and_emergency_visit(asker: Asker) -> None:
    text, cited = await asker.ask("¿Qué medicamentos toma?")
    assert "lisinopril" in text.lower() and cited
    text, cited = await asker.ask("¿Cuándo fue su última visita a urgencias?")
    assert "20/01/2025" in text and cited
