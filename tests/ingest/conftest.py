"""A population bigger than the test template, seeded once for the seeder's statistical checks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from smarthealth.config import to_libpq_url
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.ingest.seed import seed_database
from tests.conftest import TEMPLATE_SEED, TEMPLATE_TODAY, drop_database, migrated_database

# Rates and group means need more people than the 40 of the test template (which holds five
# hypertensive adults and a handful of emergency visits).
POPULATION = 600


@pytest.fixture(scope="session")
def population_url(pg: EmbeddedPostgres) -> Iterator[str]:
    """Read only: every module that checks the seeded population shares it."""
    name = f"pop_{uuid.uuid4().hex[:12]}"
    url = migrated_database(pg, name)
    asyncio.run(seed_database(url, POPULATION, TEMPLATE_SEED, today=TEMPLATE_TODAY))
    yield url
    drop_database(pg, name)


@pytest.fixture
async def population(population_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_libpq_url(population_url))
    yield connection
    await connection.close()
