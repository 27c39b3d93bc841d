"""The CI subset of `smarthealth eval`: the gold set of 12 patients of the test database (40
patients, seed 7, evaluated as of its anchor day 2026-06-15), sampled to at most 250 questions
over every category and both halves of the phrasings, run through the real pipeline with the
offline defaults. The full run lives in bench/eval_full.py.

This module holds the gold set's structure, leakage at 0 and a per-category regression
floor (`FLOORS`). Failure messages show development phrasings only; held-out questions are
named by their phrasing id (whoever tunes the engine reads CI output)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import pytest
from rich.console import Console

from smarthealth.config import to_libpq_url
from smarthealth.evaluation import metrics
from smarthealth.evaluation import phrasings as ph
from smarthealth.evaluation.gold import (
    GoldSet,
    base_name,
    build_gold_set,
    catalog,
    dmy,
    drug_forms,
    months_before,
    number_forms,
    spoken_name,
)
from smarthealth.evaluation.kinds import CATEGORIES, HALVES, KINDS, ROBUSTNESS
from smarthealth.evaluation.runner import (
    OVERALL,
    EvalReport,
    QuestionResult,
    evaluate,
    render_table,
    report_json,
)
from smarthealth.rag.text import fold
from tests.conftest import TEMPLATE_TODAY, shared_embedder

GOLD_PATIENTS = 12
SAMPLE = 300  # 250 before the ten kinds of labs, vaccines, procedures and non-drug allergies
MIN_PER_HALF = 8

# Per-category accuracy (both halves together) of this sample that the offline engine must keep.
# Measured 2026-12-05 19:35 UTC (after the planner rounds on independent probe sets and the record
# kinds of issue 11) over the test database seeded with seeds 7 to 11, a sample of 300 (so that a
# change of the seeder does not fail it by chance): the lowest accuracy minus 0.05, or minus one
# question's worth where the category has fewer than 20 questions in the sample. (Before the
# planner the same floors were 0.00–0.60; overall 0.55.)
FLOORS: dict[str, float] = {
    "medications": 0.95,  # measured 1.000–1.000, n ≥ 20
    "dose": 0.75,  # measured 0.875–1.000, n ≥ 8
    "allergies": 0.91,  # measured 0.964–1.000, n ≥ 24
    "diagnoses": 0.91,  # measured 1.000–1.000, n ≥ 12
    "first_occurrence": 0.62,  # measured 0.750–1.000, n ≥ 8
    "vitals": 0.88,  # measured 0.938–1.000, n ≥ 32
    "series": 0.83,  # measured 0.917–1.000, n ≥ 12
    "labs": 0.74,  # measured 0.833–1.000, n ≥ 12
    "immunizations": 0.91,  # measured 1.000–1.000, n ≥ 12
    "procedures": 0.87,  # measured 1.000–1.000, n ≥ 8
    "counts": 0.87,  # measured 0.938–1.000, n ≥ 16
    "appointments": 0.87,  # measured 0.938–1.000, n ≥ 16
    "encounter_types": 0.91,  # measured 1.000–1.000, n ≥ 12
    "doctors": 0.87,  # measured 1.000–1.000, n ≥ 8
    "specialties": 0.87,  # measured 1.000–1.000, n ≥ 8
    "demographics": 0.95,  # measured 1.000–1.000, n ≥ 20
    "notes": 0.83,  # measured 0.917–1.000, n ≥ 12
    "summary": 0.75,  # measured 1.000–1.000, n ≥ 4
    "out_of_record": 0.93,  # measured 1.000–1.000, n ≥ 16
    "follow_up": 0.87,  # measured 0.938–1.000, n ≥ 16
    ROBUSTNESS: 0.92,  # measured 0.975–0.992, n ≥ 111
    OVERALL: 0.92,  # measured 0.979–0.993, n ≥ 280
}


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


@pytest.fixture(scope="module")
async def full_gold(db_url: str) -> GoldSet:
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        return await build_gold_set(
            conn, shared_embedder().model_name, GOLD_PATIENTS, TEMPLATE_TODAY
        )
    finally:
        await conn.close()


def _shown(r: QuestionResult) -> str:
    """A failing question for a message: its text for dev, its phrasing id for held-out."""
    question = r.question if r.half == "dev" else f"<{r.phrasing}>"
    return f"{r.qid} [{r.kind}] {question!r} → {r.answer[:120]!r} {r.problems}"


# -- the gold set -------------------------------------------------------------------------------


async def test_subset_covers_every_category_and_both_halves(run: Run) -> None:
    scored = [q for q in run.gold.questions if q.scored]
    assert len(run.gold.questions) <= SAMPLE
    assert len(scored) >= 150
    assert len({q.patient_id for q in scored}) >= 6
    for half in HALVES:
        asked = {q.category for q in scored if q.half == half}
        assert asked == set(CATEGORIES), (half, set(CATEGORIES) - asked)
        assert any(q.robust for q in scored if q.half == half), half
    for category, per_half in run.report.per_category.items():
        if category != OVERALL:
            assert set(per_half) == {*HALVES, "all"}, category


async def test_full_gold_set_asks_every_kind_and_phrasing(full_gold: GoldSet) -> None:
    """Every kind at least 8 times per half; every phrasing asked of some patient (a few
    out-of-record ones may be skipped when a record mentions their topic)."""
    scored = [q for q in full_gold.questions if q.scored]
    per = Counter((q.kind, q.half) for q in scored)
    for kind in KINDS:
        for half in HALVES:
            assert per[(kind.name, half)] >= MIN_PER_HALF, (kind.name, half, per[(kind.name, half)])
    asked = {q.phrasing for q in scored}
    # topics some record talks about (a seeded record holds vaccines, procedures and labs): the
    # phrasings about them are not asked of those patients, and may be asked of none
    mentioned = {s.rsplit(" ", 1)[1] for s in full_gold.skipped if "record mentions" in s}
    for half in HALVES:
        for name, phrasings in ph.load(half).items():
            missing = [p.pid for p in phrasings if p.pid not in asked]
            if name.startswith("oor_"):
                unexplained = [
                    p.pid for p in phrasings if p.pid in missing and p.topic not in mentioned
                ]
                limit = len(phrasings) // 2  # a number: a failure shows ids, never a phrasing
                assert len(unexplained) <= limit, unexplained
            else:
                assert not missing, missing
    texts = {half: {q.text for q in scored if q.half == half} for half in HALVES}
    shared = len(texts["dev"] & texts["heldout"])  # a count: no held-out text printed
    assert shared == 0


async def test_truth_is_computed_and_grounded_in_the_record(
    full_gold: GoldSet, db_url: str
) -> None:
    """Every expected fact is stated by a chunk of its group, every group is the patient's, and
    where the record has the data the truth says so: computed from the record, not by hand."""
    questions = full_gold.questions
    chunk_ids = {c for q in questions for g in q.relevant for c in g}
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        rows = await conn.fetch(
            "SELECT chunk_id, patient_id, content FROM smart_health.clinical_chunks "
            "WHERE chunk_id = ANY($1::bigint[])",
            list(chunk_ids),
        )
        with_visits = {
            r["patient_id"]
            for r in await conn.fetch(
                "SELECT DISTINCT patient_id FROM smart_health.medical_records "
                "WHERE registration_datetime <= $1",
                full_gold.now,
            )
        }
    finally:
        await conn.close()
    chunks = {r["chunk_id"]: r for r in rows}
    for q in questions:
        assert q.facts, q.qid
        assert len(q.facts) == len(q.relevant), q.qid
        if q.evidence == metrics.REQUIRED:
            assert any(q.relevant), q.qid
        if q.evidence == metrics.NONE:
            assert not any(q.relevant), q.qid
        for fact, group in zip(q.facts, q.relevant, strict=True):
            if not group:
                continue
            assert all(chunks[c]["patient_id"] == q.patient_id for c in group), q.qid
            if fact.derived:
                continue  # an age, a count: computed from what the chunks state
            text = fold(" ".join(chunks[c]["content"] for c in group))
            assert any(metrics.contains_form(text, f) for f in fact.forms), (q.qid, fact)
    for q in questions:
        if q.patient_id in with_visits and q.kind in ("vital_bp", "dx_list", "doc_last"):
            assert q.evidence == metrics.REQUIRED, q.qid
        if q.patient_id not in with_visits and q.kind in ("vital_bp", "dx_list", "doc_last"):
            assert q.evidence == metrics.NONE, q.qid


# -- the truths' helpers and the metrics --------------------------------------------------------


def test_drug_names_salts_classes_and_numbers() -> None:
    assert base_name("losartán potásico") == "losartán"
    assert base_name("warfarina sódica") == "warfarina"
    assert base_name("dipirona (metamizol sódico)") == "dipirona"
    assert base_name("sulfato ferroso") == "sulfato ferroso"
    assert spoken_name("acetaminofén + codeína") == "acetaminofén con codeína"
    assert {"losartán", "losartán potásico"} <= set(drug_forms("losartán potásico"))
    assert "metamizol" in drug_forms("dipirona (metamizol sódico)")
    assert "amoxicilina y ácido clavulánico" in drug_forms("amoxicilina + ácido clavulánico")
    cat = catalog()
    assert cat.classes_of("J01DB01", "cefalexina") == {"cefalosporinas"}
    assert cat.classes_of("S02AA15", "ciprofloxacino") == {"quinolonas"}
    assert cat.classes_of("M02AA15", "diclofenaco dietilamina") == {"aine"}
    assert cat.classes_of("N02AJ06", "acetaminofén + codeína") == {"opioides"}
    assert cat.classes_of("J01CR02", "amoxicilina + ácido clavulánico") == {"penicilinas"}
    assert cat.classes_of("N02BE01", "acetaminofén") == set()
    assert cat.classes_of("B01AC06", "ácido acetilsalicílico") == set()
    assert set(number_forms(Decimal("36.5"))) == {"36.5", "36,5"}
    assert {"72", "72.0", "72,0"} <= set(number_forms(Decimal("72.0")))
    assert months_before(dt.date(2026, 6, 15), 6) == dt.date(2025, 12, 15)
    assert months_before(dt.date(2026, 8, 31), 6) == dt.date(2026, 2, 28)


def test_fact_forms_match_whole_tokens_case_and_accent_folded() -> None:
    found, missing = metrics.fact_hits(
        [("a", ("Losartán",)), ("b", ("O+",)), ("c", ("120/80",)), ("d", ("5 mg",))],
        "Recibe LOSARTAN; grupo sanguíneo O+, presión 120/805, dosis 15 mg",
    )
    assert found == ["a", "b"] and missing == ["c", "d"]
    assert dmy(dt.date(2024, 3, 5)) == ("05/03/2024", "2024-03-05")
    folded = fold("¿Sí? Tiene alergia a la penicilina [1].")
    assert metrics.contains_form(folded, "^si")
    assert not metrics.contains_form(fold("Sin alergias registradas."), "^si")
    assert not metrics.contains_form(fold("Tiene, sí, alergia"), "^si")
    assert metrics.contains_form(fold("No encuentro alergias."), "^no")
    assert not metrics.contains_form(fold("Nota: no tiene"), "^no")


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


def test_evidence_abstention_recall_and_percentiles() -> None:
    assert metrics.evidence_ok(metrics.REQUIRED, 1) and not metrics.evidence_ok("required", 0)
    assert metrics.evidence_ok(metrics.NONE, 0) and not metrics.evidence_ok("none", 2)
    assert metrics.evidence_ok(metrics.ANY, 0) and metrics.evidence_ok("any", 3)
    assert metrics.abstains("No encuentro información sobre tabaco en la historia.", 0)
    assert not metrics.abstains("No encuentro información sobre tabaco.", 1)
    assert not metrics.abstains("No fuma.", 0)
    assert metrics.retrieval_hit([[1, 2], [3]], [9, 2, 3]) == (True, [])
    assert metrics.retrieval_hit([[1], [3]], [9, 8, 7, 6, 5, 4, 2, 10, 1, 3]) == (
        False,
        [[1], [3]],
    )
    assert metrics.percentile([5, 1, 3, 2, 4], 50) == 3
    assert metrics.percentile([float(i) for i in range(1, 101)], 90) == 90.0
    assert metrics.names_leaked("Paciente Ana Ruiz, CC 123", [("Ana Ruiz", "999")]) == ["Ana Ruiz"]
    assert metrics.names_leaked("dosis 1234 mg", [("Luis Paz", "123")]) == []


# -- the run ------------------------------------------------------------------------------------


async def test_report_renders_and_keeps_heldout_texts_out_of_the_json(run: Run) -> None:
    console = Console(record=True, width=160)
    render_table(run.report, console)
    table = console.export_text()
    assert "total" in table and "held-out" in table and "robustez" in table
    data = json.loads(json.dumps(report_json(run.report), ensure_ascii=False))
    assert set(data["per_category"]) >= {*CATEGORIES, ROBUSTNESS, OVERALL}
    scored = sum(q.scored for q in run.gold.questions)
    assert data["per_category"][OVERALL]["all"]["questions"] == scored
    assert set(data["length"]) == {*HALVES, "all"}
    for row in data["results"]:
        assert {"half", "category", "kind", "answer", "facts_expected", "problems"} <= set(row)
        redacted = row["question"] == f"<held-out phrasing {row['phrasing']}>"
        assert redacted == (row["half"] == "heldout"), row["qid"]  # a bool: no text printed
    shown = report_json(run.report, show_heldout=True)["results"]
    texts = {q.qid: q.text for q in run.gold.questions}
    all_shown = all(r["question"] == texts[r["qid"]] for r in shown)
    assert all_shown
    assert run.seconds < 120, run.seconds  # about 20 s on an idle 2-core machine


async def test_subset_leaks_nothing_and_keeps_the_floors(run: Run) -> None:
    report = run.report
    accuracy = {name: m["all"].accuracy for name, m in report.per_category.items()}
    failing = [r for r in report.results if r.scored and not r.correct]
    detail = "\n".join(_shown(r) for r in failing if r.half == "dev")
    summary = f"accuracy per category {accuracy}\nfailing dev questions:\n{detail}"
    assert report.per_category[OVERALL]["all"].leakage == 0, summary
    assert set(FLOORS) == {*CATEGORIES, ROBUSTNESS, OVERALL}
    below = {
        name: (accuracy.get(name), floor)
        for name, floor in FLOORS.items()
        if (accuracy.get(name) or 0.0) < floor
    }
    assert not below, f"below the floor: {below}\n{summary}"
