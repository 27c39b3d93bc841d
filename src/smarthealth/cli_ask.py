"""`smarthealth ask`: the same pipeline as `POST /query/`, from a terminal (channel `cli`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from smarthealth.audit.service import CLI
from smarthealth.chat.pipeline import QueryRequest, QuestionPipeline
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.db.session import Database
from smarthealth.errors import DATABASE_UNAVAILABLE_MESSAGE, AppError, is_database_unavailable
from smarthealth.models import DocumentType, User
from smarthealth.rag.embeddings import create_embedder
from smarthealth.rag.engines.factory import create_answer_engine


async def run_ask(url: str, document: str, question: str, as_user: str, console: Console) -> int:
    """Print the answer and its sources; return the process exit code (1 on a refusal or an
    unavailable database, said in one line without a traceback)."""
    try:
        return await _ask(url, document, question, as_user, console)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        console.print(f"\n[red]DATABASE_UNAVAILABLE: {DATABASE_UNAVAILABLE_MESSAGE}[/red]")
        return 1


async def _ask(url: str, document: str, question: str, as_user: str, console: Console) -> int:
    from smarthealth.config import get_settings

    code, _, number = document.partition(":")
    if not number:
        console.print("[red]--document debe tener la forma TIPO:NÚMERO, p. ej. CC:1234567890[/red]")
        return 2
    settings = get_settings()
    engine = create_engine(url, pool_size=2)
    database = Database(engine, create_sessionmaker(engine), url)
    try:
        async with database.sessions() as session:
            doc_type = await session.scalar(
                select(DocumentType.document_type_id).where(DocumentType.code == code.upper())
            )
            query = select(User).where(User.is_active, User.role.in_(("clinician", "admin")))
            if as_user:
                query = query.where(User.email == as_user.strip().lower())
            user = await session.scalar(query.order_by(User.role.desc(), User.user_id).limit(1))
        if doc_type is None:
            console.print(f"[red]Tipo de documento desconocido: {code}[/red]")
            return 2
        if user is None:
            console.print(
                "[red]No hay un usuario clínico o administrador activo para auditar "
                "la consulta (use --as o cree uno con `smarthealth users create`).[/red]"
            )
            return 2
        pipeline = QuestionPipeline(
            database, create_embedder(settings, background=False), create_answer_engine(settings)
        )
        request = QueryRequest(
            user_id=user.user_id,
            document_type_id=doc_type,
            document_number=number.strip().upper(),
            question=question,
            client=CLI,
        )
        body: dict[str, Any] | None = None
        try:
            async for event in pipeline.run(request):
                if event.type == "token":
                    console.print(event.data["token"], end="", soft_wrap=True)
                elif event.type == "complete":
                    body = event.data
        except AppError as exc:
            console.print(f"\n[red]{exc.code}: {exc.message}[/red]")
            return 1
        console.print()
        if body is None:
            return 1
        answer = body["answer"]
        console.print(
            f"[dim]{answer['model_used']} · confianza {answer['confidence']} · "
            f"{body['metadata']['query_time_ms']} ms[/dim]"
        )
        if body["sources"]:
            table = Table("n", "tipo", "fecha", "texto", title="Fuentes", show_lines=True)
            for s in body["sources"]:
                table.add_row(str(s["source_id"]), s["type"], s["date"] or "", s["text"])
            console.print(table)
        return 0
    finally:
        await engine.dispose()
