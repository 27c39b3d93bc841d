"""Runs the gold set through `QuestionPipeline` and scores it (see `metrics` for definitions).

Entry points:
- `evaluate(url, …)`: a seeded, indexed database → `EvalReport`;
- `run_fresh(…)`: a temporary embedded database, seeded and indexed here, then `evaluate`
  (what `smarthealth eval` and `bench/eval_full.py` run; the configured database is untouched);
- `render_table` / `report_json`: the report as a rich table (dev and held-out — or whichever
  halves were asked, the probe half among them — side by side per category) and as JSON (every
  question with its half, category, kind, answer, expected facts and why it failed; held-out
  question texts left out unless asked for, so that a report can be read by whoever tunes the
  engine).

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
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
from smarthealth.evaluation.gold import BOGOTA, GoldQuestion, GoldSet, build_gold_set
from smarthealth.evaluation.kinds import (
    ALL_HALVES,
    CATEGORIES,
    HALVES,
    KINDS,
    PROBE,
    ROBUST_TAGS,
    ROBUSTNESS,
    TUNED,
)
from smarthealth.models import User
from smarthealth.rag.embeddings import Embedder, LocalE5Embedder
from smarthealth.rag.engines.base import AnswerEngine
from smarthealth.rag.engines.extractive import ExtractiveEngine

EVAL_EMAIL = "evaluacion@smarthealth.invalid"
EVAL_CLIENT = ClientInfo(channel="cli", user_agent="smarthealth-eval")
GROUPS = (*CATEGORIES, ROBUSTNESS)
OVERALL = "overall"
HALF_LABELS = {"dev": "dev", "heldout": "held-out", PROBE: "probe", TUNED: "tuned"}


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
    half: str
    category: str
    kind: str
    phrasing: str
    tags: list[str]
    scored: bool
    question: str
    evidence: str
    list_answer: bool
    expectation: str
    facts_expected: list[dict[str, Any]] = field(default_factory=list)  # label + forms
    forbidden: list[str] = field(default_factory=list)
    answer: str = ""
    error: str | None = None
    plan: Any = None  # metadata.plan when the pipeline returns one, else its intents
    cited_chunks: list[int] = field(default_factory=list)
    top8: list[int] = field(default_factory=list)
    latency_ms: float = 0.0
    retrieval_hit: bool | None = None
    missing_groups: list[list[int]] = field(default_factory=list)
    facts_missing: list[str] = field(default_factory=list)
    forbidden_found: list[str] = field(default_factory=list)
    citations: list[CitationCheck] = field(default_factory=list)
    evidence_ok: bool = False
    leaks: list[str] = field(default_factory=list)

    @property
    def robust(self) -> bool:
        return bool(set(self.tags) & ROBUST_TAGS)

    @property
    def fact_recall(self) -> float | None:
        if not self.facts_expected:
            return None
        return 1 - len(self.facts_missing) / len(self.facts_expected)

    @property
    def problems(self) -> list[str]:
        """Why this question is not correct (empty when it is)."""
        found: list[str] = []
        if self.error:
            found.append(f"error: {self.error}")
        if self.facts_missing:
            found.append(f"facts missing: {self.facts_missing}")
        if self.forbidden_found:
            found.append(f"states what it must not: {self.forbidden_found}")
        if not self.evidence_ok:
            found.append(
                "cited nothing for an answer the record holds"
                if self.evidence == metrics.REQUIRED
                else "cited sources where the record holds nothing"
            )
        bad = [c for c in self.citations if not c.supported]
        if bad:
            found.append(
                "unsupported citations: "
                + "; ".join(f"[{c.number}] {c.chunk_type} missing {c.missing_tokens}" for c in bad)
            )
        if self.leaks:
            found.append(f"leakage: {self.leaks}")
        return found

    @property
    def correct(self) -> bool:
        return not self.problems


@dataclass
class GroupMetrics:
    questions: int = 0
    accuracy: float | None = None
    answerable: int = 0
    recall_at_8: float | None = None
    fact_recall: float | None = None
    citation_precision: float | None = None
    abstention_accuracy: float | None = None
    leakage: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


@dataclass
class LengthMetrics:
    answers: int = 0
    median: float | None = None
    p90: float | None = None
    over_800: int = 0


@dataclass
class EvalReport:
    started_at: str
    today: str
    database: dict[str, Any]
    engine: str
    embedding_model: str
    halves: list[str]
    patients: list[dict[str, Any]]
    per_category: dict[str, dict[str, GroupMetrics]]  # category (+ robustness, overall) → half
    per_kind: dict[str, dict[str, dict[str, float | int | None]]]  # kind → half → n, accuracy
    length: dict[str, LengthMetrics]  # half (+ "all") → answer length
    out_of_record_abstention: dict[str, float | None]  # half → rate
    targets: dict[str, float]
    missed_targets: list[str]
    seconds: float
    machine: str
    results: list[QuestionResult]
    skipped: list[str]

    @property
    def passed(self) -> bool:
        return not self.missed_targets


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def aggregate(results: Sequence[QuestionResult]) -> GroupMetrics:
    """The metrics of a group of scored questions."""
    with_groups = [r for r in results if r.retrieval_hit is not None]
    fact_scores = [s for s in (r.fact_recall for r in results) if s is not None]
    cites = [c for r in results for c in r.citations]
    decided = [r for r in results if r.evidence != metrics.ANY]
    latencies = [r.latency_ms for r in results]
    return GroupMetrics(
        questions=len(results),
        accuracy=_rounded(metrics.ratio(sum(r.correct for r in results), len(results))),
        answerable=sum(r.evidence == metrics.REQUIRED for r in results),
        recall_at_8=_rounded(
            metrics.ratio(sum(bool(r.retrieval_hit) for r in with_groups), len(with_groups))
        ),
        fact_recall=_rounded(metrics.ratio(sum(fact_scores), len(fact_scores))),
        citation_precision=_rounded(metrics.ratio(sum(c.supported for c in cites), len(cites))),
        abstention_accuracy=_rounded(
            metrics.ratio(sum(r.evidence_ok for r in decided), len(decided))
        ),
        leakage=sum(len(r.leaks) for r in results),
        latency_p50_ms=_rounded(metrics.percentile(latencies, 50), 1),
        latency_p95_ms=_rounded(metrics.percentile(latencies, 95), 1),
    )


def answer_length(results: Iterable[QuestionResult]) -> LengthMetrics:
    """Answer length over scored questions that did not ask for a list."""
    lengths = [float(len(r.answer)) for r in results if not r.list_answer]
    return LengthMetrics(
        answers=len(lengths),
        median=metrics.percentile(lengths, 50),
        p90=metrics.percentile(lengths, 90),
        over_800=sum(n > 800 for n in lengths),
    )


def missed_targets(report: EvalReport) -> list[str]:
    """The issue's acceptance, on the held-out half (on the probe half when it was run without
    the held-out one, on dev when only dev was run)."""
    half = next((h for h in ("heldout", PROBE) if h in report.halves), "dev")
    missed: list[str] = []
    overall = report.per_category[OVERALL]
    target = metrics.TARGETS["heldout_accuracy"]
    value = overall[half].accuracy
    if value is None or value < target:
        missed.append(f"{half} accuracy {value} < {target}")
    floor = metrics.TARGETS["category_accuracy"]
    for name in GROUPS:
        m = report.per_category.get(name, {}).get(half)
        if m is not None and m.accuracy is not None and m.accuracy < floor:
            missed.append(f"{name} {half} {m.accuracy} < {floor}")
    oor = report.out_of_record_abstention.get(half)
    if oor is not None and oor < metrics.TARGETS["out_of_record_abstention"]:
        missed.append(f"out-of-record abstention {oor} < 0.95")
    if set(HALVES) <= set(report.halves):
        dev, held = overall["dev"].accuracy, overall["heldout"].accuracy
        if dev is not None and held is not None and dev - held > metrics.MAX_DEV_HELDOUT_GAP:
            missed.append(f"dev - heldout {dev - held:.3f} > {metrics.MAX_DEV_HELDOUT_GAP}")
    leakage = overall["all"].leakage
    if leakage > metrics.MAX_LEAKAGE:
        missed.append(f"leakage {leakage}")
    length = report.length["all"]
    if length.median is not None and length.median > metrics.MAX_MEDIAN_LENGTH:
        missed.append(f"median answer {length.median:.0f} > {metrics.MAX_MEDIAN_LENGTH} chars")
    if length.p90 is not None and length.p90 > metrics.MAX_P90_LENGTH:
        missed.append(f"p90 answer {length.p90:.0f} > {metrics.MAX_P90_LENGTH} chars")
    return missed


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
    # One clock for the expectations and the answers (see gold.py).
    now = gold.now
    pipeline = QuestionPipeline(database, embedder, engine, clock=lambda: now)
    names = {p.patient_id: (p.full_name, p.document_number) for p in gold.patients}
    sessions: dict[str, uuid.UUID] = {}
    results: list[QuestionResult] = []
    for q in gold.questions:
        session_id = sessions.get(q.session)
        result = _result_of(q)
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
        meta = body.get("metadata", {})
        result.plan = meta.get("plan", meta.get("intents"))
        result.cited_chunks = [int(s["chunk_id"]) for s in sources.values()]
        # what the answer was written from: the plan's rows, or the retrieved top 8
        result.top8 = result.cited_chunks
        owners = await _chunk_owners(database, [*result.top8, *result.cited_chunks])
        score(result, q, sources, owners, gold)
        others = [v for pid, v in names.items() if pid != q.patient_id]
        result.leaks += [
            f"chunk {c} of patient {owners[c]}"
            for c in dict.fromkeys([*result.top8, *result.cited_chunks])
            if c in owners and owners[c] != q.patient_id
        ]
        result.leaks += [f"names {x}" for x in metrics.names_leaked(result.answer, others)]
        results.append(result)

        if body:
            sessions[q.session] = uuid.UUID(body["session_id"])
        if on_progress is not None:
            on_progress(1)
    return results


def _result_of(q: GoldQuestion) -> QuestionResult:
    return QuestionResult(
        qid=q.qid,
        patient_id=q.patient_id,
        session=q.session,
        turn=q.turn,
        half=q.half,
        category=q.category,
        kind=q.kind,
        phrasing=q.phrasing,
        tags=list(q.tags),
        scored=q.scored,
        question=q.text,
        evidence=q.evidence,
        list_answer=q.list_answer,
        expectation=q.expectation,
        facts_expected=[{"label": f.label, "forms": list(f.forms)} for f in q.facts],
        forbidden=[f.label for f in q.forbidden],
    )


def score(
    result: QuestionResult,
    q: GoldQuestion,
    sources: dict[int, dict[str, Any]],
    owners: dict[int, int],
    gold: GoldSet,
) -> None:
    """Fill the per-question checks of `result` from the answer and its sources."""
    groups = [g for g in q.relevant if g]
    if q.evidence == metrics.REQUIRED and groups:
        result.retrieval_hit, result.missing_groups = metrics.retrieval_hit(groups, result.top8)
    _, result.facts_missing = metrics.fact_hits(
        [(f.label, f.forms) for f in q.facts], result.answer
    )
    found, _ = metrics.fact_hits([(f.label, f.forms) for f in q.forbidden], result.answer)
    result.forbidden_found = found
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
    result.evidence_ok = metrics.evidence_ok(q.evidence, len(sources))


def summarise(
    gold: GoldSet,
    results: list[QuestionResult],
    database_info: dict[str, Any],
    engine: AnswerEngine,
    embedder: Embedder,
    started_at: str,
    seconds: float,
) -> EvalReport:
    scored = [r for r in results if r.scored]
    halves = [h for h in ALL_HALVES if any(r.half == h for r in scored)]
    groups: dict[str, dict[str, list[QuestionResult]]] = defaultdict(lambda: defaultdict(list))
    for r in scored:
        for name in (r.category, OVERALL, *((ROBUSTNESS,) if r.robust else ())):
            groups[name][r.half].append(r)
            groups[name]["all"].append(r)
    per_category = {
        name: {h: aggregate(groups[name][h]) for h in (*halves, "all")}
        for name in (*GROUPS, OVERALL)
        if name in groups
    }
    per_kind: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for kind in KINDS:
        rows = [r for r in scored if r.kind == kind.name]
        if rows:
            per_kind[kind.name] = {
                h: {
                    "questions": len(x := [r for r in rows if r.half == h]),
                    "accuracy": _rounded(metrics.ratio(sum(r.correct for r in x), len(x))),
                }
                for h in halves
            }
    length = {h: answer_length(r for r in scored if r.half == h) for h in halves}
    length["all"] = answer_length(scored)
    oor: dict[str, float | None] = {}
    for h in (*halves, "all"):
        asked = [r for r in scored if r.category == "out_of_record" and h in (r.half, "all")]
        done = sum(metrics.abstains(r.answer, len(r.cited_chunks)) for r in asked)
        oor[h] = _rounded(metrics.ratio(done, len(asked)))
    report = EvalReport(
        started_at=started_at,
        today=gold.today.isoformat(),
        database=database_info,
        engine=getattr(engine, "name", type(engine).__name__),
        embedding_model=embedder.model_name,
        halves=halves,
        patients=[asdict(p) for p in gold.patients],
        per_category=per_category,
        per_kind=per_kind,
        length=length,
        out_of_record_abstention=oor,
        targets={
            **metrics.TARGETS,
            "max_dev_heldout_gap": metrics.MAX_DEV_HELDOUT_GAP,
            "max_leakage": metrics.MAX_LEAKAGE,
            "max_median_length": metrics.MAX_MEDIAN_LENGTH,
            "max_p90_length": metrics.MAX_P90_LENGTH,
        },
        missed_targets=[],
        seconds=round(seconds, 1),
        machine=machine(),
        results=results,
        skipped=gold.skipped,
    )
    report.missed_targets = missed_targets(report)
    return report


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
    halves: Sequence[str] = HALVES,
) -> EvalReport:
    """Build the gold set from the database at `url` and run it (offline engines by default).

    `limit`: at most that many questions, whole sessions spread over kinds, halves and patients.
    `today`: the evaluation day, for the expectations and the pipeline's clock alike (default:
    today in Bogotá; for a seeded record, the day it was anchored on).
    `halves`: which halves of the phrasings to ask ("dev", "heldout", "probe").
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
            gold = await build_gold_set(conn, embedder.model_name, patients, today, halves=halves)
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
    halves: Sequence[str] = HALVES,
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
                    url,
                    eval_patients,
                    limit,
                    embedder,
                    engine,
                    database_info=info,
                    today=today,
                    halves=halves,
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


CATEGORY_LABELS = {
    "medications": "medicamentos",
    "dose": "dosis",
    "allergies": "alergias",
    "diagnoses": "diagnósticos",
    "first_occurrence": "desde cuándo",
    "vitals": "signos vitales",
    "series": "series",
    "labs": "laboratorio",
    "immunizations": "vacunas",
    "procedures": "procedimientos",
    "counts": "conteos",
    "appointments": "citas",
    "encounter_types": "urgencias/hosp.",
    "doctors": "médicos",
    "specialties": "especialidades",
    "demographics": "datos personales",
    "notes": "notas",
    "summary": "resumen",
    "out_of_record": "fuera de la historia",
    "follow_up": "seguimiento",
    ROBUSTNESS: "robustez",
    OVERALL: "total",
}


def render_table(report: EvalReport, console: Console) -> None:
    """Per category: dev and held-out (or whichever halves were asked) accuracy side by side, then
    the other metrics over the halves asked."""
    if not console.is_terminal and console.width < 150:  # a pipe or a file: no need to squeeze
        console = Console(file=console.file, width=160)
    halves = report.halves
    table = Table(
        title=f"Evaluación · {report.engine} · {report.embedding_model}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("categoría", no_wrap=True, min_width=12)
    for h in halves:
        label = HALF_LABELS.get(h, h)
        table.add_column(f"n {label}", justify="right", no_wrap=True)
        table.add_column(label, justify="right", no_wrap=True)
    if len(halves) == 2:
        table.add_column("Δ", justify="right", no_wrap=True)
    for name in ("R@8", "hechos", "citas", "abst.", "fuga", "p50", "p95"):
        table.add_column(name, justify="right", no_wrap=True)
    for name, per_half in report.per_category.items():
        cells = [
            f"[bold]{CATEGORY_LABELS[name]}[/bold]"
            if name == OVERALL
            else CATEGORY_LABELS.get(name, name)
        ]
        for h in halves:
            cells += [str(per_half[h].questions), _fmt(per_half[h].accuracy)]
        if len(halves) == 2:
            first, second = per_half[halves[0]].accuracy, per_half[halves[1]].accuracy
            cells.append("—" if first is None or second is None else f"{second - first:+.3f}")
        m = per_half["all"]
        cells += [
            _fmt(m.recall_at_8),
            _fmt(m.fact_recall),
            _fmt(m.citation_precision),
            _fmt(m.abstention_accuracy),
            str(m.leakage),
            _fmt(m.latency_p50_ms, False),
            _fmt(m.latency_p95_ms, False),
        ]
        table.add_row(*cells)
    console.print(table)
    labels = [HALF_LABELS.get(h, h) for h in halves]
    console.print(
        f"{' / '.join(labels)}: exactitud por pregunta en cada mitad de las formulaciones · "
        + (f"Δ: {labels[1]} − {labels[0]} · " if len(labels) == 2 else "")
        + "R@8 recall@8 · hechos: recall de hechos · citas: precisión de "
        "citas · abst.: exactitud de abstención · fuga: fugas entre pacientes · p50/p95: "
        "latencia en ms · robustez: preguntas con errores de tipeo, sin tildes, abreviaturas o "
        "«el/la paciente» (también cuentan en su categoría)"
    )
    length = report.length["all"]
    oor = report.out_of_record_abstention
    console.print(
        f"Longitud de respuesta (sin resúmenes ni listas): mediana {_fmt(length.median, False)}, "
        f"p90 {_fmt(length.p90, False)} caracteres, {length.over_800} > 800 · "
        "abstención fuera de la historia sin fuentes: "
        + ", ".join(f"{h} {_fmt(oor.get(h))}" for h in halves)
    )
    scored = sum(r.scored for r in report.results)
    console.print(
        f"{scored} preguntas evaluadas ({len(report.results)} turnos), "
        f"{len(report.patients)} pacientes; {report.seconds:.1f} s"
    )
    if report.passed:
        console.print("[green]Criterios de aceptación cumplidos[/green]")
    else:
        console.print(
            "[red]Criterios de aceptación no cumplidos:[/red] " + "; ".join(report.missed_targets)
        )


def _citation_json(c: CitationCheck) -> dict[str, Any]:
    """Compact: the segment and the missing tokens only where the citation is unsupported."""
    data: dict[str, Any] = {"n": c.number, "chunk_id": c.chunk_id, "supported": c.supported}
    if not c.supported:
        data.update(type=c.chunk_type, segment=c.segment, missing=c.missing_tokens)
    return data


def report_json(
    report: EvalReport, include_results: bool = True, show_heldout: bool = False
) -> dict[str, Any]:
    """The report as JSON. Held-out question texts are replaced by their phrasing id unless
    `show_heldout` (whoever tunes the engine must not read them)."""
    data = asdict(report)
    data["passed"] = report.passed
    if include_results:
        rows = []
        for r in report.results:
            row = {
                **asdict(r),
                "citations": [_citation_json(c) for c in r.citations],
                "correct": r.correct,
                "problems": r.problems,
                "fact_recall": r.fact_recall,
            }
            if r.half == "heldout" and not show_heldout:
                row["question"] = f"<held-out phrasing {r.phrasing}>"
            rows.append(row)
        data["results"] = rows
        data["failures"] = [r.qid for r in report.results if r.scored and not r.correct]
    else:
        data.pop("results")
    return data


def dump_report(data: dict[str, Any]) -> str:
    """The JSON report as text: the figures indented, one line per question (smaller, and a
    re-run diffs question by question)."""
    import json

    rows = data.get("results")
    head = {k: v for k, v in data.items() if k != "results"}
    text = json.dumps(head, ensure_ascii=False, indent=1)
    if rows is None:
        return text + "\n"
    lines = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in rows)
    return text[:-2] + ',\n "results": [\n' + lines + "\n ]\n}\n"
