"""Retrieval legs on the real database: folded full text, ICD codes, time filters, scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.config import to_libpq_url
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.rag.plan import QuestionPlan, TimeWindow
from smarthealth.rag.retrieval import retrieve
from smarthealth.rag.text import lexical_query
from tests.conftest import shared_embedder


@pytest.fixture(scope="module")
async def session(db_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(db_url, pool_size=2)
    async with create_sessionmaker(engine)() as s:
        yield s
    await engine.dispose()


async def _patient_with(db_url: str, sql: str) -> asyncpg.Record:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        row = await conn.fetchrow(sql)
        assert row is not None
        return row
    finally:
        await conn.close()


def test_lexical_query_folds_drops_stopwords_and_prefixes_codes() -> None:
    assert lexical_query("¿Tiene hipertensión o E11?") == "hipertension | e11:*"
    assert lexical_query("¿Código de diagnóstico?") == "codigo | diagnostico"
    assert lexical_query("¿Qué tiene?") is None


async def test_unaccented_question_finds_accented_record(
    session: AsyncSession, db_url: str
) -> None:
    row = await _patient_with(
        db_url,
        "SELECT patient_id FROM smart_health.clinical_chunks WHERE content LIKE "
        "'%Hipertensión%' AND source_type = 'diagnosis' LIMIT 1",
    )
    free_text = QuestionPlan("unknown")
    result = await retrieve(session, row["patient_id"], free_text, "hipertension", None, None)
    assert result.leg_counts == {"lexical": result.leg_counts["lexical"]}
    assert result.candidates and "Hipertensión" in result.candidates[0].content


async def test_icd_code_is_found_by_the_lexical_leg(session: AsyncSession, db_url: str) -> None:
    """A bare code such as "E11" means nothing to the vector leg; the lexical leg finds it."""
    row = await _patient_with(
        db_url,
        "SELECT patient_id, facts->>'icd_code' AS code FROM smart_health.clinical_chunks "
        "WHERE source_type = 'diagnosis' LIMIT 1",
    )
    code = row["code"].split(".")[0]
    result = await retrieve(
        session, row["patient_id"], QuestionPlan("unknown"), code, None, None, k=5
    )
    assert set(result.leg_counts) == {"lexical"}
    assert result.candidates
    for candidate in result.candidates:
        assert code.lower() in candidate.content.lower()
    assert result.candidates[0].ranks == {"lexical": 1}


async def test_year_filter_keeps_only_that_year(session: AsyncSession, db_url: str) -> None:
    row = await _patient_with(
        db_url,
        "SELECT patient_id FROM smart_health.clinical_chunks WHERE source_type = 'vitals' "
        "AND occurred_at >= '2025-01-01' AND occurred_at < '2026-01-01' LIMIT 1",
    )
    question = "¿Qué presión arterial tuvo en 2025?"
    plan = QuestionPlan("unknown", window=TimeWindow(dt.date(2025, 1, 1), dt.date(2026, 1, 1)))
    vector = await shared_embedder().embed_query(question)
    result = await retrieve(
        session, row["patient_id"], plan, question, vector, shared_embedder().model_name
    )
    bogota = dt.timezone(dt.timedelta(hours=-5))
    assert result.candidates
    assert {c.occurred_at.astimezone(bogota).year for c in result.candidates if c.occurred_at} == {
        2025
    }


async def test_every_leg_stays_inside_the_patient(session: AsyncSession, db_url: str) -> None:
    row = await _patient_with(
        db_url, "SELECT min(patient_id) AS patient_id FROM smart_health.clinical_chunks"
    )
    question = "diabetes metformina presión arterial cita alergia"
    vector = await shared_embedder().embed_query(question)
    result = await retrieve(
        session,
        row["patient_id"],
        QuestionPlan("note"),
        question,
        vector,
        shared_embedder().model_name,
        k=50,
    )
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        owners = await conn.fetch(
            "SELECT DISTINCT patient_id FROM smart_health.clinical_chunks "
            "WHERE chunk_id = ANY($1::bigint[])",
            [c.chunk_id for c in result.candidates],
        )
    finally:
        await conn.close()
    assert [r["patient_id"] for r in owners] == [row["patient_id"]]
    assert all(c.scores for c in result.candidates)
