"""A clinician's 👍 / 👎 on one answered turn (one per turn, changeable)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from smarthealth.models.base import Base

RATINGS = ("up", "down")
REASONS = ("incorrect", "incomplete", "wrong_source", "other")


class ChatFeedback(Base):
    __tablename__ = "chat_feedback"
    __table_args__ = (
        ForeignKeyConstraint(
            ["session_id", "sequence_chat_id"],
            ["smart_health.chat_turns.session_id", "smart_health.chat_turns.sequence_chat_id"],
            ondelete="CASCADE",
            name="fk_chat_feedback_turn",
        ),
        CheckConstraint("rating IN ('up', 'down')", name="rating"),
        CheckConstraint(
            "reason IS NULL OR reason IN ('incorrect', 'incomplete', 'wrong_source', 'other')",
            name="reason",
        ),
        CheckConstraint("reason IS NULL OR rating = 'down'", name="reason_only_down"),
        Index("ix_chat_feedback_updated_at", "updated_at"),
        Index("ix_chat_feedback_user_id", "user_id"),
        Index("ix_chat_feedback_patient_id", "patient_id"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    sequence_chat_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(BigInteger)
    rating: Mapped[str] = mapped_column(String(4))
    reason: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
