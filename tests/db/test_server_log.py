"""The embedded server logs errors tersely: no DETAIL lines, which carry row values such as a
staff member's e-mail on a duplicate key (issue 10, item 8)."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from smarthealth.config import to_libpq_url
from smarthealth.db.embedded import EmbeddedPostgres
from tests.conftest import insert_user


def test_error_verbosity_is_terse(pg: EmbeddedPostgres) -> None:
    assert pg.psql("SHOW log_error_verbosity") == "terse"


async def test_a_duplicate_email_is_logged_without_the_email(
    pg: EmbeddedPostgres, db_url: str, password_hash: str
) -> None:
    email = f"duplicada-{uuid.uuid4().hex[:10]}@hospital.test"
    await insert_user(db_url, password_hash, email=email)
    with pytest.raises(asyncpg.UniqueViolationError):
        await insert_user(db_url, password_hash, email=email)
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:  # a statement on a new connection after the error: its line is written by then
        await conn.execute("SELECT 1")
    finally:
        await conn.close()
    log = pg.pgdata / "server.log"
    deadline = time.monotonic() + 5
    while "uq_users_email" not in (text := log.read_text(errors="replace")):
        assert time.monotonic() < deadline, "the duplicate key error was never logged"
        await asyncio.sleep(0.1)
    assert email not in text
    assert "DETAIL:" not in text
