"""Answer engines: `extractive` (offline, deterministic) and `openai` (any compatible LLM)."""
