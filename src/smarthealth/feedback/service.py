"""Storing a rating (owner only, one per turn, changeable; audited in the same transaction) and
reading rated turns back with their question, answer and sources."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.audit.service import AuditEvent, ClientInfo, record_event
from smarthealth.chat.sessions import parse_ref
from smarthealth.errors import AppError
from smarthealth.feedback.schemas import FeedbackIn, FeedbackItem, FeedbackOut
from smarthealth.models import ChatFeedback, ChatSession, ChatTurn, DocumentType, Patient, User


def turn_not_found() -> AppError:
    return AppError(404, "TURN_NOT_FOUND", "La respuesta que intenta valorar no existe.")


def turn_not_answered() -> AppError:
    return AppError(409, "TURN_NOT_ANSWERED", "Solo se pueden valorar respuestas completas.")


async def _owned_turn(session: AsyncSession, user_id: int, ref: str, sequence: int) -> ChatTurn:
    """The turn, if this user's session holds it; another user's turn does not exist here."""
    session_id, label = parse_ref(ref)
    query = (
        select(ChatTurn)
        .join(ChatSession, ChatSession.session_id == ChatTurn.session_id)
        .where(ChatSession.user_id == user_id, ChatTurn.sequence_chat_id == sequence)
    )
    if session_id is not None:
        query = query.where(ChatSession.session_id == session_id)
    else:
        query = query.where(ChatSession.client_label == label)
    turn = await session.scalar(query)
    if turn is None:
        raise turn_not_found()
    return turn


async def submit_feedback(
    session: AsyncSession, user_id: int, body: FeedbackIn, client: ClientInfo
) -> tuple[FeedbackOut, bool]:
    """Store (or replace) the owner's rating of an answered turn and audit it, in one
    transaction. Returns the stored rating and whether it is new."""
    async with session.begin():
        turn = await _owned_turn(session, user_id, body.session_id, body.sequence_chat_id)
        if turn.status != "answered":
            raise turn_not_answered()
        values = {
            "rating": body.rating,
            "reason": body.reason,
            "comment": body.comment,
            "user_id": user_id,
        }
        row: Any = (
            await session.execute(
                insert(ChatFeedback)
                .values(
                    session_id=turn.session_id,
                    sequence_chat_id=turn.sequence_chat_id,
                    patient_id=turn.patient_id,
                    **values,
                )
                .on_conflict_do_update(
                    index_elements=[ChatFeedback.session_id, ChatFeedback.sequence_chat_id],
                    set_={**values, "updated_at": func.now()},
                )
                .returning(
                    ChatFeedback.created_at,
                    ChatFeedback.updated_at,
                    literal_column("(xmax = 0)").label("created"),
                )
            )
        ).one()
        created = bool(row.created)
        await record_event(
            session,
            AuditEvent(
                "feedback",
                client,
                user_id=user_id,
                outcome="created" if created else "updated",
                patient_id=turn.patient_id,
                session_id=turn.session_id,
                sequence_chat_id=turn.sequence_chat_id,
                details={"rating": body.rating, "reason": body.reason, "comment": body.comment},
            ),
        )
    out = FeedbackOut(
        session_id=turn.session_id,
        sequence_chat_id=turn.sequence_chat_id,
        rating=body.rating,
        reason=body.reason,
        comment=body.comment,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    return out, created


@dataclass(frozen=True)
class FeedbackFilter:
    """Which ratings to read: a period (of the rating's last change, `since` ≤ t < `until`),
    a rating, a reason, the user who rated."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    rating: str | None = None
    reason: str | None = None
    user_id: int | None = None

    def conditions(self) -> list[Any]:
        found: list[Any] = []
        if self.since is not None:
            found.append(ChatFeedback.updated_at >= self.since)
        if self.until is not None:
            found.append(ChatFeedback.updated_at < self.until)
        if self.rating is not None:
            found.append(ChatFeedback.rating == self.rating)
        if self.reason is not None:
            found.append(ChatFeedback.reason == self.reason)
        if self.user_id is not None:
            found.append(ChatFeedback.user_id == self.user_id)
        return found

    def as_details(self) -> dict[str, Any]:
        """The filter as an audit row records it."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "rating": self.rating,
            "reason": self.reason,
            "user_id": self.user_id,
        }


def _rated_turns(where: FeedbackFilter) -> Select[ChatFeedback, ChatTurn, str, str, str]:
    return (
        select(ChatFeedback, ChatTurn, User.email, DocumentType.code, Patient.document_number)
        .join(
            ChatTurn,
            (ChatTurn.session_id == ChatFeedback.session_id)
            & (ChatTurn.sequence_chat_id == ChatFeedback.sequence_chat_id),
        )
        .join(User, User.user_id == ChatFeedback.user_id)
        .join(Patient, Patient.patient_id == ChatFeedback.patient_id)
        .join(DocumentType, DocumentType.document_type_id == Patient.document_type_id)
        .where(*where.conditions())
        .order_by(ChatFeedback.updated_at.desc(), ChatFeedback.session_id)
    )


def _item(row: Any) -> FeedbackItem:
    feedback, turn, email, code, number = row
    answer = (turn.response_json or {}).get("answer") or {}
    return FeedbackItem(
        session_id=feedback.session_id,
        sequence_chat_id=feedback.sequence_chat_id,
        rating=feedback.rating,
        reason=feedback.reason,
        comment=feedback.comment,
        created_at=feedback.created_at,
        updated_at=feedback.updated_at,
        user_id=feedback.user_id,
        user_email=email,
        patient_id=feedback.patient_id,
        document_type=code,
        document_number=number,
        question=turn.question,
        answer=turn.answer_text,
        model_used=answer.get("model_used"),
    )


async def count_feedback(session: AsyncSession, where: FeedbackFilter) -> int:
    query = select(func.count()).select_from(ChatFeedback).where(*where.conditions())
    return int(await session.scalar(query) or 0)


async def list_feedback(
    session: AsyncSession, where: FeedbackFilter, offset: int, limit: int
) -> list[FeedbackItem]:
    rows = await session.execute(_rated_turns(where).offset(offset).limit(limit))
    return [_item(row) for row in rows]


async def stream_feedback(
    session: AsyncSession, where: FeedbackFilter, batch: int = 500
) -> AsyncIterator[tuple[FeedbackItem, dict[str, Any] | None]]:
    """Every matching rating with the stored response body of its turn (its sources), in
    batches, so an export of a long period never holds it all in memory."""
    offset = 0
    while True:
        rows = (await session.execute(_rated_turns(where).offset(offset).limit(batch))).all()
        for row in rows:
            yield _item(row), row[1].response_json
        if len(rows) < batch:
            return
        offset += batch


async def record_read(
    session: AsyncSession,
    user_id: int | None,
    client: ClientInfo,
    where: FeedbackFilter,
    shown: int,
    kind: str,
) -> None:
    """Reading rated turns shows questions and answers about patients: audited, and
    committed (with whatever the caller's session read so far) before anything is shown."""
    await record_event(
        session,
        AuditEvent(
            "feedback.read",
            client,
            user_id=user_id,
            details={**where.as_details(), "rows": shown, "format": kind},
        ),
    )
    await session.commit()
