"""`POST /query/` and `/history/` over HTTP semantics, on the seeded, indexed test database."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import bearer, insert_user, lifespan_client, make_settings


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    clinician: dict[str, str]
    other: dict[str, str]
    admin: dict[str, str]
    auditor: dict[str, str]

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(to_libpq_url(self.db_url))
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def patient(self, where: str) -> asyncpg.Record:
        rows = await self.fetch(
            "SELECT p.patient_id, p.document_type_id, p.document_number, p.first_name "
            f"FROM smart_health.patients p WHERE {where} ORDER BY p.patient_id LIMIT 1"
        )
        assert rows, where
        return rows[0]

    async def ask(
        self,
        patient: asyncpg.Record,
        question: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body = {
            "document_type_id": patient["document_type_id"],
            "document_number": patient["document_number"],
            "question": question,
            **extra,
        }
        return await self.client.post(
            "/query/", json=body, headers=self.clinician if headers is None else headers
        )

    async def audit_count(self) -> int:
        rows = await self.fetch(
            "SELECT count(*) AS n FROM smart_health.audit_logs WHERE event_type = 'query'"
        )
        return int(rows[0]["n"])


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(), database_url=db_url)
    ids = {
        role: await insert_user(db_url, password_hash, role)
        for role in ("clinician", "admin", "auditor")
    }
    other = await insert_user(db_url, password_hash, "clinician")
    async for client in lifespan_client(app):
        yield Ctx(
            app,
            client,
            db_url,
            bearer(app, ids["clinician"]),
            bearer(app, other),
            bearer(app, ids["admin"], "admin"),
            bearer(app, ids["auditor"], "auditor"),
        )


WITH_MEDS = "EXISTS (SELECT 1 FROM smart_health.prescriptions r WHERE r.patient_id = p.patient_id)"
WITHOUT_ALLERGIES = (
    "NOT EXISTS (SELECT 1 FROM smart_health.patient_allergies a WHERE a.patient_id = p.patient_id)"
)


async def test_success_body_has_the_documented_shape(ctx: Ctx) -> None:
    patient = await ctx.patient(WITH_MEDS)
    response = await ctx.ask(patient, "¿Qué medicamentos tiene prescritos?")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "status",
        "session_id",
        "session_uuid",
        "sequence_chat_id",
        "timestamp",
        "patient_info",
        "answer",
        "sources",
        "series",
        "metadata",
    }
    assert body["status"] == "success" and body["sequence_chat_id"] == 1
    uuid.UUID(body["session_id"])
    assert body["patient_info"]["patient_id"] == patient["patient_id"]
    assert set(body["answer"]) == {"text", "confidence", "model_used"}
    assert body["answer"]["model_used"] == "extractive-v2"
    assert 0 < body["answer"]["confidence"] <= 1
    assert body["sources"], body
    for source in body["sources"]:
        assert {
            "source_id",
            "chunk_id",
            "type",
            "record_id",
            "date",
            "text",
            "relevance_score",
        } <= set(source)
        assert f"[{source['source_id']}]" in body["answer"]["text"]
    assert {s["type"] for s in body["sources"]} == {"prescription"}
    meta = body["metadata"]
    assert meta["sources_used"] == len(body["sources"])
    assert meta["total_records_analyzed"] > 0 and meta["query_time_ms"] >= 0
    # a structured question is answered by executing its plan over the record
    assert meta["retrieval"] == {"plan": len(body["sources"])}
    assert meta["plan"]["subject"] == "medication" and meta["plan"]["operation"] == "list"
    assert meta["plan"]["rows"] == [s["chunk_id"] for s in body["sources"]]


async def test_free_text_question_uses_hybrid_retrieval(ctx: Ctx) -> None:
    patient = await ctx.patient(WITH_MEDS)
    body = (await ctx.ask(patient, "¿Qué dijo el médico en la nota?")).json()
    assert body["metadata"]["plan"]["subject"] == "note"
    assert set(body["metadata"]["retrieval"]) >= {"vector", "lexical", "intent"}


async def test_every_cited_source_belongs_to_the_patient(ctx: Ctx) -> None:
    patient = await ctx.patient(WITH_MEDS)
    for question in (
        "¿Tiene alergias?",
        "¿Cuál fue la última presión arterial?",
        "Hazme un resumen",
        "¿Qué diagnósticos tiene?",
    ):
        body = (await ctx.ask(patient, question)).json()
        chunk_ids = [s["chunk_id"] for s in body["sources"]]
        if chunk_ids:
            owners = await ctx.fetch(
                "SELECT DISTINCT patient_id FROM smart_health.clinical_chunks "
                "WHERE chunk_id = ANY($1::bigint[])",
                chunk_ids,
            )
            assert [r["patient_id"] for r in owners] == [patient["patient_id"]], question


async def test_no_allergies_is_an_honest_abstention(ctx: Ctx) -> None:
    patient = await ctx.patient(WITHOUT_ALLERGIES)
    body = (await ctx.ask(patient, "¿Tiene alergias a algún medicamento?")).json()
    assert body["answer"]["text"].startswith("No tiene alergias registradas")
    assert body["sources"] == []
    assert body["metadata"]["plan"]["subject"] == "allergy"
    assert body["answer"]["confidence"] <= 0.2


async def test_unanswerable_question_abstains(ctx: Ctx) -> None:
    patient = await ctx.patient(WITH_MEDS)
    body = (await ctx.ask(patient, "¿Le han hecho una colonoscopia?")).json()
    assert body["answer"]["text"].startswith("No encuentro información")
    assert body["sources"] == []


async def test_follow_up_uses_the_previous_turn(ctx: Ctx) -> None:
    patient = await ctx.patient(WITH_MEDS)
    first = (await ctx.ask(patient, "¿Qué medicamentos tiene prescritos?")).json()
    second = await ctx.ask(patient, "¿y la dosis?", session_id=first["session_id"])
    body = second.json()
    assert body["sequence_chat_id"] == 2 and body["session_id"] == first["session_id"]
    # the dose of each drug the previous answer listed, and only those
    assert {s["chunk_id"] for s in body["sources"]} == {s["chunk_id"] for s in first["sources"]}
    assert {s["type"] for s in body["sources"]} == {"prescription"}
    assert body["metadata"]["plan"]["attribute"] == "dose"
    for source in body["sources"]:
        dose = source["text"].split(", ", 1)[1].split(" por ")[0]  # "1 tableta cada 12 horas"
        assert dose in body["answer"]["text"]


async def test_before_that_moves_back_in_time(ctx: Ctx) -> None:
    patient = await ctx.patient(
        "(SELECT count(*) FROM smart_health.medical_records r WHERE r.patient_id = p.patient_id)"
        " >= 3"
    )
    first = (await ctx.ask(patient, "¿Cuál fue la última presión arterial?")).json()
    latest = first["sources"][0]["date"]
    second = (await ctx.ask(patient, "¿y antes de eso?", session_id=first["session_id"])).json()
    assert second["sources"], second
    assert all(s["date"] < latest for s in second["sources"])
    assert second["answer"]["text"].startswith("La anterior presión arterial registrada fue")
    assert second["metadata"]["plan"]["follow_up"] is True


async def test_sequence_numbers_are_atomic_under_concurrency(ctx: Ctx) -> None:
    patient = await ctx.patient(WITH_MEDS)
    first = (await ctx.ask(patient, "¿Tiene alergias?")).json()
    session_id = first["session_id"]
    responses = await asyncio.gather(
        *(
            ctx.ask(patient, f"¿Cuál es su presión arterial? ({i})", session_id=session_id)
            for i in range(8)
        )
    )
    sequences = sorted(r.json()["sequence_chat_id"] for r in responses)
    assert sequences == list(range(2, 10))


async def test_session_of_another_patient_is_409(ctx: Ctx) -> None:
    a = await ctx.patient(WITH_MEDS)
    b = await ctx.patient(f"p.patient_id > {a['patient_id']}")
    session_id = (await ctx.ask(a, "¿Tiene alergias?")).json()["session_id"]
    response = await ctx.ask(b, "¿Tiene alergias?", session_id=session_id)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "SESSION_PATIENT_MISMATCH"


async def test_session_of_another_user_is_404(ctx: Ctx) -> None:
    patient = await ctx.patient(WITH_MEDS)
    session_id = (await ctx.ask(patient, "¿Tiene alergias?")).json()["session_id"]
    stolen = await ctx.ask(patient, "¿Tiene alergias?", headers=ctx.other, session_id=session_id)
    assert stolen.status_code == 404
    assert (
        await ctx.client.get(f"/history/sessions/{session_id}", headers=ctx.other)
    ).status_code == 404


async def test_unknown_patient_is_404_and_audited(ctx: Ctx) -> None:
    before = await ctx.audit_count()
    response = await ctx.client.post(
        "/query/",
        headers=ctx.clinician,
        json={
            "document_type_id": 1,
            "document_number": "000000001",
            "question": "¿Tiene alergias?",
        },
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PATIENT_NOT_FOUND"
    assert await ctx.audit_count() == before + 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"document_type_id": 0, "document_number": "12345", "question": "¿alergias?"}, 422),
        ({"document_type_id": 9, "document_number": "12345", "question": "¿alergias?"}, 422),
        ({"document_type_id": "1", "document_number": "12345", "question": "¿alergias?"}, 422),
        ({"document_type_id": 1, "document_number": "12", "question": "¿alergias?"}, 422),
        ({"document_type_id": 1, "document_number": "12 345", "question": "¿alergias?"}, 422),
        ({"document_type_id": 1, "document_number": "1" * 21, "question": "¿alergias?"}, 422),
        ({"document_type_id": 1, "document_number": "12345", "question": "  ?  "}, 422),
        ({"document_type_id": 1, "document_number": "12345", "question": "x" * 2001}, 422),
        ({"document_type_id": 1, "document_number": "12345"}, 422),
        ({"document_type_id": 1, "document_number": "12345", "question": "¿a?", "extra": 1}, 422),
        (
            {
                "document_type_id": 1,
                "document_number": "12345",
                "question": "¿a?",
                "session_id": "",
            },
            422,
        ),
        (
            {
                "document_type_id": 1,
                "document_number": "12345",
                "question": "¿a?",
                "session_id": "s" * 129,
            },
            422,
        ),
        ([1, 2, 3], 422),
    ],
)
async def test_invalid_requests_are_refused_and_audited(ctx: Ctx, body: Any, status: int) -> None:
    before = await ctx.audit_count()
    response = await ctx.client.post("/query/", json=body, headers=ctx.clinician)
    assert response.status_code == status
    assert response.json()["error"]["code"] == "INVALID_INPUT"
    assert await ctx.audit_count() == before + 1


async def test_malformed_json_is_400(ctx: Ctx) -> None:
    response = await ctx.client.post(
        "/query/",
        content=b"{not json",
        headers={**ctx.clinician, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_INPUT"


@pytest.mark.parametrize(
    ("who", "status"), [("anonymous", 401), ("auditor", 403), ("clinician", 200), ("admin", 200)]
)
async def test_who_may_ask(ctx: Ctx, who: str, status: int) -> None:
    patient = await ctx.patient(WITH_MEDS)
    headers = {
        "anonymous": {},
        "auditor": ctx.auditor,
        "clinician": ctx.clinician,
        "admin": ctx.admin,
    }[who]
    response = await ctx.ask(patient, "¿Tiene alergias?", headers=headers)
    assert response.status_code == status


async def test_answered_question_is_audited_before_disclosure_then_its_outcome(ctx: Ctx) -> None:
    """One access row (who, which patient, the question, the chunk ids about to be shown),
    committed before any patient data left; then the outcome as a row of its own."""
    patient = await ctx.patient(WITH_MEDS)
    before = await ctx.audit_count()
    body = (await ctx.ask(patient, "¿Qué medicamentos tiene prescritos?")).json()
    outcome, access = await ctx.fetch(
        "SELECT * FROM smart_health.audit_logs WHERE event_type IN ('query', 'query.outcome') "
        "ORDER BY audit_log_id DESC LIMIT 2"
    )
    assert await ctx.audit_count() == before + 1  # one access row per question
    cited = [s["chunk_id"] for s in body["sources"]]
    assert access["event_type"] == "query" and access["outcome"] == "disclosed"
    assert access["patient_id"] == patient["patient_id"]
    assert access["question"] == "¿Qué medicamentos tiene prescritos?"
    assert set(cited) <= set(access["source_ids"])
    assert outcome["event_type"] == "query.outcome" and outcome["outcome"] == "answered"
    assert list(outcome["source_ids"]) == cited and outcome["response_json"] is not None
    for row in (access, outcome):
        assert str(row["session_id"]) == body["session_id"]
        assert row["sequence_chat_id"] == body["sequence_chat_id"]
        assert row["channel"] == "rest" and row["latency_ms"] is not None
    assert access["audit_log_id"] < outcome["audit_log_id"]


async def test_history_lists_own_sessions_and_their_turns(ctx: Ctx) -> None:
    patient = await ctx.patient(WITH_MEDS)
    first = (await ctx.ask(patient, "¿Qué diagnósticos tiene?", headers=ctx.admin)).json()
    await ctx.ask(
        patient, "¿y los medicamentos?", headers=ctx.admin, session_id=first["session_id"]
    )
    listing = (await ctx.client.get("/history/", headers=ctx.admin)).json()
    mine = [s for s in listing["items"] if s["session_id"] == first["session_id"]]
    assert len(mine) == 1
    assert mine[0]["first_question"] == "¿Qué diagnósticos tiene?"
    assert mine[0]["turns"] == 2
    assert patient["first_name"] in mine[0]["patient_name"]
    assert mine[0]["document_type_id"] == patient["document_type_id"]
    assert first["patient_info"]["document_type_id"] == patient["document_type_id"]
    detail = (
        await ctx.client.get(f"/history/sessions/{first['session_id']}", headers=ctx.admin)
    ).json()
    assert [t["sequence_chat_id"] for t in detail["turns"]] == [1, 2]
    assert detail["turns"][0]["answer"] == first["answer"]["text"]
    others = (await ctx.client.get("/history/", headers=ctx.other)).json()
    assert first["session_id"] not in {s["session_id"] for s in others["items"]}


async def test_the_plan_is_logged_not_the_question(
    ctx: Ctx, caplog: pytest.LogCaptureFixture
) -> None:
    patient = await ctx.patient(WITH_MEDS)
    name = str(patient["first_name"])
    with caplog.at_level(logging.INFO):
        body = (await ctx.ask(patient, f"¿{name} tiene hipertensión?")).json()
    plans = [r for r in caplog.records if "question_plan" in r.getMessage()]
    assert len(plans) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "'subject': 'diagnosis'" in logged and "'conditions': ['I10']" in logged
    assert name not in logged and patient["document_number"] not in logged
    assert body["metadata"]["plan"]["conditions"] == ["I10"]


async def test_a_client_label_names_a_session_and_user_id_is_ignored(ctx: Ctx) -> None:
    """The original chat page sends its own `session-<ms>` label and a free-text `user_id`."""
    patient = await ctx.patient(WITH_MEDS)
    label = f"session-{uuid.uuid4().int % 10**13}"
    first = await ctx.ask(
        patient, "¿Qué medicamentos tiene prescritos?", session_id=label, user_id="dr-house"
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["session_id"] == label and body["sequence_chat_id"] == 1
    server = uuid.UUID(body["session_uuid"])
    second = (await ctx.ask(patient, "¿y la dosis?", session_id=label)).json()
    assert second["session_id"] == label and second["session_uuid"] == str(server)
    assert second["sequence_chat_id"] == 2 and second["metadata"]["plan"]["attribute"] == "dose"
    # the same session by its server id, and the label stays with its patient and its user
    by_id = (await ctx.ask(patient, "¿Tiene alergias?", session_id=str(server))).json()
    assert by_id["session_id"] == str(server) and by_id["sequence_chat_id"] == 3
    other = await ctx.patient(f"p.patient_id <> {patient['patient_id']}")
    mismatch = await ctx.ask(other, "¿Tiene alergias?", session_id=label)
    assert mismatch.status_code == 409
    assert mismatch.json()["error"]["code"] == "SESSION_PATIENT_MISMATCH"
    admin = (await ctx.ask(patient, "¿Tiene alergias?", headers=ctx.admin, session_id=label)).json()
    assert admin["session_id"] == label and admin["session_uuid"] != str(server)
    assert admin["sequence_chat_id"] == 1
    rows = await ctx.fetch(
        "SELECT DISTINCT user_id FROM smart_health.audit_logs WHERE event_type = 'query' "
        "AND session_id = $1",
        server,
    )
    assert len(rows) == 1  # the token's user, whatever `user_id` the body carried
    owner = await ctx.fetch(
        "SELECT user_id FROM smart_health.chat_sessions WHERE session_id = $1", server
    )
    assert rows[0]["user_id"] == owner[0]["user_id"]
