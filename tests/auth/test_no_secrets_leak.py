"""Passwords, hashes and tokens never show up in logs or response bodies."""

from __future__ import annotations

import logging
import uuid

import asyncpg
import pytest

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import PASSWORD, lifespan_client, make_settings


async def test_secrets_stay_out_of_logs_and_responses(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(registration="open"), database_url=db_url)
    email = f"secretos-{uuid.uuid4().hex[:8]}@hospital.test"
    bodies: list[str] = []
    with caplog.at_level(logging.DEBUG):
        async for client in lifespan_client(app):
            register = await client.post(
                "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Sol"}
            )
            login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
            token = login.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            me = await client.get("/users/me", headers=headers)
            listed = await client.get(f"/users/{me.json()['user_id']}", headers=headers)
            wrong = await client.post("/auth/login", json={"email": email, "password": "Mal-1234"})
            form = await client.post("/auth/token", data={"username": email, "password": PASSWORD})
            bodies = [r.text for r in (register, me, listed, wrong)]
            bodies.append(form.text.replace(form.json()["access_token"], ""))
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        stored_hash = await conn.fetchval(
            "SELECT password_hash FROM smart_health.users WHERE email = $1", email
        )
    finally:
        await conn.close()
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert logs  # the requests were logged at all
    for secret in (PASSWORD, "Mal-1234", stored_hash, token, stored_hash.split("$")[-1]):
        assert secret not in logs
        for body in bodies:
            assert secret not in body
