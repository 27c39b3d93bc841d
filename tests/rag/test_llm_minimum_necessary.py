"""The minimum necessary reaches an external LLM, and what it says is checked: a real patient of
the seeded test database, the real pipeline over REST, and the fake OpenAI-compatible server
recording every request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import unicodedata
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect

from smarthealth.app import create_app
from smarthealth.auth.tokens import issue_token
from smarthealth.rag.engines.base import AnswerContext, PatientIdentity, PriorTurn, SourceFact
from smarthealth.rag.engines.extractive import ExtractiveEngine
from smarthealth.rag.engines.openai_engine import OpenAIEngine
from smarthealth.rag.text import fold
from tests.conftest import bearer, fetch, insert_user, lifespan_client, make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.live_server import LiveServer

BOGOTA = dt.timezone(dt.timedelta(hours=-5))
KINDS = {
    "demographics",
    "allergy",
    "vitals",
    "note",
    "encounter",
    "diagnosis",
    "prescription",
    "appointment",
}
MONTHS = "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"

# A patient with every identifier filled in and every kind of record.
PATIENT_SQL = """
SELECT p.* FROM smart_health.patients p
WHERE p.middle_name IS NOT NULL AND p.second_surname IS NOT NULL AND p.email IS NOT NULL
  AND p.phone IS NOT NULL AND p.address IS NOT NULL AND p.city IS NOT NULL
  AND EXISTS (SELECT 1 FROM smart_health.patient_allergies x WHERE x.patient_id = p.patient_id)
  AND EXISTS (SELECT 1 FROM smart_health.prescriptions x WHERE x.patient_id = p.patient_id)
  AND EXISTS (SELECT 1 FROM smart_health.record_diagnoses x WHERE x.patient_id = p.patient_id)
  AND EXISTS (SELECT 1 FROM smart_health.medical_records x
              WHERE x.patient_id = p.patient_id AND x.systolic_pressure IS NOT NULL)
  AND EXISTS (SELECT 1 FROM smart_health.appointments x
              WHERE x.patient_id = p.patient_id)
  AND NOT EXISTS (SELECT 1 FROM smart_health.prescriptions x
                  JOIN smart_health.medications m USING (medication_id)
                  WHERE x.patient_id = p.patient_id AND m.active_ingredient LIKE 'warfarina%')
ORDER BY p.patient_id LIMIT 1
"""
DOCTORS_SQL = """
SELECT DISTINCT d.first_name, d.last_name FROM smart_health.doctors d
WHERE d.doctor_id IN (SELECT doctor_id FROM smart_health.medical_records WHERE patient_id = $1
                      UNION SELECT doctor_id FROM smart_health.appointments WHERE patient_id = $1)
"""
CHUNKS_SQL = """
SELECT chunk_id, source_type, occurred_at, content, facts FROM smart_health.clinical_chunks
WHERE patient_id = $1 ORDER BY occurred_at NULLS FIRST, chunk_id
"""


@dataclass
class Patient:
    row: asyncpg.Record
    doctors: list[tuple[str, str]]
    chunks: list[asyncpg.Record]

    @property
    def names(self) -> tuple[str, ...]:
        r = self.row
        parts = (r["first_name"], r["middle_name"], r["first_surname"], r["second_surname"])
        return tuple(p for p in parts if p)

    @property
    def full_name(self) -> str:
        return " ".join(self.names)

    def identity(self) -> PatientIdentity:
        r = self.row
        return PatientIdentity(
            self.full_name, self.names, r["document_number"], r["birth_date"], r["gender"],
            r["phone"], r["email"], r["address"], r["city"],
        )  # fmt: skip

    def leaks(self, text: str) -> list[str]:
        """Every identifier of the patient, and every doctor's name, found in `text`."""
        r = self.row
        found: list[str] = []

        def word(value: str) -> None:
            # as a name is written: capitalised or in capitals, with or without accents
            for variant in {value, value.upper(), _plain(value), _plain(value).upper()}:
                if re.search(rf"(?<!\w){re.escape(variant)}(?!\w)", text):
                    found.append(value)
                    return

        for part in self.names:
            word(part)
        if fold(self.full_name) in fold(text):  # typed in lower case, too
            found.append(self.full_name)
        birth: dt.date = r["birth_date"]
        d, m, y = birth.day, birth.month, birth.year
        for pattern in (
            re.escape(r["document_number"]),
            r"[\s.-]?".join(r["document_number"]),
            rf"{y}-{m:02d}-{d:02d}",
            rf"0?{d}/0?{m}/{y}",
            rf"0?{d}-0?{m}-{y}",
            rf"{d}\s+de\s+{MONTHS.split()[m - 1]}\s+de\s+{y}",
            r"[\s().-]?".join(re.sub(r"\D", "", r["phone"])[-10:]),
            re.escape(r["email"]),
            r"\s+".join(map(re.escape, r["address"].split())),
        ):
            if re.search(rf"(?<![\w]){pattern}(?![\w])", text, re.IGNORECASE):
                found.append(pattern)
        word(r["city"])
        for first, last in self.doctors:
            word(f"{first} {last}")
            word(last)
        if re.search(r"\bDra?\.", text):
            found.append("Dr./Dra.")
        return found


def _plain(text: str) -> str:
    """Without accents ("Gómez" → "Gomez")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@pytest.fixture(scope="module")
async def patient(db_url: str) -> Patient:
    [row] = await fetch(db_url, PATIENT_SQL)
    doctors = [(d["first_name"], d["last_name"]) for d in await fetch(db_url, DOCTORS_SQL, row[0])]
    chunks = await fetch(db_url, CHUNKS_SQL, row["patient_id"])
    return Patient(row, doctors, chunks)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@dataclass
class Api:
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def ask(self, patient: Patient, question: str, **extra: Any) -> dict[str, Any]:
        body = {
            "document_type_id": patient.row["document_type_id"],
            "document_number": patient.row["document_number"],
            "question": question,
            **extra,
        }
        response = await self.client.post("/query/", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
async def api(db_url: str, password_hash: str, fake: FakeOpenAI) -> AsyncIterator[Api]:
    settings = make_settings(
        llm_provider="openai", llm_base_url=fake.base_url, llm_model="gpt-test", llm_timeout=10.0
    )
    app = create_app(settings, database_url=db_url)
    clinician = await insert_user(db_url, password_hash, "clinician")
    async for client in lifespan_client(app):
        yield Api(client, bearer(app, clinician))


def sent_texts(fake: FakeOpenAI) -> list[str]:
    return [
        "\n".join(m["content"] for m in request["json"]["messages"])
        for request in fake.chat_requests
    ]


# -- the minimum necessary -----------------------------------------------------------------------


async def test_every_kind_of_chunk_reaches_the_model_without_identifiers(
    patient: Patient, fake: FakeOpenAI
) -> None:
    """All of the patient's chunks at once, a history that names the patient and a question
    typed with the name: the request carries the record, and no identifier."""
    fake.reset(reply="Respuesta de prueba [1].")
    sources = tuple(
        SourceFact(n, c["chunk_id"], c["source_type"], c["occurred_at"], c["content"],
                   json.loads(c["facts"]) if isinstance(c["facts"], str) else dict(c["facts"]))
        for n, c in enumerate(patient.chunks, start=1)
    )  # fmt: skip
    assert KINDS <= {s.source_type for s in sources}  # (and the labs, vaccines… it has)
    stored = "\n".join(s.content for s in sources)
    assert patient.leaks(stored)  # the stored chunks do name them (and stay as they are)
    birth: dt.date = patient.row["birth_date"]
    context = AnswerContext(
        question=f"¿{patient.full_name.lower()} tiene alergias?",
        patient_name=patient.full_name,
        sources=sources,
        today=dt.date(2026, 6, 15),
        history=(
            PriorTurn(
                "¿Cuál es su documento?",
                f"{patient.full_name}, CC {patient.row['document_number']}, nació el "
                f"{birth:%d/%m/%Y} [1].",
                "demographics",
            ),
        ),
        patient=patient.identity(),
    )
    engine = OpenAIEngine(
        make_settings(llm_provider="openai", llm_base_url=fake.base_url, llm_timeout=10.0),
        ExtractiveEngine(),
    )
    try:
        async for _ in engine.generate(context):
            pass
    finally:
        await engine.aclose()

    [sent] = sent_texts(fake)
    assert patient.leaks(sent) == []
    assert len(re.findall(r'<fuente n="\d+"', sent)) == len(sources)
    # the clinical content is still there: every chunk's kind, values, specialties
    sex = {"F": "femenino", "M": "masculino"}.get(patient.row["gender"], "otro")
    assert f"sexo {sex}" in sent and " años" in sent
    assert "médico de " in sent
    for chunk in patient.chunks:
        if chunk["source_type"] == "prescription":
            ingredient = json.loads(chunk["facts"])["ingredient"]
            assert ingredient in sent


async def test_questions_over_rest_send_no_identifiers(
    api: Api, patient: Patient, fake: FakeOpenAI
) -> None:
    """One session: who the patient is is answered by the server (name back in the text and in
    `patient_info`), then questions that bring every kind of chunk to the model."""
    fake.reset(reply="Respuesta de prueba [1].")
    first = await api.ask(patient, "¿Cómo se llama el paciente?")
    assert fake.chat_requests == []  # never asked
    assert first["answer"]["model_used"] == "extractive-v2 (not sent to openai)"
    assert patient.full_name in first["answer"]["text"]
    session = first["session_id"]
    questions = [
        "¿Cuál es su número de documento?",
        "¿Qué edad tiene?",
        "Hazme un resumen de la historia clínica",
        "¿Qué medicamentos tiene prescritos?",
        "¿Tiene alergias?",
        "¿Qué diagnósticos tiene?",
        "¿Cuál fue la última presión arterial?",
        "¿Quién lo atendió en la última consulta?",
        "¿Qué se encontró en el examen físico?",
        "¿Qué refiere el paciente?",
        "Notas de evolución",  # free text: hybrid retrieval
        "¿Cuál fue su última cita?",
    ]
    for question in questions:
        body = await api.ask(patient, question, session_id=session)
        assert body["patient_info"]["full_name"] == patient.full_name
    sent = sent_texts(fake)
    assert len(sent) == len(questions) - 1  # the document question was not sent either
    kinds = {k for text in sent for k in re.findall(r'<fuente n="\d+" tipo="(\w+)"', text)}
    assert kinds == KINDS
    for text in sent:
        assert patient.leaks(text) == []
    # earlier answers went back as history, scrubbed
    assert any("[paciente]" in text and "<conversacion_previa>" in text for text in sent)


# -- claims checked --------------------------------------------------------------------------------


async def test_invented_drug_over_rest_gives_the_extractive_answer(
    api: Api, patient: Patient, fake: FakeOpenAI
) -> None:
    fake.reset(reply="El paciente toma warfarina 5 mg al día [1].")
    body = await api.ask(patient, "¿Qué medicamentos tiene prescritos?")
    assert body["answer"]["model_used"] == "extractive-v2 (fallback: openai unsupported)"
    assert "warfarina" not in body["answer"]["text"].lower()
    assert body["sources"]  # the extractive answer cites the prescriptions
    assert body["metadata"]["answer_check"] == {"invalid_citations": 0, "removed_sentences": 1}


async def test_supported_answer_over_rest_is_kept(
    api: Api, patient: Patient, fake: FakeOpenAI
) -> None:
    """A sentence written from the first prescription's own words passes as the model wrote
    it (dates as dd/mm/yyyy against the chunk's ISO date)."""
    fake.reset(reply="Respuesta de prueba [1].")
    first = await api.ask(patient, "¿Qué medicamentos tiene prescritos?")
    chunk_id = first["sources"][0]["chunk_id"]
    [row] = [c for c in patient.chunks if c["chunk_id"] == chunk_id]
    facts = json.loads(row["facts"])
    start = dt.date.fromisoformat(facts["start"])
    reply = (
        f"La paciente toma {facts['ingredient']} {facts['strength']}, formulada el "
        f"{start:%d/%m/%Y} [1]."
    )
    fake.reset(reply=reply)
    body = await api.ask(patient, "¿Qué medicamentos tiene prescritos?")
    assert body["answer"]["model_used"] == "openai:gpt-test"
    assert body["answer"]["text"] == reply
    assert body["metadata"]["answer_check"] == {"invalid_citations": 0, "removed_sentences": 0}

    # the same with an invented sentence after it: removed, and the confidence says so
    fake.reset(reply=reply + " También toma warfarina 5 mg [1].")
    partial = await api.ask(patient, "¿Qué medicamentos tiene prescritos?")
    assert partial["answer"]["text"] == reply
    assert partial["answer"]["model_used"] == "openai:gpt-test"
    assert partial["metadata"]["answer_check"]["removed_sentences"] == 1
    assert partial["answer"]["confidence"] <= body["answer"]["confidence"] - 0.14  # 0.99 → 0.85


# -- streaming: tokens as they come, the checked text in `complete` ----------------------------


@pytest.fixture(scope="module")
def live(db_url: str, password_hash: str, fake: FakeOpenAI) -> Iterator[tuple[LiveServer, str]]:
    secret = "llm-ws-" + "k" * 40
    settings = make_settings(
        secret_key=secret, llm_provider="openai", llm_base_url=fake.base_url, llm_timeout=10.0
    )
    clinician = asyncio.run(insert_user(db_url, password_hash, "clinician"))
    token = issue_token(clinician, "clinician", secret, 30).token
    with LiveServer(create_app(settings, database_url=db_url)) as server:
        yield server, token


async def test_websocket_streams_the_model_and_completes_with_the_checked_answer(
    live: tuple[LiveServer, str], patient: Patient, fake: FakeOpenAI
) -> None:
    """DESIGN 5.2: tokens go out as the model writes them; `complete.answer.text` is
    authoritative and is the checked text (here the extractive fallback's)."""
    server, token = live
    reply = "El paciente toma warfarina 5 mg al día [1]."
    fake.reset(reply=reply)
    query = {
        "type": "query",
        "document_type_id": patient.row["document_type_id"],
        "document_number": patient.row["document_number"],
        "question": "¿Qué medicamentos tiene prescritos?",
    }
    async with connect(f"{server.ws}/ws/chat?token={token}") as ws:
        await ws.send(json.dumps(query))
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["type"] not in ("complete", "error"):
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
    streamed = "".join(f["token"] for f in frames if f["type"] == "token")
    complete = frames[-1]
    assert complete["type"] == "complete", complete
    assert streamed.startswith(reply)  # streamed before it was checked
    answer = complete["answer"]
    assert answer["model_used"] == "extractive-v2 (fallback: openai unsupported)"
    assert "warfarina" not in answer["text"].lower()
    assert streamed.endswith(answer["text"])  # the fallback's tokens follow
