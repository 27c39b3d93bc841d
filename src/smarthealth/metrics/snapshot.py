"""Figures read from the database when `/metrics` is scraped: they describe the shared
database, not one worker, so they are read once per scrape instead of kept per process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

TIMEOUT_S = 2.0

_QUEUE = text(
    "SELECT count(*) AS queued, "
    "coalesce(extract(epoch FROM now() - min(enqueued_at)), 0)::float8 AS lag "
    "FROM smart_health.chunk_queue"
)
_PENDING = text(
    "SELECT count(*) FROM smart_health.embedding_texts t WHERE NOT EXISTS (SELECT 1 FROM "
    "smart_health.embedding_cache e WHERE e.text_hash = t.text_hash AND e.model = :model)"
)
_FEEDBACK = text("SELECT rating, count(*) FROM smart_health.chat_feedback GROUP BY rating")


@dataclass
class Snapshot:
    database_up: bool = False
    queue_length: int = 0
    queue_lag_seconds: float = 0.0
    pending_texts: int = 0
    feedback_stored: dict[str, int] = field(default_factory=dict)


async def read_snapshot(engine: AsyncEngine, model: str | None) -> Snapshot:
    """The database's figures; `database_up` false (and no figures) when it does not answer."""
    try:
        async with asyncio.timeout(TIMEOUT_S), engine.connect() as conn:
            queue = (await conn.execute(_QUEUE)).one()
            pending = int(await conn.scalar(_PENDING, {"model": model}) or 0) if model else 0
            stored = {str(r[0]): int(r[1]) for r in await conn.execute(_FEEDBACK)}
    except Exception:  # a scrape must still answer; the figures are simply missing
        return Snapshot()
    return Snapshot(True, int(queue.queued), float(queue.lag), pending, stored)


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.snapshot
        yield GaugeMetricFamily(
            "smarthealth_database_up",
            "1 when the database answered this scrape's queries.",
            value=1 if s.database_up else 0,
        )
        if not s.database_up:
            return
        yield GaugeMetricFamily(
            "smarthealth_indexer_queue_length",
            "Patients waiting in chunk_queue for the indexer.",
            value=s.queue_length,
        )
        yield GaugeMetricFamily(
            "smarthealth_indexer_lag_seconds",
            "Age of the oldest queued patient (0 when the queue is empty).",
            value=s.queue_lag_seconds,
        )
        yield GaugeMetricFamily(
            "smarthealth_embedding_pending_texts",
            "Distinct texts still without a vector of the configured embedding model.",
            value=s.pending_texts,
        )
        stored = GaugeMetricFamily(
            "smarthealth_feedback_stored",
            "Turns currently rated, by rating (a changed rating counts once).",
            labels=["rating"],
        )
        for rating in ("up", "down"):
            stored.add_metric([rating], s.feedback_stored.get(rating, 0))
        yield stored
