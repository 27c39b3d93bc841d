"""Tokens issued before a password, role or active-flag change stop working (REST and WebSocket),
compared to the microsecond; a token issued after the change works."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from smarthealth.app import create_app
from smarthealth.auth.tokens import decode_token, issue_token
from smarthealth.config import to_libpq_url
from tests.conftest import PASSWORD, bearer, insert_user, lifespan_client, make_settings
from tests.live_server import LiveServer, first_patient

NEW_PASSWORD = "Otra-clave-segura-2027"


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    password_hash: str
    admin: int

    @property
    def as_admin(self) -> dict[str, str]:
        return bearer(self.app, self.admin, "admin")

    async def user(self, role: str = "clinician", active: bool = True) -> tuple[int, str]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@hospital.test"
        return await insert_user(self.db_url, self.password_hash, role, active, email), email

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        response = await self.client.post(
            "/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def valid_from(self, user_id: int) -> dt.datetime | None:
        conn = await asyncpg.connect(to_libpq_url(self.db_url))
        try:
            value = await conn.fetchval(
                "SELECT tokens_valid_from FROM smart_health.users WHERE user_id = $1", user_id
            )
        finally:
            await conn.close()
        return value  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(), database_url=db_url)
    admin = await insert_user(db_url, password_hash, "admin")
    async for client in lifespan_client(app):
        yield Ctx(app, client, db_url, password_hash, admin)


def _session_ended(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "UNAUTHORIZED"
    assert "sesión terminó" in error["message"]
    assert "invalid_token" in response.headers["www-authenticate"]


async def test_old_token_refused_after_an_admin_changes_the_role(ctx: Ctx) -> None:
    user, email = await ctx.user("clinician")
    old = await ctx.login(email)
    assert (await ctx.client.get("/audit/", headers=old)).status_code == 403
    promoted = await ctx.client.patch(
        f"/users/{user}", json={"role": "auditor"}, headers=ctx.as_admin
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "auditor"
    _session_ended(await ctx.client.get("/audit/", headers=old))
    _session_ended(await ctx.client.get("/users/me", headers=old))
    new = await ctx.login(email)
    assert (await ctx.client.get("/audit/", headers=new)).status_code == 200


async def test_old_token_refused_after_an_admin_resets_the_password(ctx: Ctx) -> None:
    user, email = await ctx.user()
    old = await ctx.login(email)
    reset = await ctx.client.patch(
        f"/users/{user}", json={"password": NEW_PASSWORD}, headers=ctx.as_admin
    )
    assert reset.status_code == 200, reset.text
    _session_ended(await ctx.client.get("/users/me", headers=old))
    assert (
        await ctx.client.get("/users/me", headers=await ctx.login(email, NEW_PASSWORD))
    ).is_success


async def test_old_token_stays_refused_after_deactivation_and_reactivation(ctx: Ctx) -> None:
    user, email = await ctx.user()
    old = await ctx.login(email)
    assert (await ctx.client.delete(f"/users/{user}", headers=ctx.as_admin)).status_code == 200
    assert (await ctx.client.get("/users/me", headers=old)).status_code == 401
    reactivated = await ctx.client.patch(
        f"/users/{user}", json={"is_active": True}, headers=ctx.as_admin
    )
    assert reactivated.status_code == 200 and reactivated.json()["is_active"] is True
    _session_ended(await ctx.client.get("/users/me", headers=old))
    assert (await ctx.client.get("/users/me", headers=await ctx.login(email))).is_success


async def test_a_change_of_name_or_email_keeps_sessions(ctx: Ctx) -> None:
    user, _ = await ctx.user()
    token = bearer(ctx.app, user)
    renamed = await ctx.client.patch(
        f"/users/{user}",
        json={"full_name": "Nombre Nuevo", "email": f"n-{uuid.uuid4().hex[:8]}@hospital.test"},
        headers=token,
    )
    assert renamed.status_code == 200
    assert (await ctx.client.get("/users/me", headers=token)).status_code == 200
    assert await ctx.valid_from(user) is None
    # and a change that changes nothing (the same role) ends nothing either
    same = await ctx.client.patch(
        f"/users/{user}", json={"role": "clinician"}, headers=ctx.as_admin
    )
    assert same.status_code == 200
    assert (await ctx.client.get("/users/me", headers=token)).status_code == 200
    assert await ctx.valid_from(user) is None


async def test_the_admins_own_token_is_untouched(ctx: Ctx) -> None:
    user, _ = await ctx.user()
    admin_token = ctx.as_admin
    await ctx.client.patch(f"/users/{user}", json={"role": "auditor"}, headers=admin_token)
    assert (await ctx.client.get("/users/", headers=admin_token)).status_code == 200


# -- iat granularity: a token is compared with the change to the microsecond ------------------


def test_issued_tokens_carry_microseconds() -> None:
    secret = "s" * 40
    before = dt.datetime.now(dt.UTC)
    token = issue_token(1, "clinician", secret, 5).token
    after = dt.datetime.now(dt.UTC)
    iat = jwt.decode(token, secret, algorithms=["HS256"])["iat"]
    assert isinstance(iat, float)
    issued_at = decode_token(token, secret).issued_at
    assert before <= issued_at <= after
    assert issued_at == dt.datetime.fromtimestamp(iat, dt.UTC)  # exact round trip


def _token_issued_at(ctx: Ctx, user: int, issued: dt.datetime | int) -> dict[str, str]:
    iat = issued if isinstance(issued, int) else issued.timestamp()
    claims = {
        "sub": str(user),
        "role": "clinician",
        "iat": iat,
        "exp": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, ctx.app.state.secret_key, 'HS256')}"}


async def _me(ctx: Ctx, headers: dict[str, str]) -> int:
    return (await ctx.client.get("/users/me", headers=headers)).status_code


async def test_both_sides_of_the_change_to_the_microsecond(ctx: Ctx) -> None:
    user, _ = await ctx.user()
    await ctx.client.patch(f"/users/{user}", json={"role": "auditor"}, headers=ctx.as_admin)
    changed = await ctx.valid_from(user)
    assert changed is not None
    micro = dt.timedelta(microseconds=1)
    # issued the microsecond before the change: refused; at it or after it: accepted
    assert await _me(ctx, _token_issued_at(ctx, user, changed - micro)) == 401
    assert await _me(ctx, _token_issued_at(ctx, user, changed)) == 200
    assert await _me(ctx, _token_issued_at(ctx, user, changed + micro)) == 200


async def test_a_whole_second_iat_in_the_same_second_as_the_change(ctx: Ctx) -> None:
    """A token with a whole-second `iat` (a standard JWT) from the second of the change was
    issued before it (its instant is the start of that second): refused, unless the change fell
    exactly on the second."""
    user, _ = await ctx.user()
    conn = await asyncpg.connect(to_libpq_url(ctx.db_url))
    # a second in the past, so that `iat` one second later is not in the future either
    second = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=10)
    try:
        for change, accepted in (
            (second + dt.timedelta(microseconds=250_000), False),
            (second, True),
        ):
            await conn.execute(
                "UPDATE smart_health.users SET tokens_valid_from = $2 WHERE user_id = $1",
                user,
                change,
            )
            token = _token_issued_at(ctx, user, int(second.timestamp()))
            assert await _me(ctx, token) == (200 if accepted else 401), change
            later = _token_issued_at(ctx, user, int(second.timestamp()) + 1)
            assert await _me(ctx, later) == 200
    finally:
        await conn.close()


async def test_login_in_the_same_second_as_the_change_works(ctx: Ctx) -> None:
    """The real flow many times over: a change, then a login at once (often in the same second
    as the change), then a request with the new token — never refused."""
    user, email = await ctx.user()
    for role in ("auditor", "clinician", "auditor"):
        old = await ctx.login(email)
        changed = await ctx.client.patch(
            f"/users/{user}", json={"role": role}, headers=ctx.as_admin
        )
        assert changed.status_code == 200
        new = await ctx.login(email)
        assert await _me(ctx, new) == 200
        assert await _me(ctx, old) == 401


@pytest.mark.parametrize("iat", ["1700000000", True, [1], -1e300, 1e300, None])
async def test_an_impossible_iat_is_an_invalid_token(ctx: Ctx, iat: Any) -> None:
    user, _ = await ctx.user()
    claims: dict[str, Any] = {
        "sub": str(user),
        "role": "clinician",
        "iat": iat,
        "exp": int((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).timestamp()),
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    token = jwt.encode(claims, ctx.app.state.secret_key, "HS256")
    response = await ctx.client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


# -- the WebSocket -----------------------------------------------------------------------------


async def _recv(ws: Any, wait: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))  # type: ignore[no-any-return]


async def _patient(db_url: str) -> dict[str, Any]:
    return dict(await first_patient(db_url))


async def test_websocket_with_an_old_token_is_closed_1008_after_a_role_change(
    db_url: str, password_hash: str
) -> None:
    secret = "revocation-" + "k" * 40
    app = create_app(make_settings(secret_key=secret), database_url=db_url)
    user = await insert_user(db_url, password_hash, "clinician")
    admin = issue_token(await insert_user(db_url, password_hash, "admin"), "admin", secret, 5)
    query = json.dumps({"type": "query", **await _patient(db_url), "question": "¿Tiene alergias?"})
    old = issue_token(user, "clinician", secret, 30).token
    with LiveServer(app) as live:
        async with connect(f"{live.ws}/ws/chat?token={old}") as open_socket:
            assert (await _recv(open_socket))["type"] == "connected"
            async with httpx.AsyncClient(base_url=live.http) as http:
                changed = await http.patch(
                    f"/users/{user}",
                    json={"role": "admin"},
                    headers={"Authorization": f"Bearer {admin.token}"},
                )
            assert changed.status_code == 200, changed.text
            # the socket opened before the change: its next question is refused and it closes
            await open_socket.send(query)
            refused = await _recv(open_socket)
            assert refused["type"] == "error" and refused["error"]["code"] == "UNAUTHORIZED"
            assert "sesión terminó" in refused["error"]["message"]
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # nothing but the close may follow
                    assert (await _recv(open_socket))["type"] != "token"
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "UNAUTHORIZED")
        # a new socket with the old token: closed 1008 on connect
        async with connect(f"{live.ws}/ws/chat?token={old}") as late:
            with pytest.raises(ConnectionClosed) as closed:
                await _recv(late)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "UNAUTHORIZED")
        # a token issued after the change connects and is answered, with the new role
        new = issue_token(user, "admin", secret, 30).token
        async with connect(f"{live.ws}/ws/chat?token={new}") as fresh:
            assert (await _recv(fresh))["type"] == "connected"
            await fresh.send(query)
            while (event := await _recv(fresh))["type"] not in ("complete", "error"):
                pass
            assert event["type"] == "complete", event
