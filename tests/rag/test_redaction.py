"""What an external model may see of a patient: the scrubber on each way a text names someone.

No database: texts as chunking.py writes them, and as people type them.
"""

from __future__ import annotations

import datetime as dt

import pytest

from smarthealth.rag.engines.base import AnswerContext, PatientIdentity, PriorTurn, SourceFact
from smarthealth.rag.engines.redaction import (
    Scrubber,
    age_phrase,
    model_view,
    redacted_sources,
)

IDENTITY = PatientIdentity(
    full_name="Luz Marina Rojas de la Hoz",
    names=("Luz", "Marina", "Rojas", "de la Hoz"),
    document_number="1012345678",
    birth_date=dt.date(1971, 3, 4),
    sex="F",
    phone="+57 310 555 1234",
    email="luz.rojas12@gmail.com",
    address="Calle 12 # 34-56",
    city="Bogotá D.C.",
)
scrub = Scrubber(IDENTITY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # encounter, diagnosis, prescription
            "09:30 · Consulta externa con Dra. Ana Beltrán (Cardiología), egreso el 2025-05-21.",
            "09:30 · Consulta externa con médico de Cardiología, egreso el 2025-05-21.",
        ),
        (  # vital signs, notes
            "Signos vitales (Control, Dr. Juan de la Cruz, Medicina interna): TA 120/80",
            "Signos vitales (Control, médico de Medicina interna): TA 120/80",
        ),
        ("Nota (Dr. Juan Pérez, sin especialidad) — x", "Nota (un médico) — x"),
        ("Formulada por Dra. Ana Beltrán (Pediatría).", "Formulada por médico de Pediatría."),
        (  # appointment: the specialty comes from the source's facts
            "Cita programada de Cardiología con Dr. Luis J. Gómez. Motivo: control.",
            "Cita programada de Cardiología con médico de Cardiología. Motivo: control.",
        ),
    ],
)
def test_doctors_become_their_specialty(text: str, expected: str) -> None:
    assert scrub(text, specialty="Cardiología") == expected


@pytest.mark.parametrize(
    "identifier",
    [
        "Luz Marina Rojas de la Hoz",
        "ROJAS",
        "Hoz",
        "1012345678",
        "1.012.345.678",
        "1971-03-04",
        "04/03/1971",
        "4/3/1971",
        "04-03-1971",
        "4 de marzo de 1971",
        "+57 310 555 1234",
        "3105551234",
        "luz.rojas12@gmail.com",
        "otra.persona@hotmail.com",
        "Calle 12 # 34-56",
        "Bogotá D.C.",
    ],
)
def test_patient_identifiers_are_removed(identifier: str) -> None:
    text = f"Paciente refiere: {identifier}. Sin cambios."
    scrubbed = scrub(text)
    assert identifier not in scrubbed
    assert scrubbed.startswith("Paciente refiere: [") and scrubbed.endswith("]. Sin cambios.")


def test_names_match_in_any_case_only_in_typed_text() -> None:
    """In the record "luz" is also a word ("luz arterial"): only capitalised names are
    names there; a question is typed as it comes."""
    assert scrub("Estenosis de la luz arterial.") == "Estenosis de la luz arterial."
    assert scrub("Luz refiere dolor.") == "[paciente] refiere dolor."
    assert scrub("¿luz marina rojas vive en bogota d.c.?", loose=True) == (
        "¿[paciente] vive en [ciudad]?"
    )


def test_clinical_dates_and_values_stay() -> None:
    text = "2025-03-04 · Metformina 850 mg, 1 tableta cada 12 horas (hasta 2025-06-01)."
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("birth", "age"),
    [
        (dt.date(1971, 6, 16), "54 años"),
        (dt.date(1971, 6, 15), "55 años"),
        (dt.date(2025, 6, 15), "12 meses"),
        (dt.date(2024, 7, 1), "23 meses"),
        (dt.date(2024, 6, 15), "2 años"),
        (dt.date(2026, 5, 15), "1 mes"),
        (dt.date(2026, 6, 1), "0 meses"),
    ],
)
def test_age(birth: dt.date, age: str) -> None:
    assert age_phrase(birth, dt.date(2026, 6, 15)) == age


def _context(sex: str | None) -> AnswerContext:
    demographics = SourceFact(
        1,
        10,
        "demographics",
        None,
        "Paciente Luz Marina Rojas de la Hoz, Cédula de ciudadanía (CC) 1012345678, sexo "
        "femenino, nacido el 1971-03-04, grupo sanguíneo A+, ciudad Bogotá D.C.",
        {"full_name": IDENTITY.full_name, "gender": "F", "birth_date": "1971-03-04",
         "blood_type": "A+", "document_number": "1012345678", "city": "Bogotá D.C."},
    )  # fmt: skip
    return AnswerContext(
        question="¿Luz Marina tiene alergias?",
        patient_name=IDENTITY.full_name,
        sources=(demographics,),
        today=dt.date(2026, 6, 15),
        history=(PriorTurn("¿Nombre?", "Luz Marina Rojas de la Hoz [1].", "demographics"),),
        patient=PatientIdentity(**{**IDENTITY.__dict__, "sex": sex}),
    )


def test_demographics_source_keeps_sex_age_and_blood_group_only() -> None:
    assert redacted_sources(_context("F")) == (
        "Paciente: sexo femenino, 55 años, grupo sanguíneo A+.",
    )


@pytest.mark.parametrize(
    ("sex", "noun", "owner"),
    [
        ("F", "la paciente", "de la paciente"),
        ("M", "el paciente", "del paciente"),
        ("O", "el/la paciente", "del/de la paciente"),
    ],
)
def test_view_names_the_patient_by_sex(sex: str, noun: str, owner: str) -> None:
    view = model_view(_context(sex), send_identifiers=False)
    assert (view.patient, view.owner) == (noun, owner)
    assert view.description.startswith(f"{noun} (")
    assert view.question == "¿[paciente] tiene alergias?"
    assert view.history[0].answer == "[paciente] [1]."


def test_view_with_identifiers_allowed_is_the_record_as_stored() -> None:
    context = _context("F")
    view = model_view(context, send_identifiers=True)
    assert view.patient == IDENTITY.full_name
    assert view.sources == (context.sources[0].content,)
    assert view.question == context.question and view.history == context.history
