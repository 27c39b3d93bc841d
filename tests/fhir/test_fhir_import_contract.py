"""`POST /fhir/import` as its OpenAPI document states it (found by fuzzing it): the media types
it reads (others 415), the body's shape (a Bundle's entries, known resource types) refused as a
400 with the error envelope rather than skipped or a 500, NDJSON lines that end only at a line
feed. Real app, real PostgreSQL."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.fhir.resource_types import RESOURCE_TYPES
from smarthealth.fhir.schemas import IMPORT_MEDIA_TYPES
from tests.conftest import bearer, insert_user, lifespan_client, make_settings


@pytest.fixture(scope="module")
async def api(
    db_url: str, password_hash: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, int]]:
    app = create_app(make_settings(), database_url=db_url)
    admin = await insert_user(db_url, password_hash, "admin")
    async for client in lifespan_client(app):
        yield app, client, admin


async def _post(
    api: tuple[FastAPI, httpx.AsyncClient, int], body: bytes, content_type: str | None
) -> httpx.Response:
    app, client, admin = api
    headers = bearer(app, admin, "admin")
    if content_type is not None:
        headers["content-type"] = content_type
    return await client.post("/fhir/import", content=body, headers=headers)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "error" and body["error"]["code"] == code, body
    assert "Traceback" not in response.text and "Expecting" not in response.text
    return body


def test_the_resource_types_are_those_fhir_resources_models() -> None:
    import fhir.resources.R4B as r4b
    from fhir.resources.R4B.resource import Resource

    modelled = set()
    for module_info in pkgutil.iter_modules(r4b.__path__):
        module = importlib.import_module(f"fhir.resources.R4B.{module_info.name}")
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, Resource)
                and value.__module__ == module.__name__
                and name.lower() == module_info.name
            ):
                modelled.add(name)
    assert set(RESOURCE_TYPES) == modelled - {"Resource", "DomainResource"}
    assert list(RESOURCE_TYPES) == sorted(RESOURCE_TYPES)


def test_the_document_declares_the_body_and_every_answer() -> None:
    document = create_app(make_settings()).openapi()
    operation = document["paths"]["/fhir/import"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == set(IMPORT_MEDIA_TYPES)
    assert set(operation["responses"]) == {"200", "400", "401", "403", "413", "415", "422", "503"}
    assert "Who may call: administrators" in operation["description"]
    everything = document["paths"]["/fhir/Patient/{patient_ref}/$everything"]["get"]
    assert set(everything["responses"]["200"]["content"]) == {"application/fhir+json"}
    assert set(everything["responses"]["404"]["content"]) == {"application/json"}


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"resourceType": "Patient"}'),
        ("application/x-www-form-urlencoded", b"resourceType=Patient"),
        (None, b'{"resourceType": "Patient"}'),  # a body and no Content-Type
        ("application/xml", b"<Patient/>"),
    ],
)
async def test_another_media_type_is_415(
    api: tuple[FastAPI, httpx.AsyncClient, int], content_type: str | None, content: bytes
) -> None:
    body = _error(await _post(api, content, content_type), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/fhir+json" in body["error"]["message"]


async def test_no_body_is_a_validation_error(api: tuple[FastAPI, httpx.AsyncClient, int]) -> None:
    body = _error(await _post(api, b"", None), 422, "INVALID_INPUT")
    assert body["error"]["message"].startswith("El cuerpo está vacío")


@pytest.mark.parametrize(
    "bundle",
    [
        {"resourceType": "Bundle", "type": "collection", "entry": 5},  # was a 500 (enumerate(5))
        {"resourceType": "Bundle", "type": "collection", "entry": None},
        {"resourceType": "Bundle", "type": "collection", "entry": "abc"},
        {"resourceType": "Bundle", "type": "collection", "entry": [5]},
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": None}]},
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": [1]}]},
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"fullUrl": 7, "resource": {"resourceType": "Patient"}}],
        },
        {  # an unknown type anywhere, not only as the one resource
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"resource": {"resourceType": "Patient"}},
                {"resource": {"resourceType": "Spaceship"}},
            ],
        },
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {}}]},
    ],
)
async def test_a_bundle_of_another_shape_is_400_invalid_fhir(
    api: tuple[FastAPI, httpx.AsyncClient, int], bundle: dict[str, Any]
) -> None:
    response = await _post(api, json.dumps(bundle).encode(), "application/fhir+json")
    body = _error(response, 400, "INVALID_FHIR")
    assert body["error"]["message"].startswith("El cuerpo")


async def test_a_data_type_is_not_a_resource(api: tuple[FastAPI, httpx.AsyncClient, int]) -> None:
    """`fhir.resources` models "Address" too; it is no resource type."""
    response = await _post(api, b'{"resourceType": "Address"}', "application/json")
    _error(response, 400, "INVALID_FHIR")


async def test_an_entry_without_resource_is_still_skipped(
    api: tuple[FastAPI, httpx.AsyncClient, int],
) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {}}]}
    response = await _post(api, json.dumps(bundle).encode(), "application/fhir+json")
    assert response.status_code == 200, response.text
    assert response.json()["report"]["resources"] == {}


async def test_ndjson_lines_end_only_at_a_line_feed(
    api: tuple[FastAPI, httpx.AsyncClient, int],
) -> None:
    """U+2028 and U+0085 may stand unescaped inside a JSON string; `splitlines` broke the line
    there and the body was "not JSON"."""
    lines = [
        {"resourceType": "Organization", "id": "a", "name": "Clínica\u2028Norte"},
        {"resourceType": "Organization", "id": "b", "name": "Sede\x85Sur"},
    ]
    body = "\r\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()
    response = await _post(api, body, "application/x-ndjson")
    assert response.status_code == 200, response.text
    assert response.json()["report"]["resources"] == {"Organization": 2}
