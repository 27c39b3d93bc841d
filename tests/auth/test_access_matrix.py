"""Every route × every kind of caller, with the exact status expected in each cell."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from tests.conftest import PASSWORD, bearer, insert_user, lifespan_client, make_settings
from tests.live_server import first_patient

CALLERS = ("anonymous", "clinician", "auditor", "admin", "self", "other")


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    password_hash: str
    staff: dict[str, int]


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(registration="open"), database_url=db_url)
    staff = {
        role: await insert_user(db_url, password_hash, role)
        for role in ("clinician", "auditor", "admin")
    }
    async for client in lifespan_client(app):
        yield Ctx(app, client, db_url, password_hash, staff)


# route → expected status per caller. "self" acts on its own account (a clinician);
# "other" is another clinician acting on that account.
MATRIX: dict[str, dict[str, int]] = {
    "GET /": dict.fromkeys(CALLERS, 200),
    "GET /health": dict.fromkeys(CALLERS, 200),
    "POST /auth/register": dict.fromkeys(CALLERS, 201),
    "POST /auth/login": dict.fromkeys(CALLERS, 200),
    "POST /auth/token": dict.fromkeys(CALLERS, 200),
    "GET /catalog/document-types": {**dict.fromkeys(CALLERS, 200), "anonymous": 401},
    **{
        f"{method} /users/me": {**dict.fromkeys(CALLERS, 200), "anonymous": 401}
        for method in ("GET", "PUT", "PATCH")
    },
    "GET /users/": {
        "anonymous": 401,
        "clinician": 403,
        "auditor": 403,
        "admin": 200,
        "self": 403,
        "other": 403,
    },
    "GET /audit/": {
        "anonymous": 401,
        "clinician": 403,
        "auditor": 200,
        "admin": 200,
        "self": 403,
        "other": 403,
    },
    "POST /query/": {
        "anonymous": 401,
        "clinician": 200,
        "auditor": 403,
        "admin": 200,
        "self": 200,
        "other": 200,
    },
    "GET /patients/{patient}/summary": {
        "anonymous": 401,
        "clinician": 200,
        "auditor": 403,
        "admin": 200,
        "self": 200,
        "other": 200,
    },
    "GET /history/": {**dict.fromkeys(CALLERS, 200), "anonymous": 401},
    # the target user's own session: only its owner sees it; for everyone else it does not exist
    "GET /history/sessions/{session}": {
        "anonymous": 401,
        "clinician": 404,
        "auditor": 404,
        "admin": 404,
        "self": 200,
        "other": 404,
    },
    # rating the target user's answer: only its owner may; for everyone else it does not exist
    "POST /feedback": {
        "anonymous": 401,
        "clinician": 404,
        "auditor": 404,
        "admin": 404,
        "self": 201,
        "other": 404,
    },
    "GET /feedback": {
        "anonymous": 401,
        "clinician": 403,
        "auditor": 200,
        "admin": 200,
        "self": 403,
        "other": 403,
    },
    # off without SMARTHEALTH_METRICS_TOKEN, whoever asks (tests/metrics covers the token)
    "GET /metrics": dict.fromkeys(CALLERS, 404),
    **{
        f"{method} /users/{{target}}": {
            "anonymous": 401,
            "clinician": 403,
            "auditor": 403,
            "admin": 200,
            "self": 200,
            "other": 403,
        }
        for method in ("GET", "PUT", "PATCH", "DELETE")
    },
}
CASES = [(route, caller, status) for route, row in MATRIX.items() for caller, status in row.items()]


@pytest.mark.parametrize(
    ("route", "caller", "expected"), CASES, ids=[f"{r}-{c}" for r, c, _ in CASES]
)
async def test_access(ctx: Ctx, route: str, caller: str, expected: int) -> None:
    target = await insert_user(ctx.db_url, ctx.password_hash, "clinician")
    if caller == "anonymous":
        headers: dict[str, str] = {}
    elif caller == "self":
        headers = bearer(ctx.app, target)
    elif caller == "other":
        headers = bearer(ctx.app, await insert_user(ctx.db_url, ctx.password_hash))
    else:
        headers = bearer(ctx.app, ctx.staff[caller], caller)
    method, path = route.split(" ", 1)
    path = path.replace("{target}", str(target))
    if "{patient}" in path:
        patient = await _patient(ctx)
        path = path.replace(
            "{patient}", f"{patient['document_type_id']}/{patient['document_number']}"
        )
    if "{session}" in path:
        path = path.replace("{session}", await _session_of(ctx, target))
    email = f"nuevo-{uuid.uuid4().hex[:8]}@hospital.test"
    kwargs: dict[str, object] = {"headers": headers}
    if path == "/auth/register":
        kwargs["json"] = {"email": email, "password": PASSWORD, "full_name": "Nueva Persona"}
    elif path in ("/auth/login", "/auth/token"):
        login_email = f"login-{uuid.uuid4().hex[:8]}@hospital.test"
        await insert_user(ctx.db_url, ctx.password_hash, email=login_email)
        if path == "/auth/login":
            kwargs["json"] = {"email": login_email, "password": PASSWORD}
        else:
            kwargs["data"] = {"username": login_email, "password": PASSWORD}
    elif path == "/query/":
        kwargs["json"] = {**await _patient(ctx), "question": "¿Tiene alergias?"}
    elif route == "POST /feedback":
        turn = {"session_id": await _session_of(ctx, target), "sequence_chat_id": 1}
        kwargs["json"] = {**turn, "rating": "down", "reason": "incomplete"}
    elif method == "PUT":
        kwargs["json"] = {"email": email, "full_name": "Nombre Cambiado"}
    elif method == "PATCH":
        kwargs["json"] = {"full_name": "Nombre Cambiado"}
    response = await ctx.client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.json()["status"] == "error"
    if expected == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


async def _patient(ctx: Ctx) -> dict[str, object]:
    return dict(await first_patient(ctx.db_url))


async def _session_of(ctx: Ctx, user_id: int) -> str:
    """A chat session owned by `user_id` (made through the API, as that user)."""
    response = await ctx.client.post(
        "/query/",
        json={**await _patient(ctx), "question": "¿Tiene alergias?"},
        headers=bearer(ctx.app, user_id),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["session_id"])


async def test_admin_gets_404_for_a_missing_user(ctx: Ctx) -> None:
    response = await ctx.client.get(
        "/users/999999", headers=bearer(ctx.app, ctx.staff["admin"], "admin")
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "USER_NOT_FOUND"


async def test_self_cannot_change_own_role_or_active_flag(ctx: Ctx) -> None:
    me = await insert_user(ctx.db_url, ctx.password_hash)
    for change in ({"role": "admin"}, {"is_active": False}):
        response = await ctx.client.patch(f"/users/{me}", json=change, headers=bearer(ctx.app, me))
        assert response.status_code == 403, change
    body = (await ctx.client.get("/users/me", headers=bearer(ctx.app, me))).json()
    assert body["role"] == "clinician" and body["is_active"] is True


async def test_duplicate_email_is_409(ctx: Ctx) -> None:
    taken = f"taken-{uuid.uuid4().hex[:8]}@hospital.test"
    await insert_user(ctx.db_url, ctx.password_hash, email=taken)
    me = await insert_user(ctx.db_url, ctx.password_hash)
    response = await ctx.client.patch(
        f"/users/{me}", json={"email": taken.upper()}, headers=bearer(ctx.app, me)
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "EMAIL_TAKEN"


async def test_admin_list_is_paginated_and_filtered(ctx: Ctx) -> None:
    headers = bearer(ctx.app, ctx.staff["admin"], "admin")
    await insert_user(ctx.db_url, ctx.password_hash, "auditor", active=False)
    page = (await ctx.client.get("/users/", params={"page_size": 2}, headers=headers)).json()
    assert len(page["items"]) == 2 and page["total"] >= 3 and page["page"] == 1
    inactive = (
        await ctx.client.get(
            "/users/", params={"role": "auditor", "is_active": False}, headers=headers
        )
    ).json()
    assert inactive["items"] and all(
        u["role"] == "auditor" and not u["is_active"] for u in inactive["items"]
    )
    bad = await ctx.client.get("/users/", params={"page_size": 1000}, headers=headers)
    assert bad.status_code == 422
