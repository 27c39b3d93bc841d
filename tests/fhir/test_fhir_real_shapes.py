"""Regressions from importing real, unmodified public R4 data (Synthea sample bundles and bulk
NDJSON, the HL7 R4 examples; see bench/README.md): small fixtures written here in the same
shapes, each reproducing one thing those files revealed."""

from __future__ import annotations

import copy
import json
from typing import Any

import asyncpg
import pytest

from smarthealth.config import to_libpq_url
from smarthealth.fhir.exporter import export_patient
from smarthealth.fhir.importer import ImportReport, import_fhir
from tests.fhir.synthea_like import LOINC, SNOMED, patient_bundle

Resource = dict[str, Any]


def _of(bundle: Resource, kind: str, code: str | None = None) -> Resource:
    """The first resource of a type (and code) in a bundle."""
    for entry in bundle["entry"]:
        resource: Resource = entry["resource"]
        if resource["resourceType"] != kind:
            continue
        codings = (resource.get("code") or {}).get("coding") or [{}]
        if code is None or codings[0].get("code") == code:
            return resource
    raise LookupError((kind, code))


async def _import(url: str, *bundles: Resource) -> ImportReport:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        inputs = [(f"b{i}.json", json.dumps(b).encode()) for i, b in enumerate(bundles)]
        return await import_fhir(conn, inputs)
    finally:
        await conn.close()


async def _patient_id(conn: asyncpg.Connection, n: int) -> int:
    number = f"999-{n // 10000 % 100:02d}-{n % 10000:04d}"
    found = await conn.fetchval(
        "SELECT patient_id FROM smart_health.patients WHERE document_number = $1", number
    )
    assert found is not None, number
    return int(found)


async def test_valid_resources_lacking_what_a_table_needs_are_skipped_not_fatal(
    db_url: str,
) -> None:
    """HL7's encounter-example (in progress: no period), a Procedure with no performed[x] and a
    Condition coded only as text are valid R4: the patient is imported without them, each
    skipped with its location, instead of the whole patient failing."""
    bundle = patient_bundle(301)
    encounter = bundle["entry"][2]["resource"]  # the emergency visit, nothing points to it
    assert encounter["resourceType"] == "Encounter"
    del encounter["period"]
    encounter["status"] = "in-progress"
    procedure = _of(bundle, "Procedure")
    del procedure["performedPeriod"]
    condition = _of(bundle, "Condition", "44054006")
    condition["code"] = {"text": "Diabetes mellitus tipo 2"}
    report = await _import(db_url, bundle)
    assert (report.patients_imported, report.patients_failed) == (1, 0), report.as_dict()
    skipped = {(i.resource_type, i.field) for i in report.issues if i.code == "SKIPPED"}
    assert {("Encounter", "period.start"), ("Procedure", "performedDateTime")} <= skipped
    assert ("Condition", "code") in skipped
    assert not report.failed
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        pid = await _patient_id(conn, 301)
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM smart_health.medical_records WHERE patient_id = $1) "
            "AS records, (SELECT count(*) FROM smart_health.procedures WHERE patient_id = $1) "
            "AS procedures, (SELECT count(*) FROM smart_health.record_diagnoses "
            "WHERE patient_id = $1) AS diagnoses, (SELECT count(*) FROM "
            "smart_health.observations WHERE patient_id = $1) AS observations",
            pid,
        )
    finally:
        await conn.close()
    assert (counts["records"], counts["procedures"], counts["diagnoses"]) == (1, 0, 1)
    assert counts["observations"] == 3  # the BMI and the two HbA1c results
    again = await _import(db_url, bundle)
    assert again.changed == 0


async def test_patient_without_birth_date_or_name_is_reported_and_skipped(db_url: str) -> None:
    """HL7's patient-examples-general (no birthDate) and infant-fetal (no name): skipped with a
    located PATIENT_INCOMPLETE, like a patient without a usable document; the others import."""
    no_birth = patient_bundle(302)
    del no_birth["entry"][0]["resource"]["birthDate"]
    no_name = patient_bundle(303)
    del no_name["entry"][0]["resource"]["name"]
    report = await _import(db_url, no_birth, no_name, patient_bundle(304))
    assert (report.patients_imported, report.patients_failed) == (1, 0)
    assert report.patients_skipped == 2
    incomplete = sorted((i.file, i.field) for i in report.issues if i.code == "PATIENT_INCOMPLETE")
    assert incomplete == [("b0.json", "birthDate"), ("b1.json", "name")]


async def test_every_reaction_of_an_allergy_is_kept(db_url: str) -> None:
    """Synthea writes a reaction per manifestation (wheal, dyspnea, …): all of them are the
    allergy's reaction, not only the first; the severity is the worst one given."""
    bundle = patient_bundle(305)
    allergy = _of(bundle, "AllergyIntolerance")

    def manifestation(code: str, text: str) -> Resource:
        return {"coding": [{"system": SNOMED, "code": code, "display": text}], "text": text}

    allergy["reaction"] = [
        {"manifestation": [manifestation("247472004", "Wheal (finding)")], "severity": "mild"},
        {"manifestation": [manifestation("267036007", "Dyspnea (finding)")]},
        {
            "manifestation": [
                manifestation("247472004", "Wheal (finding)"),
                manifestation("39579001", "Anaphylaxis (disorder)"),
            ],
            "severity": "severe",
        },
        {"manifestation": [manifestation("271807003", "Eruption of skin (disorder)")]},
    ]
    report = await _import(db_url, bundle)
    assert report.patients_imported == 1, report.as_dict()
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        row = await conn.fetchrow(
            "SELECT reaction, severity FROM smart_health.patient_allergies WHERE patient_id = $1",
            await _patient_id(conn, 305),
        )
    finally:
        await conn.close()
    assert row["reaction"] == (
        "Wheal (finding), Dyspnea (finding), Anaphylaxis (disorder), Eruption of skin (disorder)"
    )
    assert row["severity"] == "Severa"


async def test_oral_temperature_is_the_record_temperature(db_url: str) -> None:
    """Synthea codes temperature as LOINC 8331-1 (oral): it fills the visit's temperature."""
    bundle = patient_bundle(306)
    heart_rate = _of(bundle, "Observation", "8867-4")
    temperature = copy.deepcopy(heart_rate)
    temperature["id"] = heart_rate["id"][:-4] + "7e3f"
    temperature["code"] = {
        "coding": [{"system": LOINC, "code": "8331-1", "display": "Oral temperature"}],
        "text": "Oral temperature",
    }
    temperature["valueQuantity"] = {
        "value": 37.82071,
        "unit": "Cel",
        "system": "http://unitsofmeasure.org",
        "code": "Cel",
    }
    bundle["entry"].append({"fullUrl": f"urn:uuid:{temperature['id']}", "resource": temperature})
    report = await _import(db_url, bundle)
    assert report.patients_imported == 1, report.as_dict()
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        pid = await _patient_id(conn, 306)
        temperatures = await conn.fetch(
            "SELECT temperature_c FROM smart_health.medical_records "
            "WHERE patient_id = $1 AND temperature_c IS NOT NULL",
            pid,
        )
        stored = await conn.fetchval(
            "SELECT count(*) FROM smart_health.observations WHERE patient_id = $1 "
            "AND code = '8331-1'",
            pid,
        )
    finally:
        await conn.close()
    assert [str(r[0]) for r in temperatures] == ["37.8"]
    assert stored == 0


@pytest.mark.parametrize(
    ("n", "value", "expected"),
    [
        (320, {"text": "A+"}, "A+"),
        (
            321,
            {
                "coding": [
                    {
                        "system": SNOMED,
                        "code": "278152006",
                        "display": "Blood group A Rh(D) negative (finding)",
                    }
                ]
            },
            "A-",
        ),
        (322, {"text": "O positivo"}, "O+"),
        (323, {"text": "AB Rh negative"}, "AB-"),
    ],
)
async def test_blood_type_observation_sets_the_patient_blood_type(
    db_url: str, n: int, value: Resource, expected: str
) -> None:
    """LOINC 882-1 (ABO and Rh group) is the patient's blood type, not a lab row; the export
    writes it back as that Observation, so it survives a round trip."""
    bundle = patient_bundle(n)
    lab = _of(bundle, "Observation", "4548-4")
    blood = copy.deepcopy(lab)
    blood["id"] = lab["id"][:-4] + "b10d"
    blood["code"] = {
        "coding": [{"system": LOINC, "code": "882-1", "display": "ABO and Rh group"}],
        "text": "ABO and Rh group",
    }
    for name in ("valueQuantity", "referenceRange"):
        blood.pop(name, None)
    blood["valueCodeableConcept"] = value
    bundle["entry"].append({"fullUrl": f"urn:uuid:{blood['id']}", "resource": blood})
    report = await _import(db_url, bundle)
    assert report.patients_imported == 1, report.as_dict()
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        pid = await _patient_id(conn, n)
        assert (
            await conn.fetchval(
                "SELECT blood_type FROM smart_health.patients WHERE patient_id = $1", pid
            )
            == expected
        )
        assert not await conn.fetchval(
            "SELECT count(*) FROM smart_health.observations WHERE patient_id = $1 "
            "AND code = '882-1'",
            pid,
        )
        exported = await export_patient(conn, pid)
    finally:
        await conn.close()
    values = [
        e["resource"]["valueCodeableConcept"]["text"]
        for e in exported["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "882-1"
    ]
    assert values == [expected]
