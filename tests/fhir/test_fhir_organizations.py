"""Organizations by name: an Encounter's serviceProvider is stored with the visit (resolved to
the Organization's name, else the reference's display), shown in the visit's chunk, exported back
and imported again without changes."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from smarthealth.config import to_libpq_url
from smarthealth.fhir.exporter import export_patient
from smarthealth.fhir.importer import import_fhir
from smarthealth.rag.indexer import sync_queued
from tests.fhir.synthea_like import write_bundles

VISITS_SQL = """
SELECT r.record_type, o.name, c.content
FROM smart_health.medical_records r
JOIN smart_health.patients p USING (patient_id)
LEFT JOIN smart_health.organizations o USING (organization_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'encounter' AND c.source_id = r.medical_record_id
WHERE p.document_number = '999-00-0000' ORDER BY r.registration_datetime
"""


async def test_service_provider_is_stored_chunked_exported_and_reimported(
    db_url: str, tmp_path: Path
) -> None:
    paths = write_bundles(tmp_path, range(2))
    inputs = [(p.name, p.read_bytes()) for p in paths]
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        report = await import_fhir(conn, inputs)
        assert report.patients_failed == 0, report.as_dict()
        assert report.rows[("organizations", "inserted")] == 2  # one row per name
        await sync_queued(conn)
        visits = [tuple(r) for r in await conn.fetch(VISITS_SQL)]
        assert [(kind, name) for kind, name, _ in visits] == [
            ("Consulta externa", "IPS Clínica del Norte"),  # the resolved Organization's name
            ("Urgencias", "Hospital Universitario San Vicente"),  # a display-only reference
        ]
        assert all(
            f" en {name} " in content or f" en {name}." in content for _, name, content in visits
        )

        again = await import_fhir(conn, inputs)
        assert again.changed == 0, again.as_dict()
        assert await conn.fetchval("SELECT count(*) FROM smart_health.organizations") == 2

        patient_id = await conn.fetchval(
            "SELECT patient_id FROM smart_health.patients WHERE document_number = '999-00-0000'"
        )
        bundle = await export_patient(conn, patient_id)
        resources = [e["resource"] for e in bundle["entry"]]
        names = {r["id"]: r["name"] for r in resources if r["resourceType"] == "Organization"}
        assert sorted(names.values()) == [
            "Hospital Universitario San Vicente",
            "IPS Clínica del Norte",
        ]
        providers = [
            names[r["serviceProvider"]["reference"].split("/")[1]]
            for r in resources
            if r["resourceType"] == "Encounter"
        ]
        assert providers == ["IPS Clínica del Norte", "Hospital Universitario San Vicente"]
    finally:
        await conn.close()
