"""Token attacks: each one is refused, and the database (not the token) decides who you are."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import bearer, insert_user, lifespan_client, make_settings


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    password_hash: str

    @property
    def secret(self) -> str:
        return str(self.app.state.secret_key)


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(), database_url=db_url)
    async for client in lifespan_client(app):
        yield Ctx(app, client, db_url, password_hash)


def _claims(user_id: int, **overrides: object) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, object] = {
        "sub": str(user_id),
        "role": "clinician",
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data, default=lambda d: int(d.timestamp())).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _me(ctx: Ctx, token: str) -> httpx.Response:
    header = f"Bearer {token}".encode()  # bytes: lets non-ASCII garbage through to the server
    return await ctx.client.get("/users/me", headers={"Authorization": header})


async def test_valid_token_is_accepted(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    token = jwt.encode(_claims(user), ctx.secret, algorithm="HS256")
    response = await _me(ctx, token)
    assert response.status_code == 200
    assert response.json()["user_id"] == user


async def test_alg_none_is_refused(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user))}."
    response = await _me(ctx, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def test_tampered_payload_breaks_the_signature(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    other = await insert_user(ctx.db_url, ctx.password_hash, "admin")
    header, _, signature = jwt.encode(_claims(user), ctx.secret, algorithm="HS256").split(".")
    forged = f"{header}.{_b64(_claims(other, role='admin'))}.{signature}"
    assert (await _me(ctx, forged)).status_code == 401


async def test_token_signed_with_another_key_is_refused(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    token = jwt.encode(_claims(user), "another-secret-that-is-long-enough-1234", algorithm="HS256")
    assert (await _me(ctx, token)).status_code == 401


async def test_other_hmac_algorithm_is_refused(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    token = jwt.encode(_claims(user), ctx.secret, algorithm="HS512")
    assert (await _me(ctx, token)).status_code == 401


async def test_expired_token_says_so(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    token = jwt.encode(
        _claims(user, iat=past, exp=past + dt.timedelta(minutes=30)), ctx.secret, algorithm="HS256"
    )
    response = await _me(ctx, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "TOKEN_EXPIRED"
    assert "invalid_token" in response.headers["www-authenticate"]


@pytest.mark.parametrize("missing", ["sub", "exp", "iat", "jti", "type"])
async def test_token_missing_a_required_claim_is_refused(ctx: Ctx, missing: str) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    claims = _claims(user)
    del claims[missing]
    assert (await _me(ctx, jwt.encode(claims, ctx.secret, algorithm="HS256"))).status_code == 401


async def test_token_of_a_deleted_user_is_refused(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    token = jwt.encode(_claims(user), ctx.secret, algorithm="HS256")
    conn = await asyncpg.connect(to_libpq_url(ctx.db_url))
    try:
        await conn.execute("DELETE FROM smart_health.users WHERE user_id = $1", user)
    finally:
        await conn.close()
    assert (await _me(ctx, token)).status_code == 401


async def test_deactivation_takes_effect_on_existing_tokens(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    admin = await insert_user(ctx.db_url, ctx.password_hash, "admin")
    headers = bearer(ctx.app, user)
    assert (await ctx.client.get("/users/me", headers=headers)).status_code == 200
    deactivated = await ctx.client.delete(f"/users/{user}", headers=bearer(ctx.app, admin, "admin"))
    assert deactivated.status_code == 200 and deactivated.json()["is_active"] is False
    assert (await ctx.client.get("/users/me", headers=headers)).status_code == 401


async def test_role_comes_from_the_database_not_the_token(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash, "clinician")
    token = jwt.encode(_claims(user, role="admin"), ctx.secret, algorithm="HS256")
    response = await ctx.client.get("/users/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


async def test_role_change_ends_old_tokens_and_new_ones_carry_the_new_role(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash, "clinician")
    admin = await insert_user(ctx.db_url, ctx.password_hash, "admin")
    headers = bearer(ctx.app, user, "clinician")
    assert (await ctx.client.get("/audit/", headers=headers)).status_code == 403
    promoted = await ctx.client.patch(
        f"/users/{user}", json={"role": "auditor"}, headers=bearer(ctx.app, admin, "admin")
    )
    assert promoted.status_code == 200
    assert (await ctx.client.get("/audit/", headers=headers)).status_code == 401
    # the role is read from the database: a token that still says "clinician" reads the audit
    issued_after = bearer(ctx.app, user, "clinician")
    assert (await ctx.client.get("/audit/", headers=issued_after)).status_code == 200


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "Bearer", "💥" * 10])
async def test_garbage_tokens_are_refused(ctx: Ctx, token: str) -> None:
    assert (await _me(ctx, token)).status_code == 401


async def test_token_in_the_wrong_header_form_is_refused(ctx: Ctx) -> None:
    user = await insert_user(ctx.db_url, ctx.password_hash)
    token = bearer(ctx.app, user)["Authorization"].removeprefix("Bearer ")
    for headers in (
        {"Authorization": f"Token {token}"},
        {"Authorization": token},
        {"X-Access-Token": token},
        {"Authorization": f"Basic {token}"},
    ):
        response = await ctx.client.get("/users/me", headers=headers)
        assert response.status_code == 401, headers
    assert (await ctx.client.get("/users/me", params={"token": token})).status_code == 401
