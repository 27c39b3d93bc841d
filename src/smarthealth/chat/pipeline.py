"""One question, end to end, as a stream of events (the only implementation of the RAG flow).

    status(searching_patient) → status(retrieving) → status(generating) → stream_start →
    token… → stream_end → complete        (or an AppError raised at any point)

REST collects the stream and returns the `complete` payload; the WebSocket forwards each event.

patient → conversation → plan (`rag.planner`) → rows (`rag.executor`, or hybrid retrieval for
free text) → access audit row + pending turn, committed → answer engine → outcome audit row.
Every call writes one `query` row: the access (committed before any patient data leaves, outcome
`disclosed`) or the refusal; a disclosed question also gets its `query.outcome` row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.audit.service import AuditEvent, ClientInfo, audit_unavailable, record_event
from smarthealth.chat.sessions import (
    Conversation,
    finish_turn,
    parse_ref,
    read_conversation,
    store_turn,
)
from smarthealth.clinical.patients import find_patient
from smarthealth.db.session import Database
from smarthealth.errors import AppError, is_database_unavailable
from smarthealth.inputs import storable
from smarthealth.metrics import instruments
from smarthealth.models.clinical import Patient
from smarthealth.rag.confidence import confidence
from smarthealth.rag.embeddings import Embedder
from smarthealth.rag.engines.base import (
    AnswerContext,
    AnswerEngine,
    DraftAnswer,
    PatientIdentity,
    SourceFact,
)
from smarthealth.rag.executor import (
    BOGOTA,
    Execution,
    Row,
    doctor_surnames,
    execute,
    executes,
    load_rows,
)
from smarthealth.rag.exemplars import ExemplarIndex
from smarthealth.rag.plan import QuestionPlan
from smarthealth.rag.planner import Context, plan_question
from smarthealth.rag.retrieval import LEG_WEIGHTS, RRF_K, Candidate, retrieve
from smarthealth.rag.series import series_chunks, vital_series
from smarthealth.rag.text import fold

log = structlog.get_logger(__name__)

TOP_K = 8
UNSETTLED = ("none", "weak")  # plans the rules did not settle
RATE_LOCK_SPACE = 7201  # advisory-lock key space of the per-user question count
# how the turn of a disclosed question is left when it does not complete (else "failed")
TURN_STATUS = {"cancelled": "cancelled"}
NO_EXEMPLAR = ("unknown", 0.0)  # no labelled question is close enough: a weak cue is not enough
QUERY_VECTOR_CACHE = 2048


PATIENT_CHUNKS = text(
    "SELECT count(*) FROM smart_health.clinical_chunks WHERE patient_id = :patient"
)
PERFECT_FUSED = sum(LEG_WEIGHTS.values()) / (RRF_K + 1)  # rank 1 in all three legs
STATUS_MESSAGES = {
    "searching_patient": "Buscando al paciente…",
    "retrieving": "Buscando en la historia clínica…",
    "generating": "Redactando la respuesta…",
}


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryRequest:
    user_id: int
    document_type_id: int
    document_number: str
    question: str
    client: ClientInfo
    session_id: uuid.UUID | str | None = None  # a server session, or the client's own label


def _status(name: str) -> Event:
    return Event("status", {"status": name, "message": STATUS_MESSAGES[name]})


def _candidate(row: Row) -> Candidate:
    """A row the executor selected, as a source (its evidence is the plan, not a ranking)."""
    return Candidate(
        row.chunk_id,
        row.source_type,
        row.source_id,
        row.record_id,
        row.occurred_at,
        row.content,
        row.facts,
        scores={"plan": 1.0},
        fused=PERFECT_FUSED,
    )


def _source(number: int, c: Candidate) -> SourceFact:
    return SourceFact(
        number, c.chunk_id, c.source_type, c.occurred_at, c.content, c.facts, dict(c.scores)
    )


def _source_json(s: SourceFact, c: Candidate) -> dict[str, Any]:
    return {
        "source_id": s.number,
        "chunk_id": s.chunk_id,
        "type": s.source_type,
        "record_id": c.record_id,
        "date": s.occurred_at.astimezone(BOGOTA).date().isoformat() if s.occurred_at else None,
        "text": s.content,
        "relevance_score": round(min(c.fused / PERFECT_FUSED, 1.0), 2),
        "scores": dict(c.scores),
    }


def _identity(patient: Patient) -> PatientIdentity:
    """Who the patient is, for the answer engine to keep from an external model."""
    names = (patient.first_name, patient.middle_name, patient.first_surname, patient.second_surname)
    return PatientIdentity(
        full_name=patient.full_name,
        names=tuple(n for n in names if n),
        document_number=patient.document_number,
        birth_date=patient.birth_date,
        sex=patient.gender,
        phone=patient.phone,
        email=patient.email,
        address=patient.address,
        city=patient.city,
    )


def is_adult(patient: Patient, now: dt.datetime) -> bool:
    """18 or older today (adult reference ranges apply)."""
    birth, today = patient.birth_date, now.date()
    return (today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))) >= 18


def bogota_now() -> dt.datetime:
    return dt.datetime.now(BOGOTA)


class QuestionPipeline:
    def __init__(
        self,
        database: Database,
        embedder: Embedder | None,
        engine: AnswerEngine,
        clock: Callable[[], dt.datetime] = bogota_now,
    ) -> None:
        """`clock` says what "today" is (the evaluation runs a record seeded for a fixed day)."""
        self.database = database
        self.embedder = embedder
        self.engine = engine
        self.clock = clock
        # Clinicians ask the same questions about many patients: a question's vector does not
        # depend on the patient, so recent ones are kept (the model is the slow part under load).
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._embedding: dict[str, asyncio.Future[np.ndarray]] = {}
        self.exemplars = ExemplarIndex(embedder) if embedder is not None else None

    async def _query_vector(self, text: str) -> np.ndarray | None:
        if self.embedder is None:
            return None
        key = fold(text)
        if key in self._vectors:
            self._vectors.move_to_end(key)
            return self._vectors[key]
        # Fifty clinicians asking the same new question share one model call, and a question
        # cancelled while it waits does not cancel the call the others wait for.
        pending = self._embedding.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self.embedder.embed_query(text))
            self._embedding[key] = pending
            pending.add_done_callback(lambda done: self._embedded(key, done))
        return await asyncio.shield(pending)

    def _embedded(self, key: str, done: asyncio.Future[np.ndarray]) -> None:
        self._embedding.pop(key, None)
        if done.cancelled() or done.exception() is not None:
            return  # each waiter sees the error; the next question tries again
        self._vectors[key] = done.result()
        if len(self._vectors) > QUERY_VECTOR_CACHE:
            self._vectors.popitem(last=False)

    async def run(
        self, request: QueryRequest, rate_limit: int | None = None
    ) -> AsyncIterator[Event]:
        """The question's events. `rate_limit`: questions a minute this user may have accepted
        (counted atomically in the audit trail, across sockets, workers and hosts)."""
        q = _Question(
            AuditEvent(
                "query",
                request.client,
                user_id=request.user_id,
                document_type_id=request.document_type_id,
                document_number=request.document_number,
                question=request.question,
                session_id=parse_ref(request.session_id)[0],
            ),
            time.perf_counter(),
        )
        try:
            async for event in self._run(request, q, rate_limit):
                yield event
        except AppError as exc:
            instruments.count_answer("refused" if exc.status_code < 500 else "error")
            await self._close(q, exc.code.lower())
            raise
        except (asyncio.CancelledError, GeneratorExit):
            if not q.finished:
                instruments.count_answer("cancelled")
                await self._close(q, "cancelled")  # the client went away or sent `cancel`
            raise
        except Exception:
            instruments.count_answer("error")
            await self._close(q, "error")
            raise

    async def _close(self, q: _Question, outcome: str) -> None:
        """A question refused before disclosure is one audit row; a disclosed one gets its
        outcome as a row of its own (the trail is append-only) and its turn is marked."""
        try:
            async with self.database.sessions() as session, session.begin():
                if q.disclosed:
                    await record_event(session, q.outcome_event(outcome))
                    await finish_turn(
                        session, q.session_id, q.sequence, TURN_STATUS.get(outcome, "failed")
                    )
                else:
                    q.audit.outcome = outcome
                    q.audit.latency_ms = q.elapsed_ms()
                    await record_event(session, q.audit)
        except Exception as exc:  # the original error matters more; never mask it
            log.error("audit_write_failed", error_type=type(exc).__name__)

    async def _disclose(
        self,
        q: _Question,
        request: QueryRequest,
        patient_id: int,
        chat: Conversation,
        plan: QuestionPlan,
        sources: tuple[SourceFact, ...],
        rate_limit: int | None,
    ) -> None:
        """Commit the access (who asks what about whom, the chunk ids about to be shown) and
        the pending turn before any patient data leaves: if this fails, nothing is shown."""
        try:
            async with self.database.sessions() as session, session.begin():
                if rate_limit is not None:
                    await take_question_slot(session, request.user_id, rate_limit)
                q.session_id, q.sequence = await store_turn(
                    session, request.user_id, patient_id, chat, request.question, plan.subject
                )
                q.audit.session_id, q.audit.sequence_chat_id = q.session_id, q.sequence
                q.audit.outcome = "disclosed"
                q.audit.source_ids = [s.chunk_id for s in sources]
                q.audit.latency_ms = q.elapsed_ms()
                await record_event(session, q.audit)
        except BaseException as exc:
            # nothing of it was stored: the refusal row must not point at it
            q.audit.session_id, q.audit.sequence_chat_id = parse_ref(request.session_id)[0], None
            q.audit.source_ids = None
            if not isinstance(exc, Exception) or isinstance(exc, AppError):
                raise
            if is_database_unavailable(exc):
                raise
            log.error("audit_access_failed", error_type=type(exc).__name__)
            raise audit_unavailable() from None
        q.disclosed = True

    async def _plan(self, question: str, known: Context) -> QuestionPlan:
        plan = plan_question(question, known)
        if plan.source in UNSETTLED and self.exemplars is not None:
            # the rules did not settle it: the nearest labelled question decides, or nobody
            vector = await self._query_vector(question)
            if vector is not None:
                nearest = await self.exemplars.nearest(vector) or NO_EXEMPLAR
                plan = plan_question(question, replace(known, exemplar=nearest))
        # the plan, not the question: words that may name a person stay out
        log.info("question_plan", plan={**plan.to_json(), "condition_words": None, "doctor": None})
        return plan

    async def _run(
        self, request: QueryRequest, q: _Question, rate_limit: int | None
    ) -> AsyncIterator[Event]:
        yield _status("searching_patient")
        async with self.database.sessions() as session:
            found = await find_patient(session, request.document_type_id, request.document_number)
            if found is None:
                raise AppError(
                    404,
                    "PATIENT_NOT_FOUND",
                    "No existe un paciente con ese tipo y número de documento.",
                )
            patient, document_code = found
            q.audit.patient_id = patient.patient_id
            chat = await read_conversation(
                session, request.user_id, patient.patient_id, request.session_id
            )
            doctors = await doctor_surnames(session, patient.patient_id)

        yield _status("retrieving")
        now = self.clock()
        plan = await self._plan(
            request.question,
            Context(now.date(), chat.previous_plan, chat.previous_rows, doctors=doctors),
        )
        execution: Execution | None = None
        async with self.database.sessions() as session:
            if executes(plan):
                execution = execute(plan, await load_rows(session, patient.patient_id, plan), now)
                candidates = [_candidate(row) for row in execution.cited]
                legs = {"plan": len(candidates)}
            else:
                search_text = request.question
                if plan.follow_up and chat.history:
                    search_text = f"{chat.history[-1].question} {request.question}"
                query_vector = await self._query_vector(search_text)
                result = await retrieve(
                    session,
                    patient.patient_id,
                    plan,
                    search_text,
                    query_vector,
                    self.embedder.model_name if self.embedder else None,
                    k=TOP_K,
                )
                candidates, legs = result.candidates, result.leg_counts
            analysed = await session.scalar(PATIENT_CHUNKS, {"patient": patient.patient_id})
        sources = tuple(_source(i, c) for i, c in enumerate(candidates, start=1))

        await self._disclose(q, request, patient.patient_id, chat, plan, sources, rate_limit)
        yield _status("generating")
        # the session as the client named it (its label, if it sent one) and as the server does
        named = {"session_id": chat.label or str(q.session_id), "session_uuid": str(q.session_id)}
        yield Event("stream_start", {**named, "sequence_chat_id": q.sequence})
        context = AnswerContext(
            question=request.question,
            patient_name=patient.full_name,
            sources=sources,
            today=now.date(),
            now=now,
            history=chat.history,
            plan=plan,
            execution=execution,
            patient=_identity(patient),
        )
        draft: DraftAnswer | None = None
        async for item in self.engine.generate(context):
            if isinstance(item, DraftAnswer):
                draft = item
            else:
                yield Event("token", {"token": item})
        if draft is None:
            raise RuntimeError("answer engine produced no final answer")
        yield Event("stream_end")

        # a chart of a series shows its readings: each point cites its source too
        series = (
            vital_series(execution, {s.chunk_id: s.number for s in sources}, is_adult(patient, now))
            if execution is not None
            else []
        )
        charted = series_chunks(series)
        numbers = list(draft.cited) + [
            s.number for s in sources if s.chunk_id in charted and s.number not in draft.cited
        ]
        cited = [sources[n - 1] for n in numbers if 1 <= n <= len(sources)]
        body: dict[str, Any] = {
            "status": "success",
            **named,
            "sequence_chat_id": q.sequence,
            "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            "patient_info": {
                "patient_id": patient.patient_id,
                "full_name": patient.full_name,
                "document_type": document_code,
                "document_type_id": patient.document_type_id,
                "document_number": patient.document_number,
            },
            "answer": {
                "text": draft.text,
                "confidence": confidence(draft, sources, plan),
                "model_used": draft.model_used,
            },
            "sources": [_source_json(s, candidates[s.number - 1]) for s in cited],
            "series": series,
            "metadata": {
                "total_records_analyzed": int(analysed or 0),
                "query_time_ms": q.elapsed_ms(),
                "sources_used": len(cited),
                "context_tokens": sum(len(s.content.split()) for s in sources) * 4 // 3,
                "retrieval": legs,
                "plan": {**plan.to_json(), "rows": [s.chunk_id for s in cited]},
                # what checking an LLM's answer against its sources removed
                "answer_check": {
                    "invalid_citations": draft.invalid_citations,
                    "removed_sentences": draft.removed_sentences,
                },
            },
        }
        outcome = "answered" if cited else "abstained"
        async with self.database.sessions() as session, session.begin():
            await finish_turn(session, q.session_id, q.sequence, "answered", draft.text, body)
            event = q.outcome_event(outcome)
            event.response_json, event.source_ids = body, [s.chunk_id for s in cited]
            await record_event(session, event)
        q.finished = True
        # the identity questions the server keeps from an LLM are not a failure of the LLM
        failed_over = draft.fallback_reason not in (None, "identifiers")
        instruments.count_answer("fallback" if failed_over else outcome)
        instruments.observe_question(self.engine.name, time.perf_counter() - q.started)
        yield Event("complete", body)


@dataclass
class _Question:
    """One question on its way: its access row, and whether that row is committed."""

    audit: AuditEvent
    started: float
    disclosed: bool = False  # the access row is committed: outcomes follow as rows of their own
    finished: bool = False  # the outcome row is written
    session_id: uuid.UUID = field(default_factory=uuid.uuid4)
    sequence: int = 0

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    def outcome_event(self, outcome: str) -> AuditEvent:
        a = self.audit
        return AuditEvent(
            "query.outcome",
            a.client,
            user_id=a.user_id,
            outcome=outcome,
            patient_id=a.patient_id,
            session_id=a.session_id,
            sequence_chat_id=a.sequence_chat_id,
            latency_ms=self.elapsed_ms(),
        )


async def record_refusal(
    database: Database,
    client: ClientInfo,
    user_id: int,
    outcome: str,
    code: str,
    question: object = None,
) -> None:
    """One audit row for a question refused before the pipeline ran (forbidden role, invalid
    input), over any channel. What was sent is made storable: a refused NUL keeps its row."""
    instruments.count_answer("refused")
    async with database.sessions() as session, session.begin():
        await record_event(
            session,
            AuditEvent(
                "query",
                client,
                user_id=user_id,
                outcome=outcome,
                question=storable(str(question))[:4000] if question else None,
                details={"error": code},
            ),
        )


async def take_question_slot(session: AsyncSession, user_id: int, per_minute: int) -> None:
    """Count this question against the user's limit, atomically: concurrent questions of one
    user (any socket, worker or host) queue on a transaction-scoped advisory lock, and each
    counts the accepted questions committed before it."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:space, :user)"),
                          {"space": RATE_LOCK_SPACE, "user": user_id})  # fmt: skip
    count = await session.scalar(
        text(
            "SELECT count(*) FROM smart_health.audit_logs WHERE user_id = :user "
            "AND event_type = 'query' AND outcome <> 'rate_limited' "
            "AND created_at > now() - interval '1 minute'"
        ),
        {"user": user_id},
    )
    if int(count or 0) >= per_minute:
        raise AppError(429, "RATE_LIMITED", "Demasiadas preguntas por minuto; espere un momento.")
