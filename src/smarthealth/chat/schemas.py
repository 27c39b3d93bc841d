"""Bodies of `/query/` and `/history/`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from smarthealth.inputs import (
    CONTROL,
    CONTROL_MULTILINE,
    WHITESPACE,
    free_text,
    line_text,
    text_schema,
    whole_number,
)

MAX_QUESTION = 2000
QUERY_ROLES = ("clinician", "admin")  # who may ask about patients, over REST and WebSocket


def _trimmed_question(value: str) -> str:
    value = " ".join(value.split())
    if not 2 <= len(value) <= MAX_QUESTION:
        raise ValueError(f"la pregunta debe tener entre 2 y {MAX_QUESTION} caracteres")
    return value


# The input policy (smarthealth.inputs) runs before anything else looks at the text: a NUL or
# another control character is refused naming the field, never folded away as whitespace.
DocumentNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, max_length=64),
    AfterValidator(line_text),
    StringConstraints(pattern=r"^[A-Za-z0-9-]{3,20}$"),
    text_schema(
        r"^[A-Za-z0-9-]{3,20}$",
        3,
        20,
        description="Document number: 3-20 letters, digits or '-' (upper-cased)",
        examples=["1012345678"],
    ),
]
# A question: 2..2000 characters once runs of white space are folded to one space, i.e. at
# least two characters that are not white space; tab, LF and CR are the only controls allowed.
_VISIBLE = f"[^{CONTROL}{WHITESPACE}]"
_QUESTION_PATTERN = f"^[^{CONTROL_MULTILINE}]*{_VISIBLE}[^{CONTROL_MULTILINE}]*{_VISIBLE}"
Question = Annotated[
    str,
    StringConstraints(max_length=4 * MAX_QUESTION),
    AfterValidator(free_text),
    AfterValidator(_trimmed_question),
    text_schema(
        f"{_QUESTION_PATTERN}[^{CONTROL_MULTILINE}]*$",
        2,
        MAX_QUESTION,
        description="The question, in Spanish",
        examples=["¿Qué medicamentos tiene prescritos?"],
    ),
]


# A server session's UUID, or a client's own label for one ("session-1733400000000").
MAX_SESSION_LABEL = 128
SessionRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SESSION_LABEL),
    AfterValidator(line_text),
    # again once normalised to NFC, which can lengthen a text (U+0958 is two code points)
    StringConstraints(max_length=MAX_SESSION_LABEL),
    text_schema(
        f"^{_VISIBLE}(?:[^{CONTROL}]*{_VISIBLE})?$",
        1,
        MAX_SESSION_LABEL,
        description="A server session's UUID, or the client's own label for one",
        examples=["session-1733400000000"],
    ),
]


class QueryIn(BaseModel):
    """One body for REST and the WebSocket. `user_id`, sent by the original clients, is
    accepted and ignored: the token alone says who asks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "document_type_id": 1,
                    "document_number": "1012345678",
                    "question": "¿Qué medicamentos tiene prescritos?",
                },
                {  # what the original web chat sends: its own session label and a user id
                    "user_id": "clinico@smarthealth.demo",
                    "session_id": "session-1733400000000",
                    "document_type_id": 1,
                    "document_number": "1012345678",
                    "question": "¿Tiene alergias?",
                },
                {
                    "session_id": "6f0c2f9e-8a51-4a57-9f43-2d0a3c1b7e10",
                    "document_type_id": 1,
                    "document_number": "1012345678",
                    "question": "¿y la dosis?",
                },
            ]
        },
    )

    session_id: SessionRef | None = None
    document_type_id: Annotated[int, BeforeValidator(whole_number)] = Field(
        ge=1,
        le=8,
        strict=True,
        description="1 CC, 2 CE, 3 TI, 4 PA, 5 RC, 6 MS, 7 AS, 8 CD",
        examples=[1],
    )
    document_number: DocumentNumber
    question: Question
    user_id: Annotated[
        Any, Field(exclude=True, description="Accepted and ignored: the token says who asks.")
    ] = None


# -- the answer (`POST /query/` 200, and the WebSocket's `complete`) -----------------------------


class PatientInfo(BaseModel):
    patient_id: int
    full_name: str
    document_type: str = Field(examples=["CC"])
    document_type_id: int
    document_number: str


class Answer(BaseModel):
    text: str = Field(description="Spanish answer; `[n]` cites `sources[].source_id` n")
    confidence: float = Field(ge=0, le=1, description="Computed from the evidence")
    model_used: str = Field(examples=["extractive-v2"])


class Source(BaseModel):
    source_id: int
    chunk_id: int
    type: str = Field(examples=["prescription"])
    record_id: int | None
    date: dt.date | None = Field(description="The fact's day in America/Bogota")
    text: str
    relevance_score: float = Field(ge=0, le=1)
    scores: dict[str, float]


class AnswerCheck(BaseModel):
    invalid_citations: int
    removed_sentences: int


class AnswerMetadata(BaseModel):
    total_records_analyzed: int
    query_time_ms: int
    sources_used: int
    context_tokens: int
    retrieval: dict[str, int]
    plan: dict[str, Any] = Field(description="The typed plan the answer was written from")
    answer_check: AnswerCheck


class QueryOut(BaseModel):
    """What `POST /query/` returns (and the WebSocket's `complete` carries)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "success",
                    "session_id": "session-1733400000000",
                    "session_uuid": "6f0c2f9e-8a51-4a57-9f43-2d0a3c1b7e10",
                    "sequence_chat_id": 1,
                    "timestamp": "2026-11-26T05:02:57Z",
                    "patient_info": {
                        "patient_id": 42,
                        "full_name": "María Fernanda Gómez Ruiz",
                        "document_type": "CC",
                        "document_type_id": 1,
                        "document_number": "1012345678",
                    },
                    "answer": {
                        "text": "Tiene 1 medicamento(s) vigente(s): metformina 850 mg, "
                        "1 tableta cada 12 horas con las comidas (vigente hasta el "
                        "30/11/2026) [1].",
                        "confidence": 0.95,
                        "model_used": "extractive-v2",
                    },
                    "sources": [
                        {
                            "source_id": 1,
                            "chunk_id": 55012,
                            "type": "prescription",
                            "record_id": 981,
                            "date": "2026-11-01",
                            "text": "2026-11-01 · Prescripción: metformina (Glucophage) 850 mg "
                            "tableta, 1 tableta cada 12 horas con las comidas",
                            "relevance_score": 1.0,
                            "scores": {"plan": 1.0},
                        }
                    ],
                    "metadata": {
                        "total_records_analyzed": 162,
                        "query_time_ms": 12,
                        "sources_used": 1,
                        "context_tokens": 540,
                        "retrieval": {"plan": 1},
                        "plan": {"subject": "medication", "operation": "list", "rows": [55012]},
                        "answer_check": {"invalid_citations": 0, "removed_sentences": 0},
                    },
                }
            ]
        }
    )

    status: Literal["success"]
    session_id: str = Field(description="As the client sent it (its label), else the UUID")
    session_uuid: uuid.UUID
    sequence_chat_id: int = Field(ge=1)
    timestamp: dt.datetime
    patient_info: PatientInfo
    answer: Answer
    sources: list[Source]
    metadata: AnswerMetadata


class SessionSummary(BaseModel):
    session_id: uuid.UUID
    patient_id: int
    patient_name: str
    document_type: str
    document_type_id: int
    document_number: str
    first_question: str | None
    turns: int
    created_at: dt.datetime
    last_activity_at: dt.datetime


class SessionList(BaseModel):
    items: list[SessionSummary]
    total: int
    page: int
    page_size: int


class TurnFeedback(BaseModel):
    rating: str
    reason: str | None
    comment: str | None


class TurnOut(BaseModel):
    sequence_chat_id: int
    question: str
    answer: str | None
    status: str
    created_at: dt.datetime
    response: dict[str, Any] | None
    feedback: TurnFeedback | None = None  # the owner's 👍 / 👎, if given


class SessionDetail(BaseModel):
    session: SessionSummary
    turns: list[TurnOut]
