"""The issue's round trip at the level a clinician sees: seeded patients → exported as FHIR R4 →
imported into an empty database → chunked and embedded → the same Spanish questions through the
real `/query/` endpoint give the same answers as in the seeded database."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.fhir.exporter import export_patient
from smarthealth.fhir.importer import import_fhir
from smarthealth.ingest.catalogs import load_catalogs
from tests.conftest import (
    bearer,
    drop_database,
    index_everything,
    insert_user,
    lifespan_client,
    make_settings,
    migrated_database,
)

QUESTIONS = (
    "¿Qué medicamentos tiene prescritos?",
    "¿Tiene alergias?",
    "¿Qué diagnósticos tiene?",
    "¿Cuál fue la última presión arterial?",
    "¿Cuánto pesa?",
    "¿Cuándo fue su última consulta?",
    "¿Cuándo fue la última vez que estuvo en urgencias?",
    "¿Cuándo es su próxima cita?",
    "¿Cuál es su grupo sanguíneo?",
    "¿Cuántos años tiene?",
    "¿Tiene hipertensión?",
    "¿Quién lo atendió en la última consulta?",
    # the record kinds the seeder makes besides visits (issue 11)
    "¿Qué vacunas tiene?",
    "¿Está vacunado contra la influenza?",
    "¿Qué procedimientos le han hecho?",
    "¿Tiene algún examen de laboratorio alterado?",
    "¿Cuál fue la última creatinina?",
    "¿Tiene alergias que no sean a medicamentos?",
)
PATIENTS = 2


@pytest.fixture(scope="module")
def empty_url(pg: EmbeddedPostgres) -> Iterator[str]:
    yield migrated_database(pg, "fhir_roundtrip_answers")
    drop_database(pg, "fhir_roundtrip_answers")


async def _answers(
    url: str, password_hash: str, documents: list[tuple[int, str]]
) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """Each question about each patient: the answer text and the texts of its sources."""
    app = create_app(make_settings(), database_url=url)
    user = await insert_user(url, password_hash, "clinician")
    found: dict[tuple[str, str], tuple[str, list[str]]] = {}
    async for client in lifespan_client(app):
        for type_id, number in documents:
            for question in QUESTIONS:
                body = {
                    "document_type_id": type_id,
                    "document_number": number,
                    "question": question,
                }
                response = await client.post("/query/", json=body, headers=bearer(app, user))
                assert response.status_code == 200, response.text
                data: dict[str, Any] = response.json()
                found[(number, question)] = (
                    data["answer"]["text"],
                    [s["text"] for s in data["sources"]],
                )
    return found


async def test_seeded_exported_imported_gives_the_same_answers(
    db_url: str, empty_url: str, password_hash: str
) -> None:
    source = await asyncpg.connect(to_libpq_url(db_url))
    target = await asyncpg.connect(to_libpq_url(empty_url))
    try:
        await load_catalogs(target)  # the catalogs an empty installation starts with
        rows = await source.fetch(
            "SELECT p.patient_id, p.document_type_id, p.document_number FROM "
            "smart_health.patients p WHERE EXISTS (SELECT 1 FROM smart_health.patient_allergies "
            "a WHERE a.patient_id = p.patient_id) AND EXISTS (SELECT 1 FROM "
            "smart_health.prescriptions r WHERE r.patient_id = p.patient_id) "
            "ORDER BY (SELECT count(DISTINCT t) FROM (SELECT 'o' FROM smart_health.observations "
            "o WHERE o.patient_id = p.patient_id UNION ALL SELECT 'i' FROM "
            "smart_health.immunizations i WHERE i.patient_id = p.patient_id UNION ALL SELECT 'x' "
            "FROM smart_health.procedures x WHERE x.patient_id = p.patient_id) k(t)) DESC, "
            "p.patient_id LIMIT $1",
            PATIENTS,
        )
        assert len(rows) == PATIENTS
        ids = [r["patient_id"] for r in rows]
        for table in ("observations", "immunizations", "procedures"):
            held = await source.fetchval(
                f"SELECT count(*) FROM smart_health.{table} WHERE patient_id = ANY($1::bigint[])",
                ids,
            )
            assert held > 0, table  # the questions about them are answered from the record
        inputs = [
            (f"{r['patient_id']}.json", json.dumps(await export_patient(source, r[0])).encode())
            for r in rows
        ]
        report = await import_fhir(target, inputs)
        assert (report.patients_imported, report.patients_failed) == (PATIENTS, 0), report.as_dict()
    finally:
        await source.close()
        await target.close()
    await index_everything(empty_url)  # chunks (the indexer's queue) and their embeddings
    documents = [(r["document_type_id"], r["document_number"]) for r in rows]
    before = await _answers(db_url, password_hash, documents)
    after = await _answers(empty_url, password_hash, documents)
    assert len(before) == len(QUESTIONS) * PATIENTS
    answered = [k for k, (text, _) in before.items() if re.search(r"\[\d+\]", text)]
    assert len(answered) >= len(before) // 2, before  # most questions are answered, cited
    for key, (text, sources) in before.items():
        if after[key] == (text, sources):
            continue
        # The one difference allowed: facts of the same moment (two drugs prescribed the same
        # day) are listed in chunk-id order, and chunk ids are the order the indexer happened
        # to write them in each database. Same sentences, same sources, another order.
        assert _unordered(after[key][0]) == _unordered(text), key
        assert sorted(after[key][1]) == sorted(sources), key
    exact = sum(after[k] == v for k, v in before.items())
    assert exact >= len(before) - PATIENTS, exact


def _unordered(text: str) -> list[str]:
    """An answer's listed items without their citation numbers, in a fixed order."""
    return sorted(re.split(r"; |: ", re.sub(r" \[\d+\]", "", text).rstrip(".")))
