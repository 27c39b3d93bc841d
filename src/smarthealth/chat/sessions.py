"""Chat sessions: one user, one patient; turn numbers assigned atomically in the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.errors import AppError
from smarthealth.models import ChatSession, ChatTurn
from smarthealth.rag.engines.base import PriorTurn
from smarthealth.rag.plan import QuestionPlan

HISTORY_TURNS = 3


def session_not_found() -> AppError:
    return AppError(404, "SESSION_NOT_FOUND", "La sesión de chat no existe.")


@dataclass(frozen=True)
class OpenTurn:
    session_id: uuid.UUID
    sequence_chat_id: int
    history: tuple[PriorTurn, ...]
    previous_plan: QuestionPlan | None = None  # the plan the previous answer was written from
    previous_rows: tuple[int, ...] = ()  # the chunk ids the previous answer cited


async def open_turn(
    session: AsyncSession, user_id: int, patient_id: int, session_id: uuid.UUID | None
) -> OpenTurn:
    """Create or resume the session and take the next sequence number (no max+1 race)."""
    if session_id is None:
        session_id = uuid.uuid4()
        session.add(ChatSession(session_id=session_id, user_id=user_id, patient_id=patient_id))
        await session.flush()
    else:
        existing = await session.get(ChatSession, session_id)
        if existing is None or existing.user_id != user_id:
            raise session_not_found()  # another user's session does not exist for this one
        if existing.patient_id != patient_id:
            raise AppError(
                409,
                "SESSION_PATIENT_MISMATCH",
                "Esta sesión pertenece a otro paciente; abra una sesión nueva.",
            )
    sequence = await session.scalar(
        text(
            "UPDATE smart_health.chat_sessions SET last_sequence = last_sequence + 1, "
            "last_activity_at = now() WHERE session_id = :sid RETURNING last_sequence"
        ),
        {"sid": session_id},
    )
    turns = (
        await session.scalars(
            select(ChatTurn)
            .where(ChatTurn.session_id == session_id, ChatTurn.status == "answered")
            .order_by(ChatTurn.sequence_chat_id.desc())
            .limit(HISTORY_TURNS)
        )
    ).all()
    history = tuple(
        PriorTurn(question=t.question, answer=t.answer_text or "", intent=t.intent)
        for t in reversed(turns)
    )
    previous_plan = None
    previous_rows: tuple[int, ...] = ()
    if turns and turns[0].response_json:
        stored = turns[0].response_json.get("metadata", {}).get("plan")
        if isinstance(stored, dict):
            previous_plan = QuestionPlan.from_json(stored)
            previous_rows = tuple(int(r) for r in stored.get("rows", ()) if isinstance(r, int))
    return OpenTurn(session_id, int(sequence or 1), history, previous_plan, previous_rows)
