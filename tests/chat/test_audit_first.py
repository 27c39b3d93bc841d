"""No record leaves without its audit row, and the question rate holds under concurrency.

The pipeline runs against the real database: a trigger that refuses the access row stands for
an audit write that fails, and thirty questions of one user are asked at once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from smarthealth.app import create_app
from smarthealth.audit.service import ClientInfo
from smarthealth.chat.pipeline import Event, QueryRequest, QuestionPipeline
from smarthealth.config import to_libpq_url
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.db.session import Database
from smarthealth.errors import AppError
from smarthealth.rag.engines.extractive import ExtractiveEngine
from tests.conftest import bearer, insert_user, lifespan_client, make_settings

QUESTION = "¿Qué medicamentos tiene prescritos?"
REFUSE_ACCESS = """
CREATE FUNCTION smart_health.refuse_access() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.outcome = 'disclosed' THEN RAISE EXCEPTION 'audit store unavailable'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_access BEFORE INSERT ON smart_health.audit_logs
  FOR EACH ROW EXECUTE FUNCTION smart_health.refuse_access();
"""
ALLOW_ACCESS = """
DROP TRIGGER refuse_access ON smart_health.audit_logs;
DROP FUNCTION smart_health.refuse_access();
"""


async def _sql(db_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        if args:
            return await conn.fetch(sql, *args)
        await conn.execute(sql)
        return []
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def patient(db_url: str) -> asyncpg.Record:
    rows = await _sql(
        db_url,
        "SELECT patient_id, document_type_id, document_number FROM smart_health.patients p "
        "WHERE EXISTS (SELECT 1 FROM smart_health.prescriptions x "
        "WHERE x.patient_id = p.patient_id) ORDER BY patient_id LIMIT $1",
        1,
    )
    return rows[0]


@pytest.fixture
async def pipeline(db_url: str) -> AsyncIterator[QuestionPipeline]:
    engine = create_engine(db_url, pool_size=5)
    database = Database(engine, create_sessionmaker(engine), db_url)
    yield QuestionPipeline(database, None, ExtractiveEngine())
    await engine.dispose()


def _request(user_id: int, patient: asyncpg.Record, channel: str = "ws") -> QueryRequest:
    return QueryRequest(
        user_id,
        patient["document_type_id"],
        patient["document_number"],
        QUESTION,
        ClientInfo(channel=channel),
    )


async def _events(pipeline: QuestionPipeline, request: QueryRequest) -> list[Event]:
    events: list[Event] = []
    async for event in pipeline.run(request, rate_limit=20):
        events.append(event)
    return events


async def test_a_failed_access_row_means_nothing_is_shown(
    db_url: str, password_hash: str, patient: asyncpg.Record, pipeline: QuestionPipeline
) -> None:
    user = await insert_user(db_url, password_hash)
    await _sql(db_url, REFUSE_ACCESS)
    try:
        seen: list[Event] = []
        with pytest.raises(AppError) as refused:
            async for event in pipeline.run(_request(user, patient)):
                seen.append(event)
        assert refused.value.code == "AUDIT_UNAVAILABLE" and refused.value.status_code == 503
        # only progress messages went out: no session, no token, no patient data
        assert {e.type for e in seen} == {"status"}

        app = create_app(make_settings(), database_url=db_url)
        async for client in lifespan_client(app):
            response = await client.post(
                "/query/",
                json={
                    "document_type_id": patient["document_type_id"],
                    "document_number": patient["document_number"],
                    "question": QUESTION,
                },
                headers=bearer(app, user),
            )
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "AUDIT_UNAVAILABLE"
        assert patient["document_number"] not in response.text
    finally:
        await _sql(db_url, ALLOW_ACCESS)

    # each refusal is audited, and no turn number was consumed by an answer never stored
    rows = await _sql(
        db_url,
        "SELECT event_type, outcome, session_id FROM smart_health.audit_logs "
        "WHERE user_id = $1 ORDER BY audit_log_id",
        user,
    )
    assert [(r["event_type"], r["outcome"]) for r in rows] == [("query", "audit_unavailable")] * 2
    assert all(r["session_id"] is None for r in rows)
    turns = await _sql(
        db_url,
        "SELECT count(*) AS n FROM smart_health.chat_turns t JOIN smart_health.chat_sessions s "
        "USING (session_id) WHERE s.user_id = $1",
        user,
    )
    assert turns[0]["n"] == 0
    events = await _events(pipeline, _request(user, patient))
    assert events[-1].type == "complete" and events[-1].data["sequence_chat_id"] == 1


async def test_access_row_is_committed_before_the_first_token(
    db_url: str, password_hash: str, patient: asyncpg.Record, pipeline: QuestionPipeline
) -> None:
    user = await insert_user(db_url, password_hash)
    async with contextlib.aclosing(pipeline.run(_request(user, patient))) as events:
        async for event in events:
            if event.type == "token":  # the moment patient data leaves
                rows = await _sql(
                    db_url,
                    "SELECT event_type, outcome, source_ids FROM smart_health.audit_logs "
                    "WHERE user_id = $1",
                    user,
                )
                assert [(r["event_type"], r["outcome"]) for r in rows] == [("query", "disclosed")]
                assert rows[0]["source_ids"]
                break  # the client goes away mid-answer
    rows = await _sql(
        db_url,
        "SELECT event_type, outcome FROM smart_health.audit_logs WHERE user_id = $1 "
        "ORDER BY audit_log_id",
        user,
    )
    assert [(r["event_type"], r["outcome"]) for r in rows] == [
        ("query", "disclosed"),
        ("query.outcome", "cancelled"),
    ]


async def test_thirty_questions_at_once_get_at_most_the_limit(
    db_url: str, password_hash: str, patient: asyncpg.Record, pipeline: QuestionPipeline
) -> None:
    user = await insert_user(db_url, password_hash)

    async def ask() -> str:
        try:
            events = await _events(pipeline, _request(user, patient))
        except AppError as exc:
            return exc.code
        return events[-1].type

    started = dt.datetime.now(dt.UTC)
    results = await asyncio.gather(*(ask() for _ in range(30)))
    assert dt.datetime.now(dt.UTC) - started < dt.timedelta(minutes=1)
    assert results.count("complete") == 20
    assert results.count("RATE_LIMITED") == 10
    rows = await _sql(
        db_url,
        "SELECT outcome, count(*) AS n FROM smart_health.audit_logs "
        "WHERE user_id = $1 AND event_type = 'query' GROUP BY outcome ORDER BY outcome",
        user,
    )
    assert {r["outcome"]: r["n"] for r in rows} == {"disclosed": 20, "rate_limited": 10}


async def test_the_audit_chain_still_verifies(db_url: str) -> None:
    from smarthealth.audit.verify import verify_chain

    report = await verify_chain(db_url)
    assert report.intact and report.rows_checked > 0, report
