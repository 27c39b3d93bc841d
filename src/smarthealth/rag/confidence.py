"""Answer confidence, computed from the evidence behind the cited sources.

    abstention:  0.10
    otherwise:   0.20 + 0.35·intent_match + 0.25·agreement + 0.20·semantic
                 − 0.15·invalid − 0.15·removed, clamped to [0.05, 0.99]

- intent_match: share of cited chunks whose type is one the plan's subject reads (1 when the
  plan has no subject);
- agreement: share of cited chunks found by at least two of the three legs (vector, lexical,
  intent), or selected by executing the plan over the structured record (exact: 1);
- semantic: mean over cited chunks of (cosine − 0.75) / 0.15, clipped to [0, 1] (0.5 when no
  vector score is available, e.g. embeddings still being computed);
- invalid: citations an LLM made to sources it was not given (each one removed and penalised);
- removed: an LLM's sentences its cited sources did not support (removed: the rest of its
  answer is less to be trusted). Not counted when the fallback's answer replaced the LLM's.
"""

from __future__ import annotations

from collections.abc import Sequence

from smarthealth.rag.engines.base import DraftAnswer, SourceFact
from smarthealth.rag.plan import QuestionPlan

ABSTENTION = 0.10


def confidence(draft: DraftAnswer, sources: Sequence[SourceFact], plan: QuestionPlan) -> float:
    if draft.abstained or not draft.cited:
        return ABSTENTION
    by_number = {s.number: s for s in sources}
    cited = [by_number[n] for n in draft.cited if n in by_number]
    if not cited:
        return ABSTENTION
    wanted = set(plan.source_types)
    intent_match = sum(1 for s in cited if s.source_type in wanted) / len(cited) if wanted else 1.0
    agreement = sum(1 for s in cited if len(s.scores) >= 2 or "plan" in s.scores) / len(cited)
    vectors = [s.scores["vector"] for s in cited if "vector" in s.scores]
    if all("plan" in s.scores for s in cited):
        vectors = [0.9]  # the plan named what the rows are: as sure as a very close meaning
    semantic = (
        sum(min(max((v - 0.75) / 0.15, 0.0), 1.0) for v in vectors) / len(vectors)
        if vectors
        else 0.5
    )
    value = 0.20 + 0.35 * intent_match + 0.25 * agreement + 0.20 * semantic
    value -= 0.15 * draft.invalid_citations
    if draft.fallback_reason is None:
        value -= 0.15 * draft.removed_sentences
    return round(min(max(value, 0.05), 0.99), 2)
