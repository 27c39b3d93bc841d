"""`POST /feedback` (the turn's owner, once per turn, changeable, audited) and `GET /feedback`
(auditors and admins: filters, pages, CSV), over HTTP against the seeded test database."""

from __future__ import annotations

import csv
import io
import json
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
    ids: dict[str, int]
    headers: dict[str, dict[str, str]]
    patient: asyncpg.Record

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(to_libpq_url(self.db_url))
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def ask(self, who: str, question: str, **extra: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/query/",
            json={
                "document_type_id": self.patient["document_type_id"],
                "document_number": self.patient["document_number"],
                "question": question,
                **extra,
            },
            headers=self.headers[who],
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def rate(self, who: str, **body: Any) -> httpx.Response:
        return await self.client.post("/feedback", json=body, headers=self.headers[who])

    async def listing(self, who: str, **params: Any) -> httpx.Response:
        return await self.client.get("/feedback", params=params, headers=self.headers[who])


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(), database_url=db_url)
    ids = {
        "clinician": await insert_user(db_url, password_hash, "clinician"),
        "other": await insert_user(db_url, password_hash, "clinician"),
        "admin": await insert_user(db_url, password_hash, "admin"),
        "auditor": await insert_user(db_url, password_hash, "auditor"),
    }
    roles = {"clinician": "clinician", "other": "clinician", "admin": "admin", "auditor": "auditor"}
    headers = {who: bearer(app, ids[who], roles[who]) for who in ids}
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        patient = await conn.fetchrow(
            "SELECT document_type_id, document_number FROM smart_health.patients p WHERE EXISTS "
            "(SELECT 1 FROM smart_health.prescriptions r WHERE r.patient_id = p.patient_id) "
            "ORDER BY patient_id LIMIT 1"
        )
    finally:
        await conn.close()
    async for client in lifespan_client(app):
        yield Ctx(app, client, db_url, ids, headers, patient)


async def test_owner_rates_once_and_changes_it_audited(ctx: Ctx) -> None:
    answer = await ctx.ask("clinician", "¿Qué medicamentos tiene prescritos?")
    turn = {"session_id": answer["session_id"], "sequence_chat_id": answer["sequence_chat_id"]}

    first = await ctx.rate("clinician", **turn, rating="up")
    assert first.status_code == 201, first.text
    assert first.json()["rating"] == "up" and first.json()["reason"] is None

    second = await ctx.rate(
        "clinician", **turn, rating="down", reason="incomplete", comment="  Falta la dosis.  "
    )
    assert second.status_code == 200, second.text
    assert second.json()["reason"] == "incomplete" and second.json()["comment"] == "Falta la dosis."
    assert second.json()["created_at"] == first.json()["created_at"]
    assert second.json()["updated_at"] > first.json()["updated_at"]

    rows = await ctx.fetch(
        "SELECT rating, reason, comment, user_id FROM smart_health.chat_feedback "
        "WHERE session_id = $1",
        uuid.UUID(answer["session_id"]),
    )
    assert [tuple(r) for r in rows] == [
        ("down", "incomplete", "Falta la dosis.", ctx.ids["clinician"])
    ]
    audit = await ctx.fetch(
        "SELECT outcome, details, patient_id, sequence_chat_id FROM smart_health.audit_logs "
        "WHERE event_type = 'feedback' AND session_id = $1 ORDER BY audit_log_id",
        uuid.UUID(answer["session_id"]),
    )
    assert [r["outcome"] for r in audit] == ["created", "updated"]
    assert audit[1]["patient_id"] == answer["patient_info"]["patient_id"]
    assert audit[1]["sequence_chat_id"] == answer["sequence_chat_id"]


async def test_a_client_label_names_the_turn(ctx: Ctx) -> None:
    label = f"session-{uuid.uuid4().int % 10**13}"
    answer = await ctx.ask("clinician", "¿Tiene alergias?", session_id=label)
    assert answer["session_id"] == label
    rated = await ctx.rate(
        "clinician", session_id=label, sequence_chat_id=answer["sequence_chat_id"], rating="up"
    )
    assert rated.status_code == 201, rated.text
    assert rated.json()["session_id"] == answer["session_uuid"]


async def test_only_the_owner_may_rate(ctx: Ctx) -> None:
    answer = await ctx.ask("clinician", "¿Cuál fue la última presión arterial?")
    turn = {"session_id": answer["session_id"], "sequence_chat_id": answer["sequence_chat_id"]}
    for who in ("other", "admin", "auditor"):
        response = await ctx.rate(who, **turn, rating="down", reason="incorrect")
        assert response.status_code == 404, (who, response.text)
        assert response.json()["error"]["code"] == "TURN_NOT_FOUND"
    missing = await ctx.rate("clinician", **{**turn, "sequence_chat_id": 999}, rating="up")
    assert missing.status_code == 404
    anonymous = await ctx.client.post("/feedback", json={**turn, "rating": "up"})
    assert anonymous.status_code == 401
    rows = await ctx.fetch(
        "SELECT count(*) AS n FROM smart_health.chat_feedback WHERE session_id = $1",
        uuid.UUID(answer["session_id"]),
    )
    assert rows[0]["n"] == 0


async def test_an_unanswered_turn_cannot_be_rated(ctx: Ctx) -> None:
    answer = await ctx.ask("clinician", "¿Tiene diagnósticos?")
    conn = await asyncpg.connect(to_libpq_url(ctx.db_url))
    try:  # a turn left pending (as a cancelled or failed question leaves it)
        await conn.execute(
            "INSERT INTO smart_health.chat_turns (session_id, sequence_chat_id, patient_id, "
            "question, status) VALUES ($1, 99, $2, 'x', 'cancelled')",
            uuid.UUID(answer["session_id"]),
            answer["patient_info"]["patient_id"],
        )
    finally:
        await conn.close()
    response = await ctx.rate(
        "clinician", session_id=answer["session_id"], sequence_chat_id=99, rating="up"
    )
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "TURN_NOT_ANSWERED",
        "message": "Solo se pueden valorar respuestas completas.",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": "meh"}, "rating"),
        ({"rating": "down", "reason": "incorrecta"}, "reason"),
        ({"rating": "up", "reason": "incorrect"}, "body"),
        ({"rating": "down", "comment": "a\x00b"}, "comment"),
        ({"rating": "down", "comment": "x" * 1001}, "comment"),
        ({"rating": "up", "sequence_chat_id": 0}, "sequence_chat_id"),
        ({"rating": "up", "sequence_chat_id": "1"}, "sequence_chat_id"),
        ({"rating": "up", "sequence_chat_id": 2**31}, "sequence_chat_id"),
        ({"rating": "up", "extra": 1}, "extra"),
    ],
)
async def test_bad_input_is_refused_with_a_stable_code(
    ctx: Ctx, body: dict[str, Any], field: str
) -> None:
    payload = {"session_id": str(uuid.uuid4()), "sequence_chat_id": 1, **body}
    response = await ctx.rate("clinician", **payload)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_INPUT"
    assert error["message"] == "Los datos enviados no son válidos."
    assert field in {f["field"] for f in error["details"]["fields"]}
    assert "\x00" not in response.text and "x" * 1001 not in response.text


async def test_auditors_and_admins_list_with_filters_clinicians_may_not(ctx: Ctx) -> None:
    up = await ctx.ask("other", "¿Tiene alergias?")
    down = await ctx.ask(
        "other", "¿Qué medicamentos tiene prescritos?", session_id=up["session_id"]
    )
    for answer, rating, reason in ((up, "up", None), (down, "down", "wrong_source")):
        response = await ctx.rate(
            "other",
            session_id=answer["session_id"],
            sequence_chat_id=answer["sequence_chat_id"],
            rating=rating,
            reason=reason,
            comment='=HYPERLINK("http://x")' if reason else None,
        )
        assert response.status_code == 201, response.text

    for who in ("clinician", "other"):
        refused = await ctx.listing(who)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
        assert (await ctx.listing(who, format="csv")).status_code == 403
    assert (await ctx.client.get("/feedback")).status_code == 401

    mine = await ctx.listing("auditor", user_id=ctx.ids["other"])
    assert mine.status_code == 200, mine.text
    page = mine.json()
    assert page["total"] == 2
    assert [i["rating"] for i in page["items"]] == ["down", "up"]  # newest first
    item = page["items"][0]
    assert item["question"] == "¿Qué medicamentos tiene prescritos?"
    assert item["answer"] == down["answer"]["text"]
    assert item["user_id"] == ctx.ids["other"] and item["reason"] == "wrong_source"
    assert item["document_number"] == ctx.patient["document_number"]

    downs = (await ctx.listing("admin", user_id=ctx.ids["other"], rating="down")).json()
    assert [i["sequence_chat_id"] for i in downs["items"]] == [down["sequence_chat_id"]]
    by_reason = (await ctx.listing("admin", reason="wrong_source")).json()
    assert {i["user_id"] for i in by_reason["items"]} == {ctx.ids["other"]}
    future = (await ctx.listing("auditor", date_from="2999-01-01T00:00:00Z")).json()
    assert future["total"] == 0 and future["items"] == []
    past = (await ctx.listing("auditor", date_to="2000-01-01T00:00:00Z")).json()
    assert past["total"] == 0
    paged = (await ctx.listing("auditor", user_id=ctx.ids["other"], page_size=1, page=2)).json()
    assert [i["rating"] for i in paged["items"]] == ["up"] and paged["total"] == 2

    bad = await ctx.listing("auditor", rating="sideways")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_INPUT"
    assert (await ctx.listing("auditor", format="xml")).status_code == 422

    exported = await ctx.listing("auditor", user_id=ctx.ids["other"], format="csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text.removeprefix("\ufeff"))))
    assert [r["rating"] for r in rows] == ["down", "up"]
    assert rows[0]["question"] == "¿Qué medicamentos tiene prescritos?"
    assert rows[0]["comment"].startswith("'=")  # not a formula in a spreadsheet
    assert rows[0]["session_id"] == up["session_uuid"]

    reads = await ctx.fetch(
        "SELECT user_id, details FROM smart_health.audit_logs WHERE event_type = 'feedback.read' "
        "ORDER BY audit_log_id"
    )
    assert {r["user_id"] for r in reads} == {ctx.ids["auditor"], ctx.ids["admin"]}
    assert len(reads) == 7  # every successful read, JSON and CSV, and no refused one


async def test_the_document_states_who_may_rate_and_what_can_fail(ctx: Ctx) -> None:
    """Found by fuzzing: the routes did not declare statuses they return (401, 415, 503…), the
    CSV had no schema, and the reason rule was not in the document."""
    paths = ctx.app.openapi()["paths"]["/feedback"]
    post, get = paths["post"], paths["get"]
    declared = {"200", "201", "400", "401", "404", "409", "413", "415", "422", "503"}
    assert set(post["responses"]) == declared
    assert set(get["responses"]) == {"200", "401", "403", "422", "503"}
    assert set(get["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    schema = ctx.app.openapi()["components"]["schemas"]["FeedbackIn"]
    assert {"properties": {"rating": {"const": "down"}}} in schema["anyOf"]
    assert "Who may call" in post["description"] and "Who may call" in get["description"]


async def test_a_rating_sent_as_a_form_is_415(ctx: Ctx) -> None:
    response = await ctx.client.post(
        "/feedback",
        content="rating=up&sequence_chat_id=1",
        headers={**ctx.headers["clinician"], "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_a_whole_float_turn_number_is_that_integer(ctx: Ctx) -> None:
    """JSON Schema counts 1.0 as an integer: it names turn 1, as in `/query/`."""
    answer = await ctx.ask("clinician", "¿Tiene alergias?")
    response = await ctx.client.post(
        "/feedback",
        content=json.dumps(
            {
                "session_id": answer["session_id"],
                "sequence_chat_id": float(answer["sequence_chat_id"]),
                "rating": "up",
            }
        ),
        headers={**ctx.headers["clinician"], "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["sequence_chat_id"] == answer["sequence_chat_id"]
