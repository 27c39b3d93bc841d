"""Alembic migrations on an empty and on a populated database, and model/migration agreement."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from smarthealth.config import to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.models import Base
from smarthealth.rag.indexer import sync_queued
from tests.conftest import TEMPLATE_PATIENTS, clone_database, drop_database, shared_embedder


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'smart_health'"
        )
        return {r["table_name"] for r in rows}
    finally:
        await conn.close()


async def _count(url: str, table: str) -> int:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM smart_health.{table}"))
    finally:
        await conn.close()


EXPECTED_TABLES = {
    "document_types",
    "specialties",
    "diagnoses",
    "medications",
    "doctors",
    "doctor_specialties",
    "patients",
    "patient_allergies",
    "appointments",
    "medical_records",
    "record_diagnoses",
    "prescriptions",
    "users",
    "audit_logs",
    "alembic_version",
}


def test_upgrade_and_downgrade_on_empty_database(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(empty_db_url) is not None
    assert EXPECTED_TABLES <= asyncio.run(_tables(empty_db_url))
    assert asyncio.run(_count(empty_db_url, "document_types")) == 8
    migrate.downgrade(empty_db_url, "base")
    assert asyncio.run(_tables(empty_db_url)) == {"alembic_version"}
    assert migrate.current_revision(empty_db_url) is None
    migrate.upgrade(empty_db_url)
    assert EXPECTED_TABLES <= asyncio.run(_tables(empty_db_url))


def test_downgrade_and_upgrade_on_populated_database(db_url: str) -> None:
    assert asyncio.run(_count(db_url, "patients")) > 0
    migrate.downgrade(db_url, "base")
    assert "patients" not in asyncio.run(_tables(db_url))
    migrate.upgrade(db_url)
    assert asyncio.run(_count(db_url, "patients")) == 0
    assert asyncio.run(_count(db_url, "document_types")) == 8


def test_models_match_migrations(empty_db_url: str) -> None:
    """No difference between the ORM models and the schema the migrations build."""
    migrate.upgrade(empty_db_url)

    def _diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "version_table_schema": "smart_health",
                "compare_type": True,
                "include_name": lambda name, type_, parent: (
                    type_ != "schema" or name == "smart_health"
                ),
            },
        )
        return [
            d for d in compare_metadata(context, Base.metadata) if "alembic_version" not in str(d)
        ]

    async def _run() -> list[object]:
        engine = create_async_engine(empty_db_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(_diff)
        finally:
            await engine.dispose()

    assert asyncio.run(_run()) == []


_ENCOUNTER_STATE = """
SELECT (SELECT count(*) FROM smart_health.medical_records) AS records,
       (SELECT count(*) FROM smart_health.patients) AS patients,
       (SELECT count(*) FROM smart_health.clinical_chunks WHERE source_type = 'encounter')
         AS encounters,
       (SELECT count(*) FROM smart_health.clinical_chunks
         WHERE source_type NOT IN ('encounter', 'observation', 'immunization', 'procedure'))
         AS other_chunks,  -- the seeder's labs, vaccines and procedures go with 0009's downgrade
       (SELECT count(*) FROM smart_health.chunk_queue) AS queued,
       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'smart_health'
               AND table_name = 'medical_records' AND column_name = 'discharge_datetime')
         AS has_discharge
"""


async def _encounter_state(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        state = dict(await conn.fetchrow(_ENCOUNTER_STATE))
        if state["has_discharge"]:
            state["discharged"] = await conn.fetchval(
                "SELECT count(*) FROM smart_health.medical_records "
                "WHERE discharge_datetime IS NOT NULL"
            )
        return state
    finally:
        await conn.close()


async def _refuses_encounter_chunks(url: str) -> bool:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await conn.execute(
            "INSERT INTO smart_health.clinical_chunks (patient_id, source_type, source_id, "
            "content, facts, search_text, embedding_text_hash, content_hash) "
            "SELECT patient_id, 'encounter', medical_record_id, 'x', '{}', 'x', 'x', 'x' "
            "FROM smart_health.medical_records LIMIT 1"
        )
    except asyncpg.CheckViolationError:
        return True
    finally:
        await conn.close()
    return False


async def _sync_and_refuse_early_discharge(url: str) -> None:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await sync_queued(conn)
        record = await conn.fetchrow(
            "SELECT medical_record_id, registration_datetime FROM smart_health.medical_records "
            "WHERE record_type = 'Hospitalización' LIMIT 1"
        )
        for discharge in (record["registration_datetime"], dt.datetime(2000, 1, 1, tzinfo=dt.UTC)):
            with pytest.raises(asyncpg.CheckViolationError, match="discharge_after_registration"):
                await conn.execute(
                    "UPDATE smart_health.medical_records SET discharge_datetime = $2 "
                    "WHERE medical_record_id = $1",
                    record["medical_record_id"],
                    discharge,
                )
    finally:
        await conn.close()


def test_0005_discharges_and_encounter_chunks_down_and_up(
    pg: EmbeddedPostgres, template_url: str
) -> None:
    name = clone_database(pg)
    url = to_asyncpg_url(pg.url(name))
    try:
        before = asyncio.run(_encounter_state(url))
        assert before["encounters"] == before["records"] > 0
        assert before["discharged"] > 0 and before["queued"] == 0

        migrate.downgrade(url, "0004")
        assert migrate.current_revision(url) == "0004"
        down = asyncio.run(_encounter_state(url))
        assert not down["has_discharge"] and down["encounters"] == 0
        assert down["other_chunks"] == before["other_chunks"]
        assert asyncio.run(_refuses_encounter_chunks(url))

        migrate.upgrade(url)
        up = asyncio.run(_encounter_state(url))
        assert up["has_discharge"] and up["discharged"] == 0  # the downgrade dropped them
        assert up["queued"] == up["patients"]  # every patient re-chunked on the next pass
        asyncio.run(_sync_and_refuse_early_discharge(url))
        synced = asyncio.run(_encounter_state(url))
        assert synced["encounters"] == synced["records"] and synced["queued"] == 0
    finally:
        drop_database(pg, name)


async def _unembedded(url: str, model: str) -> int:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM smart_health.clinical_chunks c WHERE NOT EXISTS (SELECT 1 "
                "FROM smart_health.embedding_cache e WHERE e.text_hash = c.embedding_text_hash "
                "AND e.model = $1)",
                model,
            )
        )
    finally:
        await conn.close()


async def _forget_unused_meanings(url: str) -> None:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await conn.execute(
            "DELETE FROM smart_health.embedding_texts t WHERE NOT EXISTS (SELECT 1 FROM "
            "smart_health.clinical_chunks c WHERE c.embedding_text_hash = t.text_hash)"
        )
        await conn.execute(
            "DELETE FROM smart_health.embedding_cache e WHERE NOT EXISTS (SELECT 1 FROM "
            "smart_health.embedding_texts t WHERE t.text_hash = e.text_hash)"
        )
    finally:
        await conn.close()


def test_smarthealth_embed_brings_a_0004_database_its_encounter_chunks(
    pg: EmbeddedPostgres, template_url: str
) -> None:
    name = clone_database(pg)
    url = to_asyncpg_url(pg.url(name))
    try:
        migrate.downgrade(url, "0004")
        asyncio.run(_forget_unused_meanings(url))  # as a 0004 database that never had them
        env = {k: v for k, v in os.environ.items() if k != "SMARTHEALTH_DATA_DIR"}
        env.update(DATABASE_URL=to_libpq_url(url), COLUMNS="200")
        result = subprocess.run(
            [sys.executable, "-m", "smarthealth.cli", "embed"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report = result.stderr  # the command reports on stderr
        assert f"Pacientes: {TEMPLATE_PATIENTS} ·" in report, report
        embedded = re.search(r"(\d+) textos embebidos", report)
        assert embedded and int(embedded.group(1)) > 0, report  # the encounter meanings
        state = asyncio.run(_encounter_state(url))
        assert state["encounters"] == state["records"] > 0 and state["queued"] == 0
        assert asyncio.run(_unembedded(url, shared_embedder().model_name)) == 0
    finally:
        drop_database(pg, name)
