"""Alembic migrations on an empty and on a populated database, and model/migration agreement."""

from __future__ import annotations

import asyncio

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from smarthealth.config import to_libpq_url
from smarthealth.db import migrate
from smarthealth.models import Base


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
