"""Changing one's own password needs the current one; an administrator resetting another
account's password does not. Each change (and each refused guess) is audited without the password,
and the tokens issued before a change stop working."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.auth import throttle
from smarthealth.config import to_libpq_url
from tests.conftest import PASSWORD, bearer, insert_user, lifespan_client, make_settings

NEW_PASSWORD = "Otra-clave-segura-2027"
WRONG_PASSWORD = "No-es-la-clave-2026"


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    password_hash: str
    admin: int

    async def user(self, role: str = "clinician") -> tuple[int, str]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@hospital.test"
        return await insert_user(self.db_url, self.password_hash, role, email=email), email

    async def login(self, email: str, password: str) -> httpx.Response:
        return await self.client.post("/auth/login", json={"email": email, "password": password})

    async def token(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        response = await self.login(email, password)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def events(self, target: int) -> list[dict[str, Any]]:
        """The account's password events, each as the whole row in JSON (every column)."""
        conn = await asyncpg.connect(to_libpq_url(self.db_url))
        try:
            rows = await conn.fetch(
                "SELECT row_to_json(a)::text AS row FROM smart_health.audit_logs a "
                "WHERE event_type LIKE 'user.password%' "
                "AND (details->>'target_user_id')::int = $1 ORDER BY audit_log_id",
                target,
            )
        finally:
            await conn.close()
        return [json.loads(r["row"]) | {"_text": r["row"]} for r in rows]


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(), database_url=db_url)
    admin = await insert_user(db_url, password_hash, "admin")
    async for client in lifespan_client(app):
        yield Ctx(app, client, db_url, password_hash, admin)


def _no_password_in(event: dict[str, Any]) -> None:
    for secret in (PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, "argon2"):
        assert secret not in event["_text"]


def _missing_current_password(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_INPUT"
    assert error["message"] == "Para cambiar su contraseña indique también la contraseña actual."
    assert error["details"]["fields"] == [{"field": "current_password", "type": "missing"}]


async def _unchanged(ctx: Ctx, email: str) -> None:
    assert (await ctx.login(email, PASSWORD)).status_code == 200
    assert (await ctx.login(email, NEW_PASSWORD)).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/users/{id}"),
        ("PUT", "/users/{id}"),
        ("PATCH", "/users/me"),
        ("PUT", "/users/me"),
    ],
)
async def test_own_password_change_without_current_password_is_422(
    ctx: Ctx, method: str, path: str
) -> None:
    user, email = await ctx.user()
    body: dict[str, Any] = {"password": NEW_PASSWORD}
    if method == "PUT":
        body |= {"email": email, "full_name": "Nombre Completo"}
    response = await ctx.client.request(
        method, path.format(id=user), json=body, headers=bearer(ctx.app, user)
    )
    _missing_current_password(response)
    await _unchanged(ctx, email)
    assert await ctx.events(user) == []


async def test_an_empty_current_password_is_invalid_input(ctx: Ctx) -> None:
    user, email = await ctx.user()
    response = await ctx.client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "current_password": ""},
        headers=bearer(ctx.app, user),
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["field"] == "current_password"
    await _unchanged(ctx, email)


async def test_own_password_change_with_a_wrong_current_password_is_403_and_audited(
    ctx: Ctx,
) -> None:
    user, email = await ctx.user()
    headers = bearer(ctx.app, user)
    response = await ctx.client.patch(
        f"/users/{user}",
        json={"password": NEW_PASSWORD, "current_password": WRONG_PASSWORD},
        headers=headers,
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"] == {
        "code": "INVALID_CURRENT_PASSWORD",
        "message": "La contraseña actual no es correcta.",
    }
    await _unchanged(ctx, email)
    [event] = await ctx.events(user)
    assert event["event_type"] == "user.password_change_failed"
    assert event["outcome"] == "bad_credentials" and event["user_id"] == user
    _no_password_in(event)
    # a refused guess ends no session
    assert (await ctx.client.get("/users/me", headers=headers)).status_code == 200


@pytest.mark.parametrize("path", ["/users/{id}", "/users/me"])
async def test_own_password_change_with_the_right_current_password(ctx: Ctx, path: str) -> None:
    user, email = await ctx.user()
    old = await ctx.token(email)
    response = await ctx.client.patch(
        path.format(id=user),
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=old,
    )
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == user
    assert "password" not in response.text and "argon2" not in response.text
    # the new password logs in, the old one no longer does
    assert (await ctx.login(email, PASSWORD)).status_code == 401
    new = await ctx.token(email, NEW_PASSWORD)
    # the token used for the change (issued before it) no longer works; the new one does
    refused = await ctx.client.get("/users/me", headers=old)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHORIZED"
    assert (await ctx.client.get("/users/me", headers=new)).json()["user_id"] == user
    # audited once, by the account itself, naming the field and never the value
    [event] = await ctx.events(user)
    assert event["event_type"] == "user.password_changed" and event["outcome"] == "success"
    assert event["user_id"] == user and event["details"]["fields"] == ["password"]
    _no_password_in(event)


async def test_own_password_change_by_put_with_the_right_current_password(ctx: Ctx) -> None:
    user, email = await ctx.user()
    response = await ctx.client.put(
        "/users/me",
        json={
            "email": email,
            "full_name": "Nombre Completo",
            "password": NEW_PASSWORD,
            "current_password": PASSWORD,
        },
        headers=bearer(ctx.app, user),
    )
    assert response.status_code == 200, response.text
    assert (await ctx.login(email, NEW_PASSWORD)).status_code == 200


async def test_admin_resets_another_accounts_password_without_the_current_one(ctx: Ctx) -> None:
    user, email = await ctx.user()
    old = await ctx.token(email)
    response = await ctx.client.patch(
        f"/users/{user}",
        json={"password": NEW_PASSWORD},
        headers=bearer(ctx.app, ctx.admin, "admin"),
    )
    assert response.status_code == 200, response.text
    assert (await ctx.login(email, NEW_PASSWORD)).status_code == 200
    assert (await ctx.client.get("/users/me", headers=old)).status_code == 401
    [event] = await ctx.events(user)
    assert event["event_type"] == "user.password_changed" and event["user_id"] == ctx.admin
    _no_password_in(event)


async def test_an_admin_changing_their_own_password_needs_the_current_one(ctx: Ctx) -> None:
    admin, email = await ctx.user("admin")
    headers = bearer(ctx.app, admin, "admin")
    missing = await ctx.client.patch(
        f"/users/{admin}", json={"password": NEW_PASSWORD}, headers=headers
    )
    _missing_current_password(missing)
    wrong = await ctx.client.patch(
        f"/users/{admin}",
        json={"password": NEW_PASSWORD, "current_password": WRONG_PASSWORD},
        headers=headers,
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "INVALID_CURRENT_PASSWORD"
    await _unchanged(ctx, email)


async def test_current_password_is_ignored_when_the_password_does_not_change(ctx: Ctx) -> None:
    user, _ = await ctx.user()
    response = await ctx.client.patch(
        "/users/me",
        json={"full_name": "Nombre Nuevo", "current_password": WRONG_PASSWORD},
        headers=bearer(ctx.app, user),
    )
    assert response.status_code == 200 and response.json()["full_name"] == "Nombre Nuevo"
    assert await ctx.events(user) == []


async def test_guessing_the_current_password_is_throttled_like_a_login(ctx: Ctx) -> None:
    """A stolen token cannot be used to find the password: after 5 wrong guesses even the right
    one is refused (429 with Retry-After), and so is a login to the account."""
    user, email = await ctx.user()
    headers = bearer(ctx.app, user)
    for _ in range(throttle.ACCOUNT_FAILURES):
        wrong = await ctx.client.patch(
            "/users/me",
            json={"password": NEW_PASSWORD, "current_password": WRONG_PASSWORD},
            headers=headers,
        )
        assert wrong.status_code == 403
    right = await ctx.client.patch(
        "/users/me", json={"password": NEW_PASSWORD, "current_password": PASSWORD}, headers=headers
    )
    assert right.status_code == 429, right.text
    assert right.json()["error"]["code"] == "RATE_LIMITED"
    assert int(right.headers["retry-after"]) > 0
    assert (await ctx.login(email, PASSWORD)).status_code == 429
    events = await ctx.events(user)
    assert [e["outcome"] for e in events] == ["bad_credentials"] * 5 + ["rate_limited"]
    assert {e["event_type"] for e in events} == {"user.password_change_failed"}
