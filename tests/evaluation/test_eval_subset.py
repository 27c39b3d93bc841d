"""The CI subset of `smarthealth eval`: the gold set of the seeded test database (40 patients,
seed 7, evaluated as of its anchor day 2026-06-15), sampled to at most 100 questions over every
intent, run through the real pipeline with the offline defaults, held to the issue's targets.
The full run lives in bench/eval_full.py."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from rich.console import Console

from smarthealth.config import to_libpq_url
from smarthealth.evaluation import metrics
from smarthealth.evaluation.gold import INTENTS, GoldSet, build_gold_set, dmy
from smarthealth.evaluation.runner import EvalReport, evaluate, render_table, report_json
from smarthealth.rag.text import fold
from tests.conftest import TEMPLATE_TODAY, shared_embedder

GOLD_PATIENTS = 8
SAMPLE = 100


@dataclass
class Run:
    report: EvalReport
    gold: GoldSet
    seconds: float


@pytest.fixture(scope="module")
async def run(db_url: str) -> AsyncIterator[Run]:
    captured: list[GoldSet] = []
    started = time.perf_counter()
    report = await evaluate(
        db_url,
        GOLD_PATIENTS,
        limit=SAMPLE,
        embedder=shared_embedder(),
        on_gold=captured.append,
        today=TEMPLATE_TODAY,  # the day the test record was seeded for
    )
    yield Run(report, captured[0], time.perf_counter() - started)


# -- the gold set -------------------------------------------------------------------------------


async def test_subset_covers_every_intent_and_kind_of_question(run: Run) -> None:
    gold = run.gold
    assert len(gold.questions) >= 40
    assert len({q.patient_id for q in gold.questions}) >= 4
    assert {q.intent for q in gold.questions} >= set(INTENTS)
    shares = gold.shares()
    for kind in ("paraphrase", "unanswerable", "follow_up"):
        assert shares[kind] >= 0.20, (kind, shares)
    assert {q.time for q in gold.questions} >= {
        "ultimo",
        "mas_reciente",
        "proxima",
        "anio",
        "antes",
    }


async def test_full_gold_set_meets_the_issue_minimums(db_url: str) -> None:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        gold = await build_gold_set(conn, shared_embedder().model_name, 12, TEMPLATE_TODAY)
    finally:
        await conn.close()
    assert len(gold.questions) >= 120
    assert len(gold.patients) >= 12
    assert {q.intent for q in gold.questions} >= set(INTENTS)
    for kind, share in gold.shares().items():
        assert share >= 0.20, (kind, gold.shares())


async def test_expectations_are_grounded_in_the_relevant_chunks(run: Run, db_url: str) -> None:
    """Every expected fact is stated by a chunk of its group, and every group is the patient's:
    the gold set is computed from the record, not written by hand."""
    chunk_ids = {c for q in run.gold.questions for g in q.relevant for c in g}
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        rows = await conn.fetch(
            "SELECT chunk_id, patient_id, content FROM smart_health.clinical_chunks "
            "WHERE chunk_id = ANY($1::bigint[])",
            list(chunk_ids),
        )
    finally:
        await conn.close()
    chunks = {r["chunk_id"]: r for r in rows}
    for q in run.gold.questions:
        assert q.answerable == bool(q.facts) == bool(q.relevant), q.qid
        assert len(q.facts) == len(q.relevant), q.qid
        for fact, group in zip(q.facts, q.relevant, strict=True):
            assert group, (q.qid, fact)
            assert all(chunks[c]["patient_id"] == q.patient_id for c in group), q.qid
            if fact.label.endswith(" años"):
                continue  # an age is derived from the birth date the chunk states
            text = fold(" ".join(chunks[c]["content"] for c in group))
            assert any(metrics.contains_form(text, form) for form in fact.forms), (q.qid, fact)


# -- the metrics --------------------------------------------------------------------------------


def test_fact_forms_match_whole_tokens_case_and_accent_folded() -> None:
    found, missing = metrics.fact_hits(
        [("a", ("Losartán",)), ("b", ("O+",)), ("c", ("120/80",)), ("d", ("5 mg",))],
        "Recibe LOSARTAN; grupo sanguíneo O+, presión 120/805, dosis 15 mg",
    )
    assert found == ["a", "b"] and missing == ["c", "d"]
    assert dmy(dt.date(2024, 3, 5)) == ("05/03/2024", "2024-03-05")


def test_citation_segments_and_support_rule() -> None:
    answer = (
        "Tiene 1 medicamento(s) vigente(s): Losartán 50 mg tableta: 1 tableta cada 12 horas "
        "por 30 días; formulado el 05/03/2024 [1]. Diagnósticos: Hipertensión (I10) [2]; "
        "Diabetes (E11.9) [3][4]."
    )
    cites = metrics.citations(answer)
    assert [c.number for c in cites] == [1, 2, 3, 4]
    assert cites[2].segment == cites[3].segment and "E11.9" in cites[2].segment
    today = dt.date(2026, 6, 15)
    rx = "2024-03-05 · Prescripción: losartán 50 mg tableta, 1 tableta cada 12 horas por 30 días"
    ok, check = metrics.citation_supported(cites[0].segment, rx, "prescription", (), True, today)
    assert ok and "05/03/2024" in check.tokens and "50 mg" in check.tokens
    ok, check = metrics.citation_supported(cites[1].segment, rx, "prescription", (), True, today)
    assert not ok and check.missing == ["I10"]
    ok, _ = metrics.citation_supported(cites[0].segment, rx, "prescription", (), False, today)
    assert not ok  # another patient's chunk never supports anything
    card = "Paciente Ana Ruiz, CC 123, sexo femenino, nacido el 1980-06-16, grupo sanguíneo O+."
    ok, _ = metrics.citation_supported("Ana Ruiz, 45 años ", card, "demographics", (), True, today)
    assert ok  # 45 is her age on 2026-06-15
    ok, _ = metrics.citation_supported("Ana Ruiz, 46 años ", card, "demographics", (), True, today)
    assert not ok
    ok, _ = metrics.citation_supported("Ana Ruiz ", card, "note", ("demographics",), True, today)
    assert not ok  # nothing checkable: the chunk type must be one the question asks for


def test_abstention_recall_and_percentiles() -> None:
    assert metrics.abstention_correct(False, "No encuentro alergias registradas.", 0)
    assert not metrics.abstention_correct(False, "Alergia a penicilina [1].", 1)
    assert not metrics.abstention_correct(False, "No sé.", 0)
    assert metrics.abstention_correct(True, "Alergia a penicilina [1].", 1)
    assert metrics.retrieval_hit([[1, 2], [3]], [9, 2, 3]) == (True, [])
    assert metrics.retrieval_hit([[1], [3]], [9, 8, 7, 6, 5, 4, 2, 10, 1, 3]) == (
        False,
        [[1], [3]],
    )
    assert metrics.percentile([5, 1, 3, 2, 4], 50) == 3
    assert metrics.percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert metrics.names_leaked("Paciente Ana Ruiz, CC 123", [("Ana Ruiz", "999")]) == ["Ana Ruiz"]
    assert metrics.names_leaked("dosis 1234 mg", [("Luis Paz", "123")]) == []


# -- the run ------------------------------------------------------------------------------------


async def test_report_renders_as_table_and_json(run: Run) -> None:
    console = Console(record=True, width=120)
    render_table(run.report, console)
    assert "total" in console.export_text()
    data = json.loads(json.dumps(report_json(run.report), ensure_ascii=False))
    assert set(data["per_intent"]) >= set(INTENTS)
    assert data["overall"]["questions"] == len(run.gold.questions)
    assert run.seconds < 120, run.seconds  # ~5 s on an idle 2-core machine


async def test_subset_meets_the_targets(run: Run) -> None:
    report = run.report
    overall = report.overall
    failing = [r for r in report.results if r.problems]
    detail = "\n".join(
        f"  {r.qid} [{r.intent}] {r.question!r} → {r.answer[:140]!r}\n      {r.problems}"
        for r in failing[:25]
    )
    summary = (
        f"recall@8={overall.recall_at_8} fact_recall={overall.fact_recall} "
        f"citation_precision={overall.citation_precision} "
        f"abstention_accuracy={overall.abstention_accuracy} leakage={overall.leakage}; "
        f"missed {report.missed_targets}; {len(failing)} question(s) with problems:\n{detail}"
    )
    assert overall.leakage == 0, summary
    assert report.missed_targets == [], summary
