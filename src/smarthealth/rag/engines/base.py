"""What every answer engine receives and produces.

An engine is an async generator: it yields text tokens (str) as they are produced, then exactly
one `DraftAnswer` as its last item. The pipeline forwards the tokens as `token` events and turns
the draft into the `complete` payload. `[n]` in the text refers to `AnswerContext.sources[n-1]`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from smarthealth.rag.executor import Execution
    from smarthealth.rag.plan import QuestionPlan


@dataclass(frozen=True)
class SourceFact:
    """One retrieved chunk as an engine sees it. `number` is its citation number (1-based)."""

    number: int
    chunk_id: int
    source_type: str
    occurred_at: dt.datetime | None
    content: str
    facts: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PriorTurn:
    question: str
    answer: str
    intent: str | None


@dataclass(frozen=True)
class PatientIdentity:
    """Who the patient is. The server shows it; an external model is not sent it (see
    `redaction.py`): it is what the prompt's sources and history are scrubbed of."""

    full_name: str
    names: tuple[str, ...]  # each part of the name: first, middle, surnames
    document_number: str
    birth_date: dt.date | None
    sex: str | None  # F, M, O
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    city: str | None = None


@dataclass(frozen=True)
class AnswerContext:
    """`sources` are the rows the plan's execution selected (or, for free-text questions,
    what retrieval found); `execution` is None for free-text questions."""

    question: str
    patient_name: str
    sources: tuple[SourceFact, ...]
    today: dt.date
    history: tuple[PriorTurn, ...] = ()
    now: dt.datetime | None = None  # the moment "próxima" and "última" are relative to
    plan: QuestionPlan | None = None
    execution: Execution | None = None
    patient: PatientIdentity | None = None  # None: only `patient_name` is known


@dataclass(frozen=True)
class DraftAnswer:
    text: str
    cited: tuple[int, ...]  # citation numbers actually used, in order of first use
    abstained: bool
    model_used: str
    invalid_citations: int = 0  # citations removed because they pointed outside the sources
    fallback_reason: str | None = None  # set when another engine's answer replaced this one
    removed_sentences: int = 0  # an LLM's sentences removed because their sources do not say it


class AnswerEngine(Protocol):
    name: str

    def generate(self, context: AnswerContext) -> AsyncGenerator[str | DraftAnswer, None]: ...
