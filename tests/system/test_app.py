"""The service skeleton over real HTTP semantics (ASGI) and a real database."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from smarthealth.app import create_app
from tests.conftest import bearer, insert_user, lifespan_client, make_settings


class _Echo(BaseModel):
    name: str = Field(min_length=2)
    count: int


def _app_with_probe_routes(db_url: str) -> FastAPI:
    """The real app plus two routes that exist only to exercise the error envelope."""
    app = create_app(make_settings(), database_url=db_url)

    @app.post("/_probe/echo")
    async def echo(body: _Echo) -> dict[str, object]:
        return body.model_dump()

    @app.get("/_probe/crash")
    async def crash() -> None:
        raise RuntimeError("secret detail: patient Juan Pérez CC 123456")

    return app


@pytest.fixture(scope="module")
async def client(db_url: str, password_hash: str) -> AsyncIterator[httpx.AsyncClient]:
    app = _app_with_probe_routes(db_url)
    user = await insert_user(db_url, password_hash)
    async for c in lifespan_client(app):
        c.headers.update(bearer(app, user))
        yield c


async def test_root_describes_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "SmartHealth"
    assert body["links"] == {
        "chat": "/chat",
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/openapi.json",
        "health": "/health",
    }


async def test_health_reports_database_up_without_secrets(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "up"
    text = response.text.lower()
    for secret in ("postgres", "password", "host=", "secret"):
        assert secret not in text


async def test_document_types_catalog(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/catalog/document-types", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    response = await client.get("/catalog/document-types")
    assert response.status_code == 200
    codes = [(d["document_type_id"], d["code"]) for d in response.json()]
    assert codes == [
        (1, "CC"),
        (2, "CE"),
        (3, "TI"),
        (4, "PA"),
        (5, "RC"),
        (6, "MS"),
        (7, "AS"),
        (8, "CD"),
    ]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_documentation_pages(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200


async def test_unknown_route_uses_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {
        "status": "error",
        "error": {"code": "NOT_FOUND", "message": "El recurso solicitado no existe."},
    }


async def test_wrong_method_uses_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_malformed_json_is_400_invalid_input(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/_probe/echo", content=b'{"name": "ab", ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_INPUT"


async def test_wrong_types_are_422_with_field_details(client: httpx.AsyncClient) -> None:
    response = await client.post("/_probe/echo", json={"name": "x", "count": "muchos"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "INVALID_INPUT"
    fields = {f["field"] for f in error["details"]["fields"]}
    assert fields == {"name", "count"}
    assert "muchos" not in response.text  # submitted values are not echoed back


async def test_unexpected_error_hides_exception_text(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = await client.get("/_probe/crash")
    assert response.status_code == 500
    assert response.json() == {
        "status": "error",
        "error": {"code": "INTERNAL_ERROR", "message": "Error interno del servidor."},
    }
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError" in logged
    assert "Juan Pérez" not in logged and "123456" not in logged


async def test_huge_payload_is_413(client: httpx.AsyncClient) -> None:
    big = json.dumps({"name": "x" * (2 * 1024 * 1024), "count": 1})
    response = await client.post(
        "/_probe/echo", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_huge_chunked_payload_without_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 64 * 1024
        yield b'", "count": 1}'

    response = await client.post(
        "/_probe/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "abc12345-trace"})
    assert given.headers["x-request-id"] == "abc12345-trace"
    generated = await client.get("/health", headers={"X-Request-ID": "bad id with spaces!"})
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.headers["x-request-id"] != "bad id with spaces!"
