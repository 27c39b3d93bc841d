"""FHIR R4 in and out: import bundles and bulk NDJSON files, export a patient as a Bundle."""
