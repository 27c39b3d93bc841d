"""`smarthealth seed`: catalogs, doctors and N synthetic patients, streamed in with COPY."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from smarthealth.config import to_libpq_url
from smarthealth.ingest.catalogs import load_catalog_files, load_catalogs
from smarthealth.ingest.generator import (
    ID_COLUMNS,
    TABLE_COLUMNS,
    Batch,
    HistoryGenerator,
)

SCHEMA = "smart_health"
BATCH_PATIENTS = 500
CLINICAL_TABLES = (
    "observations",
    "immunizations",
    "procedures",
    "prescriptions",
    "record_diagnoses",
    "medical_records",
    "appointments",
    "patient_allergies",
    "patients",
    "doctor_specialties",
    "doctors",
)


class SeedError(RuntimeError):
    """Seeding refused (e.g. the database already holds patients)."""


@dataclass
class SeedReport:
    patients: int
    seed: int
    today: dt.date
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)


def doctor_count(patients: int) -> int:
    return max(40, patients // 80)


async def _copy(conn: asyncpg.Connection, batch: Batch) -> None:
    for table, columns in TABLE_COLUMNS.items():
        rows = batch.rows[table]
        if rows:
            await conn.copy_records_to_table(
                table, records=rows, columns=columns, schema_name=SCHEMA
            )


async def patient_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.patients"))


async def seed_database(
    url: str,
    patients: int,
    seed: int,
    today: dt.date | None = None,
    reset: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Fill an empty (or, with `reset`, emptied) database. One transaction: all or nothing."""
    today = today or dt.date.today()
    report = SeedReport(patients=patients, seed=seed, today=today)
    started = time.perf_counter()
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        ids = await load_catalogs(conn)
        async with conn.transaction():
            if await patient_count(conn) > 0:
                if not reset:
                    raise SeedError(
                        "La base de datos ya tiene pacientes; use --reset para reemplazarlos."
                    )
                tables = ", ".join(f"{SCHEMA}.{t}" for t in CLINICAL_TABLES)
                await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            generator = HistoryGenerator(load_catalog_files(), ids, seed, today)
            await _copy(conn, generator.doctors(doctor_count(patients)))
            for first in range(1, patients + 1, BATCH_PATIENTS):
                size = min(BATCH_PATIENTS, patients - first + 1)
                await _copy(conn, generator.patients(first, size))
                if on_progress is not None:
                    on_progress(size)
            await _copy(conn, generator.deferred())
            for table, column in ID_COLUMNS.items():
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{SCHEMA}.{table}', '{column}'), "
                    f"coalesce((SELECT max({column}) FROM {SCHEMA}.{table}), 0) + 1, false)"
                )
        await conn.execute("ANALYZE")
        for table in TABLE_COLUMNS:
            report.rows[table] = int(await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.{table}"))
    finally:
        await conn.close()
    report.seconds = time.perf_counter() - started
    return report


def patient_count_sync(url: str) -> int:
    """For the CLI: how many patients the database holds."""
    import asyncio

    async def _count() -> int:
        conn = await asyncpg.connect(to_libpq_url(url))
        try:
            return await patient_count(conn)
        finally:
            await conn.close()

    return asyncio.run(_count())
