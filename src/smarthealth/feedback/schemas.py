"""Bodies of `POST /feedback` and `GET /feedback`."""

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
    model_validator,
)

from smarthealth.chat.schemas import SessionRef
from smarthealth.inputs import CONTROL_MULTILINE, INT4_MAX, free_text, text_schema, whole_number

MAX_COMMENT = 1000

Rating = Literal["up", "down"]
# Stable English codes; the page shows them in Spanish (incorrecta, incompleta, fuente
# equivocada, otra).
Reason = Literal["incorrect", "incomplete", "wrong_source", "other"]
Comment = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_COMMENT),
    AfterValidator(free_text),
    text_schema(f"^[^{CONTROL_MULTILINE}]*$", max_length=MAX_COMMENT),
]
# `reason` says what was wrong: only with a 👎 (the document states it as JSON Schema).
_REASON_ONLY_WITH_DOWN: dict[str, Any] = {
    "anyOf": [
        {"properties": {"rating": {"const": "down"}}},
        {"properties": {"reason": {"type": "null"}}},
    ]
}


class FeedbackIn(BaseModel):
    """One turn (its session, as a UUID or the client's label, and its number) and the rating."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_REASON_ONLY_WITH_DOWN)

    session_id: SessionRef
    sequence_chat_id: Annotated[int, BeforeValidator(whole_number)] = Field(
        ge=1, le=INT4_MAX, strict=True
    )
    rating: Rating
    reason: Reason | None = None
    comment: Comment | None = None

    @model_validator(mode="after")
    def _reason_only_with_down(self) -> FeedbackIn:
        if self.reason is not None and self.rating != "down":
            raise ValueError("el motivo solo se indica con una valoración negativa (down)")
        if self.comment == "":
            self.comment = None
        return self


class FeedbackOut(BaseModel):
    session_id: uuid.UUID
    sequence_chat_id: int
    rating: Rating
    reason: Reason | None
    comment: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class FeedbackItem(FeedbackOut):
    """A rated turn as auditors see it: who rated which answer about which patient."""

    user_id: int
    user_email: str
    patient_id: int
    document_type: str
    document_number: str
    question: str
    answer: str | None
    model_used: str | None


class FeedbackPage(BaseModel):
    items: list[FeedbackItem]
    total: int
    page: int
    page_size: int
