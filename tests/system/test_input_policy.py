"""Bad input gets 4xx naming the field, never a 500: one text policy (no control characters, no
bidi overrides in names and e-mails, NFC), ids bounded to their column, JSON nesting bounded.
Real app, real PostgreSQL (issue 10, items 2 and 3)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.audit.service import ClientInfo
from smarthealth.config import to_libpq_url
from tests.conftest import PASSWORD, bearer, insert_user, lifespan_client, make_settings

NUL = "\x00"
RLO = "\u202e"  # right-to-left override
DEEP = "[" * 100_000 + "]" * 100_000


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    admin: int
    clinician: int
    auditor: int
    clinician_email: str
    patient: dict[str, Any]

    def as_(self, user_id: int) -> dict[str, str]:
        return bearer(self.app, user_id)


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(registration="open"), database_url=db_url)
    email = f"policy-{uuid.uuid4().hex[:8]}@hospital.test"
    clinician = await insert_user(db_url, password_hash, "clinician", email=email)
    admin = await insert_user(db_url, password_hash, "admin")
    auditor = await insert_user(db_url, password_hash, "auditor")
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        row = await conn.fetchrow(
            "SELECT document_type_id, document_number FROM smart_health.patients p WHERE EXISTS "
            "(SELECT 1 FROM smart_health.prescriptions r WHERE r.patient_id = p.patient_id) "
            "ORDER BY patient_id LIMIT 1"
        )
    finally:
        await conn.close()
    async for client in lifespan_client(app):
        yield Ctx(app, client, db_url, admin, clinician, auditor, email, dict(row))


def _refused(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The error envelope, with the field named; no exception text anywhere in it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["error"]["code"] == "INVALID_INPUT"
    for leak in ("Traceback", "asyncpg", "sqlalchemy", "Exception", "\\u0000"):
        assert leak not in response.text
    if field is not None:
        assert field in [f["field"] for f in body["error"]["details"]["fields"]], body
    return body  # type: ignore[no-any-return]


async def _audit_rows(db_url: str, user_id: int) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        return await conn.fetch(
            "SELECT outcome, question, details FROM smart_health.audit_logs "
            "WHERE user_id = $1 AND event_type = 'query' ORDER BY audit_log_id",
            user_id,
        )
    finally:
        await conn.close()


# -- item 2: text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": f"a{NUL}b@hospital.test", "password": "x"}, "email"),
        ({"email": f"medico{RLO}@hospital.test", "password": "x"}, "email"),
        ({"email": "a@hospital.test", "password": f"x{NUL}y"}, "password"),
        ({"email": "a\x1b[2J@hospital.test", "password": "x"}, "email"),
    ],
)
async def test_login_refuses_control_characters(ctx: Ctx, body: dict[str, str], field: str) -> None:
    _refused(await ctx.client.post("/auth/login", json=body), 422, field)


async def test_oauth2_form_username_is_under_the_same_policy(ctx: Ctx) -> None:
    form = {"username": f"a{NUL}b@hospital.test", "password": "x", "grant_type": "password"}
    _refused(await ctx.client.post("/auth/token", data=form), 422, "username")
    form = {"username": ctx.clinician_email, "password": f"{PASSWORD}{NUL}"}
    _refused(await ctx.client.post("/auth/token", data=form), 422, "password")
    ok = await ctx.client.post(
        "/auth/token", data={"username": ctx.clinician_email, "password": PASSWORD}
    )
    assert ok.status_code == 200 and ok.json()["token_type"] == "bearer"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"full_name": f"Ana{NUL}María"}, "full_name"),
        ({"full_name": f"Ana {RLO}aíraM"}, "full_name"),
        ({"full_name": "Ana\u2066María\u2069"}, "full_name"),
        ({"full_name": "Ana\x85María"}, "full_name"),  # C1 control
        ({"full_name": "Ana\nMaría"}, "full_name"),  # a name is one line
        ({"email": f"ana{RLO}@hospital.test"}, "email"),
    ],
)
async def test_register_refuses_bad_names_and_emails(
    ctx: Ctx, changes: dict[str, str], field: str
) -> None:
    body = {
        "email": f"nueva-{uuid.uuid4().hex[:8]}@hospital.test",
        "password": "Otra-clave-2026",
        "full_name": "Ana María",
        **changes,
    }
    _refused(await ctx.client.post("/auth/register", json=body), 422, field)


async def test_patch_and_put_refuse_a_nul_in_the_full_name(ctx: Ctx) -> None:
    own = ctx.as_(ctx.clinician)
    path = f"/users/{ctx.clinician}"
    _refused(
        await ctx.client.patch(path, json={"full_name": f"X{NUL}Y"}, headers=own), 422, "full_name"
    )
    _refused(
        await ctx.client.put(
            path, json={"email": ctx.clinician_email, "full_name": f"X{NUL}Y"}, headers=own
        ),
        422,
        "full_name",
    )
    admin = ctx.as_(ctx.admin)
    _refused(
        await ctx.client.patch(path, json={"full_name": f"{RLO}X"}, headers=admin), 422, "full_name"
    )


async def test_names_and_emails_are_stored_in_nfc(ctx: Ctx) -> None:
    decomposed_email = f"jose\u0301-{uuid.uuid4().hex[:6]}@hospital.test"
    created = await ctx.client.post(
        "/auth/register",
        json={"email": decomposed_email, "password": "Otra-clave-2026", "full_name": "Jose\u0301"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["full_name"] == "José"
    assert created.json()["email"] == decomposed_email.replace("e\u0301", "é")
    # the same address typed composed logs in
    login = await ctx.client.post(
        "/auth/login", json={"email": created.json()["email"], "password": "Otra-clave-2026"}
    )
    assert login.status_code == 200, login.text


async def test_audit_filter_refuses_a_nul(ctx: Ctx) -> None:
    response = await ctx.client.get("/audit/?event_type=a%00b", headers=ctx.as_(ctx.auditor))
    _refused(response, 422, "query.event_type")
    fine = await ctx.client.get("/audit/?event_type=query", headers=ctx.as_(ctx.auditor))
    assert fine.status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"question": f"¿Qué medicamentos{NUL} tiene prescritos?"}, "question"),
        ({"question": "¿Tiene alergias?\x07"}, "question"),
        ({"question": "¿Tiene alergias?\ud800"}, "question"),  # a lone surrogate
        ({"document_number": f"12{NUL}34"}, "document_number"),
    ],
)
async def test_query_refuses_control_characters_and_audits_the_refusal(
    ctx: Ctx, password_hash: str, changes: dict[str, Any], field: str
) -> None:
    user = await insert_user(ctx.db_url, password_hash, "clinician")
    body = json.dumps({**ctx.patient, "question": "¿Tiene alergias?", **changes})
    response = await ctx.client.post(
        "/query/",
        content=body.encode(),  # json.dumps escapes NUL and the surrogate as \\u0000, \\ud800
        headers={**ctx.as_(user), "Content-Type": "application/json"},
    )
    body_out = _refused(response, 422, field)
    assert "answer" not in body_out and "patient_info" not in body_out
    rows = await _audit_rows(ctx.db_url, user)
    assert len(rows) == 1 and rows[0]["outcome"] == "invalid_input"
    assert "\x00" not in (rows[0]["question"] or "")


async def test_a_refused_question_from_an_auditor_is_audited_too(ctx: Ctx) -> None:
    body = json.dumps({**ctx.patient, "question": f"¿Tiene{NUL} alergias?"})
    response = await ctx.client.post(
        "/query/",
        content=body.encode(),
        headers={**ctx.as_(ctx.auditor), "Content-Type": "application/json"},
    )
    assert response.status_code == 403
    rows = await _audit_rows(ctx.db_url, ctx.auditor)
    assert rows and rows[-1]["outcome"] == "forbidden"
    assert rows[-1]["question"] == "¿Tiene\ufffd alergias?"


async def test_tab_and_newline_are_fine_in_a_question(ctx: Ctx) -> None:
    response = await ctx.client.post(
        "/query/",
        json={**ctx.patient, "question": "¿Qué medicamentos\ttiene\nprescritos?"},
        headers=ctx.as_(ctx.clinician),
    )
    assert response.status_code == 200, response.text
    assert response.json()["answer"]["text"]


async def test_an_unknown_key_that_is_not_unicode_is_refused_cleanly(ctx: Ctx) -> None:
    body = '{"document_type_id": 1, "document_number": "123", "question": "hola", "\\ud800": 1}'
    response = await ctx.client.post(
        "/query/",
        content=body.encode(),
        headers={**ctx.as_(ctx.clinician), "Content-Type": "application/json"},
    )
    _refused(response, 422)
    response.content.decode("utf-8")  # the answer itself is valid UTF-8


def test_a_recorded_user_agent_is_made_storable() -> None:
    client = ClientInfo.of("rest", "127.0.0.1", f"curl{NUL}\x85/8")
    assert client.user_agent == "curl\ufffd\ufffd/8"


# -- item 3: numbers and nesting ---------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id", ["2147483648", "99999999999999999999", "-7736920110661060", "0"]
)
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_user_ids_outside_int4_are_422(ctx: Ctx, user_id: str, method: str) -> None:
    body = {"full_name": "Nadie"} if method == "PATCH" else None
    if method == "PUT":
        body = {"email": "nadie@hospital.test", "full_name": "Nadie"}
    response = await ctx.client.request(
        method, f"/users/{user_id}", json=body, headers=ctx.as_(ctx.admin)
    )
    _refused(response, 422, "path.user_id")


async def test_anonymous_still_gets_401_for_an_out_of_range_id(ctx: Ctx) -> None:
    assert (await ctx.client.get("/users/2147483648")).status_code == 401


async def test_largest_int4_id_is_simply_not_found(ctx: Ctx) -> None:
    response = await ctx.client.get("/users/2147483647", headers=ctx.as_(ctx.admin))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "USER_NOT_FOUND"


@pytest.mark.parametrize("user_id", ["2147483648", "-1", "99999999999999999999"])
async def test_audit_user_id_filter_is_bounded(ctx: Ctx, user_id: str) -> None:
    response = await ctx.client.get(f"/audit/?user_id={user_id}", headers=ctx.as_(ctx.auditor))
    _refused(response, 422, "query.user_id")


@pytest.mark.parametrize(
    "query",
    ["date_from=9999-12-31T23:59:59-05:00", "date_to=0001-01-01T00:00:00%2B05:00"],
)
async def test_audit_dates_past_what_the_driver_can_send_are_422(ctx: Ctx, query: str) -> None:
    response = await ctx.client.get(f"/audit/?{query}", headers=ctx.as_(ctx.auditor))
    _refused(response, 422, f"query.{query.split('=')[0]}")


async def test_audit_dates_at_the_edges_that_fit_are_fine(ctx: Ctx) -> None:
    for query in ("date_from=9999-12-31", "date_to=0001-01-01T00:00:00Z"):
        response = await ctx.client.get(f"/audit/?{query}", headers=ctx.as_(ctx.auditor))
        assert response.status_code == 200, response.text


def _signed(app: FastAPI, sub: str) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": sub,
        "role": "admin",
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    token = jwt.encode(claims, app.state.secret_key, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("sub", ["2147483648", "99999999999999999999", "²", "-1", "0"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/users/me"), ("GET", "/audit/"), ("POST", "/query/"), ("GET", "/history/")],
)
async def test_a_signed_token_with_an_impossible_subject_is_401(
    ctx: Ctx, sub: str, method: str, path: str
) -> None:
    response = await ctx.client.request(
        method, path, headers=_signed(ctx.app, sub), json={} if method == "POST" else None
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def test_deeply_nested_json_is_400_on_query(ctx: Ctx, password_hash: str) -> None:
    user = await insert_user(ctx.db_url, password_hash, "clinician")
    headers = {**ctx.as_(user), "Content-Type": "application/json"}
    response = await ctx.client.post("/query/", content=DEEP.encode(), headers=headers)
    _refused(response, 400)
    # below Python's recursion limit but past the nesting limit: refused the same way
    nested = json.dumps({**ctx.patient, "question": "¿Tiene alergias?", "x": [[[[[[[[[[0]]]]]]]]]]})
    nested = nested[:-1] + ', "y": ' + "[" * 40 + "]" * 40 + "}"
    _refused(await ctx.client.post("/query/", content=nested.encode(), headers=headers), 400)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/auth/login"), ("POST", "/auth/register"), ("PATCH", "/users/{self}")],
)
async def test_deeply_nested_json_is_400_everywhere(ctx: Ctx, method: str, path: str) -> None:
    response = await ctx.client.request(
        method,
        path.format(self=ctx.clinician),
        content=DEEP.encode(),
        headers={**ctx.as_(ctx.clinician), "Content-Type": "application/json"},
    )
    _refused(response, 400)


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["ask", "--document", "CC:123", "¿Tiene\x01 alergias?"], "QUESTION"),
        (["ask", "--document", "CC:12\x1b3", "¿Tiene alergias?"], "--document"),
        (["ask", "--document", "CC:123", "--as", f"a{RLO}@b.co", "¿Tiene alergias?"], "--as"),
        (
            ["users", "create", "--email", f"a{RLO}@b.co", "--role", "admin", "--password", "x"],
            "--email",
        ),
        (
            [
                *("users", "create", "--email", "a@b.co", "--role", "admin"),
                *("--password", "Clave-larga-2026", "--full-name", "A\x07B"),
            ],
            "--full-name",
        ),
    ],
)
def test_cli_arguments_follow_the_same_policy(args: list[str], option: str) -> None:
    """Refused before any database is opened: exit 2, the option named, the value not echoed."""
    result = subprocess.run(
        [sys.executable, "-m", "smarthealth.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "SMARTHEALTH_DATA_DIR": "/nonexistent"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert option in result.stderr
    assert "\x01" not in result.stderr and "\x1b3" not in result.stderr
