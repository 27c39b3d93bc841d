"""Yes/no questions about a condition: common names count, look-alike words do not."""

from __future__ import annotations

import datetime as dt

import pytest

from smarthealth.rag.conditions import asked_conditions, question_names_diagnosis, same_word
from smarthealth.rag.engines.base import AnswerContext, SourceFact
from smarthealth.rag.engines.extractive import compose
from smarthealth.rag.intent import analyse


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("insomnio", "insomnios", True),
        ("cardiaca", "cardiaco", True),
        ("diabetes", "diabetica", True),
        ("asma", "asma", True),
        ("hipertension", "hiperlipidemia", False),
        ("hipotiroidismo", "hipertiroidismo", False),
        ("asma", "asmas", False),  # too short to allow an ending
        ("renal", "rinitis", False),
    ],
)
def test_same_word(a: str, b: str, same: bool) -> None:
    assert same_word(a, b) is same


def test_asked_conditions_split_alternatives_and_drop_generic_words() -> None:
    assert asked_conditions("¿Tiene diagnóstico de hipertensión o diabetes?") == [
        ("hipertension",),
        ("diabetes",),
    ]
    assert asked_conditions("¿Tiene el colesterol alto?") == [("colesterol", "alto")]
    assert asked_conditions("¿Tiene diagnósticos registrados?") == []


@pytest.mark.parametrize(
    ("question", "icd_code", "description", "named"),
    [
        ("¿Tiene dislipidemia?", "E78.5", "Hiperlipidemia no especificada", True),
        ("¿Tiene el colesterol alto?", "E78.5", "Hiperlipidemia no especificada", True),
        ("¿Tiene hipertensión?", "E78.5", "Hiperlipidemia no especificada", False),
        ("¿Padece de hipertiroidismo?", "E05.9", "Tirotoxicosis, no especificada", True),
        ("¿Tiene hipotiroidismo?", "E05.9", "Tirotoxicosis, no especificada", False),
        ("¿Tiene insuficiencia renal?", "I50.0", "Insuficiencia cardíaca congestiva", False),
        ("¿Tiene insuficiencia renal?", "N18.9", "Enfermedad renal crónica, no especificada", True),
        (
            "¿Tiene insomnio?",
            "G47.0",
            "Trastornos del inicio y del mantenimiento del sueño [insomnios]",
            True,
        ),
        ("¿Tiene E11?", "E11.9", "Diabetes mellitus tipo 2 sin complicaciones", True),
        ("¿Tiene hipertensión arterial?", "I10", "Hipertensión esencial (primaria)", True),
    ],
)
def test_question_names_diagnosis(
    question: str, icd_code: str, description: str, named: bool
) -> None:
    assert question_names_diagnosis(question, icd_code, description) is named


def test_diagnosis_yes_no_questions_are_recognised() -> None:
    for question in ("¿Tiene diagnóstico de hipertensión?", "¿Tiene dislipidemia?"):
        analysis = analyse(question)
        assert analysis.intents == ("diagnoses",) and "yesno" in analysis.focus, question
    for question in ("¿Tiene diagnósticos registrados?", "¿Qué diagnósticos tiene?"):
        analysis = analyse(question)
        assert analysis.intents == ("diagnoses",) and "yesno" not in analysis.focus, question
    for question in ("¿Tiene alergias?", "¿Tiene alergia a la penicilina?"):
        analysis = analyse(question)
        assert analysis.intents == ("allergies",) and "yesno" not in analysis.focus, question


def test_a_condition_named_in_full_is_a_diagnosis_question() -> None:
    """ "alérgica" in "rinitis alérgica" is part of a diagnosis, not a question about allergies."""
    analysis = analyse("¿Tiene rinitis alérgica?")
    assert analysis.intents == ("diagnoses",) and "yesno" in analysis.focus
    analysis = analyse("¿Tiene hipertensión y qué medicamentos toma?")
    assert analysis.intents == ("diagnoses", "medications") and "yesno" in analysis.focus


def _context(question: str) -> AnswerContext:
    day = dt.datetime(2026, 9, 28, 10, 0, tzinfo=dt.UTC)
    diagnosis = SourceFact(
        number=1,
        chunk_id=10,
        source_type="diagnosis",
        occurred_at=day,
        content="Diagnóstico secundario: Hiperlipidemia no especificada (CIE-10 E78.5).",
        facts={
            "icd_code": "E78.5",
            "description": "Hiperlipidemia no especificada",
            "kind": "Secondary",
            "date": "2026-09-28",
        },
    )
    analysis = analyse(question)
    return AnswerContext(
        question=question,
        patient_name="Adriana Velandia",
        intents=analysis.intents,
        sources=(diagnosis,),
        today=day.date(),
        focus=analysis.focus,
        now=day,
    )


def test_the_common_name_gets_a_cited_yes() -> None:
    text, cited = compose(_context("¿Tiene dislipidemia?"))
    assert text.startswith("Sí, tiene registrado") and "E78.5" in text and cited == (1,)


def test_a_look_alike_condition_is_not_a_yes() -> None:
    """ "¿Tiene hipertensión?" once answered "Sí" with the patient's hyperlipidemia."""
    text, cited = compose(_context("¿Tiene hipertensión?"))
    assert text == "No encuentro ese diagnóstico en la historia clínica de Adriana Velandia."
    assert cited == ()


def test_since_when_names_the_first_record_of_that_diagnosis_only() -> None:
    analysis = analyse("¿Desde cuándo tiene diabetes?")
    assert analysis.intents == ("diagnoses",) and {"first", "yesno"} <= set(analysis.focus)

    def diagnosis(number: int, code: str, description: str, day: dt.date) -> SourceFact:
        return SourceFact(
            number=number,
            chunk_id=number,
            source_type="diagnosis",
            occurred_at=dt.datetime.combine(day, dt.time(10), dt.UTC),
            content=f"Diagnóstico principal: {description} (CIE-10 {code}).",
            facts={
                "icd_code": code,
                "description": description,
                "kind": "Principal",
                "date": day.isoformat(),
            },
        )

    diabetes = "Diabetes mellitus no insulinodependiente sin mención de complicación"
    sources = (
        diagnosis(1, "E11.9", diabetes, dt.date(2026, 10, 17)),
        diagnosis(2, "I10", "Hipertensión esencial (primaria)", dt.date(2019, 1, 5)),
        diagnosis(3, "E11.9", diabetes, dt.date(2021, 3, 9)),
    )
    context = AnswerContext(
        question="¿Desde cuándo tiene diabetes?",
        patient_name="Humberto Vásquez",
        intents=analysis.intents,
        sources=sources,
        today=dt.date(2026, 11, 26),
        focus=analysis.focus,
    )
    text, cited = compose(context)
    assert text == f"{diabetes} (CIE-10 E11.9) está registrado desde el 09/03/2021 [3]."
    assert cited == (3,)
