"""`smarthealth import fhir` and `smarthealth export fhir`: progress, summary table, audit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select

from smarthealth.audit.service import CLI, record_event
from smarthealth.config import get_settings, to_libpq_url
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.fhir.exporter import export_patient
from smarthealth.fhir.identity import DOCUMENT_TYPES
from smarthealth.fhir.importer import ImportReport
from smarthealth.fhir.parse import files_under
from smarthealth.fhir.service import export_event, import_event, run_import
from smarthealth.models import User


async def _audit_user(url: str, email: str | None, roles: tuple[str, ...]) -> int | None:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            query = select(User.user_id).where(User.is_active, User.role.in_(roles))
            if email:
                query = query.where(User.email == email.strip().lower())
            return await session.scalar(query.order_by(User.role, User.user_id).limit(1))
    finally:
        await engine.dispose()


async def _record(url: str, event: object) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await record_event(session, event)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def summary(report: ImportReport) -> Table:
    table = Table("tabla", "insertadas", "actualizadas", "sin cambios", title="Filas")
    tables = sorted({t for t, _ in report.rows})
    for name in tables:
        table.add_row(
            name,
            f"{report.rows[(name, 'inserted')]:,}",
            f"{report.rows[(name, 'updated')]:,}",
            f"{report.rows[(name, 'unchanged')]:,}",
        )
    return table


def import_files(
    url: str, paths: list[Path], as_user: str | None, console: Console, progress: Progress
) -> int:
    """Import every file; print the summary and each problem; 1 when anything failed."""
    files = files_under(paths)
    missing = [p for p in files if not p.is_file()]
    if missing:
        console.print(f"[red]No existe: {missing[0]}[/red]")
        return 2
    user_id = asyncio.run(_audit_user(url, as_user, ("admin",)))
    if as_user and user_id is None:
        console.print("[red]--as debe ser un administrador activo.[/red]")
        return 2
    inputs = [(str(p), p.read_bytes()) for p in files]
    with progress:
        task = progress.add_task("Pacientes", total=None)
        report = asyncio.run(
            run_import(url, inputs, get_settings(), lambda n: progress.advance(task, n))
        )
    asyncio.run(_record(url, import_event(report, user_id, CLI)))
    console.print(summary(report))
    console.print(
        f"Pacientes: {report.patients_imported} importados, {report.patients_failed} con error, "
        f"{report.patients_skipped} omitidos · filas cambiadas: {report.changed} · "
        f"{report.seconds:.1f} s"
    )
    if report.skipped:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items()))
        console.print(f"Recursos no importados, por tipo: {skipped}")
    for issue in report.issues:
        where = " · ".join(
            str(x)
            for x in (issue.file, issue.index, issue.resource_type, issue.resource_id, issue.field)
            if x is not None
        )
        color = "yellow" if issue.code in ("SKIPPED", "NO_DOCUMENT") else "red"
        console.print(f"[{color}]{issue.code}: {issue.message} ({where})[/{color}]")
    return 1 if report.failed else 0


async def _export(
    url: str, document: str | None, out: Path | None, user_id: int | None, console: Console
) -> int:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        if document is not None:
            code, _, number = document.partition(":")
            type_id = DOCUMENT_TYPES.get(code.upper())
            if type_id is None or not number:
                console.print("[red]--document debe tener la forma TIPO:NÚMERO (CC:123…)[/red]")
                return 2
            number = number.strip().upper()
            patient_id = await conn.fetchval(
                "SELECT patient_id FROM smart_health.patients "
                "WHERE document_type_id = $1 AND document_number = $2",
                type_id,
                number,
            )
            outcome = "disclosed" if patient_id else "patient_not_found"
            await _record(url, export_event(user_id, CLI, outcome, patient_id, type_id, number))
            if patient_id is None:
                console.print("[red]PATIENT_NOT_FOUND: No se encontró el paciente.[/red]")
                return 1
            text = json.dumps(await export_patient(conn, patient_id), ensure_ascii=False)
            if out is None:
                print(text)  # the Bundle is the command's output
            else:
                await asyncio.to_thread(out.write_text, text, encoding="utf-8")
            return 0
        assert out is not None
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        ids = [r[0] for r in await conn.fetch("SELECT patient_id FROM smart_health.patients")]
        await _record(url, export_event(user_id, CLI, "disclosed_all"))
        for patient_id in sorted(ids):
            bundle = await export_patient(conn, patient_id)
            path = out / f"patient-{patient_id}.json"
            text = json.dumps(bundle, ensure_ascii=False)
            await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        console.print(f"{len(ids)} pacientes exportados en {out}")
        return 0
    finally:
        await conn.close()


def export(
    url: str, document: str | None, out: Path | None, as_user: str | None, console: Console
) -> int:
    user_id = asyncio.run(_audit_user(url, as_user, ("admin", "clinician")))
    if as_user and user_id is None:
        console.print("[red]--as debe ser un clínico o administrador activo.[/red]")
        return 2
    return asyncio.run(_export(url, document, out, user_id, console))
