"""`GET /metrics` in one process: off without its token, 401 with a wrong one, and figures that
follow what the service did — with route templates, never raw paths or patient data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import bearer, insert_user, lifespan_client, make_settings

TOKEN = "metrics-" + "m" * 32


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    clinician: dict[str, str]
    patient: asyncpg.Record

    async def scrape(self) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
        response = await self.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=")
        return response.text, samples(response.text)


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(SMARTHEALTH_METRICS_TOKEN=TOKEN), database_url=db_url)
    clinician = bearer(app, await insert_user(db_url, password_hash, "clinician"))
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        patient = await conn.fetchrow(
            "SELECT document_type_id, document_number FROM smart_health.patients p WHERE EXISTS "
            "(SELECT 1 FROM smart_health.patient_allergies a WHERE a.patient_id = p.patient_id) "
            "ORDER BY patient_id LIMIT 1"
        )
    finally:
        await conn.close()
    async for client in lifespan_client(app):
        yield Ctx(app, client, clinician, patient)


async def test_without_a_token_setting_the_route_does_not_exist(db_url: str) -> None:
    app = create_app(make_settings(), database_url=db_url)
    async for client in lifespan_client(app):
        response = await client.get("/metrics", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"


def test_a_short_token_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="SMARTHEALTH_METRICS_TOKEN"):
        make_settings(SMARTHEALTH_METRICS_TOKEN="short")


async def test_only_the_metrics_token_opens_it(ctx: Ctx) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer " + TOKEN[:-1]},
        {"Authorization": TOKEN},
        ctx.clinician,  # a user's JWT is not the metrics token, whatever the role
    ):
        response = await ctx.client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_figures_follow_the_service_without_patient_data(ctx: Ctx) -> None:
    _, before = await ctx.scrape()
    body = {
        "document_type_id": ctx.patient["document_type_id"],
        "document_number": ctx.patient["document_number"],
    }
    answered = await ctx.client.post(
        "/query/", json={**body, "question": "¿Tiene alergias?"}, headers=ctx.clinician
    )
    assert answered.status_code == 200 and answered.json()["sources"], answered.text
    abstained = await ctx.client.post(
        "/query/",
        json={**body, "question": "¿Cuántos hijos tiene?"},
        headers=ctx.clinician,
    )
    assert abstained.status_code == 200 and abstained.json()["sources"] == []
    unknown = await ctx.client.post(
        "/query/",
        json={**body, "document_number": "000000000", "question": "¿Tiene alergias?"},
        headers=ctx.clinician,
    )
    assert unknown.status_code == 404
    session_id = answered.json()["session_id"]
    history = await ctx.client.get(f"/history/sessions/{session_id}", headers=ctx.clinician)
    assert history.status_code == 200
    missing = await ctx.client.get(f"/history/sessions/{uuid.uuid4()}", headers=ctx.clinician)
    assert missing.status_code == 404
    assert (await ctx.client.get("/no/such/page")).status_code == 404
    rated = await ctx.client.post(
        "/feedback",
        json={
            "session_id": session_id,
            "sequence_chat_id": answered.json()["sequence_chat_id"],
            "rating": "down",
            "reason": "incomplete",
        },
        headers=ctx.clinician,
    )
    assert rated.status_code == 201

    text, after = await ctx.scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("smarthealth_answers_total", outcome="answered") == 1
    assert delta("smarthealth_answers_total", outcome="abstained") == 1
    assert delta("smarthealth_answers_total", outcome="refused") == 1
    assert delta("smarthealth_answers_total", outcome="fallback") == 0
    assert delta("smarthealth_question_duration_seconds_count", engine="extractive") == 2
    assert delta("smarthealth_feedback_total", rating="down", reason="incomplete") == 1
    assert value(after, "smarthealth_feedback_stored", rating="down") >= 1
    route = "/history/sessions/{session_id}"
    assert delta("smarthealth_http_requests_total", method="GET", route=route, status="200") == 1
    assert delta("smarthealth_http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        delta("smarthealth_http_requests_total", method="POST", route="/query/", status="200") == 2
    )
    assert (
        delta("smarthealth_http_requests_total", method="POST", route="/query/", status="404") == 1
    )
    assert (
        delta("smarthealth_http_requests_total", method="GET", route="unmatched", status="404") == 1
    )
    assert value(after, "smarthealth_database_up") == 1
    assert ("smarthealth_indexer_queue_length", ()) in after
    assert ("smarthealth_indexer_lag_seconds", ()) in after
    assert ("smarthealth_db_pool_connections_in_use", ()) in after
    # labels are templates and fixed words: no session id, path, document number or name
    assert session_id not in text and "/no/such/page" not in text
    assert ctx.patient["document_number"] not in text
