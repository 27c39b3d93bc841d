"""The figures a scrape reads from the database (no app, so no indexer drains the queue)."""

from __future__ import annotations

import asyncpg

from smarthealth.config import to_libpq_url
from smarthealth.db.engine import create_engine
from smarthealth.metrics.exposition import render
from smarthealth.metrics.instruments import DB_CONNECTIONS_IN_USE
from smarthealth.metrics.pool import watch_pool
from smarthealth.metrics.snapshot import Snapshot, read_snapshot
from tests.conftest import shared_embedder
from tests.metrics.test_metrics_endpoint import samples, value


async def test_queue_length_lag_and_pending_texts(db_url: str) -> None:
    model = shared_embedder().model_name
    engine = create_engine(db_url, pool_size=1)
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        idle = await read_snapshot(engine, model)
        assert idle.database_up and idle.queue_length == 0 and idle.queue_lag_seconds == 0
        assert idle.pending_texts == 0  # the template database is fully embedded
        ids = [
            r[0] for r in await conn.fetch("SELECT patient_id FROM smart_health.patients LIMIT 3")
        ]
        await conn.execute(
            "INSERT INTO smart_health.chunk_queue (patient_id, enqueued_at) "
            "SELECT unnest($1::bigint[]), now() - interval '90 seconds'",
            ids,
        )
        await conn.execute(
            "INSERT INTO smart_health.embedding_texts (text_hash, text) VALUES ('x1', 'nuevo')"
        )
        busy = await read_snapshot(engine, model)
        assert busy.queue_length == 3
        assert 90 <= busy.queue_lag_seconds < 120
        assert busy.pending_texts == 1
        scrape = samples(render(busy).decode())
        assert value(scrape, "smarthealth_indexer_queue_length") == 3
        assert value(scrape, "smarthealth_embedding_pending_texts") == 1
        assert value(scrape, "smarthealth_database_up") == 1
    finally:
        await conn.execute("DELETE FROM smart_health.chunk_queue")
        await conn.execute("DELETE FROM smart_health.embedding_texts WHERE text_hash = 'x1'")
        await conn.close()
        await engine.dispose()


async def test_a_database_that_does_not_answer_is_reported_not_raised() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", pool_size=1)
    try:
        down = await read_snapshot(engine, "m")
    finally:
        await engine.dispose()
    assert down == Snapshot(database_up=False)
    scrape = samples(render(down).decode())
    assert value(scrape, "smarthealth_database_up") == 0
    assert ("smarthealth_indexer_queue_length", ()) not in scrape


async def test_connections_in_use_follow_the_pool(db_url: str) -> None:
    engine = create_engine(db_url, pool_size=2)
    watch_pool(engine)

    def in_use() -> float:
        return DB_CONNECTIONS_IN_USE._value.get()  # type: ignore[attr-defined]

    start = in_use()
    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.exec_driver_sql("SELECT 1")
            await second.exec_driver_sql("SELECT 1")
            assert in_use() == start + 2
        assert in_use() == start
    finally:
        await engine.dispose()
