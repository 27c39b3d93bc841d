"""The real extractive engine, slowed per token: long enough to watch a stream, cancel it or
collide with it (the answers themselves are the product's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from smarthealth.rag.engines.base import AnswerContext, DraftAnswer
from smarthealth.rag.engines.extractive import ExtractiveEngine


class PacedEngine:
    name = "paced-extractive"

    def __init__(self, seconds_per_token: float) -> None:
        self.delay = seconds_per_token

    async def generate(self, context: AnswerContext) -> AsyncGenerator[str | DraftAnswer, None]:
        async for item in ExtractiveEngine().generate(context):
            if isinstance(item, str):
                await asyncio.sleep(self.delay)
            yield item
