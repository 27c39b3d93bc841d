"""`GET /patients/{type}/{number}/summary`: the header's facts against SQL over the clinical
tables (not the chunks the endpoint reads), who may call it, and its audit row."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from smarthealth.rag.executor import BOGOTA
from tests.conftest import (
    TEMPLATE_TODAY,
    bearer,
    fetch,
    insert_user,
    lifespan_client,
    make_settings,
)

NOW = dt.datetime.combine(TEMPLATE_TODAY, dt.time(12, 0), BOGOTA)  # the seeded record's "today"
REFUSE_ACCESS = """
CREATE FUNCTION smart_health.refuse_summary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.event_type = 'patient.summary' AND NEW.outcome = 'disclosed' THEN
    RAISE EXCEPTION 'audit store unavailable';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_summary BEFORE INSERT ON smart_health.audit_logs
  FOR EACH ROW EXECUTE FUNCTION smart_health.refuse_summary();
"""
ALLOW_ACCESS = """
DROP TRIGGER refuse_summary ON smart_health.audit_logs;
DROP FUNCTION smart_health.refuse_summary();
"""


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    db_url: str
    staff: dict[str, int]

    def headers(self, role: str) -> dict[str, str]:
        return bearer(self.app, self.staff[role], role)


@pytest.fixture(scope="module")
async def ctx(db_url: str, password_hash: str) -> AsyncIterator[Ctx]:
    app = create_app(make_settings(), database_url=db_url)
    staff = {
        role: await insert_user(db_url, password_hash, role)
        for role in ("clinician", "auditor", "admin")
    }
    async for client in lifespan_client(app):
        app.state.pipeline.clock = lambda: NOW
        yield Ctx(app, client, db_url, staff)


def _chronic_codes() -> set[str]:
    raw = resources.files("smarthealth.ingest").joinpath("data/conditions.json").read_text()
    return {c["icd_code"] for c in json.loads(raw) if c["chronic"]}


async def _truth(db_url: str, patient_id: int) -> dict[str, Any]:
    """The header computed straight from the clinical tables."""
    today = TEMPLATE_TODAY
    allergies = await fetch(
        db_url,
        "SELECT DISTINCT coalesce(m.active_ingredient, a.substance) AS active_ingredient "
        "FROM smart_health.patient_allergies a "
        "LEFT JOIN smart_health.medications m USING (medication_id) WHERE a.patient_id = $1",
        patient_id,
    )
    # each drug's latest prescription (by date), current when it runs until today
    medications = await fetch(
        db_url,
        "SELECT DISTINCT ON (m.active_ingredient) m.active_ingredient, "
        "p.prescription_date + p.duration_days - 1 AS last_day "
        "FROM smart_health.prescriptions p JOIN smart_health.medications m USING (medication_id) "
        "WHERE p.patient_id = $1 ORDER BY m.active_ingredient, p.prescription_date DESC",
        patient_id,
    )
    diagnoses = await fetch(
        db_url,
        "SELECT g.icd_code, max((r.registration_datetime AT TIME ZONE 'America/Bogota')::date) "
        "AS last_day FROM smart_health.record_diagnoses d "
        "JOIN smart_health.medical_records r USING (medical_record_id) "
        "JOIN smart_health.diagnoses g USING (diagnosis_id) "
        "WHERE d.patient_id = $1 AND d.diagnosis_type <> 'Differential' GROUP BY g.icd_code",
        patient_id,
    )
    chronic = _chronic_codes()
    upcoming = await fetch(
        db_url,
        "SELECT appointment_id, start_time FROM smart_health.appointments WHERE patient_id = $1 "
        "AND status IN ('Scheduled', 'Confirmed') AND start_time >= $2 "
        "ORDER BY start_time LIMIT 1",
        patient_id,
        NOW,
    )
    patient = (
        await fetch(db_url, "SELECT * FROM smart_health.patients WHERE patient_id = $1", patient_id)
    )[0]
    return {
        "allergies": {r["active_ingredient"] for r in allergies},
        "medications": {r["active_ingredient"] for r in medications if r["last_day"] >= today},
        "problems": {
            r["icd_code"]
            for r in diagnoses
            if r["icd_code"] in chronic or r["last_day"] >= today - dt.timedelta(days=90)
        },
        "next": upcoming[0]["start_time"] if upcoming else None,
        "patient": patient,
    }


async def _patients(db_url: str) -> list[asyncpg.Record]:
    return await fetch(
        db_url,
        "SELECT patient_id, document_type_id, document_number FROM smart_health.patients "
        "ORDER BY patient_id",
    )


def _path(p: asyncpg.Record) -> str:
    return f"/patients/{p['document_type_id']}/{p['document_number']}/summary"


async def test_every_patients_header_matches_the_tables(ctx: Ctx) -> None:
    patients = await _patients(ctx.db_url)
    seen = {"allergies": 0, "medications": 0, "problems": 0, "next": 0}
    for p in patients:
        response = await ctx.client.get(_path(p), headers=ctx.headers("clinician"))
        assert response.status_code == 200, response.text
        body = response.json()
        truth = await _truth(ctx.db_url, p["patient_id"])
        row = truth["patient"]
        header = body["patient"]
        assert header["patient_id"] == p["patient_id"]
        assert header["document_number"] == row["document_number"]
        assert header["blood_type"] == row["blood_type"] and header["sex"] == row["gender"]
        assert header["birth_date"] == row["birth_date"].isoformat()
        assert header["age"].split()[1] in ("años", "año", "meses", "mes")
        assert {a["ingredient"] for a in body["allergies"]} == truth["allergies"]
        assert {m["ingredient"] for m in body["medications"]["items"]} == truth["medications"]
        assert body["medications"]["count"] == len(truth["medications"])
        assert {d["icd_code"] for d in body["problems"]["items"]} == truth["problems"]
        assert body["problems"]["count"] == len(truth["problems"])
        coming = body["next_appointment"]
        if truth["next"] is None:
            assert coming is None
        else:
            assert dt.datetime.fromisoformat(coming["start"]) == truth["next"]
        assert body["updating"] is False
        for key in seen:
            value = truth[key]
            seen[key] += bool(value)
    # the seeded population exercises every part of the header
    assert all(n > 0 for n in seen.values()), seen
    assert seen["allergies"] < len(patients)  # … and the "no allergies" case


async def test_age_is_computed_on_the_clock_day(ctx: Ctx) -> None:
    p = (await _patients(ctx.db_url))[0]
    body = (await ctx.client.get(_path(p), headers=ctx.headers("admin"))).json()
    birth = dt.date.fromisoformat(body["patient"]["birth_date"])
    years = TEMPLATE_TODAY.year - birth.year - ((6, 15) < (birth.month, birth.day))
    if years >= 2:
        assert body["patient"]["age"] == f"{years} {'año' if years == 1 else 'años'}"


async def test_the_access_is_audited_with_the_chunks_shown(ctx: Ctx) -> None:
    p = (await _patients(ctx.db_url))[1]
    user = ctx.staff["clinician"]
    response = await ctx.client.get(_path(p), headers=ctx.headers("clinician"))
    body = response.json()
    shown = [body["patient"]["chunk_id"]]
    shown += [a["chunk_id"] for a in body["allergies"]]
    shown += [d["chunk_id"] for d in body["problems"]["items"]]
    shown += [m["chunk_id"] for m in body["medications"]["items"]]
    if body["next_appointment"]:
        shown.append(body["next_appointment"]["chunk_id"])
    rows = await fetch(
        ctx.db_url,
        "SELECT outcome, channel, patient_id, document_number, source_ids "
        "FROM smart_health.audit_logs WHERE user_id = $1 AND event_type = 'patient.summary' "
        "ORDER BY audit_log_id DESC LIMIT 1",
        user,
    )
    assert rows and rows[0]["outcome"] == "disclosed" and rows[0]["channel"] == "rest"
    assert rows[0]["patient_id"] == p["patient_id"]
    assert rows[0]["document_number"] == p["document_number"]
    assert sorted(rows[0]["source_ids"]) == sorted(shown)
    # every chunk shown is this patient's
    owners = await fetch(
        ctx.db_url,
        "SELECT DISTINCT patient_id FROM smart_health.clinical_chunks WHERE chunk_id = ANY($1)",
        shown,
    )
    assert [r["patient_id"] for r in owners] == [p["patient_id"]]


async def test_without_an_audit_row_nothing_is_shown(ctx: Ctx) -> None:
    p = (await _patients(ctx.db_url))[2]
    conn = await asyncpg.connect(to_libpq_url(ctx.db_url))
    try:
        await conn.execute(REFUSE_ACCESS)
        try:
            response = await ctx.client.get(_path(p), headers=ctx.headers("clinician"))
        finally:
            await conn.execute(ALLOW_ACCESS)
    finally:
        await conn.close()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "AUDIT_UNAVAILABLE"
    assert p["document_number"] not in response.text


async def test_unknown_patient_is_404_and_audited(ctx: Ctx) -> None:
    response = await ctx.client.get(
        "/patients/1/000000001/summary", headers=ctx.headers("clinician")
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PATIENT_NOT_FOUND"
    assert response.json()["error"]["message"].startswith("No existe un paciente")
    rows = await fetch(
        ctx.db_url,
        "SELECT outcome, source_ids FROM smart_health.audit_logs WHERE user_id = $1 "
        "AND event_type = 'patient.summary' AND document_number = '000000001'",
        ctx.staff["clinician"],
    )
    assert [(r["outcome"], r["source_ids"]) for r in rows] == [("patient_not_found", None)]


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 401), ("auditor", 403), ("clinician", 200), ("admin", 200)],
)
async def test_who_may_call_it(ctx: Ctx, role: str, expected: int) -> None:
    p = (await _patients(ctx.db_url))[3]
    headers = {} if role == "anonymous" else ctx.headers(role)
    response = await ctx.client.get(_path(p), headers=headers)
    assert response.status_code == expected, response.text
    if expected >= 400:
        body = response.json()
        assert body["status"] == "error" and "patient" not in body
        assert p["document_number"] not in response.text
    if role == "auditor":
        rows = await fetch(
            ctx.db_url,
            "SELECT outcome FROM smart_health.audit_logs WHERE user_id = $1 "
            "AND event_type = 'patient.summary'",
            ctx.staff["auditor"],
        )
        assert [r["outcome"] for r in rows] == ["forbidden"]


@pytest.mark.parametrize(
    "path",
    [
        "/patients/0/123456/summary",
        "/patients/9/123456/summary",
        "/patients/x/123456/summary",
        "/patients/1/12/summary",
        "/patients/1/12345%00678/summary",
        "/patients/1/" + "9" * 30 + "/summary",
    ],
)
async def test_bad_input_is_a_stable_code(ctx: Ctx, path: str) -> None:
    response = await ctx.client.get(path, headers=ctx.headers("clinician"))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_INPUT" and error["message"] == (
        "Los datos enviados no son válidos."
    )
    assert "Traceback" not in response.text


async def test_the_document_number_stays_out_of_the_logs(
    ctx: Ctx, caplog: pytest.LogCaptureFixture
) -> None:
    p = (await _patients(ctx.db_url))[4]
    with caplog.at_level(logging.DEBUG):
        response = await ctx.client.get(_path(p), headers=ctx.headers("clinician"))
        await ctx.client.get(_path(p) + "/extra", headers=ctx.headers("clinician"))
    assert response.status_code == 200
    # the server's records (httpx logs this test's own requests, as a client)
    server = [r for r in caplog.records if not r.name.startswith("httpx")]
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server)
    assert "/patients/{document_type_id}/{document_number}/summary" in logs
    assert p["document_number"] not in logs
    assert response.json()["patient"]["full_name"] not in logs
