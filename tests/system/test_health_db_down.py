"""`/health` follows the database: 503 while it is down, 200 again once it is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from smarthealth.app import create_app
from smarthealth.config import to_asyncpg_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from tests.conftest import bearer, insert_user, lifespan_client, make_settings


async def test_health_turns_503_and_back_without_restarting_the_app(
    tmp_path: Path, password_hash: str
) -> None:
    server = EmbeddedPostgres(tmp_path / "pgdata").start()
    url = to_asyncpg_url(server.url())
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        app = create_app(make_settings(), database_url=url)
        user = await insert_user(url, password_hash)
        async for client in lifespan_client(app):
            client.headers.update(bearer(app, user))
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/catalog/document-types")).status_code == 200

            await asyncio.to_thread(server.stop)
            down = await client.get("/health")
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
            assert down.json()["database"] == {"status": "down"}
            unavailable = await client.get("/catalog/document-types")
            assert unavailable.status_code == 503
            assert unavailable.json()["error"]["code"] == "DATABASE_UNAVAILABLE"

            await asyncio.to_thread(server.start)
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/catalog/document-types")).status_code == 200
    finally:
        server.stop()
