"""Chat sessions: one user, one patient; turn numbers assigned atomically in the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.errors import AppError
from smarthealth.models import ChatSession, ChatTurn
from smarthealth.rag.engines.base import PriorTurn
from smarthealth.rag.plan import QuestionPlan

HISTORY_TURNS = 3


def session_mismatch() -> AppError:
    return AppError(
        409,
        "SESSION_PATIENT_MISMATCH",
        "Esta sesión pertenece a otro paciente; abra una sesión nueva.",
    )


def session_not_found() -> AppError:
    return AppError(404, "SESSION_NOT_FOUND", "La sesión de chat no existe.")


def parse_ref(ref: uuid.UUID | str | None) -> tuple[uuid.UUID | None, str | None]:
    """(server session id, client label) of what the client sent as `session_id`."""
    if ref is None or isinstance(ref, uuid.UUID):
        return ref, None
    try:
        return uuid.UUID(ref), None
    except ValueError:
        return None, ref


@dataclass(frozen=True)
class Conversation:
    """What a new question knows of the chat it belongs to (nothing when it opens one)."""

    session_id: uuid.UUID | None
    label: str | None = None  # the client's name for a session still to be opened
    history: tuple[PriorTurn, ...] = ()
    previous_plan: QuestionPlan | None = None  # the plan the previous answer was written from
    previous_rows: tuple[int, ...] = ()  # the chunk ids the previous answer cited


async def read_conversation(
    session: AsyncSession, user_id: int, patient_id: int, ref: uuid.UUID | str | None
) -> Conversation:
    """The session's recent answered turns; another user's session does not exist for this one
    (404) and a session belongs to one patient (409). A client label not seen before opens a
    session when the question is stored. Writes nothing."""
    session_id, label = parse_ref(ref)
    if session_id is None and label is None:
        return Conversation(None)
    if session_id is not None:
        existing = await session.get(ChatSession, session_id)
        if existing is None or existing.user_id != user_id:
            raise session_not_found()
    else:
        existing = await session.scalar(
            select(ChatSession).where(
                ChatSession.user_id == user_id, ChatSession.client_label == label
            )
        )
        if existing is None:
            return Conversation(None, label)
    if existing.patient_id != patient_id:
        raise session_mismatch()
    turns = (
        await session.scalars(
            select(ChatTurn)
            .where(ChatTurn.session_id == existing.session_id, ChatTurn.status == "answered")
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
    return Conversation(existing.session_id, label, history, previous_plan, previous_rows)


async def store_turn(
    session: AsyncSession,
    user_id: int,
    patient_id: int,
    chat: Conversation,
    question: str,
    intent: str,
) -> tuple[uuid.UUID, int]:
    """Open the session if needed, take the next turn number (one atomic UPDATE … RETURNING,
    no max+1 race) and store the turn as pending, in the caller's transaction: a number is
    consumed only by a turn that is stored."""
    session_id = chat.session_id
    if session_id is None:
        session_id = await _open_session(session, user_id, patient_id, chat.label)
    sequence = await session.scalar(
        text(
            "UPDATE smart_health.chat_sessions SET last_sequence = last_sequence + 1, "
            "last_activity_at = now() WHERE session_id = :sid RETURNING last_sequence"
        ),
        {"sid": session_id},
    )
    session.add(
        ChatTurn(
            session_id=session_id,
            sequence_chat_id=int(sequence or 1),
            patient_id=patient_id,
            question=question,
            intent=intent,
            status="pending",
        )
    )
    return session_id, int(sequence or 1)


async def _open_session(
    session: AsyncSession, user_id: int, patient_id: int, label: str | None
) -> uuid.UUID:
    """A new session; with a label, the one session of that label (two first questions under
    one new label at once open it once, and it stays with its patient)."""
    row = (
        await session.execute(
            text(
                "INSERT INTO smart_health.chat_sessions (session_id, user_id, patient_id, "
                "client_label) VALUES (:sid, :user, :patient, :label) "
                "ON CONFLICT (user_id, client_label) "
                "DO UPDATE SET client_label = EXCLUDED.client_label "
                "RETURNING session_id, patient_id"
            ),
            {"sid": uuid.uuid4(), "user": user_id, "patient": patient_id, "label": label},
        )
    ).one()
    if row.patient_id != patient_id:
        raise session_mismatch()
    return uuid.UUID(str(row.session_id))


async def finish_turn(
    session: AsyncSession,
    session_id: uuid.UUID,
    sequence: int,
    status: str,
    answer: str | None = None,
    body: dict[str, Any] | None = None,
) -> None:
    """Record how a stored turn ended: answered (with its answer), cancelled or failed."""
    await session.execute(
        update(ChatTurn)
        .where(ChatTurn.session_id == session_id, ChatTurn.sequence_chat_id == sequence)
        .values(status=status, answer_text=answer, response_json=body)
    )
