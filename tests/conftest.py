"""Shared fixtures: one embedded PostgreSQL per test run, a seeded template database, and a fresh
copy of it for each test module (CREATE DATABASE … TEMPLATE is a file copy: fast)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.config import Settings, to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.ingest.seed import seed_database
from smarthealth.log_config import configure_logging
from smarthealth.rag.embeddings import LocalE5Embedder

TEMPLATE_DB = "sh_template"
TEMPLATE_PATIENTS = 40
TEMPLATE_SEED = 7
TEMPLATE_TODAY = dt.date(2026, 6, 15)


def pytest_configure(config: pytest.Config) -> None:
    # Never pick up a developer's .env or database settings.
    for name in ("DATABASE_URL", "DB_HOST", "SECRET_KEY", "APP_ENV", "LLM_PROVIDER"):
        os.environ.pop(name, None)
    configure_logging("INFO", json=True)  # as `smarthealth serve` does


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "pgdata").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def template_url(pg: EmbeddedPostgres) -> str:
    """A migrated database with catalogs and a small seeded population, copied per module."""
    pg.psql(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"', database="postgres")
    pg.psql(f'CREATE DATABASE "{TEMPLATE_DB}"', database="postgres")
    url = to_asyncpg_url(pg.url(TEMPLATE_DB))
    migrate.upgrade(url)
    asyncio.run(seed_database(url, TEMPLATE_PATIENTS, TEMPLATE_SEED, today=TEMPLATE_TODAY))
    asyncio.run(index_everything(url))
    return url


async def index_everything(url: str) -> None:
    """Chunks and real embeddings for every patient (done once, in the template)."""
    import asyncpg

    from smarthealth.config import to_libpq_url
    from smarthealth.rag.indexer import embed_pending, sync_queued

    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await sync_queued(conn)
        await embed_pending(conn, shared_embedder())
    finally:
        await conn.close()


_EMBEDDER: list[LocalE5Embedder] = []


def shared_embedder() -> LocalE5Embedder:
    """One local model per test run (loading is cheap, but there is no need to repeat it)."""
    if not _EMBEDDER:
        _EMBEDDER.append(LocalE5Embedder())
    return _EMBEDDER[0]


def clone_database(pg: EmbeddedPostgres, template: str = TEMPLATE_DB) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"', database="postgres")
    return name


def drop_database(pg: EmbeddedPostgres, name: str) -> None:
    pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', database="postgres")


async def fetch(db_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """Rows of one query on its own connection."""
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def migrated_database(pg: EmbeddedPostgres, name: str) -> str:
    """A new database `name` at the newest migration (catalogs loaded, no patients); its URL."""
    drop_database(pg, name)
    pg.psql(f'CREATE DATABASE "{name}"', database="postgres")
    url = to_asyncpg_url(pg.url(name))
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def db_url(pg: EmbeddedPostgres, template_url: str) -> Iterator[str]:
    """A private, seeded database for this test module."""
    name = clone_database(pg)
    yield to_asyncpg_url(pg.url(name))
    drop_database(pg, name)


@pytest.fixture(scope="module")
def empty_db_url(pg: EmbeddedPostgres) -> Iterator[str]:
    """A database with nothing in it (not even migrations)."""
    name = f"e_{uuid.uuid4().hex[:12]}"
    pg.psql(f'CREATE DATABASE "{name}"', database="postgres")
    yield to_asyncpg_url(pg.url(name))
    drop_database(pg, name)


def make_settings(**overrides: object) -> Settings:
    """Settings isolated from the environment; a fixed signing key unless one is given."""
    values: dict[str, object] = {"app_env": "development", "secret_key": "test-" + "k" * 40}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def lifespan_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


# -- accounts -------------------------------------------------------------------------------

PASSWORD = "Clave-segura-2026"


@pytest.fixture(scope="session")
def password_hash() -> str:
    from smarthealth.auth.passwords import hash_password_sync

    return hash_password_sync(PASSWORD)


async def insert_user(
    db_url: str,
    password_hash: str,
    role: str = "clinician",
    active: bool = True,
    email: str | None = None,
) -> int:
    """A user row written directly (no audit event): fixtures only."""
    import asyncpg

    from smarthealth.config import to_libpq_url

    email = email or f"{role}-{uuid.uuid4().hex[:10]}@hospital.test"
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        return int(
            await conn.fetchval(
                "INSERT INTO smart_health.users (email, password_hash, full_name, role, is_active) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING user_id",
                email,
                password_hash,
                f"Usuario {role}",
                role,
                active,
            )
        )
    finally:
        await conn.close()


def bearer(
    app: FastAPI, user_id: int, role: str = "clinician", minutes: int = 30
) -> dict[str, str]:
    from smarthealth.auth.tokens import issue_token

    token = issue_token(user_id, role, app.state.secret_key, minutes).token
    return {"Authorization": f"Bearer {token}"}
