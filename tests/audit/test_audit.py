"""The audit trail: one row per event, append-only in the database, tamper-evident chain."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.audit.verify import verify_chain
from smarthealth.config import to_libpq_url
from smarthealth.users.accounts_cli import create_account
from tests.conftest import PASSWORD, bearer, insert_user, lifespan_client, make_settings


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    password_hash: str
    admin: int

    async def rows(self, **where: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(to_libpq_url(self.db_url))
        try:
            clauses = " AND ".join(f"{k} = ${i}" for i, k in enumerate(where, start=1))
            return await conn.fetch(
                f"SELECT * FROM smart_health.audit_logs WHERE {clauses or 'true'} "
                "ORDER BY audit_log_id",
                *where.values(),
            )
        finally:
            await conn.close()

    async def new_rows(self, since: int) -> list[asyncpg.Record]:
        return [r for r in await self.rows() if r["audit_log_id"] > since]

    async def last_id(self) -> int:
        rows = await self.rows()
        return rows[-1]["audit_log_id"] if rows else 0


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(registration="open"), database_url=db_url)
    admin = await insert_user(db_url, password_hash, "admin")
    async for client in lifespan_client(app):
        yield Ctx(app, client, db_url, password_hash, admin)


def _email() -> str:
    return f"audit-{uuid.uuid4().hex[:10]}@hospital.test"


async def _single_new_event(ctx: Ctx, since: int, event_type: str) -> asyncpg.Record:
    rows = await ctx.new_rows(since)
    assert [r["event_type"] for r in rows] == [event_type]
    return rows[0]


async def test_registration_writes_one_row(ctx: Ctx) -> None:
    since = await ctx.last_id()
    response = await ctx.client.post(
        "/auth/register",
        json={"email": _email(), "password": PASSWORD, "full_name": "Rita"},
        headers={"User-Agent": "pytest-agent/1.0"},
    )
    row = await _single_new_event(ctx, since, "user.registered")
    assert row["user_id"] == response.json()["user_id"]
    assert row["channel"] == "rest" and row["user_agent"] == "pytest-agent/1.0"
    assert row["row_hash"] and len(row["row_hash"]) == 64


async def test_login_success_and_failure_write_one_row_each(ctx: Ctx) -> None:
    email = _email()
    user = await insert_user(ctx.db_url, ctx.password_hash, email=email)
    since = await ctx.last_id()
    await ctx.client.post("/auth/login", json={"email": email, "password": "equivocada"})
    failure = await _single_new_event(ctx, since, "login.failure")
    assert failure["user_id"] == user and failure["outcome"] == "bad_credentials"
    since = await ctx.last_id()
    await ctx.client.post("/auth/login", json={"email": email, "password": PASSWORD})
    success = await _single_new_event(ctx, since, "login.success")
    assert success["user_id"] == user and success["prev_hash"] == failure["row_hash"]


async def test_user_created_from_the_cli_writes_one_row(ctx: Ctx) -> None:
    since = await ctx.last_id()
    user_id = await create_account(ctx.db_url, _email(), PASSWORD, "Creada Por CLI", "auditor")
    row = await _single_new_event(ctx, since, "user.created")
    assert row["channel"] == "cli" and row["details"]
    assert f'"target_user_id": {user_id}' in row["details"]


@pytest.mark.parametrize(
    ("method", "body", "event"),
    [
        ("PATCH", {"full_name": "Otro Nombre"}, "user.updated"),
        ("PATCH", {"role": "auditor"}, "user.role_changed"),
        ("PATCH", {"is_active": False}, "user.deactivated"),
        ("DELETE", None, "user.deactivated"),
    ],
)
async def test_account_changes_write_one_row(
    ctx: Ctx, method: str, body: dict[str, object] | None, event: str
) -> None:
    target = await insert_user(ctx.db_url, ctx.password_hash)
    since = await ctx.last_id()
    response = await ctx.client.request(
        method, f"/users/{target}", json=body, headers=bearer(ctx.app, ctx.admin, "admin")
    )
    assert response.status_code == 200
    row = await _single_new_event(ctx, since, event)
    assert row["user_id"] == ctx.admin


async def test_a_change_that_changes_nothing_writes_nothing(ctx: Ctx) -> None:
    target = await insert_user(ctx.db_url, ctx.password_hash)
    since = await ctx.last_id()
    await ctx.client.patch(
        f"/users/{target}", json={"role": "clinician"}, headers=bearer(ctx.app, ctx.admin, "admin")
    )
    assert await ctx.new_rows(since) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE smart_health.audit_logs SET outcome = 'edited'",
        "DELETE FROM smart_health.audit_logs",
        "TRUNCATE smart_health.audit_logs",
    ],
)
async def test_database_refuses_to_rewrite_history(ctx: Ctx, statement: str) -> None:
    assert await ctx.rows()
    conn = await asyncpg.connect(to_libpq_url(ctx.db_url))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_audit_read_api_filters_and_pages_newest_first(ctx: Ctx) -> None:
    headers = bearer(ctx.app, ctx.admin, "admin")
    page = (await ctx.client.get("/audit/", params={"page_size": 3}, headers=headers)).json()
    ids = [item["audit_log_id"] for item in page["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3 and page["total"] >= 3
    logins = (
        await ctx.client.get("/audit/", params={"event_type": "login.failure"}, headers=headers)
    ).json()
    assert logins["items"] and {i["event_type"] for i in logins["items"]} == {"login.failure"}
    mine = (await ctx.client.get("/audit/", params={"user_id": ctx.admin}, headers=headers)).json()
    assert mine["items"] and {i["user_id"] for i in mine["items"]} == {ctx.admin}
    future = (
        await ctx.client.get(
            "/audit/", params={"date_from": "2999-01-01T00:00:00Z"}, headers=headers
        )
    ).json()
    assert future["items"] == [] and future["total"] == 0
    bad = await ctx.client.get("/audit/", params={"document_number": "<script>"}, headers=headers)
    assert bad.status_code == 422


def _verify_cli(db_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SMARTHEALTH_DATA_DIR"}
    env["DATABASE_URL"] = to_libpq_url(db_url)
    return subprocess.run(
        [sys.executable, "-m", "smarthealth.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_verify_names_the_row_altered_behind_the_triggers_back(ctx: Ctx) -> None:
    await ctx.client.post("/auth/login", json={"email": _email(), "password": "x" * 9})
    intact = await asyncio.to_thread(_verify_cli, ctx.db_url)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "cadena íntegra" in intact.stdout

    rows = await ctx.rows()
    victim = rows[len(rows) // 2]["audit_log_id"]
    conn = await asyncpg.connect(to_libpq_url(ctx.db_url))
    try:  # what a superuser could do: switch the guard off, edit, switch it back on
        await conn.execute(
            "ALTER TABLE smart_health.audit_logs DISABLE TRIGGER audit_logs_no_update"
        )
        await conn.execute(
            "UPDATE smart_health.audit_logs SET outcome = 'success' , user_agent = 'forged' "
            "WHERE audit_log_id = $1",
            victim,
        )
        await conn.execute(
            "ALTER TABLE smart_health.audit_logs ENABLE TRIGGER audit_logs_no_update"
        )
    finally:
        await conn.close()
    report = await verify_chain(ctx.db_url)
    assert report.broken_row_id == victim and report.reason == "content changed"
    broken = await asyncio.to_thread(_verify_cli, ctx.db_url)
    assert broken.returncode == 1
    assert f"audit_log_id={victim}" in broken.stdout
