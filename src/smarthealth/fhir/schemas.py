"""What the OpenAPI document says of the FHIR routes: the bodies `POST /fhir/import` reads (JSON
or NDJSON), its report, and the Bundle `$everything` returns.

The request schemas are the stricter side of what the route accepts (where the rule cannot be
written as JSON Schema): a body valid under them is always read and imported or reported, never
refused as "not FHIR" (400). Whether each resource is valid R4 is the import's business: an
invalid one is located in the report (200, `status` "partial"), not an HTTP error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from smarthealth.fhir.parse import BUNDLE_TYPES
from smarthealth.fhir.resource_types import RESOURCE_TYPES

FHIR_JSON = "application/fhir+json"
JSON_TYPES = (FHIR_JSON, "application/json")
NDJSON_TYPES = ("application/x-ndjson", "application/fhir+ndjson", "application/ndjson")
IMPORT_MEDIA_TYPES = (*JSON_TYPES, *NDJSON_TYPES)
IMPORT_MEDIA_TEXT = "application/fhir+json, application/json o application/x-ndjson"


def _resource(types: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A FHIR R4 resource. Validated with `fhir.resources` on import: an invalid "
        "one is reported (with its field), not imported.",
        "required": ["resourceType"],
        "properties": {"resourceType": {"type": "string", "enum": types}},
    }


_BUNDLE: dict[str, Any] = {
    "type": "object",
    "description": "A Bundle of one of the types that can be imported",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "type": {"type": "string", "enum": list(BUNDLE_TYPES)},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "description": "An entry without `resource` (a transaction's DELETE) is skipped",
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": _resource(list(RESOURCE_TYPES)),
                },
            },
        },
    },
}
_RESOURCE = _resource([t for t in RESOURCE_TYPES if t != "Bundle"])

# NDJSON as a pattern: lines of flat JSON objects, `resourceType` (a known type) first, other
# keys with a string, number, boolean or null value. Stricter than what is read (any JSON
# object with a known `resourceType` per line: a pattern cannot say "JSON"), but always NDJSON
# of FHIR resources.
_TYPES = "|".join(RESOURCE_TYPES)
_VALUE = r'(?:"[^"\\\x00-\x1f]*"|-?(?:0|[1-9][0-9]{0,8})|true|false|null)'
_LINE = (
    rf'\{{"resourceType": ?"(?:{_TYPES})"'
    rf'(?:, ?"(?!resourceType")[A-Za-z_][A-Za-z0-9_]{{0,63}}": ?{_VALUE})*\}}'
)
_NDJSON: dict[str, Any] = {
    "type": "string",
    "description": "NDJSON (FHIR bulk data): one FHIR R4 resource per line. Any JSON object "
    'with a known `resourceType` is read; the pattern, which cannot say "JSON", states a '
    "simpler subset of that.",
    "pattern": rf"^(?:{_LINE}\n)*{_LINE}\n?$",
}

IMPORT_BODY: dict[str, Any] = {
    "required": True,
    "description": "One Bundle (transaction, batch, collection or searchset), one resource, or "
    "NDJSON; up to 32 MiB.",
    "content": {
        **{media: {"schema": {"anyOf": [_BUNDLE, _RESOURCE]}} for media in JSON_TYPES},
        **{media: {"schema": _NDJSON} for media in NDJSON_TYPES},
    },
}


class ImportedFile(BaseModel):
    name: str
    sha256: str


class PatientCounts(BaseModel):
    imported: int
    failed: int
    skipped: int


class ImportIssue(BaseModel):
    """A located problem: stable English `code`, Spanish `message`."""

    code: str = Field(examples=["INVALID_RESOURCE"])
    message: str
    file: str
    index: int | None = Field(default=None, description="Bundle entry, or NDJSON line (from 1)")
    resource_type: str | None = None
    resource_id: str | None = None
    field: str | None = None


class ImportReport(BaseModel):
    files: list[ImportedFile]
    patients: PatientCounts
    resources: dict[str, int] = Field(description="Resources read, by type")
    skipped_by_type: dict[str, int] = Field(description="Resources not imported, by type")
    rows: dict[str, dict[str, int]] = Field(description="Rows by table and action")
    rows_changed: int
    issues: list[ImportIssue]
    seconds: float


class ImportOut(BaseModel):
    status: Literal["success", "partial"] = Field(
        description="partial: a patient failed or was skipped (see `report.issues`)"
    )
    report: ImportReport


BUNDLE_OUT: dict[str, Any] = {
    "type": "object",
    "description": "A FHIR R4 Bundle (collection) with the patient and their records",
    "required": ["resourceType", "type", "entry"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "type": {"const": "collection"},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["fullUrl", "resource"],
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": {
                        "type": "object",
                        "required": ["resourceType"],
                        "properties": {"resourceType": {"type": "string"}},
                    },
                },
            },
        },
    },
}
