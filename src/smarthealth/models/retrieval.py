"""Retrieval chunks (one clinical fact each), their queue and the embedding cache."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from smarthealth.models.base import Base

SOURCE_TYPES = (
    "demographics",
    "allergy",
    "diagnosis",
    "prescription",
    "appointment",
    "vitals",
    "note",
    "encounter",
    "observation",
    "immunization",
    "procedure",
)


class ClinicalChunk(Base):
    __tablename__ = "clinical_chunks"
    __table_args__ = (
        UniqueConstraint("source_type", "source_id", "section"),
        CheckConstraint(
            "source_type IN (" + ", ".join(f"'{t}'" for t in SOURCE_TYPES) + ")",
            name="source_type",
        ),
        Index("ix_clinical_chunks_patient_id", "patient_id"),
        Index("ix_clinical_chunks_search_tsv", "search_tsv", postgresql_using="gin"),
    )

    chunk_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.patient_id", ondelete="CASCADE"))
    source_type: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[int] = mapped_column(BigInteger)
    section: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    record_id: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    content: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    search_text: Mapped[str] = mapped_column(Text)
    search_tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('spanish'::regconfig, search_text)", persisted=True)
    )
    # The chunk's meaning; its vector is `embedding_cache[embedding_text_hash, model]`, shared by
    # every chunk that says the same thing (1.48 M chunks, 8.5 k vectors at 10,000 patients).
    embedding_text_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ChunkQueue(Base):
    """Patients whose chunks must be rebuilt (filled by triggers on the clinical tables)."""

    __tablename__ = "chunk_queue"

    patient_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    enqueued_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class EmbeddingText(Base):
    """Each distinct text to embed, once."""

    __tablename__ = "embedding_texts"

    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class EmbeddingCache(Base):
    """One vector per distinct embedding text and model: repeated facts are embedded once."""

    __tablename__ = "embedding_cache"

    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(120), primary_key=True)
    embedding: Mapped[Any] = mapped_column(Vector())
