"""The OpenAPI document describes what the server does (issue 13, item 2): every failure in one
declared envelope, bodies only in the media type a route reads (415), methods a path lacks are
405, dates only in ISO 8601. Real app, real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import PASSWORD, bearer, insert_user, lifespan_client, make_settings
from tests.live_server import first_patient

ENVELOPE = "#/components/schemas/ErrorEnvelope"
QA = "\u0958"  # DEVANAGARI LETTER QA: two code points once normalised to NFC


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    admin: int
    clinician: int
    auditor: int
    patient: dict[str, Any]

    def as_(self, user_id: int, role: str = "clinician") -> dict[str, str]:
        return bearer(self.app, user_id, role)


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(registration="open"), database_url=db_url)
    clinician = await insert_user(db_url, password_hash, "clinician")
    admin = await insert_user(db_url, password_hash, "admin")
    auditor = await insert_user(db_url, password_hash, "auditor")
    row = await first_patient(db_url)
    async for client in lifespan_client(app):
        yield Ctx(app, client, db_url, admin, clinician, auditor, dict(row))


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["error"]["code"] == code, body
    assert body["error"]["message"]  # Spanish, for a person
    for leak in ("Traceback", "asyncpg", "sqlalchemy", "Exception"):
        assert leak not in response.text
    return body  # type: ignore[no-any-return]


# -- the document ----------------------------------------------------------------------------


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    paths = app.openapi()["paths"]
    return [(m.upper(), p, op) for p, ops in paths.items() for m, op in ops.items()]


def test_every_error_status_is_the_shared_envelope(ctx: Ctx) -> None:
    document = ctx.app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in _operations(ctx.app):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert errors or path == "/", f"{method} {path} declares no failure"
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": ENVELOPE}, (method, path, status)


def test_validation_and_media_type_failures_are_declared_where_they_can_happen(ctx: Ctx) -> None:
    for method, path, operation in _operations(ctx.app):
        declared = set(operation["responses"])
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in declared, (method, path)
        if operation.get("requestBody"):
            assert {"400", "413", "415"} <= declared, (method, path)
        else:
            assert "415" not in declared, (method, path)
        if operation.get("security"):
            assert "401" in declared, (method, path)
        assert "Who may call" in operation.get("description", ""), (method, path)


def test_the_query_body_and_answer_are_documented_with_spanish_examples(ctx: Ctx) -> None:
    operation = ctx.app.openapi()["paths"]["/query/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    questions = [example["question"] for example in body["examples"]]
    assert "¿Qué medicamentos tiene prescritos?" in questions
    assert any(e.get("session_id") == "session-1733400000000" for e in body["examples"])
    assert body["properties"]["document_number"]["pattern"] == "^[A-Za-z0-9-]{3,20}$"
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/QueryOut"}


def test_routes_that_answer_other_media_types_declare_them(ctx: Ctx) -> None:
    """Prometheus text, CSV and FHIR JSON are declared as what they are; the errors beside them
    stay the JSON envelope (the fuzzer checks each response against this)."""
    paths = ctx.app.openapi()["paths"]
    metrics = paths["/metrics"]["get"]["responses"]
    assert set(metrics) == {"200", "401", "404"}  # 404: no SMARTHEALTH_METRICS_TOKEN set
    assert metrics["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    assert metrics["404"]["content"]["application/json"]["example"]["error"]["code"] == "NOT_FOUND"
    assert "text/csv" in paths["/feedback"]["get"]["responses"]["200"]["content"]
    everything = paths["/fhir/Patient/{patient_ref}/$everything"]["get"]["responses"]["200"]
    assert set(everything["content"]) == {"application/fhir+json"}
    summary = paths["/patients/{document_type_id}/{document_number}/summary"]["get"]
    assert set(summary["responses"]) == {"200", "401", "403", "404", "422", "503"}


def test_the_docs_page_describes_the_websocket_in_spanish(ctx: Ctx) -> None:
    description = ctx.app.openapi()["info"]["description"]
    assert "/ws/chat" in description and '"question": "¿Tiene alergias?"' in description
    assert "Conectado al asistente clínico." in description


# -- 415 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content", "content_type"),
    [
        ("/auth/login", "email=a@b.co&password=x", "application/x-www-form-urlencoded"),
        ("/auth/login", '{"email": "a@b.co", "password": "x"}', "text/plain"),
        ("/auth/register", '{"email": "a@b.co"}', None),  # a body, and no Content-Type
        ("/auth/token", '{"username": "a@b.co", "password": "x"}', "application/json"),
    ],
)
async def test_a_body_in_another_media_type_is_415(
    ctx: Ctx, path: str, content: str, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await ctx.client.post(path, content=content, headers=headers)
    body = _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert body["error"]["message"].startswith("Tipo de contenido no soportado")


async def test_a_json_body_with_a_charset_or_a_json_suffix_is_json(ctx: Ctx) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await ctx.client.patch(
            "/users/me",
            content='{"full_name": "Nombre Nuevo"}',
            headers={"content-type": content_type, **ctx.as_(ctx.clinician)},
        )
        assert response.status_code == 200, response.text


async def test_no_body_at_all_is_still_a_validation_error(ctx: Ctx) -> None:
    response = await ctx.client.post("/auth/login")
    _error(response, 422, "INVALID_INPUT")


async def test_a_form_sent_to_query_is_415_and_audited(ctx: Ctx) -> None:
    response = await ctx.client.post(
        "/query/",
        content="document_type_id=1&document_number=123&question=hola",
        headers={"content-type": "application/x-www-form-urlencoded", **ctx.as_(ctx.clinician)},
    )
    _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    conn = await asyncpg.connect(to_libpq_url(ctx.db_url))
    try:
        row = await conn.fetchrow(
            "SELECT outcome, details FROM smart_health.audit_logs WHERE user_id = $1 "
            "AND event_type = 'query' ORDER BY audit_log_id DESC LIMIT 1",
            ctx.clinician,
        )
    finally:
        await conn.close()
    assert row is not None and row["outcome"] == "invalid_input"
    assert "UNSUPPORTED_MEDIA_TYPE" in row["details"]


# -- 405 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/users/me", {"GET", "PUT", "PATCH"}),
        ("POST", "/users/me", {"GET", "PUT", "PATCH"}),
        ("DELETE", "/query/", {"POST"}),
        ("PUT", "/history/", {"GET"}),
        ("PATCH", "/audit/", {"GET"}),
        ("POST", "/catalog/document-types", {"GET"}),
    ],
)
async def test_a_method_the_path_lacks_is_405_with_allow(
    ctx: Ctx, method: str, path: str, allowed: set[str]
) -> None:
    response = await ctx.client.request(method, path, headers=ctx.as_(ctx.admin, "admin"))
    _error(response, 405, "METHOD_NOT_ALLOWED")
    assert {m.strip() for m in response.headers["allow"].split(",")} - {"HEAD"} == allowed


async def test_users_me_is_not_an_id(ctx: Ctx) -> None:
    """`/users/{id}` still refuses what is not an id with 422 naming it."""
    response = await ctx.client.get("/users/yo", headers=ctx.as_(ctx.admin, "admin"))
    body = _error(response, 422, "INVALID_INPUT")
    assert [f["field"] for f in body["error"]["details"]["fields"]] == ["path.user_id"]


# -- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0.5", "1700000000", "0", "ayer"])
async def test_a_date_is_iso_8601_not_a_number(ctx: Ctx, value: str) -> None:
    response = await ctx.client.get(
        "/audit/", params={"date_from": value}, headers=ctx.as_(ctx.auditor, "auditor")
    )
    body = _error(response, 422, "INVALID_INPUT")
    assert [f["field"] for f in body["error"]["details"]["fields"]] == ["query.date_from"]


@pytest.mark.parametrize("value", ["2026-01-09", "2026-01-09T10:30:00-05:00", "2026-01-09T10:30Z"])
async def test_iso_dates_are_accepted(ctx: Ctx, value: str) -> None:
    response = await ctx.client.get(
        "/audit/", params={"date_to": value}, headers=ctx.as_(ctx.auditor, "auditor")
    )
    assert response.status_code == 200, response.text


# -- numbers JSON Schema calls integers ---------------------------------------------------------


async def test_a_whole_float_document_type_is_that_integer(ctx: Ctx) -> None:
    response = await ctx.client.post(
        "/query/",
        json={"document_type_id": 2.0, "document_number": "NOEXISTE1", "question": "¿alergias?"},
        headers=ctx.as_(ctx.clinician),
    )
    _error(response, 404, "PATIENT_NOT_FOUND")
    for refused in ("2", True, 2.5):
        response = await ctx.client.post(
            "/query/",
            json={"document_type_id": refused, "document_number": "123", "question": "¿alergias?"},
            headers=ctx.as_(ctx.clinician),
        )
        _error(response, 422, "INVALID_INPUT")


# -- texts that grow when normalised (were 500s from the driver) -----------------------------


async def test_a_full_name_that_nfc_lengthens_past_its_column_is_422(ctx: Ctx) -> None:
    response = await ctx.client.patch(
        "/users/me", json={"full_name": QA * 160}, headers=ctx.as_(ctx.clinician)
    )
    body = _error(response, 422, "INVALID_INPUT")
    assert [f["field"] for f in body["error"]["details"]["fields"]] == ["full_name"]


async def test_a_session_label_that_nfc_lengthens_past_its_column_is_422(ctx: Ctx) -> None:
    response = await ctx.client.post(
        "/query/",
        json={"session_id": QA * 128, "question": "¿Tiene alergias?", **ctx.patient},
        headers=ctx.as_(ctx.clinician),
    )
    body = _error(response, 422, "INVALID_INPUT")
    assert [f["field"] for f in body["error"]["details"]["fields"]] == ["session_id"]


async def test_a_login_whose_email_lower_casing_lengthens_is_a_plain_401(ctx: Ctx) -> None:
    response = await ctx.client.post("/auth/login", json={"email": "İ" * 254, "password": PASSWORD})
    _error(response, 401, "UNAUTHORIZED")


async def test_an_email_that_lower_casing_lengthens_past_its_column_is_422(ctx: Ctx) -> None:
    email = "İ" * 200 + f"@{uuid.uuid4().hex[:8]}.hospital.test"
    response = await ctx.client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Ana Ruiz"}
    )
    body = _error(response, 422, "INVALID_INPUT")
    assert [f["field"] for f in body["error"]["details"]["fields"]] == ["email"]
