"""FHIR R4 fixtures in the shapes Synthea and the HL7 examples use (written for these tests):
transaction Bundles with `urn:uuid:` references, conditional references to practitioners,
SNOMED CT conditions with English displays, RxNorm medications, LOINC vital signs and labs,
CVX vaccines, base64 text/plain notes, and resources SmartHealth does not import (Claim)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
NPI = "http://hl7.org/fhir/sid/us-npi"
SYNTHEA = "https://github.com/synthetichealth/synthea"


def _uuid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _qty(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def practitioner_bundle(count: int = 2) -> dict[str, Any]:
    entries = []
    for n in range(count):
        entries.append(
            {
                "fullUrl": f"urn:uuid:{_uuid(f'practitioner-{n}')}",
                "resource": {
                    "resourceType": "Practitioner",
                    "id": _uuid(f"practitioner-{n}"),
                    "identifier": [{"system": NPI, "value": f"99990{n:05d}"}],
                    "active": True,
                    "name": [{"family": f"Herrera{n}", "given": [f"Lucía{n}"], "prefix": ["Dr."]}],
                    "gender": "female",
                },
                "request": {"method": "POST", "url": "Practitioner"},
            }
        )
    entries.append(
        {
            "fullUrl": f"urn:uuid:{_uuid('organization-0')}",
            "resource": {
                "resourceType": "Organization",
                "id": _uuid("organization-0"),
                "identifier": [{"system": SYNTHEA, "value": _uuid("organization-0")}],
                "active": True,
                "name": "IPS Clínica del Norte",
            },
            "request": {"method": "POST", "url": "Organization"},
        }
    )
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


def patient_bundle(n: int, *, broken: bool = False, kind: str = "transaction") -> dict[str, Any]:
    """One patient's history: two encounters (ambulatory wellness and emergency)."""
    pid = _uuid(f"patient-{n}")
    amb = _uuid(f"enc-amb-{n}")
    emer = _uuid(f"enc-emer-{n}")
    npi = f"99990{n % 2:05d}"
    doctor = {"reference": f"Practitioner?identifier={NPI}|{npi}", "display": "Dr. Lucía"}
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"lastUpdated": "2024-05-01T10:00:00Z"},
        "identifier": [
            {
                "system": "https://github.com/synthetichealth/synthea",
                "value": pid,
            },
            {
                "type": {
                    "coding": [{"system": V2, "code": "MR", "display": "Medical Record Number"}]
                },
                "system": "http://hospital.smarthealthit.org",
                "value": pid,
            },
            {
                "type": {
                    "coding": [{"system": V2, "code": "SS", "display": "Social Security Number"}]
                },
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": f"999-{n // 10000 % 100:02d}-{n % 10000:04d}",
            },
        ],
        "name": [
            {"use": "official", "family": f"Quintero{n} Rojas", "given": [f"Mateo{n}", "José"]}
        ],
        "telecom": [{"system": "phone", "value": "555-201-4455", "use": "home"}],
        "gender": "male",
        "birthDate": "1961-07-14",
        "address": [{"line": ["742 Evergreen Terrace"], "city": "Medellín", "country": "CO"}],
    }
    entries: list[dict[str, Any]] = [patient]
    entries.append(
        {
            "resourceType": "Encounter",
            "id": amb,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [_concept(SNOMED, "162673000", "General examination of patient (procedure)")],
            "subject": {"reference": f"urn:uuid:{pid}"},
            "participant": [{"individual": doctor}],
            "period": {"start": "2024-03-04T09:15:00-05:00", "end": "2024-03-04T09:45:00-05:00"},
            "serviceProvider": {
                "reference": f"Organization?identifier={SYNTHEA}|{_uuid('organization-0')}",
                "display": "IPS CLINICA DEL NORTE",
            },
        }
    )
    entries.append(
        {
            "resourceType": "Encounter",
            "id": emer,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
            "type": [_concept(SNOMED, "50849002", "Emergency room admission (procedure)")],
            "subject": {"reference": f"urn:uuid:{pid}"},
            "participant": [{"individual": doctor}],
            "period": {"start": "2025-01-20T22:40:00-05:00", "end": "2025-01-21T01:10:00-05:00"},
            "serviceProvider": {"display": "Hospital Universitario San Vicente"},
        }
    )
    entries.append(
        {
            "resourceType": "Condition",
            "id": _uuid(f"cond-htn-{n}"),
            "clinicalStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
            ),
            "verificationStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "confirmed",
                "Confirmed",
            ),
            "category": [
                _concept(
                    "http://terminology.hl7.org/CodeSystem/condition-category",
                    "encounter-diagnosis",
                    "Encounter Diagnosis",
                )
            ],
            "code": _concept(SNOMED, "59621000", "Essential hypertension (disorder)"),
            "subject": {"reference": f"urn:uuid:{pid}"},
            "encounter": {"reference": f"urn:uuid:{amb}"},
            "onsetDateTime": "2024-03-04T09:15:00-05:00",
            "recordedDate": "2024-03-04T09:15:00-05:00",
        }
    )
    entries.append(
        {
            "resourceType": "Condition",
            "id": _uuid(f"cond-dm-{n}"),
            "clinicalStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
            ),
            "code": {
                "coding": [
                    {
                        "system": SNOMED,
                        "code": "44054006",
                        "display": "Diabetes mellitus type 2 (disorder)",
                    },
                    {"system": "http://hl7.org/fhir/sid/icd-10", "code": "E119"},
                ]
            },
            "subject": {"reference": f"urn:uuid:{pid}"},
            "encounter": {"reference": f"urn:uuid:{amb}"},
            "onsetDateTime": "2024-03-04T09:15:00-05:00",
        }
    )
    entries.append(
        {
            "resourceType": "AllergyIntolerance",
            "id": _uuid(f"allergy-{n}"),
            "clinicalStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "active",
                "Active",
            ),
            "type": "allergy",
            "category": ["food"],
            "criticality": "high",
            "code": _concept(SNOMED, "91935009", "Allergy to peanuts"),
            "patient": {"reference": f"urn:uuid:{pid}"},
            "recordedDate": "2010-05-02T08:00:00-05:00",
            "reaction": [
                {
                    "manifestation": [_concept(SNOMED, "271807003", "Eruption of skin (disorder)")],
                    "severity": "moderate",
                }
            ],
        }
    )
    entries.append(
        {
            "resourceType": "MedicationRequest",
            "id": _uuid(f"medreq-{n}"),
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": _concept(
                "http://www.nlm.nih.gov/research/umls/rxnorm",
                "314076",
                "lisinopril 10 MG Oral Tablet",
            ),
            "subject": {"reference": f"urn:uuid:{pid}"},
            "encounter": {"reference": f"urn:uuid:{amb}"},
            "authoredOn": "2024-03-04T09:15:00-05:00",
            "requester": doctor,
            "reasonReference": [{"reference": f"urn:uuid:{_uuid(f'cond-htn-{n}')}"}],
            "dosageInstruction": [
                {
                    "sequence": 1,
                    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                    "asNeededBoolean": False,
                    "doseAndRate": [{"doseQuantity": {"value": 1.0}}],
                }
            ],
        }
    )
    bp = {
        "resourceType": "Observation",
        "id": _uuid(f"bp-{n}"),
        "status": "final",
        "category": [
            _concept(
                "http://terminology.hl7.org/CodeSystem/observation-category",
                "vital-signs",
                "vital-signs",
            )
        ],
        "code": _concept(LOINC, "85354-9", "Blood pressure panel with all children optional"),
        "subject": {"reference": f"urn:uuid:{pid}"},
        "encounter": {"reference": f"urn:uuid:{amb}"},
        "effectiveDateTime": "2024-03-04T09:15:00-05:00",
        "component": [
            {
                "code": _concept(LOINC, "8462-4", "Diastolic Blood Pressure"),
                "valueQuantity": _qty(88, "mm[Hg]"),
            },
            {
                "code": _concept(LOINC, "8480-6", "Systolic Blood Pressure"),
                "valueQuantity": _qty(146 if not broken else "ciento", "mm[Hg]"),
            },
        ],
    }
    entries.append(bp)
    for code, display, value, unit in (
        ("8867-4", "Heart rate", 78, "/min"),
        ("29463-7", "Body Weight", 82.4, "kg"),
        ("8302-2", "Body Height", 172.1, "cm"),
        ("39156-5", "Body mass index (BMI) [Ratio]", 27.8, "kg/m2"),
    ):
        entries.append(
            {
                "resourceType": "Observation",
                "id": _uuid(f"vital-{code}-{n}"),
                "status": "final",
                "category": [
                    _concept(
                        "http://terminology.hl7.org/CodeSystem/observation-category",
                        "vital-signs",
                        "vital-signs",
                    )
                ],
                "code": _concept(LOINC, code, display),
                "subject": {"reference": f"urn:uuid:{pid}"},
                "encounter": {"reference": f"urn:uuid:{amb}"},
                "effectiveDateTime": "2024-03-04T09:15:00-05:00",
                "valueQuantity": _qty(value, unit),
            }
        )
    for index, (when, value, encounter) in enumerate(
        (("2024-03-04T09:15:00-05:00", 7.9, amb), ("2025-01-20T23:00:00-05:00", 7.1, emer))
    ):
        entries.append(
            {
                "resourceType": "Observation",
                "id": _uuid(f"a1c-{index}-{n}"),
                "status": "final",
                "category": [
                    _concept(
                        "http://terminology.hl7.org/CodeSystem/observation-category",
                        "laboratory",
                        "laboratory",
                    )
                ],
                "code": _concept(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
                "subject": {"reference": f"urn:uuid:{pid}"},
                "encounter": {"reference": f"urn:uuid:{encounter}"},
                "effectiveDateTime": when,
                "issued": when,
                "valueQuantity": _qty(value, "%"),
                "referenceRange": [{"low": {"value": 4.0}, "high": {"value": 5.6}}],
            }
        )
    entries.append(
        {
            "resourceType": "Immunization",
            "id": _uuid(f"imm-{n}"),
            "status": "completed",
            "vaccineCode": _concept(
                "http://hl7.org/fhir/sid/cvx",
                "140",
                "Influenza, seasonal, injectable, preservative free",
            ),
            "patient": {"reference": f"urn:uuid:{pid}"},
            "encounter": {"reference": f"urn:uuid:{amb}"},
            "occurrenceDateTime": "2024-03-04T09:15:00-05:00",
            "primarySource": True,
            "lotNumber": "FLU-2024-A",
            "protocolApplied": [{"doseNumberPositiveInt": 1}],
        }
    )
    entries.append(
        {
            "resourceType": "Procedure",
            "id": _uuid(f"proc-{n}"),
            "status": "completed",
            "code": _concept(SNOMED, "80146002", "Appendectomy (procedure)"),
            "subject": {"reference": f"urn:uuid:{pid}"},
            "encounter": {"reference": f"urn:uuid:{emer}"},
            "performedPeriod": {
                "start": "2025-01-21T00:00:00-05:00",
                "end": "2025-01-21T01:00:00-05:00",
            },
        }
    )
    note = "MOTIVO DE CONSULTA: Control de presión arterial.\nANÁLISIS Y PLAN: Inicia lisinopril."
    entries.append(
        {
            "resourceType": "DocumentReference",
            "id": _uuid(f"doc-{n}"),
            "status": "current",
            "type": _concept(LOINC, "34117-2", "History and physical note"),
            "subject": {"reference": f"urn:uuid:{pid}"},
            "date": "2024-03-04T09:15:00.000-05:00",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(note.encode()).decode(),
                    }
                }
            ],
            "context": {"encounter": [{"reference": f"urn:uuid:{amb}"}]},
        }
    )
    entries.append(
        {
            "resourceType": "Claim",
            "id": _uuid(f"claim-{n}"),
            "status": "active",
            "type": _concept(
                "http://terminology.hl7.org/CodeSystem/claim-type", "professional", "Professional"
            ),
            "use": "claim",
            "patient": {"reference": f"urn:uuid:{pid}"},
            "created": "2024-03-04T09:45:00-05:00",
            "provider": {"display": "Hospital"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Cigna"}}],
        }
    )
    bundle_entries = []
    for resource in entries:
        entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
        if kind == "transaction":
            entry["request"] = {"method": "POST", "url": resource["resourceType"]}
        bundle_entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": bundle_entries}


def write_bundles(folder: Path, patients: range, broken: set[int] = frozenset()) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "practitionerInformation.json"]
    paths[0].write_text(json.dumps(practitioner_bundle()))
    for n in patients:
        path = folder / f"patient_{n}.json"
        path.write_text(json.dumps(patient_bundle(n, broken=n in broken)))
        paths.append(path)
    return paths


def write_ndjson(folder: Path, patients: range) -> list[Path]:
    """Bulk-export files: one per resource type, relative `Type/id` references."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}
    for entry in practitioner_bundle()["entry"]:
        by_type.setdefault("Practitioner", []).append(json.dumps(entry["resource"]))
    for n in patients:
        for entry in patient_bundle(n, kind="collection")["entry"]:
            text = json.dumps(entry["resource"])
            for resource in patient_bundle(n)["entry"]:
                rid = resource["resource"]["id"]
                rtype = resource["resource"]["resourceType"]
                text = text.replace(f"urn:uuid:{rid}", f"{rtype}/{rid}")
            by_type.setdefault(entry["resource"]["resourceType"], []).append(text)
    paths = []
    for kind, lines in by_type.items():
        path = folder / f"{kind}.ndjson"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths
