"""Questions that name a drug ("¿Toma losartán?") are answered about that drug only."""

from __future__ import annotations

import datetime as dt

from smarthealth.rag.conditions import asked_drugs
from smarthealth.rag.engines.base import AnswerContext, SourceFact
from smarthealth.rag.engines.extractive import compose
from smarthealth.rag.intent import analyse

TODAY = dt.date(2026, 11, 26)


def test_drugs_are_named_by_ingredient_or_brand() -> None:
    assert asked_drugs("¿Está tomando Glucophage?") == ("metformina",)
    assert asked_drugs("¿Le formularon METFORMINA?") == ("metformina",)
    assert "losartán potásico" in asked_drugs("¿Toma losartán?")
    assert asked_drugs("¿Qué medicamentos toma actualmente?") == ()
    assert asked_drugs("¿Tiene el esquema de vacunación de adulto?") == ()


def _prescription(number: int, ingredient: str, brand: str, start: dt.date) -> SourceFact:
    end = start + dt.timedelta(days=30)
    return SourceFact(
        number=number,
        chunk_id=number,
        source_type="prescription",
        occurred_at=dt.datetime.combine(start, dt.time(9), dt.UTC),
        content=f"Prescripción: {ingredient} ({brand}).",
        facts={
            "ingredient": ingredient,
            "commercial_name": brand,
            "strength": "50 mg",
            "form": "tableta",
            "dosage": "1 tableta",
            "frequency": "cada 12 horas",
            "duration_days": 30,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "diagnosis": "Hipertensión esencial (primaria)",
        },
    )


def _answer(question: str) -> tuple[str, tuple[int, ...]]:
    analysis = analyse(question)
    sources = (
        _prescription(1, "metformina", "Glucophage", TODAY - dt.timedelta(days=200)),
        _prescription(2, "losartán potásico", "Cozaar", TODAY - dt.timedelta(days=10)),
    )
    return compose(
        AnswerContext(
            question=question,
            patient_name="Humberto Vásquez",
            intents=analysis.intents,
            sources=sources,
            today=TODAY,
            focus=analysis.focus,
        )
    )


def test_a_named_drug_is_answered_alone() -> None:
    text, cited = _answer("¿Toma losartán?")
    assert text.startswith("Tiene 1 medicamento(s) vigente(s): Losartán potásico (Cozaar)")
    assert "etformina" not in text and cited == (2,)
    text, cited = _answer("¿Qué dosis de metformina toma?")
    assert text.startswith("La dosis de metformina (Glucophage)") and cited == (1,)


def test_a_named_drug_not_prescribed_is_an_honest_no() -> None:
    text, cited = _answer("¿Toma atorvastatina o Lipitor?")
    assert text == "No encuentro atorvastatina entre las prescripciones de Humberto Vásquez."
    assert cited == ()
