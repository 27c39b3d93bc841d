"""The configured answer engine (`LLM_PROVIDER`)."""

from __future__ import annotations

from smarthealth.config import Settings
from smarthealth.rag.engines.base import AnswerEngine
from smarthealth.rag.engines.extractive import ExtractiveEngine


def create_answer_engine(settings: Settings) -> AnswerEngine:
    if settings.llm_provider == "openai":
        from smarthealth.rag.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(settings, fallback=ExtractiveEngine())
    return ExtractiveEngine()
