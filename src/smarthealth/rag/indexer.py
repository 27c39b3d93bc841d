"""Keeps `clinical_chunks` in sync with the clinical tables and fills in embeddings.

Two phases, each its own short transaction:
1. `sync_queued`: take patients from `chunk_queue` (filled by triggers), rebuild their chunk
   drafts, and apply the difference (insert new, update changed — content, facts or meaning —,
   delete gone); record each new meaning in `embedding_texts`.
2. `embed_pending`: embed the texts that have no vector for the configured model yet. Vectors
   live in `embedding_cache`, one per distinct text and model, and chunks reach theirs through
   `embedding_text_hash`: a renewed prescription or a diagnosis shared by thousands of patients
   costs one embedding and no per-chunk write, and a changed dose keeps its vector.

Workers on several processes or hosts can run this at once: queue rows are claimed with
`FOR UPDATE SKIP LOCKED`, and the embedding phase is guarded by an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog

from smarthealth.rag.chunking import ChunkDraft, build_chunks
from smarthealth.rag.embeddings import Embedder, to_pgvector

log = structlog.get_logger(__name__)

EMBED_LOCK = 0x5348_454D  # "SHEM": one embedding writer at a time
QUEUE_CHANNEL = "smart_health_chunk_queue"


@dataclass
class SyncStats:
    patients: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


@dataclass
class EmbedStats:
    texts_embedded: int = 0
    embed_seconds: float = 0.0


_CLAIM = """
DELETE FROM smart_health.chunk_queue
WHERE patient_id IN (
  SELECT patient_id FROM smart_health.chunk_queue ORDER BY enqueued_at
  FOR UPDATE SKIP LOCKED LIMIT $1)
RETURNING patient_id
"""
_EXISTING = """
SELECT chunk_id, source_type, source_id, section, content_hash, embedding_text_hash
FROM smart_health.clinical_chunks WHERE patient_id = ANY($1::bigint[])
"""
_COLUMNS = (
    "patient_id",
    "source_type",
    "source_id",
    "section",
    "record_id",
    "occurred_at",
    "content",
    "facts",
    "search_text",
    "embedding_text_hash",
    "content_hash",
)


def _row(d: ChunkDraft) -> tuple[object, ...]:
    return (
        d.patient_id,
        d.source_type,
        d.source_id,
        d.section,
        d.record_id,
        d.occurred_at,
        d.content,
        json.dumps(d.facts, ensure_ascii=False),
        d.search_text,
        d.embedding_text_hash,
        d.content_hash,
    )


async def _apply(conn: asyncpg.Connection, patient_ids: list[int], stats: SyncStats) -> None:
    drafts = await build_chunks(conn, patient_ids)
    existing = {
        (r["source_type"], r["source_id"], r["section"]): r
        for r in await conn.fetch(_EXISTING, patient_ids)
    }
    inserts: list[ChunkDraft] = []
    updates: list[tuple[int, ChunkDraft]] = []
    seen: set[int] = set()
    for draft in drafts:
        current = existing.get((draft.source_type, draft.source_id, draft.section))
        if current is None:
            inserts.append(draft)
            continue
        seen.add(current["chunk_id"])
        if current["content_hash"] == draft.content_hash:
            stats.unchanged += 1
        else:
            updates.append((current["chunk_id"], draft))
    gone = [r["chunk_id"] for r in existing.values() if r["chunk_id"] not in seen]
    if gone:
        await conn.execute(
            "DELETE FROM smart_health.clinical_chunks WHERE chunk_id = ANY($1::bigint[])", gone
        )
    changed = inserts + [draft for _, draft in updates]
    if changed:
        meanings = {d.embedding_text_hash: d.embedding_text for d in changed}
        await conn.execute(
            "INSERT INTO smart_health.embedding_texts (text_hash, text) "
            "SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            list(meanings),
            list(meanings.values()),
        )
    if inserts:
        await conn.copy_records_to_table(
            "clinical_chunks",
            schema_name="smart_health",
            columns=_COLUMNS,
            records=[_row(d) for d in inserts],
        )
    if updates:
        await conn.executemany(
            """
            UPDATE smart_health.clinical_chunks SET record_id = $2, occurred_at = $3,
              content = $4, facts = $5::jsonb, search_text = $6, embedding_text_hash = $7,
              content_hash = $8, updated_at = now()
            WHERE chunk_id = $1
            """,
            [
                (
                    chunk_id,
                    d.record_id,
                    d.occurred_at,
                    d.content,
                    json.dumps(d.facts, ensure_ascii=False),
                    d.search_text,
                    d.embedding_text_hash,
                    d.content_hash,
                )
                for chunk_id, d in updates
            ],
        )
    stats.patients += len(patient_ids)
    stats.inserted += len(inserts)
    stats.updated += len(updates)
    stats.deleted += len(gone)


async def sync_queued(
    conn: asyncpg.Connection,
    batch_patients: int = 200,
    on_progress: Callable[[int], None] | None = None,
) -> SyncStats:
    """Drain the queue, `batch_patients` at a time, each batch in its own transaction."""
    stats = SyncStats()
    while True:
        async with conn.transaction():
            claimed = [r["patient_id"] for r in await conn.fetch(_CLAIM, batch_patients)]
            if not claimed:
                return stats
            await _apply(conn, claimed, stats)
        if on_progress is not None:
            on_progress(len(claimed))


_PENDING_TEXTS = """
SELECT t.text_hash, t.text FROM smart_health.embedding_texts t
WHERE NOT EXISTS (SELECT 1 FROM smart_health.embedding_cache e
                  WHERE e.text_hash = t.text_hash AND e.model = $1)
ORDER BY t.text_hash
LIMIT $2
"""


async def pending_count(conn: asyncpg.Connection, model: str) -> int:
    """Distinct texts still without a vector of `model` (a new model makes all of them so)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM smart_health.embedding_texts t WHERE NOT EXISTS (SELECT 1 FROM "
            "smart_health.embedding_cache e WHERE e.text_hash = t.text_hash AND e.model = $1)",
            model,
        )
    )


async def embed_pending(
    conn: asyncpg.Connection,
    embedder: Embedder,
    batch_texts: int = 256,
    on_progress: Callable[[int], None] | None = None,
) -> EmbedStats:
    """Embed every distinct text that has no vector of the configured model yet."""
    stats = EmbedStats()
    model = embedder.model_name
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", EMBED_LOCK):
        return stats  # another worker is embedding right now
    try:
        while True:
            rows = await conn.fetch(_PENDING_TEXTS, model, batch_texts)
            if not rows:
                return stats
            started = time.perf_counter()
            vectors = await embedder.embed_passages([r["text"] for r in rows])
            stats.embed_seconds += time.perf_counter() - started
            await conn.executemany(
                "INSERT INTO smart_health.embedding_cache (text_hash, model, embedding) "
                "VALUES ($1, $2, CAST($3 AS vector)) ON CONFLICT DO NOTHING",
                [
                    (r["text_hash"], model, to_pgvector(v))
                    for r, v in zip(rows, vectors, strict=True)
                ],
            )
            stats.texts_embedded += len(rows)
            if on_progress is not None:
                on_progress(len(rows))
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", EMBED_LOCK)


async def request_rebuild(conn: asyncpg.Connection, model: str) -> None:
    """Re-chunk every patient and re-embed every text for `model` (e.g. after changing it)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO smart_health.chunk_queue (patient_id) "
            "SELECT patient_id FROM smart_health.patients ON CONFLICT DO NOTHING"
        )
        await conn.execute("DELETE FROM smart_health.embedding_cache WHERE model = $1", model)
        await conn.execute(
            "DELETE FROM smart_health.embedding_texts t WHERE NOT EXISTS (SELECT 1 FROM "
            "smart_health.clinical_chunks c WHERE c.embedding_text_hash = t.text_hash)"
        )


class BackgroundIndexer:
    """The server's indexer task: wakes on NOTIFY from the triggers (or every few seconds)."""

    def __init__(
        self,
        dsn: str,
        embedder: Embedder,
        poll_seconds: float = 5.0,
        on_pass: Callable[[int, int, float], None] | None = None,
    ) -> None:
        """`on_pass(patients, texts_embedded, embed_seconds)` is told what each pass did."""
        self.dsn = dsn
        self.embedder = embedder
        self.poll_seconds = poll_seconds
        self.on_pass = on_pass
        self._wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database restart and the like: retry shortly
                log.warning("indexer_error", error_type=type(exc).__name__)
                await asyncio.sleep(self.poll_seconds)

    async def _serve(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.add_listener(QUEUE_CHANNEL, lambda *_: self._wake.set())
            while True:
                self._wake.clear()
                synced = await sync_queued(conn)
                embedded = await embed_pending(conn, self.embedder)
                if synced.patients or embedded.texts_embedded:
                    if self.on_pass is not None:
                        self.on_pass(
                            synced.patients, embedded.texts_embedded, embedded.embed_seconds
                        )
                    log.info(
                        "indexer_pass",
                        patients=synced.patients,
                        texts_embedded=embedded.texts_embedded,
                    )
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            await conn.close()
