"""The planner's last resort: the subject of the nearest labelled question, by meaning.

The exemplars (`rag/data/exemplars.txt`) are embedded once with the configured embedder. A
question the rules do not settle takes the subject of its nearest exemplar when that exemplar is
close enough and clearly closer than the nearest exemplar of any other subject; otherwise the
planner abstains (the answer says it does not know, rather than guessing).
"""

from __future__ import annotations

import asyncio
import functools
from importlib import resources

import numpy as np

from smarthealth.rag.embeddings import Embedder

MIN_SIMILARITY = 0.90  # multilingual-e5: unrelated short questions score 0.85-0.89
MIN_MARGIN = 0.03  # over the nearest exemplar of another subject


@functools.cache
def exemplars() -> tuple[tuple[str, str], ...]:
    """(subject, question) pairs."""
    text = resources.files("smarthealth.rag").joinpath("data", "exemplars.txt").read_text("utf-8")
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            subject, _, question = line.partition("|")
            pairs.append((subject.strip(), question.strip()))
    return tuple(pairs)


class ExemplarIndex:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._vectors: np.ndarray | None = None
        self._lock = asyncio.Lock()

    async def _matrix(self) -> np.ndarray:
        async with self._lock:
            if self._vectors is None:  # as queries: a question is compared with questions
                vectors = [await self.embedder.embed_query(q) for _, q in exemplars()]
                self._vectors = np.stack(vectors)
            return self._vectors

    async def nearest(self, vector: np.ndarray) -> tuple[str, float] | None:
        """(subject, margin) of the nearest exemplar, or None below the thresholds."""
        matrix = await self._matrix()
        scores = matrix @ vector
        labels = [s for s, _ in exemplars()]
        best: dict[str, float] = {}
        for label, score in zip(labels, scores.tolist(), strict=True):
            best[label] = max(best.get(label, -1.0), float(score))
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        (subject, top), runner_up = ranked[0], ranked[1][1] if len(ranked) > 1 else -1.0
        if top < MIN_SIMILARITY or top - runner_up < MIN_MARGIN:
            return None
        return subject, round(top - runner_up, 3)
