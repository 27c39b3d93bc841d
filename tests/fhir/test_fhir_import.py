"""FHIR R4 import and export against a real PostgreSQL: Synthea-shaped bundles and NDJSON bulk
files in, located errors for a broken patient, idempotent re-import, chunks for the new kinds,
exports valid per `fhir.resources`, and a round trip into an empty database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.fhir.exporter import export_patient
from smarthealth.fhir.importer import ImportReport, import_fhir
from smarthealth.ingest.catalogs import load_catalogs
from smarthealth.rag.indexer import sync_queued
from tests.conftest import (
    bearer,
    drop_database,
    fetch,
    insert_user,
    lifespan_client,
    make_settings,
    migrated_database,
)
from tests.fhir.synthea_like import patient_bundle, write_bundles, write_ndjson


async def _import(url: str, paths: list[Path]) -> ImportReport:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        return await import_fhir(conn, [(p.name, p.read_bytes()) for p in paths])
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_bundles(tmp_path_factory.mktemp("synthea"), range(3), broken={1})


@pytest.fixture(scope="module")
async def first_import(db_url: str, bundles: list[Path]) -> ImportReport:
    return await _import(db_url, bundles)


async def test_import_synthea_shaped_bundles(db_url: str, first_import: ImportReport) -> None:
    report = first_import
    assert (report.patients_imported, report.patients_failed) == (2, 1)
    assert report.skipped["Claim"] == 3  # counted and reported, not imported
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        patient = await conn.fetchrow(
            "SELECT * FROM smart_health.patients WHERE document_type_id = 1 "
            "AND document_number = '999-00-0000'"
        )
        assert patient is not None
        assert (patient["first_name"], patient["middle_name"]) == ("Mateo0", "José")
        assert (patient["first_surname"], patient["second_surname"]) == ("Quintero0", "Rojas")
        pid = patient["patient_id"]
        records = await conn.fetch(
            "SELECT * FROM smart_health.medical_records WHERE patient_id = $1 "
            "ORDER BY registration_datetime",
            pid,
        )
        assert [r["record_type"] for r in records] == ["Consulta externa", "Urgencias"]
        visit = records[0]
        assert (visit["systolic_pressure"], visit["diastolic_pressure"]) == (146, 88)
        assert (visit["heart_rate"], float(visit["weight_kg"])) == (78, 82.4)
        assert visit["summary_text"].startswith("MOTIVO DE CONSULTA")
        codes = {
            r["code"] or r["icd_code"]: r["code_system"]
            for r in await conn.fetch(
                "SELECT g.* FROM smart_health.record_diagnoses rd "
                "JOIN smart_health.diagnoses g USING (diagnosis_id) WHERE rd.patient_id = $1",
                pid,
            )
        }
        assert codes == {"59621000": "SNOMED CT", "E11.9": "ICD-10"}
        drug = await conn.fetchrow(
            "SELECT m.code_system, m.code, p.status, p.frequency FROM smart_health.prescriptions p "
            "JOIN smart_health.medications m USING (medication_id) WHERE p.patient_id = $1",
            pid,
        )
        assert tuple(drug) == ("RxNorm", "314076", "active", "1 vez al día")
        allergy = await conn.fetchrow(
            "SELECT * FROM smart_health.patient_allergies WHERE patient_id = $1", pid
        )
        assert allergy["medication_id"] is None
        assert (allergy["category"], allergy["criticality"], allergy["severity"]) == (
            "food",
            "high",
            "Moderada",
        )
        labs = await conn.fetch(
            "SELECT value_numeric FROM smart_health.observations "
            "WHERE patient_id = $1 AND code = '4548-4' ORDER BY effective_at",
            pid,
        )
        assert [float(r[0]) for r in labs] == [7.9, 7.1]
        # the broken patient left nothing behind
        assert not await conn.fetchval(
            "SELECT count(*) FROM smart_health.patients WHERE document_number = '999-00-0001'"
        )
        await sync_queued(conn)
        kinds = {
            r["source_type"]: r["content"]
            for r in await conn.fetch(
                "SELECT source_type, content FROM smart_health.clinical_chunks "
                "WHERE patient_id = $1",
                pid,
            )
        }
        assert "LOINC 4548-4" in kinds["observation"]
        assert "Fuera del rango" in kinds["observation"]
        assert "CVX 140" in kinds["immunization"]
        assert "Appendectomy" in kinds["procedure"]
        assert "alimento" in kinds["allergy"]
        assert "presión arterial 146/88 mmHg" in kinds["vitals"]
    finally:
        await conn.close()


async def test_broken_patient_error_is_located(first_import: ImportReport) -> None:
    [problem] = [i for i in first_import.issues if i.code != "SKIPPED"]
    assert problem.code == "INVALID_RESOURCE"
    assert problem.file == "patient_1.json"
    assert problem.index == 7
    assert problem.resource_type == "Observation"
    assert problem.field == "component.1.valueQuantity.value"
    assert problem.resource_id
    assert first_import.failed


async def test_reimport_changes_nothing(
    db_url: str, bundles: list[Path], first_import: ImportReport
) -> None:
    again = await _import(db_url, bundles)
    assert again.changed == 0
    assert again.patients_imported == 2


async def test_newer_version_updates(
    db_url: str, tmp_path: Path, first_import: ImportReport
) -> None:
    bundle = patient_bundle(0)
    patient = bundle["entry"][0]["resource"]
    patient["meta"]["lastUpdated"] = "2025-06-01T10:00:00Z"
    patient["address"][0]["city"] = "Cali"
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(bundle))
    report = await _import(db_url, [*write_bundles(tmp_path / "p", range(0)), path])
    assert report.rows[("patients", "updated")] == 1
    assert report.changed == 1
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        city = await conn.fetchval(
            "SELECT city FROM smart_health.patients WHERE document_number = '999-00-0000'"
        )
    finally:
        await conn.close()
    assert city == "Cali"


async def test_ndjson_bulk_files(db_url: str, tmp_path: Path) -> None:
    report = await _import(db_url, write_ndjson(tmp_path, range(10, 14)))
    assert (report.patients_imported, report.patients_failed) == (4, 0), report.as_dict()
    assert report.rows[("observations", "inserted")] == 4 * 3


async def test_export_is_valid_r4(db_url: str, first_import: ImportReport) -> None:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        seeded = await conn.fetchval(
            "SELECT patient_id FROM smart_health.patients p WHERE EXISTS "
            "(SELECT 1 FROM smart_health.patient_allergies a WHERE a.patient_id = p.patient_id) "
            "ORDER BY patient_id LIMIT 1"
        )
        imported = await conn.fetchval(
            "SELECT patient_id FROM smart_health.patients WHERE document_number = '999-00-0000'"
        )
        for patient_id in (seeded, imported):
            bundle = await export_patient(conn, patient_id)
            Bundle.model_validate(bundle)
            kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
            assert {"Patient", "Encounter", "Condition", "Observation"} <= kinds
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def fresh_url(pg: EmbeddedPostgres) -> Iterator[str]:
    yield migrated_database(pg, "fhir_roundtrip")
    drop_database(pg, "fhir_roundtrip")


ROW_SQL = {
    "patient": "SELECT document_type_id, document_number, first_name, middle_name, "
    "first_surname, second_surname, birth_date, gender, email, phone, city "
    "FROM smart_health.patients WHERE patient_id = $1",
    "records": "SELECT record_type, registration_datetime, discharge_datetime, summary_text, "
    "systolic_pressure, diastolic_pressure, heart_rate, respiratory_rate, temperature_c, "
    "oxygen_saturation, weight_kg, height_cm, d.medical_license FROM smart_health.medical_records "
    "JOIN smart_health.doctors d USING (doctor_id) WHERE patient_id = $1 "
    "ORDER BY registration_datetime, record_type",
    "diagnoses": "SELECT g.icd_code, rd.diagnosis_type, r.registration_datetime "
    "FROM smart_health.record_diagnoses rd JOIN smart_health.diagnoses g USING (diagnosis_id) "
    "JOIN smart_health.medical_records r USING (medical_record_id) WHERE rd.patient_id = $1 "
    "ORDER BY 3, 1",
    "prescriptions": "SELECT m.atc_code, m.strength, m.form, dosage, frequency, duration_days, "
    "instruction, prescription_date, g.icd_code FROM smart_health.prescriptions p "
    "JOIN smart_health.medications m USING (medication_id) "
    "LEFT JOIN smart_health.diagnoses g USING (diagnosis_id) WHERE p.patient_id = $1 "
    "ORDER BY prescription_date, m.atc_code, dosage",
    "allergies": "SELECT m.atc_code, m.strength, reaction, severity, noted_on "
    "FROM smart_health.patient_allergies a JOIN smart_health.medications m USING (medication_id) "
    "WHERE a.patient_id = $1 ORDER BY m.atc_code",
    "appointments": "SELECT start_time, end_time, status, reason, s.code, d.medical_license "
    "FROM smart_health.appointments a JOIN smart_health.specialties s USING (specialty_id) "
    "JOIN smart_health.doctors d USING (doctor_id) WHERE patient_id = $1 ORDER BY start_time",
}


async def _rows(conn: asyncpg.Connection, patient_id: int) -> dict[str, list[tuple[object, ...]]]:
    return {k: [tuple(r) for r in await conn.fetch(sql, patient_id)] for k, sql in ROW_SQL.items()}


async def test_round_trip_into_an_empty_database(
    db_url: str, fresh_url: str, tmp_path: Path
) -> None:
    """seeded → exported → imported into an empty database: the same rows (sample of 3)."""
    source = await asyncpg.connect(to_libpq_url(db_url))
    target = await asyncpg.connect(to_libpq_url(fresh_url))
    try:
        await load_catalogs(target)
        ids = [
            r[0]
            for r in await source.fetch(
                "SELECT patient_id FROM smart_health.patients "
                "WHERE document_number NOT LIKE '999-%' ORDER BY patient_id LIMIT 3"
            )
        ]
        paths = []
        for patient_id in ids:
            path = tmp_path / f"{patient_id}.json"
            path.write_text(json.dumps(await export_patient(source, patient_id)))
            paths.append(path)
        report = await import_fhir(target, [(p.name, p.read_bytes()) for p in paths])
        assert (report.patients_imported, report.patients_failed) == (3, 0), report.as_dict()
        for patient_id in ids:
            before = await _rows(source, patient_id)
            number = before["patient"][0][1]
            new_id = await target.fetchval(
                "SELECT patient_id FROM smart_health.patients WHERE document_number = $1", number
            )
            assert await _rows(target, new_id) == before
    finally:
        await source.close()
        await target.close()


# -- routes and roles -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def api(db_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(make_settings(), database_url=db_url)
    async for client in lifespan_client(app):
        yield app, client


async def test_import_route_roles(
    db_url: str, password_hash: str, api: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, client = api
    body = json.dumps(patient_bundle(20))
    headers = {"content-type": "application/fhir+json"}
    assert (await client.post("/fhir/import", content=body, headers=headers)).status_code == 401
    for role in ("clinician", "auditor"):
        user = await insert_user(db_url, password_hash, role)
        response = await client.post(
            "/fhir/import", content=body, headers={**headers, **bearer(app, user, role)}
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"
    admin = await insert_user(db_url, password_hash, "admin")
    response = await client.post(
        "/fhir/import", content=body, headers={**headers, **bearer(app, admin, "admin")}
    )
    assert response.status_code == 200, response.text
    assert response.json()["report"]["patients"]["imported"] == 1
    (audit,) = await fetch(
        db_url,
        "SELECT * FROM smart_health.audit_logs WHERE event_type = 'fhir.import' "
        "ORDER BY audit_log_id DESC LIMIT 1",
    )
    assert audit["user_id"] == admin
    assert json.loads(audit["details"])["patients"]["imported"] == 1


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"{not json", "application/fhir+json", "INVALID_JSON"),
        (b"\xff\xfe garbage", "application/fhir+json", "INVALID_JSON"),
        (b'{"resourceType": "Patient"}\n{oops\n', "application/fhir+ndjson", "INVALID_JSON"),
        (b'{"hello": "world"}', "application/fhir+json", "INVALID_FHIR"),
        (b"[1, 2, 3]", "application/json", "INVALID_FHIR"),
        (b'{"resourceType": "Spaceship", "id": "x"}', "application/fhir+json", "INVALID_FHIR"),
        (b'{"resourceType": "Bundle", "type": "document"}', "application/json", "INVALID_FHIR"),
        (b'{"resourceType": "Patient"}\n{"id": "1"}\n', "application/fhir+ndjson", "INVALID_FHIR"),
    ],
)
async def test_import_route_refuses_what_is_not_fhir(
    db_url: str,
    password_hash: str,
    api: tuple[FastAPI, httpx.AsyncClient],
    body: bytes,
    content_type: str,
    code: str,
) -> None:
    """Not JSON at all, or JSON that is no FHIR resource: 400 with the error envelope (stable
    code, Spanish message, no parser text), not a 200 report; nothing is imported or audited."""
    app, client = api
    admin = await insert_user(db_url, password_hash, "admin")
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        audits = await conn.fetchval(
            "SELECT count(*) FROM smart_health.audit_logs WHERE event_type = 'fhir.import'"
        )
        response = await client.post(
            "/fhir/import",
            content=body,
            headers={"content-type": content_type, **bearer(app, admin, "admin")},
        )
        assert response.status_code == 400, response.text
        payload = response.json()
        assert payload["status"] == "error"
        assert payload["error"]["code"] == code
        assert payload["error"]["message"].startswith("El cuerpo")
        assert "Expecting" not in response.text and "Traceback" not in response.text
        assert audits == await conn.fetchval(
            "SELECT count(*) FROM smart_health.audit_logs WHERE event_type = 'fhir.import'"
        )
    finally:
        await conn.close()


async def test_import_route_reports_a_broken_patient_as_partial(
    db_url: str, password_hash: str, api: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    """A readable bundle whose patient is invalid R4: 200, status "partial", the error located
    in the report (per-patient problems are the report's, not an HTTP error)."""
    app, client = api
    admin = await insert_user(db_url, password_hash, "admin")
    bundle = patient_bundle(21)
    bundle["entry"][0]["resource"]["birthDate"] = "not-a-date"
    response = await client.post(
        "/fhir/import",
        content=json.dumps(bundle),
        headers={"content-type": "application/fhir+json", **bearer(app, admin, "admin")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "partial"
    assert body["report"]["patients"]["failed"] == 1
    [issue] = [i for i in body["report"]["issues"] if i["code"] != "SKIPPED"]
    assert (issue["code"], issue["resource_type"], issue["field"]) == (
        "INVALID_RESOURCE",
        "Patient",
        "birthDate",
    )


async def test_everything_route_roles_and_audit(
    db_url: str, password_hash: str, api: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, client = api
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        number = await conn.fetchval(
            "SELECT document_number FROM smart_health.patients WHERE document_type_id = 1 "
            "ORDER BY patient_id LIMIT 1"
        )
        url = f"/fhir/Patient/CC-{number}/$everything"
        assert (await client.get(url)).status_code == 401
        auditor = await insert_user(db_url, password_hash, "auditor")
        assert (await client.get(url, headers=bearer(app, auditor, "auditor"))).status_code == 403
        clinician = await insert_user(db_url, password_hash, "clinician")
        response = await client.get(url, headers=bearer(app, clinician))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        Bundle.model_validate(response.json())
        audit = await conn.fetchrow(
            "SELECT * FROM smart_health.audit_logs WHERE event_type = 'fhir.export' "
            "AND user_id = $1",
            clinician,
        )
        assert (audit["outcome"], audit["document_number"]) == ("disclosed", number)
        missing = await client.get(
            "/fhir/Patient/CC-000000/$everything", headers=bearer(app, clinician)
        )
        assert missing.json()["error"]["code"] == "PATIENT_NOT_FOUND"
        wrong = await client.get("/fhir/Patient/XX-1/$everything", headers=bearer(app, clinician))
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "INVALID_INPUT")
    finally:
        await conn.close()
