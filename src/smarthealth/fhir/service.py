"""What the route and the command line share: running an import on its own connection, and the
audit events of imports and exports (who, which file digests, counts; never file names, which
exporters such as Synthea build from patients' names)."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from smarthealth.audit.service import AuditEvent, ClientInfo
from smarthealth.config import Settings, to_libpq_url
from smarthealth.fhir.importer import ImportOptions, ImportReport, import_fhir


async def run_import(
    url: str,
    inputs: list[tuple[str, bytes]],
    settings: Settings,
    on_patient: Callable[[int], None] | None = None,
) -> ImportReport:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        options = ImportOptions(identifier_systems=settings.fhir_identifier_systems)
        return await import_fhir(conn, inputs, options, on_patient)
    finally:
        await conn.close()


def import_event(report: ImportReport, user_id: int | None, client: ClientInfo) -> AuditEvent:
    return AuditEvent(
        "fhir.import",
        client,
        user_id=user_id,
        outcome="failed" if report.failed else "success",
        latency_ms=round(report.seconds * 1000),
        details={
            "files": [f["sha256"] for f in report.files],
            "patients": {
                "imported": report.patients_imported,
                "failed": report.patients_failed,
                "skipped": report.patients_skipped,
            },
            "rows_changed": report.changed,
            "resources": sum(report.resources.values()),
            "issues": len(report.issues),
        },
    )


def export_event(
    user_id: int | None,
    client: ClientInfo,
    outcome: str,
    patient_id: int | None = None,
    document_type_id: int | None = None,
    document_number: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        "fhir.export",
        client,
        user_id=user_id,
        outcome=outcome,
        patient_id=patient_id,
        document_type_id=document_type_id,
        document_number=document_number,
    )
