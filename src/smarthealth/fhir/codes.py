"""Code systems: FHIR URIs and the short names the database stores ("SNOMED CT", "LOINC")."""

from __future__ import annotations

SYSTEMS = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10",
    "http://www.whocc.no/atc": "ATC",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    "http://unitsofmeasure.org": "UCUM",
    "https://www.invima.gov.co/cum": "CUM",
}
# What an export writes for each stored name (the first URI above for it).
URIS: dict[str, str] = {}
for _uri, _name in SYSTEMS.items():
    URIS.setdefault(_name, _uri)

# SmartHealth's own systems, so that an export re-imports exactly (see README, FHIR).
BASE = "https://smarthealth.example/fhir"
DOCUMENT_TYPE_SYSTEM = f"{BASE}/CodeSystem/document-type"
RECORD_TYPE_SYSTEM = f"{BASE}/CodeSystem/record-type"
MEDICATION_CATALOG_SYSTEM = f"{BASE}/CodeSystem/medication-catalog"
SPECIALTY_SYSTEM = f"{BASE}/CodeSystem/specialty"
APPOINTMENT_STATUS_SYSTEM = f"{BASE}/CodeSystem/appointment-status"
DIAGNOSIS_KIND_SYSTEM = f"{BASE}/CodeSystem/diagnosis-kind"
LICENSE_SYSTEM = f"{BASE}/sid/medical-license"
DOCUMENT_SYSTEM = f"{BASE}/sid/document"  # + "/CC" etc.

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
EXT_FATHERS_FAMILY = "http://hl7.org/fhir/StructureDefinition/humanname-fathers-family"
EXT_MOTHERS_FAMILY = "http://hl7.org/fhir/StructureDefinition/humanname-mothers-family"

ICD10_SYSTEMS = {"ICD-10"}


def short_name(system: str | None) -> str:
    """The stored name of a system: its short name when known, else the URI (cut to fit)."""
    if not system:
        return "desconocido"
    return SYSTEMS.get(system.rstrip("/"), system)[:120]


def uri(name: str) -> str:
    """The FHIR URI of a stored system name (unknown names were stored as their URI)."""
    return URIS.get(name, name)
