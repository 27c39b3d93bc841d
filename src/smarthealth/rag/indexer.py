"""Keeps `clinical_chunks` in sync with the clinical tables and fills in embeddings.

Two phases, each its own short transaction:
1. `sync_queued`: take patients from `chunk_queue` (filled by triggers), rebuild their chunk
   drafts, and apply the difference (insert new, update changed, delete gone). A changed chunk
   keeps its embedding when its embedding text did not change.
2. `embed_pending`: for chunks without an embedding of the configured model, reuse the
   `embedding_cache` (one vector per distinct text) and embed only texts never seen before.

Workers on several processes or hosts can run this at once: queue rows are claimed with
`FOR UPDATE SKIP LOCKED`, and the embedding phase is guarded by an advisory lock.
"""

from __future__ import annotations

import asyncio
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
    chunks: int = 0
    texts_embedded: int = 0
    texts_from_cache: int = 0
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
    "embedding_text",
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
        d.embedding_text,
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
    updates: list[tuple[int, ChunkDraft, bool]] = []
    seen: set[int] = set()
    for draft in drafts:
        key = (draft.source_type, draft.source_id, draft.section)
        current = existing.get(key)
        if current is None:
            inserts.append(draft)
            continue
        seen.add(current["chunk_id"])
        if current["content_hash"] == draft.content_hash:
            stats.unchanged += 1
        else:
            same_meaning = current["embedding_text_hash"] == draft.embedding_text_hash
            updates.append((current["chunk_id"], draft, same_meaning))
    gone = [r["chunk_id"] for r in existing.values() if r["chunk_id"] not in seen]
    if gone:
        await conn.execute(
            "DELETE FROM smart_health.clinical_chunks WHERE chunk_id = ANY($1::bigint[])", gone
        )
    if inserts:
        await conn.copy_records_to_table(
            "clinical_chunks",
            schema_name="smart_health",
            columns=_COLUMNS,
            records=[_row(d) for d in inserts],
        )
    for chunk_id, draft, same_meaning in updates:
        await conn.execute(
            """
            UPDATE smart_health.clinical_chunks SET record_id = $2, occurred_at = $3,
              content = $4, facts = $5::jsonb, search_text = $6, embedding_text = $7,
              embedding_text_hash = $8, content_hash = $9, updated_at = now(),
              embedding = CASE WHEN $10 THEN embedding END,
              embedding_model = CASE WHEN $10 THEN embedding_model END
            WHERE chunk_id = $1
            """,
            chunk_id,
            draft.record_id,
            draft.occurred_at,
            draft.content,
            json.dumps(draft.facts, ensure_ascii=False),
            draft.search_text,
            draft.embedding_text,
            draft.embedding_text_hash,
            draft.content_hash,
            same_meaning,
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
SELECT DISTINCT ON (embedding_text_hash) embedding_text_hash, embedding_text
FROM smart_health.clinical_chunks
WHERE embedding IS NULL
ORDER BY embedding_text_hash
LIMIT $1
"""
_FILL_FROM_CACHE = """
UPDATE smart_health.clinical_chunks c SET embedding = e.embedding, embedding_model = e.model
FROM smart_health.embedding_cache e
WHERE e.model = $1 AND e.text_hash = c.embedding_text_hash
  AND c.embedding_text_hash = ANY($2::text[]) AND c.embedding IS NULL
"""


async def pending_count(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM smart_health.clinical_chunks WHERE embedding IS NULL"
        )
    )


async def forget_other_models(conn: asyncpg.Connection, model: str) -> int:
    """After a model change, vectors of the old model are useless: mark them pending again."""
    result = await conn.execute(
        "UPDATE smart_health.clinical_chunks SET embedding = NULL, embedding_model = NULL "
        "WHERE embedding IS NOT NULL AND embedding_model IS DISTINCT FROM $1",
        model,
    )
    return int(result.split()[-1])


async def embed_pending(
    conn: asyncpg.Connection,
    embedder: Embedder,
    batch_texts: int = 256,
    on_progress: Callable[[int], None] | None = None,
) -> EmbedStats:
    """Give every chunk an embedding of the configured model; embed each distinct text once."""
    stats = EmbedStats()
    model = embedder.model_name
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", EMBED_LOCK):
        return stats  # another worker is embedding right now
    try:
        while True:
            rows = await conn.fetch(_PENDING_TEXTS, batch_texts)
            if not rows:
                return stats
            hashes = [r["embedding_text_hash"] for r in rows]
            cached = {
                r["text_hash"]
                for r in await conn.fetch(
                    "SELECT text_hash FROM smart_health.embedding_cache "
                    "WHERE model = $1 AND text_hash = ANY($2::text[])",
                    model,
                    hashes,
                )
            }
            missing = [r for r in rows if r["embedding_text_hash"] not in cached]
            if missing:
                started = time.perf_counter()
                vectors = await embedder.embed_passages([r["embedding_text"] for r in missing])
                stats.embed_seconds += time.perf_counter() - started
                await conn.executemany(
                    "INSERT INTO smart_health.embedding_cache (text_hash, model, embedding) "
                    "VALUES ($1, $2, CAST($3 AS vector)) ON CONFLICT DO NOTHING",
                    [
                        (r["embedding_text_hash"], model, to_pgvector(v))
                        for r, v in zip(missing, vectors, strict=True)
                    ],
                )
            stats.texts_embedded += len(missing)
            stats.texts_from_cache += len(rows) - len(missing)
            result = await conn.execute(_FILL_FROM_CACHE, model, hashes)
            filled = int(result.split()[-1])
            stats.chunks += filled
            if on_progress is not None:
                on_progress(filled)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", EMBED_LOCK)


async def request_rebuild(conn: asyncpg.Connection, model: str) -> None:
    """Re-chunk every patient and re-embed everything for `model` (e.g. after changing it)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO smart_health.chunk_queue (patient_id) "
            "SELECT patient_id FROM smart_health.patients ON CONFLICT DO NOTHING"
        )
        await conn.execute("DELETE FROM smart_health.embedding_cache WHERE model = $1", model)
        await conn.execute(
            "UPDATE smart_health.clinical_chunks SET embedding = NULL, embedding_model = NULL"
        )


class BackgroundIndexer:
    """The server's indexer task: wakes on NOTIFY from the triggers (or every few seconds)."""

    def __init__(self, dsn: str, embedder: Embedder, poll_seconds: float = 5.0) -> None:
        self.dsn = dsn
        self.embedder = embedder
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database restart and the like: retry shortly
                log.warning("indexer_error", error_type=type(exc).__name__)
                self.idle.clear()
                await asyncio.sleep(self.poll_seconds)

    async def _serve(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await forget_other_models(conn, self.embedder.model_name)
            await conn.add_listener(QUEUE_CHANNEL, lambda *_: self._wake.set())
            while True:
                self._wake.clear()
                synced = await sync_queued(conn)
                embedded = await embed_pending(conn, self.embedder)
                if synced.patients or embedded.chunks:
                    log.info(
                        "indexer_pass",
                        patients=synced.patients,
                        chunks=embedded.chunks,
                        texts_embedded=embedded.texts_embedded,
                    )
                    continue
                self.idle.set()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
                self.idle.clear()
        finally:
            await conn.close()
