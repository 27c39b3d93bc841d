"""Bodies of `/query/` and `/history/`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from smarthealth.inputs import free_text, line_text

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
]
Question = Annotated[
    str,
    StringConstraints(max_length=4 * MAX_QUESTION),
    AfterValidator(free_text),
    AfterValidator(_trimmed_question),
]


# A server session's UUID, or a client's own label for one ("session-1733400000000").
SessionRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    AfterValidator(line_text),
]


class QueryIn(BaseModel):
    """One body for REST and the WebSocket. `user_id`, sent by the original clients, is
    accepted and ignored: the token alone says who asks."""

    model_config = ConfigDict(extra="forbid")

    session_id: SessionRef | None = None
    document_type_id: int = Field(ge=1, le=8, strict=True)
    document_number: DocumentNumber
    question: Question
    user_id: Annotated[Any, Field(exclude=True, description="Ignorado: manda el token.")] = None


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
