"""Runs the gold set through `QuestionPipeline` and scores it (see `metrics` for definitions).

Entry points:
- `evaluate(url, …)`: a seeded, indexed database → `EvalReport`;
- `run_fresh(…)`: a temporary embedded database, seeded and indexed here, then `evaluate`
  (what `smarthealth eval` and `bench/eval_full.py` run; the configured database is untouched);
- `render_table` / `report_json`: the report as a rich table and as JSON.

Questions are asked as a dedicated, inactive clinician account ("evaluacion@smarthealth.invalid",
created through the normal audited path with a random password nobody knows), on the `cli`
channel: every question writes its audit row and chat turn like any other. The pipeline's clock is
the gold set's (`GoldSet.now`), so answers and expectations agree on what "today" is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import platform
import secrets
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import select, text

from smarthealth.audit.service import ClientInfo
from smarthealth.chat.pipeline import QueryRequest, QuestionPipeline
from smarthealth.config import to_libpq_url
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.db.session import Database
from smarthealth.errors import AppError
from smarthealth.evaluation import metrics
from smarthealth.evaluation.gold import (
    BOGOTA,
    INTENTS,
    OUT_OF_SCOPE,
    GoldSet,
    build_gold_set,
)
from smarthealth.models import User
from smarthealth.rag.embeddings import Embedder, LocalE5Embedder
from smarthealth.rag.engines.base import AnswerEngine
from smarthealth.rag.engines.extractive import ExtractiveEngine

# The plan's subject, in the gold set's intent names.
SUBJECT_INTENTS = {
    "medication": "medications",
    "allergy": "allergies",
    "diagnosis": "diagnoses",
    "appointment": "appointments",
    "vital": "vitals",
    "note": "notes",
    "demographics": "demographics",
    "summary": "summary",
}
EVAL_EMAIL = "evaluacion@smarthealth.invalid"
EVAL_CLIENT = ClientInfo(channel="cli", user_agent="smarthealth-eval")
GROUPS = (*INTENTS, OUT_OF_SCOPE)


@dataclass
class CitationCheck:
    number: int
    chunk_id: int | None
    chunk_type: str | None
    segment: str
    supported: bool
    missing_tokens: list[str]


@dataclass
class QuestionResult:
    qid: str
    patient_id: int
    session: str
    turn: int
    intent: str
    template: str
    question: str
    answerable: bool
    paraphrase: bool
    follow_up: bool
    time: str | None
    expectation: str
    answer: str = ""
    error: str | None = None
    detected_intents: list[str] = field(default_factory=list)
    cited_chunks: list[int] = field(default_factory=list)
    top8: list[int] = field(default_factory=list)
    latency_ms: float = 0.0
    retrieval_hit: bool | None = None
    missing_groups: list[list[int]] = field(default_factory=list)
    facts_expected: list[str] = field(default_factory=list)
    facts_missing: list[str] = field(default_factory=list)
    citations: list[CitationCheck] = field(default_factory=list)
    abstained: bool = True
    abstention_ok: bool = False
    leaks: list[str] = field(default_factory=list)

    @property
    def fact_recall(self) -> float | None:
        if not self.answerable or not self.facts_expected:
            return None
        found = len(self.facts_expected) - len(self.facts_missing)
        return found / len(self.facts_expected)

    @property
    def problems(self) -> list[str]:
        """Why this question fails any metric (empty when it passes all of them)."""
        found: list[str] = []
        if self.error:
            found.append(f"error: {self.error}")
        gold_intent = self.intent if self.intent != OUT_OF_SCOPE else None
        if gold_intent and gold_intent not in self.detected_intents:
            found.append(f"intent: detected {self.detected_intents or 'none'}")
        if self.retrieval_hit is False:
            found.append(f"retrieval: {len(self.missing_groups)} group(s) not in top 8")
        if self.facts_missing:
            found.append(f"facts missing: {self.facts_missing}")
        bad = [c for c in self.citations if not c.supported]
        if bad:
            found.append(
                "unsupported citations: "
                + "; ".join(f"[{c.number}] {c.chunk_type} missing {c.missing_tokens}" for c in bad)
            )
        if not self.abstention_ok:
            found.append(
                "answered an unanswerable question"
                if not self.answerable
                else "abstained on an answerable question"
            )
        if self.leaks:
            found.append(f"leakage: {self.leaks}")
        return found


@dataclass
class GroupMetrics:
    questions: int = 0
    answerable: int = 0
    recall_at_8: float | None = None
    fact_recall: float | None = None
    citation_precision: float | None = None
    abstention_accuracy: float | None = None
    leakage: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


@dataclass
class EvalReport:
    started_at: str
    today: str
    database: dict[str, Any]
    engine: str
    embedding_model: str
    shares: dict[str, float]
    patients: list[dict[str, Any]]
    overall: GroupMetrics
    per_intent: dict[str, GroupMetrics]
    targets: dict[str, float]
    missed_targets: list[str]
    seconds: float
    machine: str
    results: list[QuestionResult]
    skipped: list[str]

    @property
    def passed(self) -> bool:
        return not self.missed_targets


def aggregate(results: Sequence[QuestionResult]) -> GroupMetrics:
    answerable = [r for r in results if r.answerable]
    with_groups = [r for r in answerable if r.retrieval_hit is not None]
    fact_scores = [s for s in (r.fact_recall for r in answerable) if s is not None]
    cites = [c for r in results for c in r.citations]
    latencies = [r.latency_ms for r in results]
    p50 = metrics.percentile(latencies, 50)
    p95 = metrics.percentile(latencies, 95)

    def rounded(value: float | None, digits: int = 3) -> float | None:
        return None if value is None else round(value, digits)

    return GroupMetrics(
        questions=len(results),
        answerable=len(answerable),
        recall_at_8=rounded(
            metrics.ratio(sum(bool(r.retrieval_hit) for r in with_groups), len(with_groups))
        ),
        fact_recall=rounded(metrics.ratio(sum(fact_scores), len(fact_scores))),
        citation_precision=rounded(metrics.ratio(sum(c.supported for c in cites), len(cites))),
        abstention_accuracy=rounded(
            metrics.ratio(sum(r.abstention_ok for r in results), len(results))
        ),
        leakage=sum(len(r.leaks) for r in results),
        latency_p50_ms=rounded(p50, 1),
        latency_p95_ms=rounded(p95, 1),
    )


# -- running ------------------------------------------------------------------------------------


async def ensure_eval_user(database: Database) -> int:
    """The evaluation account (inactive: it cannot log in), created once, audited."""
    from smarthealth.users.service import create_user

    async with database.sessions() as session, session.begin():
        existing = await session.scalar(select(User.user_id).where(User.email == EVAL_EMAIL))
        if existing is not None:
            return int(existing)
        user = await create_user(
            session,
            email=EVAL_EMAIL,
            password=secrets.token_urlsafe(24),
            full_name="Evaluación automática",
            role="clinician",
            is_active=False,
            event_type="user.created",
            actor_id=None,
            client=EVAL_CLIENT,
        )
        return int(user.user_id)


class _RecordingEmbedder:
    """Passes through to the real embedder and remembers the last query vector, so that the
    retrieval replay reuses the pipeline's vector instead of timing a second model call."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.last: tuple[str, np.ndarray] | None = None

    async def embed_passages(self, texts: list[str]) -> np.ndarray:
        return await self.inner.embed_passages(texts)

    async def embed_query(self, text: str) -> np.ndarray:
        vector = await self.inner.embed_query(text)
        self.last = (text, vector)
        return vector

    async def vector_for(self, text: str) -> np.ndarray:
        if self.last is not None and self.last[0] == text:
            return self.last[1]
        return await self.inner.embed_query(text)


async def _chunk_owners(database: Database, chunk_ids: Sequence[int]) -> dict[int, int]:
    if not chunk_ids:
        return {}
    async with database.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT chunk_id, patient_id FROM smart_health.clinical_chunks "
                "WHERE chunk_id = ANY(:ids)"
            ),
            {"ids": list(chunk_ids)},
        )
        return {int(r.chunk_id): int(r.patient_id) for r in rows}


async def run_gold_set(
    database: Database,
    embedder: Embedder,
    engine: AnswerEngine,
    gold: GoldSet,
    user_id: int,
    on_progress: Callable[[int], None] | None = None,
) -> list[QuestionResult]:
    recorder = _RecordingEmbedder(embedder)
    # One clock for the expectations and the answers (see gold.py).
    now = gold.now
    pipeline = QuestionPipeline(database, recorder, engine, clock=lambda: now)
    names = {p.patient_id: (p.full_name, p.document_number) for p in gold.patients}
    sessions: dict[str, uuid.UUID] = {}
    results: list[QuestionResult] = []
    for q in gold.questions:
        session_id = sessions.get(q.session)
        result = QuestionResult(
            q.qid,
            q.patient_id,
            q.session,
            q.turn,
            q.intent,
            q.template,
            q.text,
            q.answerable,
            q.paraphrase,
            q.follow_up,
            q.time,
            q.expectation,
            facts_expected=[f.label for f in q.facts],
        )
        request = QueryRequest(
            user_id, q.document_type_id, q.document_number, q.text, EVAL_CLIENT, session_id
        )
        body: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            async for event in pipeline.run(request):
                if event.type == "complete":
                    body = event.data
        except AppError as exc:
            result.error = exc.code
        result.latency_ms = round((time.perf_counter() - started) * 1000, 1)

        sources = {int(s["source_id"]): s for s in body.get("sources", [])}
        result.answer = body.get("answer", {}).get("text", "")
        plan = body.get("metadata", {}).get("plan", {})
        result.detected_intents = [SUBJECT_INTENTS.get(plan.get("subject"), "")]
        result.cited_chunks = [int(s["chunk_id"]) for s in sources.values()]
        # what the answer was written from: the plan's rows, or the retrieved top 8
        result.top8 = result.cited_chunks
        owners = await _chunk_owners(database, [*result.top8, *result.cited_chunks])

        if q.answerable and q.relevant:
            result.retrieval_hit, result.missing_groups = metrics.retrieval_hit(
                q.relevant, result.top8
            )
        _, result.facts_missing = metrics.fact_hits(
            [(f.label, f.forms) for f in q.facts], result.answer
        )
        for citation in metrics.citations(result.answer):
            source = sources.get(citation.number)
            if source is None:
                result.citations.append(
                    CitationCheck(citation.number, None, None, citation.segment, False, [])
                )
                continue
            chunk_id = int(source["chunk_id"])
            ok, check = metrics.citation_supported(
                citation.segment,
                source["text"],
                source["type"],
                q.expected_types,
                owners.get(chunk_id) == q.patient_id,
                gold.today,
            )
            result.citations.append(
                CitationCheck(
                    citation.number,
                    chunk_id,
                    source["type"],
                    citation.segment.strip(),
                    ok,
                    check.missing,
                )
            )
        result.abstained = not sources
        result.abstention_ok = metrics.abstention_correct(q.answerable, result.answer, len(sources))
        result.leaks = [
            f"chunk {c} of patient {owners[c]}"
            for c in dict.fromkeys([*result.top8, *result.cited_chunks])
            if c in owners and owners[c] != q.patient_id
        ]
        others = [v for pid, v in names.items() if pid != q.patient_id]
        result.leaks += [f"names {x}" for x in metrics.names_leaked(result.answer, others)]
        results.append(result)

        if body:
            sessions[q.session] = uuid.UUID(body["session_id"])
        if on_progress is not None:
            on_progress(1)
    return results


def summarise(
    gold: GoldSet,
    results: list[QuestionResult],
    database_info: dict[str, Any],
    engine: AnswerEngine,
    embedder: Embedder,
    started_at: str,
    seconds: float,
) -> EvalReport:
    by_intent: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in results:
        by_intent[r.intent].append(r)
    overall = aggregate(results)
    return EvalReport(
        started_at=started_at,
        today=gold.today.isoformat(),
        database=database_info,
        engine=getattr(engine, "name", type(engine).__name__),
        embedding_model=embedder.model_name,
        shares={k: round(v, 3) for k, v in gold.shares().items()},
        patients=[asdict(p) for p in gold.patients],
        overall=overall,
        per_intent={g: aggregate(by_intent[g]) for g in GROUPS if by_intent.get(g)},
        targets={**metrics.TARGETS, "leakage": metrics.MAX_LEAKAGE},
        missed_targets=metrics.meets_targets(asdict(overall)),
        seconds=round(seconds, 1),
        machine=machine(),
        results=results,
        skipped=gold.skipped,
    )


async def evaluate(
    url: str,
    patients: int = 12,
    limit: int | None = None,
    embedder: Embedder | None = None,
    engine: AnswerEngine | None = None,
    database_info: dict[str, Any] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_gold: Callable[[GoldSet], None] | None = None,
    today: dt.date | None = None,
) -> EvalReport:
    """Build the gold set from the database at `url` and run it (offline engines by default).

    `limit`: at most that many questions, whole sessions spread over templates and patients.
    `today`: the evaluation day, for the expectations and the pipeline's clock alike (default:
    today in Bogotá; for a seeded record, the day it was anchored on).
    """
    started = time.perf_counter()
    started_at = dt.datetime.now(BOGOTA).isoformat(timespec="seconds")
    embedder = embedder or LocalE5Embedder()
    engine = engine or ExtractiveEngine()
    sa_engine = create_engine(url, pool_size=2)
    database = Database(sa_engine, create_sessionmaker(sa_engine), url)
    try:
        conn = await asyncpg.connect(to_libpq_url(url))
        try:
            gold = await build_gold_set(conn, embedder.model_name, patients, today)
            gold = gold.sample(limit)
        finally:
            await conn.close()
        if on_gold is not None:
            on_gold(gold)
        user_id = await ensure_eval_user(database)
        results = await run_gold_set(database, embedder, engine, gold, user_id, on_progress)
    finally:
        await sa_engine.dispose()
    info = database_info or {"url": "configured"}
    return summarise(
        gold, results, info, engine, embedder, started_at, time.perf_counter() - started
    )


async def index_database(url: str, embedder: Embedder) -> dict[str, Any]:
    """Chunks and embeddings for every queued patient (a freshly seeded database)."""
    from smarthealth.rag.indexer import embed_pending, sync_queued

    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        started = time.perf_counter()
        synced = await sync_queued(conn)
        embedded = await embed_pending(conn, embedder)
        return {
            "chunks": synced.inserted,
            "texts_embedded": embedded.texts_embedded,
            "index_seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        await conn.close()


def run_fresh(
    population: int = 300,
    seed: int = 2026,
    today: dt.date | None = None,
    eval_patients: int = 16,
    limit: int | None = None,
    embedder: Embedder | None = None,
    engine: AnswerEngine | None = None,
    console: Console | None = None,
) -> EvalReport:
    """Seed `population` patients (fixed seed) into a temporary embedded database, index them
    and evaluate. `today` anchors the synthetic history (default: today in Bogotá)."""
    from smarthealth.config import to_asyncpg_url
    from smarthealth.db import migrate
    from smarthealth.db.embedded import EmbeddedPostgres
    from smarthealth.ingest.seed import seed_database

    today = today or dt.datetime.now(BOGOTA).date()
    embedder = embedder or LocalE5Embedder()
    with tempfile.TemporaryDirectory(prefix="sh-eval-") as folder:
        server = EmbeddedPostgres(Path(folder) / "pgdata").start()
        try:
            url = to_asyncpg_url(server.url())
            migrate.upgrade(url)
            if console:
                console.print(f"Sembrando {population} pacientes (semilla {seed}, hoy {today})…")
            seeded = asyncio.run(seed_database(url, population, seed, today=today))
            if console:
                console.print("Fragmentando y calculando embeddings…")
            indexed = asyncio.run(index_database(url, embedder))
            info = {
                "kind": "temporary embedded database",
                "population": population,
                "seed": seed,
                "history_anchor": today.isoformat(),
                "seed_seconds": round(seeded.seconds, 1),
                **indexed,
            }
            if console:
                console.print(f"Evaluando {eval_patients} pacientes…")
            return asyncio.run(
                evaluate(
                    url, eval_patients, limit, embedder, engine, database_info=info, today=today
                )
            )
        finally:
            server.stop()


# -- output -------------------------------------------------------------------------------------


def machine() -> str:
    import psutil

    return (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 2**30)} GiB, Python {platform.python_version()}"
    )


def _fmt(value: float | int | None, ratio: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if ratio else f"{value:.0f}"


def render_table(report: EvalReport, console: Console) -> None:
    table = Table(
        title=f"Evaluación · {report.engine} · {report.embedding_model}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("intención", no_wrap=True, min_width=12)
    for name in ("n", "resp.", "R@8", "hechos", "citas", "abst.", "fuga", "p50", "p95"):
        table.add_column(name, justify="right", no_wrap=True)
    rows = [*report.per_intent.items(), ("total", report.overall)]
    for name, m in rows:
        table.add_row(
            f"[bold]{name}[/bold]" if name == "total" else name,
            str(m.questions),
            str(m.answerable),
            _fmt(m.recall_at_8),
            _fmt(m.fact_recall),
            _fmt(m.citation_precision),
            _fmt(m.abstention_accuracy),
            str(m.leakage),
            _fmt(m.latency_p50_ms, False),
            _fmt(m.latency_p95_ms, False),
        )
    console.print(table)
    console.print(
        "R@8 recall@8 · hechos: recall de hechos · citas: precisión de citas · "
        "abst.: exactitud de abstención · fuga: fugas entre pacientes · resp.: respondibles · "
        "p50/p95: latencia en ms"
    )
    shares = ", ".join(f"{k} {v:.0%}" for k, v in report.shares.items())
    console.print(
        f"{report.overall.questions} preguntas, {len(report.patients)} pacientes ({shares}); "
        f"{report.seconds:.1f} s"
    )
    targets = ", ".join(
        f"{k} ≥ {v}" if k != "leakage" else f"{k} = {v}" for k, v in report.targets.items()
    )
    if report.passed:
        console.print(f"[green]Objetivos cumplidos[/green] ({targets})")
    else:
        console.print(
            f"[red]Objetivos no cumplidos: {', '.join(report.missed_targets)}[/red] ({targets})"
        )


def _citation_json(c: CitationCheck) -> dict[str, Any]:
    """Compact: the segment and the missing tokens only where the citation is unsupported."""
    data: dict[str, Any] = {"n": c.number, "chunk_id": c.chunk_id, "supported": c.supported}
    if not c.supported:
        data.update(type=c.chunk_type, segment=c.segment, missing=c.missing_tokens)
    return data


def report_json(report: EvalReport, include_results: bool = True) -> dict[str, Any]:
    data = asdict(report)
    data["passed"] = report.passed
    if include_results:
        data["results"] = [
            {
                **asdict(r),
                "citations": [_citation_json(c) for c in r.citations],
                "problems": r.problems,
                "fact_recall": r.fact_recall,
            }
            for r in report.results
        ]
        data["failures"] = [r.qid for r in report.results if r.problems]
    else:
        data.pop("results")
    return data
