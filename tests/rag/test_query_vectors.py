"""Question vectors: many clinicians asking the same new question share one model call."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import numpy as np

from smarthealth.chat.pipeline import QuestionPipeline
from smarthealth.db.session import Database
from smarthealth.rag.engines.extractive import ExtractiveEngine
from tests.conftest import shared_embedder


class CountingEmbedder:
    """The real local model, counting calls; `gate` holds every call until the test opens it."""

    def __init__(self, fail: bool = False) -> None:
        self.model_name = shared_embedder().model_name
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.fail = fail

    async def embed_query(self, text: str) -> np.ndarray:
        self.calls.append(text)
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("model server down")
        return await shared_embedder().embed_query(text)

    async def embed_passages(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("questions only")


def _pipeline(embedder: CountingEmbedder) -> QuestionPipeline:
    return QuestionPipeline(cast(Database, None), cast(Any, embedder), ExtractiveEngine())


async def test_concurrent_identical_questions_share_one_model_call() -> None:
    embedder = CountingEmbedder()
    pipeline = _pipeline(embedder)
    waiters = [asyncio.create_task(pipeline._query_vector("¿Tiene alergias?")) for _ in range(20)]
    waiters.append(asyncio.create_task(pipeline._query_vector("¿TIENE ALERGIAS?")))  # same fold
    waiters.append(asyncio.create_task(pipeline._query_vector("¿Qué medicamentos toma?")))
    await asyncio.sleep(0.05)
    waiters[0].cancel()  # one clinician gives up: the others still get their vector
    embedder.gate.set()
    vectors = await asyncio.gather(*waiters[1:])
    assert sorted(embedder.calls) == ["¿Qué medicamentos toma?", "¿Tiene alergias?"]
    assert all(np.array_equal(v, vectors[0]) for v in vectors[:20])
    assert not np.array_equal(vectors[0], vectors[-1])
    again = await pipeline._query_vector("¿tiene alergias?")
    assert np.array_equal(again, vectors[0]) and len(embedder.calls) == 2  # cached


async def test_a_failed_model_call_reaches_every_waiter_and_is_retried() -> None:
    embedder = CountingEmbedder(fail=True)
    pipeline = _pipeline(embedder)
    waiters = [asyncio.create_task(pipeline._query_vector("¿Tiene alergias?")) for _ in range(3)]
    await asyncio.sleep(0.05)
    embedder.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert len(embedder.calls) == 1
    embedder.fail = False
    vector = await pipeline._query_vector("¿Tiene alergias?")
    assert vector is not None and len(embedder.calls) == 2


async def test_cancelling_the_only_waiter_does_not_waste_the_model_call() -> None:
    embedder = CountingEmbedder()
    pipeline = _pipeline(embedder)
    waiter = asyncio.create_task(pipeline._query_vector("¿Tiene alergias?"))
    await asyncio.sleep(0.05)
    waiter.cancel()
    embedder.gate.set()
    await pipeline._query_vector("¿Tiene alergias?")
    assert len(embedder.calls) == 1
