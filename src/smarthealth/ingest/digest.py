"""A digest of every clinical table, to prove two seeded databases hold the same rows and ids."""

from __future__ import annotations

import asyncpg

from smarthealth.config import to_libpq_url
from smarthealth.ingest.generator import TABLE_COLUMNS
from smarthealth.ingest.seed import SCHEMA

DIGEST_TABLES = ("document_types", "specialties", "diagnoses", "medications", *TABLE_COLUMNS)


async def table_digests(url: str) -> dict[str, str]:
    """md5 over each table's rows in primary-key order (row text includes every column)."""
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        digests = {}
        for table in DIGEST_TABLES:
            digests[table] = await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                f"FROM {SCHEMA}.{table} t"
            )
        return digests
    finally:
        await conn.close()
