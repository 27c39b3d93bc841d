"""Plans and offline answers for labs, vaccines, procedures and non-drug allergies: a named vaccine
is a yes or a no (not a prescription), lists give each vaccine or procedure once with its date,
"alterado" asks for each test's latest result out of range, and counts read as Spanish."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from smarthealth.rag.executor import Row
from smarthealth.rag.planner import Context, plan_question
from tests.rag.test_executor import NOW, answer

TODAY = NOW.date()


def _row(chunk_id: int, source_type: str, days_ago: int, **facts: Any) -> Row:
    when = NOW - dt.timedelta(days=days_ago)
    return Row(chunk_id, source_type, chunk_id, None, when, f"{source_type} {chunk_id}", facts)


def _vaccine(chunk_id: int, display: str, days_ago: int) -> Row:
    return _row(chunk_id, "immunization", days_ago, display=display, code="141", status=None)


def _lab(chunk_id: int, code: str, display: str, value: float, flag: str, days_ago: int) -> Row:
    return _row(
        chunk_id,
        "observation",
        days_ago,
        category="laboratory",
        code=code,
        display=display,
        value=value,
        unit="mg/dL",
        low=None,
        high=129.0,
        interpretation=flag,
        out_of_range=flag != "N",
    )


RECORD = [
    _vaccine(1, "Vacuna contra la influenza estacional", 60),
    _vaccine(2, "Vacuna contra la influenza estacional", 420),
    _vaccine(3, "Vacuna contra la hepatitis B", 900),
    _row(4, "procedure", 30, display="Electrocardiograma", code="29303009", status=None),
    _row(5, "procedure", 400, display="Electrocardiograma", code="29303009", status=None),
    _row(6, "procedure", 700, display="Apendicectomía", code="80146002", status=None),
    _lab(7, "13457-7", "Colesterol LDL", 150, "H", 400),
    _lab(8, "13457-7", "Colesterol LDL", 110, "N", 20),  # the latest LDL is normal again
    _lab(9, "2571-8", "Triglicéridos", 210, "H", 20),
    _row(10, "allergy", 800, ingredient="amoxicilina", reaction="urticaria", severity="Leve"),
    _row(
        11,
        "allergy",
        500,
        ingredient="maní",
        substance="maní",
        category="food",
        reaction="angioedema",
        severity="Severa",
    ),
]


@pytest.mark.parametrize(
    ("question", "subject", "operation", "terms"),
    [
        ("¿Está vacunada contra la influenza?", "immunization", "exists", ("influenza",)),
        ("¿Tiene la vacuna de la hepatitis A?", "immunization", "exists", ("hepatitis", "a")),
        ("¿Qué vacunas tiene y cuándo se las pusieron?", "immunization", "list", ()),
        ("¿Cuál fue la última vacuna?", "immunization", "latest", ()),
        ("qx previas?", "procedure", "exists", ()),
        ("¿Le han hecho un electrocardiograma?", "procedure", "exists", ("electrocardiograma",)),
    ],
)
def test_vaccines_and_procedures_are_planned_as_records(
    question: str, subject: str, operation: str, terms: tuple[str, ...]
) -> None:
    p = plan_question(question, Context(TODAY))
    assert (p.subject, p.operation, p.terms) == (subject, operation, terms)


@pytest.mark.parametrize(
    "question",
    ["¿Algún examen alterado?", "¿Tiene labs anormales?", "¿Qué resultados salieron mal?"],
)
def test_out_of_range_words_ask_for_lab_results(question: str) -> None:
    p = plan_question(question, Context(TODAY))
    assert (p.subject, p.status) == ("lab", "abnormal")


@pytest.mark.parametrize(
    ("question", "status"),
    [
        ("¿Tiene alergias no medicamentosas?", "nondrug"),
        ("¿Es alérgico a algo que no sea un medicamento?", "nondrug"),
        ("¿Alergia a algún alimento?", "nondrug"),
        ("¿No tiene alergias a medicamentos?", None),
        ("¿Tiene alergias?", None),
    ],
)
def test_allergies_to_what_is_not_a_medicine(question: str, status: str | None) -> None:
    p = plan_question(question, Context(TODAY))
    assert (p.subject, p.status) == ("allergy", status)


def test_los_ultimos_meses_is_a_year_not_a_month() -> None:
    p = plan_question("¿Cómo viene el colesterol LDL en los últimos meses?", Context(TODAY))
    assert p.window is not None and p.window.start == dt.date(2025, 6, 15)


def test_a_named_vaccine_is_a_yes_with_its_dates_or_a_no() -> None:
    text, rows = answer("¿Está vacunada contra la influenza?", record=RECORD)
    assert text.startswith("Sí: Vacuna contra la influenza estacional el ") and rows == [1, 2]
    text, rows = answer("¿Tiene la vacuna de la hepatitis A?", record=RECORD)
    assert text.startswith("No, no encuentro hepatitis a entre las vacunas de Carmen Ruiz.")
    assert "Vacunas registradas: " in text


def test_a_list_gives_each_vaccine_or_procedure_once_with_its_latest_date() -> None:
    text, rows = answer("¿Qué vacunas tiene?", record=RECORD)
    assert text.startswith("Vacunas registradas: Vacuna contra la influenza estacional el ")
    assert rows == [1, 3]
    text, rows = answer("¿Qué procedimientos le han hecho?", record=RECORD)
    assert text.startswith("Procedimientos registrados: Electrocardiograma el ") and rows == [4, 6]


def test_counts_of_records_read_as_spanish() -> None:
    text, _ = answer("¿Cuántas vacunas tiene?", record=RECORD)
    assert text.startswith("3 vacunas registradas")
    text, _ = answer("¿Cuántos procedimientos le han hecho?", record=RECORD)
    assert text.startswith("3 procedimientos registrados")
    only = [RECORD[3]]
    text, _ = answer("¿Cuántos procedimientos le han hecho?", record=only)
    assert text.startswith("1 procedimiento registrado")


def test_abnormal_labs_are_each_tests_latest_result_out_of_range() -> None:
    text, rows = answer("¿Tiene algún examen alterado?", record=RECORD)
    assert text.startswith("Sí. Resultados fuera del rango de referencia") and rows == [9]
    normal = [r for r in RECORD if r.chunk_id != 9]
    text, rows = answer("¿Tiene algún examen alterado?", record=normal)
    assert text.startswith("No: el último resultado de cada examen") and rows == []


def test_non_drug_allergies_leave_the_drugs_out_and_say_no_when_there_are_none() -> None:
    text, rows = answer("¿Tiene alergias no medicamentosas?", record=RECORD)
    assert text.startswith("Sí") and rows == [11]
    drugs_only = [r for r in RECORD if r.chunk_id != 11]
    text, rows = answer("¿Tiene alergias no medicamentosas?", record=drugs_only)
    assert text.startswith("No tiene registradas alergias a alimentos") and "amoxicilina" in text


def test_a_weak_vaccine_cue_with_a_named_disease_needs_no_exemplar() -> None:
    question = "¿Ya le aplicaron la del tétanos?"
    for exemplar in (None, ("unknown", 0.0)):
        p = plan_question(question, Context(TODAY, exemplar=exemplar))
        assert (p.subject, p.operation, p.terms, p.source) == (
            "immunization",
            "exists",
            ("tetanos",),
            "weak",
        )
    vague = plan_question("¿Qué le aplicaron?", Context(TODAY, exemplar=("unknown", 0.0)))
    assert vague.subject == "unknown"  # nothing named: the exemplar still has to agree


def test_each_vaccine_is_a_list() -> None:
    p = plan_question("¿En qué fecha recibió cada vacuna?", Context(TODAY))
    assert (p.subject, p.operation) == ("immunization", "list")


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("¿Cuánto dio la hemoglobina glicosilada que le mandaron?", "lab"),
        ("¿Qué intervenciones le han hecho?", "procedure"),
        ("¿Le hicieron un electro?", "procedure"),
        ("¿Qué le mandaron para la tensión?", "medication"),
    ],
)
def test_a_named_test_or_procedure_word_decides_the_subject(question: str, subject: str) -> None:
    assert plan_question(question, Context(TODAY)).subject == subject
