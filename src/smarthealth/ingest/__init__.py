"""Data in: catalogs, synthetic demo histories (and later FHIR R4 import)."""
