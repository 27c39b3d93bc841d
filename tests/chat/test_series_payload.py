"""A series answer carries its points (REST and WebSocket share the payload): one per reading in
the window, counted by SQL over the clinical tables, each citing its source."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.rag.executor import BOGOTA
from tests.conftest import (
    TEMPLATE_TODAY,
    bearer,
    fetch,
    insert_user,
    lifespan_client,
    make_settings,
)

NOW = dt.datetime.combine(TEMPLATE_TODAY, dt.time(12, 0), BOGOTA)
BP_YEAR = "¿Cómo ha evolucionado la presión arterial en el último año?"
# local days of the readings in the last year, as the planner reads "en el último año"
READINGS = """
SELECT medical_record_id, systolic_pressure, diastolic_pressure, weight_kg,
       (registration_datetime AT TIME ZONE 'America/Bogota')::date AS day
FROM smart_health.medical_records
WHERE patient_id = $1 AND systolic_pressure IS NOT NULL
  AND (registration_datetime AT TIME ZONE 'America/Bogota')::date BETWEEN $2 AND $3
ORDER BY registration_datetime
"""


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    user: int

    async def ask(self, patient: asyncpg.Record, question: str) -> dict[str, Any]:
        response = await self.client.post(
            "/query/",
            json={
                "document_type_id": patient["document_type_id"],
                "document_number": patient["document_number"],
                "question": question,
            },
            headers=bearer(self.app, self.user),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(), database_url=db_url)
    user = await insert_user(db_url, password_hash)
    async for client in lifespan_client(app):
        app.state.pipeline.clock = lambda: NOW
        yield Ctx(app, client, db_url, user)


def _year() -> tuple[dt.date, dt.date]:
    return TEMPLATE_TODAY.replace(year=TEMPLATE_TODAY.year - 1), TEMPLATE_TODAY


async def _adults_by_readings(db_url: str) -> list[asyncpg.Record]:
    """Adults, most readings in the last year first."""
    start, end = _year()
    return await fetch(
        db_url,
        "SELECT p.patient_id, p.document_type_id, p.document_number, p.birth_date, count(*) AS n "
        "FROM smart_health.patients p JOIN smart_health.medical_records r USING (patient_id) "
        "WHERE r.systolic_pressure IS NOT NULL AND p.birth_date <= $3 "
        "AND (r.registration_datetime AT TIME ZONE 'America/Bogota')::date BETWEEN $1 AND $2 "
        "GROUP BY p.patient_id ORDER BY n DESC, p.patient_id",
        start,
        end,
        TEMPLATE_TODAY.replace(year=TEMPLATE_TODAY.year - 18),
    )


async def test_blood_pressure_over_a_year_has_every_reading(ctx: Ctx) -> None:
    for patient in (await _adults_by_readings(ctx.db_url))[:3]:
        body = await ctx.ask(patient, BP_YEAR)
        truth = await fetch(ctx.db_url, READINGS, patient["patient_id"], *_year())
        assert body["metadata"]["plan"]["operation"] == "series"
        [chart] = body["series"]
        assert chart["vital"] == "bp" and chart["unit"] == "mmHg"
        systolic, diastolic = chart["lines"]
        assert (systolic["key"], diastolic["key"]) == ("systolic", "diastolic")
        assert [p["value"] for p in systolic["points"]] == [r["systolic_pressure"] for r in truth]
        assert [p["value"] for p in diastolic["points"]] == [r["diastolic_pressure"] for r in truth]
        assert [p["date"] for p in systolic["points"]] == [r["day"].isoformat() for r in truth]
        assert systolic["reference"] == {"low": 90, "high": 120}
        # every point cites a source of this answer that says that reading
        sources = {s["source_id"]: s for s in body["sources"]}
        for high, low in zip(systolic["points"], diastolic["points"], strict=True):
            assert high["chunk_id"] == low["chunk_id"] and high["source_id"] == low["source_id"]
            source = sources[high["source_id"]]
            assert source["chunk_id"] == high["chunk_id"] and source["type"] == "vitals"
            assert f"{high['value']}/{low['value']} mmHg" in source["text"]
            assert source["date"] == high["date"]
        # and they are this patient's readings
        owners = await fetch(
            ctx.db_url,
            "SELECT DISTINCT patient_id FROM smart_health.clinical_chunks WHERE chunk_id = ANY($1)",
            [p["chunk_id"] for p in systolic["points"]],
        )
        assert [r["patient_id"] for r in owners] == [patient["patient_id"]]


async def test_a_weight_series_has_one_line_and_no_band(ctx: Ctx) -> None:
    patient = (await _adults_by_readings(ctx.db_url))[0]
    body = await ctx.ask(patient, "¿Cómo ha evolucionado el peso en el último año?")
    truth = await fetch(ctx.db_url, READINGS, patient["patient_id"], *_year())
    [chart] = body["series"]
    assert chart["vital"] == "weight" and chart["unit"] == "kg"
    [line] = chart["lines"]
    assert line["reference"] is None
    assert [p["value"] for p in line["points"]] == [float(r["weight_kg"]) for r in truth]


async def test_a_childs_chart_has_no_adult_band(ctx: Ctx) -> None:
    children = await fetch(
        ctx.db_url,
        "SELECT p.patient_id, p.document_type_id, p.document_number FROM smart_health.patients p "
        "WHERE p.birth_date > $1 AND EXISTS (SELECT 1 FROM smart_health.medical_records r "
        "WHERE r.patient_id = p.patient_id AND r.systolic_pressure IS NOT NULL) "
        "ORDER BY p.patient_id LIMIT 1",
        TEMPLATE_TODAY.replace(year=TEMPLATE_TODAY.year - 18),
    )
    if not children:
        pytest.skip("the seeded population has no child with vital signs")
    body = await ctx.ask(children[0], "¿Cómo ha evolucionado la presión arterial?")
    assert body["series"], body["answer"]
    assert all(line["reference"] is None for line in body["series"][0]["lines"])


async def test_answers_that_are_not_series_carry_no_points(ctx: Ctx) -> None:
    patient = (await _adults_by_readings(ctx.db_url))[0]
    for question in ("¿Cuál fue la última presión arterial?", "¿Tiene alergias?"):
        assert (await ctx.ask(patient, question))["series"] == []
