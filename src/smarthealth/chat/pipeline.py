"""One question, end to end, as a stream of events (the only implementation of the RAG flow).

    status(searching_patient) → status(retrieving) → status(generating) → stream_start →
    token… → stream_end → complete        (or an AppError raised at any point)

REST collects the stream and returns the `complete` payload; the WebSocket forwards each event.
Every call, answered or failed, writes exactly one audit row.
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

from smarthealth.audit.service import AuditEvent, ClientInfo, record_event
from smarthealth.chat.sessions import open_turn
from smarthealth.clinical.patients import find_patient
from smarthealth.db.session import Database
from smarthealth.errors import AppError
from smarthealth.models import ChatTurn
from smarthealth.rag.confidence import confidence
from smarthealth.rag.embeddings import Embedder
from smarthealth.rag.engines.base import AnswerContext, AnswerEngine, DraftAnswer, SourceFact
from smarthealth.rag.executor import BOGOTA, Execution, Row, execute, executes, load_rows
from smarthealth.rag.exemplars import ExemplarIndex
from smarthealth.rag.planner import Context, plan_question
from smarthealth.rag.retrieval import LEG_WEIGHTS, RRF_K, Candidate, retrieve
from smarthealth.rag.text import fold

log = structlog.get_logger(__name__)

TOP_K = 8
UNSETTLED = ("none", "weak")  # plans the rules did not settle
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
    session_id: uuid.UUID | None = None


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

    async def run(self, request: QueryRequest) -> AsyncIterator[Event]:
        started = time.perf_counter()
        audit = AuditEvent(
            "query",
            request.client,
            user_id=request.user_id,
            document_type_id=request.document_type_id,
            document_number=request.document_number,
            question=request.question,
            session_id=request.session_id,
        )
        try:
            async for event in self._run(request, audit, started):
                yield event
        except AppError as exc:
            audit.outcome = exc.code.lower()
            await self._audit(audit, started)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            if audit.outcome != "done":  # after `complete` the row is already written
                audit.outcome = "cancelled"  # the client went away or sent `cancel`
                await self._audit(audit, started)
            raise
        except Exception:
            audit.outcome = "error"
            await self._audit(audit, started)
            raise

    async def _audit(self, audit: AuditEvent, started: float) -> None:
        audit.latency_ms = int((time.perf_counter() - started) * 1000)
        try:
            async with self.database.sessions() as session, session.begin():
                await record_event(session, audit)
        except Exception as exc:  # the original error matters more; never mask it
            log.error("audit_write_failed", error_type=type(exc).__name__)

    async def _run(
        self, request: QueryRequest, audit: AuditEvent, started: float
    ) -> AsyncIterator[Event]:
        yield _status("searching_patient")
        async with self.database.sessions() as session, session.begin():
            found = await find_patient(session, request.document_type_id, request.document_number)
            if found is None:
                raise AppError(
                    404,
                    "PATIENT_NOT_FOUND",
                    "No existe un paciente con ese tipo y número de documento.",
                )
            patient, document_code = found
            audit.patient_id = patient.patient_id
            turn = await open_turn(session, request.user_id, patient.patient_id, request.session_id)
        audit.session_id, audit.sequence_chat_id = turn.session_id, turn.sequence_chat_id
        audit.outcome = "in_progress"

        yield _status("retrieving")
        now = self.clock()
        known = Context(now.date(), turn.previous_plan, turn.previous_rows)
        plan = plan_question(request.question, known)
        if plan.source in UNSETTLED and self.exemplars is not None:
            # the rules did not settle it: the nearest labelled question decides, or nobody
            vector = await self._query_vector(request.question)
            if vector is not None:
                nearest = await self.exemplars.nearest(vector) or NO_EXEMPLAR
                plan = plan_question(request.question, replace(known, exemplar=nearest))
        # the plan, not the question: free words of the question (which may name a person) stay out
        log.info("question_plan", plan={**plan.to_json(), "condition_words": None})
        execution: Execution | None = None
        async with self.database.sessions() as session:
            if executes(plan):
                execution = execute(plan, await load_rows(session, patient.patient_id, plan), now)
                candidates = [_candidate(row) for row in execution.cited]
                legs = {"plan": len(candidates)}
            else:
                search_text = request.question
                if plan.follow_up and turn.history:
                    search_text = f"{turn.history[-1].question} {request.question}"
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

        yield _status("generating")
        yield Event(
            "stream_start",
            {"session_id": str(turn.session_id), "sequence_chat_id": turn.sequence_chat_id},
        )
        context = AnswerContext(
            question=request.question,
            patient_name=patient.full_name,
            sources=sources,
            today=now.date(),
            now=now,
            history=turn.history,
            plan=plan,
            execution=execution,
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

        cited = [sources[n - 1] for n in draft.cited if 1 <= n <= len(sources)]
        elapsed = int((time.perf_counter() - started) * 1000)
        body: dict[str, Any] = {
            "status": "success",
            "session_id": str(turn.session_id),
            "sequence_chat_id": turn.sequence_chat_id,
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
            "metadata": {
                "total_records_analyzed": int(analysed or 0),
                "query_time_ms": elapsed,
                "sources_used": len(cited),
                "context_tokens": sum(len(s.content.split()) for s in sources) * 4 // 3,
                "retrieval": legs,
                "plan": {**plan.to_json(), "rows": [s.chunk_id for s in cited]},
            },
        }
        audit.outcome = "answered" if cited else "abstained"
        audit.response_json = body
        audit.source_ids = [s.chunk_id for s in cited]
        audit.latency_ms = elapsed
        async with self.database.sessions() as session, session.begin():
            session.add(
                ChatTurn(
                    session_id=turn.session_id,
                    sequence_chat_id=turn.sequence_chat_id,
                    patient_id=patient.patient_id,
                    question=request.question,
                    answer_text=draft.text,
                    intent=plan.subject,
                    response_json=body,
                )
            )
            await record_event(session, audit)
        audit.outcome = "done"
        yield Event("complete", body)
