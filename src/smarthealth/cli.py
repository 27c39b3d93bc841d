"""The `smarthealth` command line (Typer)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from smarthealth.config import get_settings, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.db.preflight import DatabaseNotReadyError, check_database
from smarthealth.db.server import DatabaseServer, open_database_server
from smarthealth.inputs import LineText
from smarthealth.log_config import configure_logging, wants_json

app = typer.Typer(
    help="SmartHealth: preguntas clínicas sobre la historia de un paciente.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(
    help="Database: migrations, connection URL, embedded server.", no_args_is_help=True
)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
import_app = typer.Typer(help="Import clinical data.", no_args_is_help=True)
export_app = typer.Typer(help="Export clinical data.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
console = Console(stderr=True)

DEMO_PATIENTS = 300
DEMO_SEED = 42


def _checked(kind: Any, value: str, option: str) -> Any:
    """A command-line argument under the same input policy as the API (smarthealth.inputs):
    refused (exit 2, naming the option, never echoing the value) or normalised."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        console.print(f"[red]{option}: {exc.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from None


@contextmanager
def database(stop_after: bool = True) -> Iterator[DatabaseServer]:
    """The configured server (embedded started when needed), checked and migrated."""
    settings = get_settings()
    configure_logging("WARNING", json=False)  # the command's own output is what matters here
    server = open_database_server(settings)
    try:
        check_database(server.url)
        yield server
    except DatabaseNotReadyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        if stop_after:
            server.stop()


def _prepare(server: DatabaseServer) -> None:
    """Migrate to head and bring the catalogs up to date."""
    from smarthealth.config import to_libpq_url
    from smarthealth.ingest.catalogs import load_catalogs

    migrate.upgrade(server.url)

    async def _catalogs() -> None:
        import asyncpg

        conn = await asyncpg.connect(to_libpq_url(server.url))
        try:
            await load_catalogs(conn)
        finally:
            await conn.close()

    asyncio.run(_catalogs())


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _seed(
    server: DatabaseServer, patients: int, seed: int, today: dt.date | None, reset: bool
) -> None:
    from smarthealth.ingest.seed import SeedError, seed_database

    with _progress() as progress:
        task = progress.add_task("Pacientes", total=patients)
        try:
            report = asyncio.run(
                seed_database(
                    server.url,
                    patients,
                    seed,
                    today=today,
                    reset=reset,
                    on_progress=lambda n: progress.advance(task, n),
                )
            )
        except SeedError as exc:
            console.print(f"[yellow]{exc}[/yellow]")
            raise typer.Exit(1) from None
    table = Table("tabla", "filas", title=f"Semilla {seed} · {report.seconds:.1f} s")
    for name, count in report.rows.items():
        table.add_row(name, f"{count:,}")
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8088,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    demo: Annotated[bool, typer.Option(help="Seed demo data when the database is empty.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Worker processes (their /metrics add up; not with --reload)."
        ),
    ] = 1,
) -> None:
    """Run the API (embedded database unless one is configured; migrates first)."""
    import uvicorn

    from smarthealth.auth.secret import ConfigurationError, resolve_secret_key
    from smarthealth.ingest.seed import patient_count_sync
    from smarthealth.users.accounts_cli import create_demo_accounts

    settings = get_settings()
    try:
        resolve_secret_key(settings)
    except ConfigurationError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if reload and workers > 1:
        console.print("[red]--reload y --workers no se pueden combinar[/red]")
        raise typer.Exit(2)
    with database() as server, metrics_folder(workers):
        _prepare(server)
        if demo and patient_count_sync(server.url) == 0:
            console.print(f"Cargando datos de demostración ({DEMO_PATIENTS} pacientes)…")
            _seed(server, DEMO_PATIENTS, DEMO_SEED, None, reset=False)
            console.print("Indexando la historia clínica para las preguntas…")
            _index(server.url)
        if demo:
            accounts = asyncio.run(create_demo_accounts(server.url))
            if accounts:
                table = Table(
                    "correo",
                    "rol",
                    "contraseña",
                    title="Cuentas de demostración (se muestran una sola vez)",
                )
                for row in accounts:
                    table.add_row(*row)
                console.print(table)
        # JSON lines for services; coloured console lines when a person watches (a terminal)
        configure_logging(settings.log_level, json=wants_json(settings.log_format))
        # uvicorn re-raises the signal that stopped it once it has shut down. A plain SIGTERM
        # (kill, docker stop, systemd) would then end the process before `database()` stops
        # the embedded server it started; as an exception it unwinds through that cleanup.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run(
            "smarthealth.app:create_app",
            factory=True,
            host=host,
            port=port,
            reload=reload,
            access_log=False,
            log_config=None,
            proxy_headers=True,
            workers=workers,
        )


@contextmanager
def metrics_folder(workers: int) -> Iterator[None]:
    """Several workers share their metrics through a folder (prometheus_client's multiprocess
    mode): a fresh one for this run, unless PROMETHEUS_MULTIPROC_DIR names one; removed after."""
    import os
    import shutil

    from smarthealth.metrics.multiprocess import ENV, fresh_directory

    if workers == 1 or os.environ.get(ENV):
        yield
        return
    folder = fresh_directory()
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(ENV, None)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # the shell's code for "terminated by SIGTERM": 143


@app.command()
def seed(
    patients: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many patients.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = DEMO_SEED,
    today: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Anchor date of the history (default: today)."),
    ] = None,
    reset: Annotated[bool, typer.Option(help="Replace existing clinical data.")] = False,
) -> None:
    """Generate synthetic Spanish clinical histories (deterministic for a given seed)."""
    with database() as server:
        _prepare(server)
        _seed(server, patients, seed, today.date() if today else None, reset)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations (default: to the newest) and load the catalogs."""
    with database() as server:
        migrate.upgrade(server.url, revision)
        if revision == "head":
            _prepare(server)
        console.print(f"Revisión actual: {migrate.current_revision(server.url)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target, e.g. base or -1.")]) -> None:
    """Revert migrations down to REVISION."""
    with database() as server:
        migrate.downgrade(server.url, revision)
        console.print(f"Revisión actual: {migrate.current_revision(server.url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision."""
    with database() as server:
        typer.echo(migrate.current_revision(server.url) or "none")


@db_app.command("url")
def db_url() -> None:
    """Print the connection URL (psql-compatible). Starts the embedded server and leaves it up."""
    with database(stop_after=False) as server:
        typer.echo(to_libpq_url(server.url))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server of this data folder (no-op for an external server)."""
    settings = get_settings()
    if not settings.uses_embedded_database:
        console.print("Se usa un servidor externo; nada que detener.")
        return
    embedded = EmbeddedPostgres(settings.pgdata_dir)
    if not embedded.is_running():
        console.print("El servidor embebido no está en ejecución.")
        return
    embedded.started_here = True  # we take ownership in order to stop it
    embedded.stop()
    console.print("Servidor embebido detenido.")


@db_app.command("digest")
def db_digest() -> None:
    """Print an md5 of every clinical table (compare two seeded databases)."""
    from smarthealth.ingest.digest import table_digests

    with database() as server:
        typer.echo(json.dumps(asyncio.run(table_digests(server.url)), indent=2))


@app.command()
def embed(
    rebuild: Annotated[
        bool, typer.Option(help="Re-chunk every patient and re-embed everything.")
    ] = False,
) -> None:
    """Bring the retrieval chunks up to date and embed them (progress bars)."""
    with database() as server:
        _prepare(server)
        _index(server.url, rebuild)


def _index(url: str, rebuild: bool = False) -> None:
    """Chunk what the triggers queued and embed what is new, with progress bars."""
    import asyncpg

    from smarthealth.rag import indexer
    from smarthealth.rag.embeddings import create_embedder

    embedder = create_embedder(get_settings(), background=False)

    async def _run() -> None:
        conn = await asyncpg.connect(to_libpq_url(url))
        try:
            if rebuild:
                await indexer.request_rebuild(conn, embedder.model_name)
            queued = int(await conn.fetchval("SELECT count(*) FROM smart_health.chunk_queue"))
            with _progress() as progress:
                task = progress.add_task("Pacientes", total=queued)
                synced = await indexer.sync_queued(
                    conn, on_progress=lambda n: progress.advance(task, n)
                )
            pending = await indexer.pending_count(conn, embedder.model_name)
            with _progress() as progress:
                task = progress.add_task("Textos a embeber", total=pending)
                stats = await indexer.embed_pending(
                    conn, embedder, on_progress=lambda n: progress.advance(task, n)
                )
        finally:
            await conn.close()
        console.print(
            f"Pacientes: {synced.patients} · fragmentos nuevos {synced.inserted}, cambiados "
            f"{synced.updated}, borrados {synced.deleted}, iguales {synced.unchanged} · "
            f"{stats.texts_embedded} textos embebidos en {stats.embed_seconds:.1f} s de modelo"
        )

    asyncio.run(_run())


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="La pregunta, en español.")],
    document: Annotated[str, typer.Option(help="Tipo:número, p. ej. CC:1234567890.")],
    as_user: Annotated[
        str, typer.Option("--as", help="E-mail of the clinician or admin asking (audited).")
    ] = "",
) -> None:
    """Ask a question about a patient from the terminal; prints the answer and its sources."""
    from smarthealth.chat.schemas import DocumentNumber, Question
    from smarthealth.cli_ask import run_ask
    from smarthealth.inputs import IdentityText

    question = _checked(Question, question, "QUESTION")
    document = _checked(LineText, document, "--document")
    kind, _, number = document.partition(":")
    if number:
        document = f"{kind}:{_checked(DocumentNumber, number, '--document')}"
    if as_user:
        as_user = _checked(IdentityText, as_user, "--as")
    with database() as server:
        _prepare(server)
        code = asyncio.run(run_ask(server.url, document, question, as_user, Console()))
    raise typer.Exit(code)


# -- eval (SmartHealth evaluation harness) ------------------------------------------------------
eval_app = typer.Typer(help="The Spanish gold-set evaluation, and material to grow it.")
app.add_typer(eval_app, name="eval")


@eval_app.callback(invoke_without_command=True)
def eval_(
    ctx: typer.Context,
    patients: Annotated[
        int, typer.Option(min=20, help="Patients seeded in the temporary evaluation database.")
    ] = 300,
    seed: Annotated[int, typer.Option(help="Seed of that population.")] = 2026,
    json_path: Annotated[
        str | None, typer.Option("--json", help="Also write the full report (JSON) here.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Ask at most N questions.")] = None,
    today: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Evaluation day: anchor of the seeded history and the answers' clock "
            "(default: today).",
        ),
    ] = None,
    use_configured_db: Annotated[
        bool,
        typer.Option(
            "--use-configured-db",
            help="Evaluate the configured database (seeded and embedded) instead of a temporary "
            "one; writes the evaluation account, chat turns and audit rows into it.",
        ),
    ] = False,
    half: Annotated[
        str,
        typer.Option(
            help="Which phrasings to ask: dev (tune on these), heldout (never tune on these), "
            "both (dev and heldout), probe (an independent set: measure, then tune against it "
            "once dev is overfitted) or tuned (probe sets already tuned on); probe and tuned are "
            "never part of both. Several halves: comma-separated, e.g. dev,probe."
        ),
    ] = "both",
    show_heldout: Annotated[
        bool,
        typer.Option(
            "--show-heldout",
            help="Write the held-out questions' texts into the JSON report (left out by default: "
            "whoever tunes the engine must not read them).",
        ),
    ] = False,
) -> None:
    """Run the Spanish gold set: per category, dev and held-out accuracy side by side, recall@8,
    fact recall, citation precision, abstention, leakage, latency and answer length; exit 1 when
    an acceptance criterion is missed. `smarthealth eval review` exports the answers
    clinicians rated 👎."""
    if ctx.invoked_subcommand is not None:
        return
    from pathlib import Path

    from smarthealth.evaluation.kinds import ALL_HALVES, HALVES
    from smarthealth.evaluation.runner import (
        dump_report,
        evaluate,
        render_table,
        report_json,
        run_fresh,
    )

    asked = [h.strip() for h in half.split(",") if h.strip()]
    if not asked or any(h not in (*ALL_HALVES, "both") for h in asked):
        console.print(
            "[red]--half debe ser dev, heldout, probe, tuned o both (o varias con comas)[/red]"
        )
        raise typer.Exit(2)
    expanded = {x for h in asked for x in (HALVES if h == "both" else (h,))}
    halves = tuple(h for h in ALL_HALVES if h in expanded)
    from smarthealth.rag.embeddings import create_embedder
    from smarthealth.rag.engines.factory import create_answer_engine

    settings = get_settings()
    embedder = create_embedder(settings, background=False)
    engine = create_answer_engine(settings)
    if use_configured_db:
        with database() as server:
            _prepare(server)
            report = asyncio.run(
                evaluate(
                    server.url,
                    limit=limit,
                    embedder=embedder,
                    engine=engine,
                    today=today.date() if today else None,
                    halves=halves,
                )
            )
    else:
        configure_logging("WARNING", json=False)
        report = run_fresh(
            patients,
            seed,
            today.date() if today else None,
            limit=limit,
            embedder=embedder,
            engine=engine,
            console=console,
            halves=halves,
        )
    if not report.results:
        console.print(
            "[red]No hay pacientes indexados que evaluar (ejecute `smarthealth embed`).[/red]"
        )
        raise typer.Exit(2)
    render_table(report, console)
    if json_path:
        data = report_json(report, show_heldout=show_heldout)
        Path(json_path).write_text(dump_report(data), encoding="utf-8")
        console.print(f"Informe JSON: {json_path}")
    raise typer.Exit(0 if report.passed else 1)


REVIEW_DATES = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


@eval_app.command("review")
def eval_review(
    since: Annotated[
        dt.datetime,
        typer.Option(formats=REVIEW_DATES, help="From (inclusive); a day starts at 00:00 Bogotá."),
    ],
    out: Annotated[
        str, typer.Option(help="JSON-lines file the turns are appended to (created if missing).")
    ],
    until: Annotated[
        dt.datetime | None,
        typer.Option(formats=REVIEW_DATES, help="Until (exclusive); default: now."),
    ] = None,
) -> None:
    """Append the answers rated 👎 in a period (by the rating's last change) to a review file:
    question, answer, sources, reason and comment, one JSON object a line, for whoever curates
    the gold set. Turns already in the file are skipped. Audited (channel cli)."""
    from pathlib import Path

    from smarthealth.feedback.review import export_review
    from smarthealth.rag.executor import BOGOTA

    def _local(value: dt.datetime) -> dt.datetime:
        return value if value.tzinfo else value.replace(tzinfo=BOGOTA)

    start = _local(since)
    end = _local(until) if until else dt.datetime.now(dt.UTC)
    if end <= start:
        console.print("[red]--until debe ser posterior a --since[/red]")
        raise typer.Exit(2)
    path = Path(_checked(LineText, out, "--out"))
    with database() as server:
        _prepare(server)
        result = asyncio.run(export_review(server.url, start, end, path))
    console.print(
        f"{result.added} respuestas con 👎 añadidas a {path}"
        + (f" ({result.already_there} ya estaban)" if result.already_there else "")
    )


# -- end of eval ---------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Login e-mail.")],
    role: Annotated[str, typer.Option(help="admin, clinician or auditor.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="8–128 characters (asked for when omitted).",
        ),
    ],
    full_name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Create an active account of any role (the way to make the first administrator)."""
    from smarthealth.errors import AppError
    from smarthealth.users.accounts_cli import create_account
    from smarthealth.users.schemas import Email, FullName, Password

    if role not in ("admin", "clinician", "auditor"):
        console.print("[red]--role debe ser admin, clinician o auditor[/red]")
        raise typer.Exit(2)
    email = _checked(Email, email, "--email")
    password = _checked(Password, password, "--password")
    full_name = _checked(FullName, full_name, "--full-name") if full_name else email
    with database() as server:
        _prepare(server)
        try:
            user_id = asyncio.run(create_account(server.url, email, password, full_name, role))
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from None
    console.print(f"Cuenta creada: id {user_id}, rol {role}")


@import_app.command("fhir")
def import_fhir(
    paths: Annotated[
        list[Path], typer.Argument(help="Bundles (.json), NDJSON files (.ndjson) or folders.")
    ],
    as_user: Annotated[
        str | None, typer.Option("--as", help="E-mail of the administrator importing (audited).")
    ] = None,
) -> None:
    """Import FHIR R4 data: one transaction per patient; exit 1 when anything failed."""
    from smarthealth.fhir.commands import import_files

    with database() as server:
        _prepare(server)
        code = import_files(server.url, paths, as_user, console, _progress())
    raise typer.Exit(code)


@export_app.command("fhir")
def export_fhir(
    document: Annotated[
        str | None, typer.Option(help="Tipo:número of one patient, e.g. CC:1234567890.")
    ] = None,
    all_patients: Annotated[
        bool, typer.Option("--all", help="Every patient, one Bundle file each (needs --out).")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="File (one patient) or folder (--all).")] = None,
    as_user: Annotated[
        str | None, typer.Option("--as", help="E-mail of the clinician or admin (audited).")
    ] = None,
) -> None:
    """Export as FHIR R4 Bundles (type collection); every export is audited."""
    from smarthealth.fhir.commands import export

    if all_patients == (document is not None) or (all_patients and out is None):
        console.print("[red]Use --document TIPO:NÚMERO, o --all --out CARPETA.[/red]")
        raise typer.Exit(2)
    if document is not None:
        document = _checked(LineText, document, "--document")
    with database() as server:
        code = export(server.url, document, out, as_user, console)
    raise typer.Exit(code)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; exit 1 and name the first broken row if it was tampered with."""
    from smarthealth.audit.verify import verify_chain

    with database() as server:
        report = asyncio.run(verify_chain(server.url))
    if report.intact:
        typer.echo(f"OK: {report.rows_checked} filas verificadas, cadena íntegra.")
        return
    typer.echo(
        f"ROTA: fila audit_log_id={report.broken_row_id} ({report.reason}); "
        f"{report.rows_checked} filas revisadas."
    )
    raise typer.Exit(1)


if __name__ == "__main__":
    app()
