"""A patient's record as one FHIR R4 Bundle (type collection): Patient, the Practitioners (and
PractitionerRoles with their specialties) who saw them, Encounters with their vital signs
(Observations) and notes (DocumentReference, text/plain), Conditions, AllergyIntolerances,
MedicationRequests, Appointments, Observations, Immunizations and Procedures.

SmartHealth's own code systems (codes.py) ride along standard codings so that an export
re-imports into exactly the same rows: record type, catalog medication, specialty,
appointment status, diagnosis kind.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import asyncpg

from smarthealth.fhir import codes
from smarthealth.fhir.mapping import BLOOD_PRESSURE_PANELS, VITAL_COLUMNS

S = "smart_health"
ENCOUNTER_CLASS = {
    "Consulta externa": "AMB",
    "Control": "AMB",
    "Urgencias": "EMER",
    "Hospitalización": "IMP",
    "Telemedicina": "VR",
}
APPOINTMENT_STATUS = {
    "Scheduled": "booked",
    "Confirmed": "booked",
    "Attended": "fulfilled",
    "Cancelled": "cancelled",
    "NoShow": "noshow",
}
SEVERITY = {"Leve": "mild", "Moderada": "moderate", "Severa": "severe"}
GENDER = {"M": "male", "F": "female", "O": "other"}
VITAL_DISPLAY = {
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8867-4": "Heart rate",
    "9279-1": "Respiratory rate",
    "8310-5": "Body temperature",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "29463-7": "Body weight",
    "8302-2": "Body height",
}
VITAL_UNITS = {
    "heart_rate": "/min",
    "respiratory_rate": "/min",
    "temperature_c": "Cel",
    "oxygen_saturation": "%",
    "weight_kg": "kg",
    "height_cm": "cm",
}
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    concept: dict[str, Any] = {"coding": [coding]}
    if display:
        concept["text"] = display
    return concept


def _when(value: dt.datetime | dt.date) -> str:
    return value.isoformat()


def _number(value: Decimal | float) -> float | int:
    number = Decimal(str(value)).normalize()
    return int(number) if number == number.to_integral() else float(number)


def _ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


class _Bundle:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, resource: dict[str, Any]) -> None:
        url = f"{codes.BASE}/{resource['resourceType']}/{resource['id']}"
        self.entries.append({"fullUrl": url, "resource": resource})


async def _fetch(conn: asyncpg.Connection, sql: str, patient_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(sql, patient_id))


RECORDS_SQL = f"""
SELECT r.*, o.name AS organization_name FROM {S}.medical_records r
LEFT JOIN {S}.organizations o ON o.organization_id = r.organization_id
WHERE r.patient_id = $1 ORDER BY r.medical_record_id
"""
APPOINTMENTS_SQL = f"""
SELECT a.*, s.code AS specialty_code, s.name AS specialty_name FROM {S}.appointments a
JOIN {S}.specialties s USING (specialty_id) WHERE patient_id = $1 ORDER BY appointment_id
"""
DIAGNOSES_SQL = f"""
SELECT rd.*, g.icd_code, g.description, g.code_system, g.code, g.display,
r.registration_datetime FROM {S}.record_diagnoses rd JOIN {S}.diagnoses g USING
(diagnosis_id) LEFT JOIN {S}.medical_records r USING (medical_record_id, patient_id) WHERE
rd.patient_id = $1 ORDER BY record_diagnosis_id
"""
ALLERGIES_SQL = f"""
SELECT a.*, m.atc_code, m.strength, m.form, m.active_ingredient, m.code_system AS
m_system, m.code AS m_code, m.display AS m_display FROM {S}.patient_allergies a LEFT JOIN
{S}.medications m USING (medication_id) WHERE a.patient_id = $1 ORDER BY allergy_id
"""
PRESCRIPTIONS_SQL = f"""
SELECT p.*, m.atc_code, m.strength, m.form, m.active_ingredient, m.commercial_name,
m.code_system, m.code, m.display, g.icd_code, g.description FROM {S}.prescriptions p JOIN
{S}.medications m USING (medication_id) LEFT JOIN {S}.diagnoses g USING (diagnosis_id)
WHERE p.patient_id = $1 ORDER BY prescription_id
"""
OBSERVATIONS_SQL = f"""
SELECT * FROM {S}.observations WHERE patient_id = $1 ORDER BY observation_id
"""
IMMUNIZATIONS_SQL = f"""
SELECT * FROM {S}.immunizations WHERE patient_id = $1 ORDER BY immunization_id
"""
PROCEDURES_SQL = f"""
SELECT * FROM {S}.procedures WHERE patient_id = $1 ORDER BY procedure_id
"""


async def export_patient(conn: asyncpg.Connection, patient_id: int) -> dict[str, Any]:
    bundle = _Bundle()
    p = await conn.fetchrow(
        f"SELECT p.*, t.code AS document_code FROM {S}.patients p "
        f"JOIN {S}.document_types t USING (document_type_id) WHERE patient_id = $1",
        patient_id,
    )
    if p is None:
        raise LookupError(patient_id)
    pid = f"p{patient_id}"
    subject = _ref("Patient", pid)
    bundle.add(_patient(p, pid))
    if p["blood_type"]:
        bundle.add(_blood_type(p, pid, subject))
    records = await _fetch(
        conn,
        RECORDS_SQL,
        patient_id,
    )
    appointments = await _fetch(
        conn,
        APPOINTMENTS_SQL,
        patient_id,
    )
    doctor_ids = sorted({r["doctor_id"] for r in records} | {a["doctor_id"] for a in appointments})
    await _practitioners(conn, bundle, doctor_ids)
    organizations = {r["organization_id"]: r["organization_name"] for r in records}
    for organization_id, name in sorted((k, v) for k, v in organizations.items() if k):
        bundle.add({"resourceType": "Organization", "id": f"org{organization_id}", "name": name})
    for a in appointments:
        bundle.add(_appointment(a, subject))
    for r in records:
        _encounter(bundle, r, subject)
    diagnoses = await _fetch(
        conn,
        DIAGNOSES_SQL,
        patient_id,
    )
    for d in diagnoses:
        bundle.add(_condition(d, subject))
    for a in await _fetch(
        conn,
        ALLERGIES_SQL,
        patient_id,
    ):
        bundle.add(_allergy(a, subject))
    conditions = {
        (d["medical_record_id"], d["diagnosis_id"]): f"c{d['record_diagnosis_id']}"
        for d in diagnoses
    }
    for m in await _fetch(
        conn,
        PRESCRIPTIONS_SQL,
        patient_id,
    ):
        bundle.add(_prescription(m, subject, conditions))
    for o in await _fetch(
        conn,
        OBSERVATIONS_SQL,
        patient_id,
    ):
        bundle.add(_observation(o, subject))
    for i in await _fetch(
        conn,
        IMMUNIZATIONS_SQL,
        patient_id,
    ):
        bundle.add(_immunization(i, subject))
    for x in await _fetch(
        conn,
        PROCEDURES_SQL,
        patient_id,
    ):
        bundle.add(_procedure(x, subject))
    return {"resourceType": "Bundle", "type": "collection", "entry": bundle.entries}


def _patient(p: asyncpg.Record, pid: str) -> dict[str, Any]:
    family = " ".join(x for x in (p["first_surname"], p["second_surname"]) if x)
    name: dict[str, Any] = {
        "use": "official",
        "family": family,
        "_family": {
            "extension": [{"url": codes.EXT_FATHERS_FAMILY, "valueString": p["first_surname"]}]
            + (
                [{"url": codes.EXT_MOTHERS_FAMILY, "valueString": p["second_surname"]}]
                if p["second_surname"]
                else []
            )
        },
        "given": [x for x in (p["first_name"], p["middle_name"]) if x],
    }
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "type": _concept(codes.DOCUMENT_TYPE_SYSTEM, p["document_code"]),
                "system": f"{codes.DOCUMENT_SYSTEM}/{p['document_code']}",
                "value": p["document_number"],
            }
        ],
        "active": bool(p["active"]),
        "name": [name],
        "gender": GENDER[p["gender"]],
        "birthDate": p["birth_date"].isoformat(),
    }
    telecom = [{"system": "phone", "value": p["phone"]}] if p["phone"] else []
    telecom += [{"system": "email", "value": p["email"]}] if p["email"] else []
    if telecom:
        resource["telecom"] = telecom
    if p["address"] or p["city"]:
        address: dict[str, Any] = {"country": "CO"}
        if p["address"]:
            address["line"] = [p["address"]]
        if p["city"]:
            address["city"] = p["city"]
        resource["address"] = [address]
    return resource


def _blood_type(p: asyncpg.Record, pid: str, subject: dict[str, str]) -> dict[str, Any]:
    """The patient's blood type as the ABO and Rh group Observation (LOINC 882-1)."""
    return {
        "resourceType": "Observation",
        "id": f"{pid}-blood-type",
        "status": "final",
        "category": [
            _concept("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
        ],
        "code": _concept("http://loinc.org", "882-1", "ABO and Rh group [Type] in Blood"),
        "subject": subject,
        "valueCodeableConcept": {"text": p["blood_type"]},
    }


async def _practitioners(conn: asyncpg.Connection, bundle: _Bundle, ids: list[int]) -> None:
    doctors = await conn.fetch(
        f"SELECT * FROM {S}.doctors WHERE doctor_id = ANY($1::int[]) ORDER BY doctor_id", ids
    )
    specialties = await conn.fetch(
        f"SELECT ds.doctor_id, s.code, s.name FROM {S}.doctor_specialties ds "
        f"JOIN {S}.specialties s USING (specialty_id) WHERE ds.doctor_id = ANY($1::int[]) "
        "ORDER BY ds.doctor_id, ds.is_primary DESC, s.specialty_id",
        ids,
    )
    for d in doctors:
        did = f"d{d['doctor_id']}"
        bundle.add(
            {
                "resourceType": "Practitioner",
                "id": did,
                "identifier": [{"system": codes.LICENSE_SYSTEM, "value": d["medical_license"]}],
                "active": bool(d["active"]),
                "name": [{"family": d["last_name"], "given": [d["first_name"]]}],
                "gender": GENDER[d["gender"]],
            }
        )
        own = [s for s in specialties if s["doctor_id"] == d["doctor_id"]]
        if own:
            bundle.add(
                {
                    "resourceType": "PractitionerRole",
                    "id": f"dr{d['doctor_id']}",
                    "practitioner": _ref("Practitioner", did),
                    "specialty": [
                        _concept(codes.SPECIALTY_SYSTEM, s["code"], s["name"]) for s in own
                    ],
                }
            )


def _appointment(a: asyncpg.Record, subject: dict[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": f"ap{a['appointment_id']}",
        "meta": {"tag": [{"system": codes.APPOINTMENT_STATUS_SYSTEM, "code": a["status"]}]},
        "status": APPOINTMENT_STATUS[a["status"]],
        "specialty": [_concept(codes.SPECIALTY_SYSTEM, a["specialty_code"], a["specialty_name"])],
        "start": _when(a["start_time"]),
        "end": _when(a["end_time"]),
        "participant": [
            {"actor": subject, "status": "accepted"},
            {"actor": _ref("Practitioner", f"d{a['doctor_id']}"), "status": "accepted"},
        ],
    }
    if a["reason"]:
        resource["reasonCode"] = [{"text": a["reason"]}]
    return resource


def _encounter(bundle: _Bundle, r: asyncpg.Record, subject: dict[str, str]) -> None:
    rid = f"r{r['medical_record_id']}"
    period = {"start": _when(r["registration_datetime"])}
    if r["discharge_datetime"] is not None:
        period["end"] = _when(r["discharge_datetime"])
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": rid,
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": ENCOUNTER_CLASS.get(r["record_type"], "AMB"),
        },
        "type": [_concept(codes.RECORD_TYPE_SYSTEM, r["record_type"], r["record_type"])],
        "subject": subject,
        "participant": [{"individual": _ref("Practitioner", f"d{r['doctor_id']}")}],
        "period": period,
    }
    if r["appointment_id"] is not None:
        encounter["appointment"] = [_ref("Appointment", f"ap{r['appointment_id']}")]
    if r["organization_id"] is not None:
        encounter["serviceProvider"] = _ref("Organization", f"org{r['organization_id']}")
    bundle.add(encounter)
    when = _when(r["registration_datetime"])
    vital_signs = {
        "category": [
            _concept(
                "http://terminology.hl7.org/CodeSystem/observation-category",
                "vital-signs",
                "Vital Signs",
            )
        ],
        "subject": subject,
        "encounter": _ref("Encounter", rid),
        "effectiveDateTime": when,
        "status": "final",
    }
    if r["systolic_pressure"] is not None and r["diastolic_pressure"] is not None:
        panel = sorted(BLOOD_PRESSURE_PANELS)[-1]  # 85354-9
        bundle.add(
            {
                "resourceType": "Observation",
                "id": f"{rid}-bp",
                **vital_signs,
                "code": _concept(LOINC, panel, "Blood pressure panel"),
                "component": [
                    {
                        "code": _concept(LOINC, code, VITAL_DISPLAY[code]),
                        "valueQuantity": {
                            "value": r[column],
                            "unit": "mm[Hg]",
                            "system": "http://unitsofmeasure.org",
                            "code": "mm[Hg]",
                        },
                    }
                    for code, column in (
                        ("8480-6", "systolic_pressure"),
                        ("8462-4", "diastolic_pressure"),
                    )
                ],
            }
        )
    for code, column in VITAL_COLUMNS.items():
        if column in ("systolic_pressure", "diastolic_pressure") or code in ("2708-6", "8331-1"):
            continue
        if r[column] is None:
            continue
        unit = VITAL_UNITS[column]
        bundle.add(
            {
                "resourceType": "Observation",
                "id": f"{rid}-{code}",
                **vital_signs,
                "code": _concept(LOINC, code, VITAL_DISPLAY[code]),
                "valueQuantity": {
                    "value": _number(r[column]),
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )
    if r["summary_text"]:
        bundle.add(
            {
                "resourceType": "DocumentReference",
                "id": f"n{r['medical_record_id']}",
                "status": "current",
                "type": _concept(LOINC, "11506-3", "Progress note"),
                "subject": subject,
                "date": when,
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "data": base64.b64encode(r["summary_text"].encode()).decode(),
                        }
                    }
                ],
                "context": {"encounter": [_ref("Encounter", rid)]},
            }
        )


def _condition(d: asyncpg.Record, subject: dict[str, str]) -> dict[str, Any]:
    if d["icd_code"] is not None:
        code = _concept(ICD10, d["icd_code"], d["description"])
    else:
        code = _concept(codes.uri(d["code_system"]), d["code"], d["display"] or d["description"])
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"c{d['record_diagnosis_id']}",
        "category": [_concept(codes.DIAGNOSIS_KIND_SYSTEM, d["diagnosis_type"])],
        "code": code,
        "subject": subject,
    }
    if d["clinical_status"]:
        resource["clinicalStatus"] = _concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", d["clinical_status"]
        )
    if d["medical_record_id"] is not None:
        resource["encounter"] = _ref("Encounter", f"r{d['medical_record_id']}")
    if d["onset_date"] is not None:
        resource["onsetDateTime"] = d["onset_date"].isoformat()
    if d["abatement_date"] is not None:
        resource["abatementDateTime"] = d["abatement_date"].isoformat()
    if d["registration_datetime"] is not None:
        resource["recordedDate"] = _when(d["registration_datetime"])
    return resource


def _catalog_codings(atc: str, strength: str, form: str, name: str) -> dict[str, Any]:
    return {
        "coding": [
            {"system": codes.MEDICATION_CATALOG_SYSTEM, "code": f"{atc}|{strength}|{form}"},
            {"system": codes.uri("ATC"), "code": atc, "display": name},
        ],
        "text": name,
    }


def _allergy(a: asyncpg.Record, subject: dict[str, str]) -> dict[str, Any]:
    if a["atc_code"] is not None:
        code = _catalog_codings(a["atc_code"], a["strength"], a["form"], a["active_ingredient"])
    elif a["m_code"] is not None:
        code = _concept(codes.uri(a["m_system"]), a["m_code"], a["m_display"])
    elif a["substance_code"]:
        code = _concept(codes.uri(a["substance_system"]), a["substance_code"], a["substance"])
    else:
        code = {"text": a["substance"]}
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": f"a{a['allergy_id']}",
        "category": [a["category"]],
        "code": code,
        "patient": subject,
        "recordedDate": a["noted_on"].isoformat(),
    }
    if a["criticality"]:
        resource["criticality"] = a["criticality"]
    if a["reaction"]:
        reaction: dict[str, Any] = {"manifestation": [{"text": a["reaction"]}]}
        if a["severity"]:
            reaction["severity"] = SEVERITY[a["severity"]]
        resource["reaction"] = [reaction]
    return resource


def _prescription(
    m: asyncpg.Record, subject: dict[str, str], conditions: dict[tuple[Any, Any], str]
) -> dict[str, Any]:
    if m["atc_code"] is not None:
        medication = _catalog_codings(
            m["atc_code"], m["strength"], m["form"], m["active_ingredient"]
        )
    else:
        medication = _concept(codes.uri(m["code_system"]), m["code"], m["display"])
    dosage: dict[str, Any] = {}
    if m["dosage"]:
        dosage["text"] = m["dosage"]
    if m["frequency"]:
        dosage["timing"] = {"code": {"text": m["frequency"]}}
    if m["instruction"]:
        dosage["patientInstruction"] = m["instruction"]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"m{m['prescription_id']}",
        "status": m["status"] or "unknown",
        "intent": "order",
        "medicationCodeableConcept": medication,
        "subject": subject,
        "authoredOn": m["prescription_date"].isoformat(),
        "dispenseRequest": {
            "expectedSupplyDuration": {
                "value": m["duration_days"],
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            }
        },
    }
    if dosage:
        resource["dosageInstruction"] = [dosage]
    if m["medical_record_id"] is not None:
        resource["encounter"] = _ref("Encounter", f"r{m['medical_record_id']}")
    if m["diagnosis_id"] is not None:
        condition = conditions.get((m["medical_record_id"], m["diagnosis_id"]))
        if condition:
            resource["reasonReference"] = [_ref("Condition", condition)]
        elif m["icd_code"]:
            resource["reasonCode"] = [_concept(ICD10, m["icd_code"], m["description"])]
    return resource


def _coded(row: asyncpg.Record) -> dict[str, Any]:
    return _concept(codes.uri(row["code_system"]), row["code"], row["display"])


def _with_record(resource: dict[str, Any], row: asyncpg.Record) -> dict[str, Any]:
    if row["medical_record_id"] is not None:
        resource["encounter"] = _ref("Encounter", f"r{row['medical_record_id']}")
    return resource


def _observation(o: asyncpg.Record, subject: dict[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{o['observation_id']}",
        "status": o["status"] or "final",
        "code": _coded(o),
        "subject": subject,
        "effectiveDateTime": _when(o["effective_at"]),
    }
    if o["category"]:
        resource["category"] = [
            _concept("http://terminology.hl7.org/CodeSystem/observation-category", o["category"])
        ]
    if o["value_numeric"] is not None:
        quantity: dict[str, Any] = {"value": _number(o["value_numeric"])}
        if o["value_unit"]:
            quantity["unit"] = o["value_unit"]
        resource["valueQuantity"] = quantity
    elif o["value_text"] is not None:
        resource["valueString"] = o["value_text"]
    ranges: dict[str, Any] = {}
    if o["reference_low"] is not None:
        ranges["low"] = {"value": _number(o["reference_low"])}
    if o["reference_high"] is not None:
        ranges["high"] = {"value": _number(o["reference_high"])}
    if o["reference_text"]:
        ranges["text"] = o["reference_text"]
    if ranges:
        resource["referenceRange"] = [ranges]
    if o["interpretation"]:
        resource["interpretation"] = [
            _concept(
                "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                o["interpretation"],
            )
        ]
    raw = o["components"]
    components = json.loads(raw) if isinstance(raw, str) else raw
    if components:
        parts = []
        for c in components:
            part: dict[str, Any] = {
                "code": _concept(codes.uri(o["code_system"]), c["code"], c.get("display"))
            }
            if c.get("value") is not None:
                part["valueQuantity"] = {
                    "value": c["value"],
                    **({"unit": c["unit"]} if c.get("unit") else {}),
                }
            elif c.get("text") is not None:
                part["valueString"] = c["text"]
            parts.append(part)
        resource["component"] = parts
    return _with_record(resource, o)


def _immunization(i: asyncpg.Record, subject: dict[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": f"i{i['immunization_id']}",
        "status": i["status"] or "completed",
        "vaccineCode": _coded(i),
        "patient": subject,
        "occurrenceDateTime": _when(i["occurred_at"]),
    }
    if i["lot_number"]:
        resource["lotNumber"] = i["lot_number"]
    if i["dose_number"]:
        resource["protocolApplied"] = [{"doseNumberPositiveInt": i["dose_number"]}]
    return _with_record(resource, i)


def _procedure(x: asyncpg.Record, subject: dict[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": f"pr{x['procedure_id']}",
        "status": x["status"] or "completed",
        "code": _coded(x),
        "subject": subject,
        "performedDateTime": _when(x["performed_at"]),
    }
    return _with_record(resource, x)
