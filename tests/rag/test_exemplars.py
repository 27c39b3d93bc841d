"""The planner's last resort: the nearest labelled question decides only when clearly closest."""

from __future__ import annotations

import datetime as dt

from smarthealth.rag.exemplars import ExemplarIndex, exemplars
from smarthealth.rag.planner import Context, plan_question
from tests.conftest import shared_embedder

TODAY = dt.date(2026, 6, 15)


async def test_an_unseen_paraphrase_takes_the_subject_of_its_nearest_exemplar() -> None:
    index = ExemplarIndex(shared_embedder())
    question = "¿Qué le dio el médico?"
    assert question not in {q for _, q in exemplars()}
    rules = plan_question(question, Context(TODAY))
    assert rules.subject == "unknown" and rules.source == "none"
    nearest = await index.nearest(await shared_embedder().embed_query(question))
    assert nearest is not None and nearest[0] == "medication"
    plan = plan_question(question, Context(TODAY, exemplar=nearest))
    assert (plan.subject, plan.source, plan.margin) == ("medication", "exemplar", nearest[1])


async def test_no_clear_exemplar_means_no_subject() -> None:
    index = ExemplarIndex(shared_embedder())
    for question in ("¿Cuál es su estado de ánimo?", "¿Cómo está el paciente hoy?"):
        assert await index.nearest(await shared_embedder().embed_query(question)) is None
        plan = plan_question(question, Context(TODAY, exemplar=("unknown", 0.0)))
        assert plan.subject == "unknown", question


def test_a_weak_cue_needs_an_exemplar_that_agrees() -> None:
    question = "¿Qué toma?"  # "toma" alone is a weak cue
    assert plan_question(question, Context(TODAY)).source == "weak"
    agreed = plan_question(question, Context(TODAY, exemplar=("medication", 0.1)))
    assert (agreed.subject, agreed.source) == ("medication", "exemplar")
    refused = plan_question(question, Context(TODAY, exemplar=("unknown", 0.0)))
    assert refused.subject == "unknown"
