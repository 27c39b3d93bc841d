"""Executing a plan over a patient's rows, and the offline engine's wording of the result: the
direct answer first, "No" when the record says no, only the asked-for rows, local dates."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from smarthealth.rag.engines.base import AnswerContext, SourceFact
from smarthealth.rag.engines.extractive import compose
from smarthealth.rag.executor import Row, execute
from smarthealth.rag.planner import Context, plan_question

BOGOTA = dt.timezone(dt.timedelta(hours=-5))
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=BOGOTA)


def _row(chunk_id: int, source_type: str, when: dt.datetime, **facts: Any) -> Row:
    return Row(chunk_id, source_type, chunk_id, chunk_id, when, f"{source_type} {chunk_id}", facts)


def _prescription(chunk_id: int, ingredient: str, atc: str, days_ago: int) -> Row:
    start = (NOW - dt.timedelta(days=days_ago)).date()
    return _row(
        chunk_id,
        "prescription",
        NOW - dt.timedelta(days=days_ago),
        ingredient=ingredient,
        commercial_name="Marca",
        strength="50 mg",
        form="tableta",
        dosage="1 tableta",
        frequency=f"cada {chunk_id} horas",
        duration_days=30,
        start=start.isoformat(),
        end=(start + dt.timedelta(days=29)).isoformat(),
        atc_code=atc,
        icd_code="I10",
        diagnosis="Hipertensión esencial (primaria)",
    )


def _appointment(chunk_id: int, days: int, status: str, specialty: str) -> Row:
    start = NOW + dt.timedelta(days=days)
    return _row(
        chunk_id,
        "appointment",
        start,
        start=start.isoformat(),
        status=status,
        specialty=specialty,
        doctor="Dra. Ana Ruiz",
        doctor_last_name="Ruiz",
        reason="Control",
    )


RECORD = [
    _prescription(12, "warfarina sódica", "B01AA03", 5),
    _prescription(24, "metformina", "A10BA02", 400),
    _row(
        3,
        "allergy",
        NOW - dt.timedelta(days=900),
        ingredient="amoxicilina",
        reaction="urticaria",
        severity="Moderada",
        date="2024-01-10",
    ),
    _appointment(41, -200, "Attended", "Cardiología"),
    _appointment(42, -30, "Cancelled", "Medicina general"),
    _appointment(43, 20, "Scheduled", "Endocrinología"),
]


def answer(question: str, *previous: str, record: list[Row] = RECORD) -> tuple[str, list[int]]:
    """Ask `previous` questions first, in one conversation, as the pipeline does."""
    prior, rows = None, ()
    for q in (*previous, question):
        plan = plan_question(q, Context(NOW.date(), prior, rows))
        execution = execute(plan, record, NOW)
        sources = tuple(
            SourceFact(n, r.chunk_id, r.source_type, r.occurred_at, r.content, r.facts)
            for n, r in enumerate(execution.cited, start=1)
        )
        text, cited = compose(
            AnswerContext(
                q, "Carmen Ruiz", sources, NOW.date(), now=NOW, plan=plan, execution=execution
            )
        )
        prior, rows = plan, tuple(sources[n - 1].chunk_id for n in cited)
    return text, list(rows)


def test_a_drug_named_without_its_salt_is_found() -> None:
    text, rows = answer("¿Está tomando warfarina?")
    assert text.startswith("Sí, tiene formulado warfarina sódica 50 mg") and rows == [12]


def test_a_drug_never_prescribed_is_a_plain_no() -> None:
    text, rows = answer("¿Le han formulado atorvastatina?")
    assert text == "No, no encuentro atorvastatina entre los medicamentos formulados a Carmen Ruiz."
    assert rows == []


def test_allergy_to_a_named_drug_or_class() -> None:
    text, rows = answer("¿Tiene alergia al naproxeno?")
    assert text.startswith("No, no tiene registrada alergia a naproxeno.")
    assert "amoxicilina" in text and rows == [3]  # what the record does hold, cited
    text, rows = answer("¿Es alérgico a las penicilinas?")  # amoxicilina is J01CA04
    assert text.startswith("Sí, tiene alergia a penicilinas: amoxicilina") and rows == [3]
    text, rows = answer("¿es alergico a las cefalosporinas?")
    assert text.startswith("No, no tiene registrada alergia a cefalosporinas.")


def test_dose_follow_up_is_about_the_named_drug_only() -> None:
    text, rows = answer("¿y la dosis?", "¿Le han formulado metformina?")
    assert text == "Metformina 50 mg: 1 tableta cada 24 horas por 30 días [1]." and rows == [24]


def test_last_attended_next_and_cancelled_appointments() -> None:
    text, rows = answer("¿Cuándo fue la última cita a la que asistió?")
    assert text.startswith("La última cita a la que asistió fue el ") and rows == [41]
    text, rows = answer(
        "¿Y con qué especialidad fue?", "¿Cuándo fue la última cita a la que asistió?"
    )
    assert text.startswith("Fue de Cardiología") and rows == [41]  # not the next one's
    text, rows = answer("¿Cuándo es su próxima cita?")
    assert text.startswith("La próxima cita es el 05/07/2026") and rows == [43]
    text, rows = answer("¿Cuántas citas ha cancelado?")
    assert text.startswith("1 cita(s) canceladas") and rows == [42]


def test_visits_with_a_named_doctor() -> None:
    def visit(chunk_id: int, days_ago: int, surname: str) -> Row:
        when = NOW - dt.timedelta(days=days_ago)
        return _row(
            chunk_id,
            "encounter",
            when,
            date=when.date().isoformat(),
            time="09:00",
            record_type="Control",
            doctor=f"Dra. Ana {surname}",
            doctor_last_name=surname,
            specialty="Cardiología",
        )

    record = [visit(61, 10, "Gómez"), visit(62, 40, "Ruiz"), visit(63, 90, "Ruiz")]
    plan = plan_question(
        "¿Cuándo la vio la Dra. Ruiz por última vez?",
        Context(NOW.date(), doctors=("Gómez", "Ruiz")),
    )
    execution = execute(plan, record, NOW)
    assert [r.chunk_id for r in execution.rows] == [62]


def test_dates_are_the_clinic_day_not_utc() -> None:
    """A visit at 19:15 in Bogotá is 00:15 UTC the next day; the answer says the local day."""
    evening = dt.datetime(2026, 5, 12, 19, 15, tzinfo=BOGOTA).astimezone(dt.UTC)
    assert evening.date() == dt.date(2026, 5, 13)
    vitals = _row(
        7,
        "vitals",
        evening,
        date="2026-05-12",
        systolic=120,
        diastolic=80,
        heart_rate=70,
        respiratory_rate=16,
        temperature=36.5,
        spo2=97,
        weight_kg=70.0,
        height_cm=170.0,
        bmi=24.2,
    )
    text, _ = answer("¿Cuál fue la última presión arterial?", record=[vitals])
    assert text == "La última presión arterial registrada fue 120/80 mmHg, el 12/05/2026 [1]."
    undated = Row(8, "note", 8, 8, evening, "2026-05-12 · Nota — reposo", {})
    assert undated.day == dt.date(2026, 5, 12)


def test_an_empty_record_abstains_without_sources() -> None:
    text, rows = answer("¿Cuál fue la última presión arterial?", record=[])
    assert text.startswith("No encuentro información sobre presión arterial") and rows == []
    text, rows = answer("¿Cuántos hijos tiene el paciente?")
    assert text == "No encuentro información sobre hijos en la historia clínica de Carmen Ruiz."
    assert rows == []


def _for(row: Row, icd_code: str, diagnosis: str) -> Row:
    return replace(row, facts={**row.facts, "icd_code": icd_code, "diagnosis": diagnosis})


TREATED = [
    _prescription(12, "warfarina sódica", "B01AA03", 5),  # for I10 (see _prescription)
    _for(_prescription(31, "metotrexato", "L04AX03", 10), "M06.9", "Artritis reumatoide"),
    _for(_prescription(32, "naproxeno", "M01AE02", 10), "M25.5", "Dolor en articulación"),
    _for(_prescription(33, "acetaminofén", "N02BE01", 700), "J06.9", "Infección respiratoria"),
]


def test_what_treats_a_condition_or_a_symptom() -> None:
    # a family named by its unspecified code finds the patient's own, more specific diagnosis
    text, rows = answer("¿Qué toma para la artritis?", record=TREATED)
    assert text.startswith("Para artritis reumatoide tiene formulado: metotrexato") and rows == [31]
    # a colloquial condition: the prescriptions linked to it, not every antihypertensive class
    text, rows = answer("¿Qué le dan para la presión?", record=TREATED)
    assert rows == [12] and "warfarina" in text
    # a symptom no diagnosis names: the drugs of the classes that treat it, old ones dated
    text, rows = answer("¿Qué toma para el dolor?", record=TREATED)
    assert text.startswith("Para el dolor tiene formulado: naproxeno") and rows == [32, 33]
    assert "terminó" in text  # acetaminofén was prescribed 700 days ago
    text, rows = answer("¿Le han dado algo para dormir?", record=TREATED)
    assert text.startswith("No, no encuentro medicamentos para dormir") and rows == []


def test_why_a_drug_is_prescribed() -> None:
    text, rows = answer("¿Para qué toma metotrexato?", record=TREATED)
    assert text.startswith("Metotrexato 50 mg: formulado para Artritis reumatoide (CIE-10 M06.9)")
    assert rows == [31]


def _vitals(chunk_id: int, days_ago: int, systolic: int, spo2: int, weight: float) -> Row:
    return _row(
        chunk_id,
        "vitals",
        NOW - dt.timedelta(days=days_ago),
        systolic=systolic,
        diastolic=80,
        spo2=spo2,
        weight_kg=weight,
    )


READINGS = [
    _vitals(71, 400, 170, 97, 80.0),
    _vitals(72, 100, 150, 91, 78.5),
    _vitals(73, 3, 120, 96, 77.0),
]


def test_the_extreme_reading_of_a_vital_sign() -> None:
    text, rows = answer("¿Cuál fue la presión más alta registrada?", record=READINGS)
    assert text.startswith("La presión arterial más alta registrada fue 170/80 mmHg") and rows == [
        71
    ]
    text, rows = answer("¿cuál ha sido la saturación más baja en el último año?", record=READINGS)
    assert text.startswith("La saturación de oxígeno más baja registrada (último año) fue 91 %")
    assert rows == [72]
    # masculine names agree ("el peso", not "la peso")
    text, rows = answer("¿Cuánto pesa?", record=READINGS)
    assert text.startswith("El último peso registrado fue 77 kg") and rows == [73]
    text, _ = answer("¿Ha bajado de peso?", record=READINGS)
    assert text.startswith("Peso") and "80 kg" in text and "77 kg" in text  # the series


def test_a_status_with_no_appointment_is_a_no() -> None:
    text, rows = answer("¿Faltó a alguna cita?")
    assert text.startswith("No, no encuentro citas no asistidas") and rows == []


def test_two_subjects_in_one_question_get_both() -> None:
    text, rows = answer("¿Qué medicamentos y alergias tiene?")
    assert text.startswith("Medicamentos: warfarina sódica 50 mg")
    assert "Alergias: amoxicilina" in text and set(rows) == {12, 3}
    # a question about one subject that mentions another is not split
    text, _ = answer("¿Tiene alergia a algún medicamento?")
    assert text.startswith("Sí") and "Medicamentos:" not in text


def test_an_allergy_in_the_same_group_is_said_before_anything_else() -> None:
    record = [
        *RECORD,
        _row(
            4,
            "allergy",
            NOW - dt.timedelta(days=50),
            ingredient="naproxeno sódico",
            reaction="urticaria",
            severity="Moderada",
            date="2026-04-26",
        ),
    ]
    text, rows = answer("¿Puedo darle ibuprofeno?", record=record)  # M01AE, as naproxeno
    assert text.startswith("No tiene registrada alergia a ibuprofeno, pero sí a un medicamento")
    assert "naproxeno sódico (urticaria" in text and "Otras alergias: amoxicilina" in text
    assert rows[0] == 4
    text, _ = answer("¿Se le puede formular amoxicilina?", record=record)
    assert text.startswith("Sí, tiene alergia a amoxicilina")
    text, _ = answer("¿Puedo darle acetaminofén?", record=record)
    assert text.startswith("No, no tiene registrada alergia a acetaminofén.")


def test_who_prescribed_cites_the_visit_that_names_the_doctor() -> None:
    visit = _row(
        90,
        "encounter",
        NOW - dt.timedelta(days=5),
        doctor="Dr. Luis Gómez",
        specialty="Cardiología",
    )
    drug = _prescription(12, "warfarina sódica", "B01AA03", 5)
    drug = replace(drug, record_id=90)
    text, rows = answer("¿Quién le formuló la warfarina?", record=[drug, visit])
    assert text.startswith("Warfarina sódica lo formuló Dr. Luis Gómez (Cardiología)")
    assert rows == [12, 90]
    text, rows = answer("¿Quién se lo formuló?", "¿Qué medicamentos toma?", record=[drug, visit])
    assert "Dr. Luis Gómez" in text and rows == [12, 90]


def test_since_when_after_a_reaction_gives_each_allergy_date() -> None:
    text, rows = answer("¿Desde cuándo?", "¿A qué es alérgico?", "¿Qué reacción le da?")
    assert text.startswith("Amoxicilina: alergia registrada desde el") and rows == [3]


def test_medications_no_longer_in_force() -> None:
    text, rows = answer("¿Qué medicamentos ha suspendido?")
    assert text.startswith("Medicamentos que ya no están vigentes: metformina") and rows == [24]
    text, _ = answer("¿Cuántos medicamentos ya no toma?")
    assert text.startswith("1 medicamento(s) que ya no están vigentes: metformina")
    text, rows = answer("¿Qué medicamentos toma?")
    assert "metformina" not in text and rows == [12]


def test_follow_ups_about_a_visit_and_a_named_condition() -> None:
    visit = _row(90, "encounter", NOW - dt.timedelta(days=5), doctor="Dr. Luis Gómez",
                 specialty="Cardiología")  # fmt: skip
    drug = _prescription(12, "warfarina sódica", "B01AA03", 5)
    drug = replace(drug, record_id=90)
    old = _prescription(24, "metformina", "A10BA02", 400)  # another visit's
    record = [visit, drug, old]
    text, rows = answer("¿Qué le formularon?", "¿Cuándo fue su última consulta?", record=record)
    assert text.startswith("En la atención del 10/06/2026 se formuló: warfarina") and rows == [12]
    # present tense: what is taken now, not what that visit prescribed
    text, _ = answer("¿Qué medicamentos toma?", "¿Cuándo fue su última consulta?", record=record)
    assert text.startswith("Tiene 1 medicamento(s) vigente(s)")
    text, rows = answer("¿Quién se lo formuló?", "¿Toma warfarina?", record=record)
    assert "Dr. Luis Gómez" in text and rows == [12, 90]


def test_the_latest_note_is_read_whole() -> None:
    def section(chunk_id: int, record: int, days_ago: int, title: str) -> Row:
        when = NOW - dt.timedelta(days=days_ago)
        text = f"2026-06-01 · Nota — {title}: texto {chunk_id}"
        facts = {"section": title, "record_type": "Urgencias"}
        return Row(chunk_id, "note", chunk_id, record, when, text, facts)

    notes = [section(1, 7, 90, "MOTIVO DE CONSULTA"), section(2, 8, 3, "MOTIVO DE CONSULTA"),
             section(3, 8, 3, "EXAMEN FÍSICO")]  # fmt: skip
    text, rows = answer("ultima nota medica", record=notes)
    assert text.startswith("Nota del 12/06/2026 (Urgencias): MOTIVO DE CONSULTA: texto 2 [1].")
    assert rows == [2, 3]
    assert plan_question("¿Cuál fue la impresión diagnóstica?", Context(NOW.date())).subject == (
        "diagnosis"
    )


def test_nothing_in_force_is_a_no_with_the_last_prescribed() -> None:
    ended = [_prescription(24, "metformina", "A10BA02", 400)]
    text, rows = answer("¿Recibe algún medicamento?", record=ended)
    assert text.startswith("No tiene medicamentos vigentes; lo último formulado: metformina")
    assert rows == [24]
    # a named drug prescribed once is a "Sí", said in the past
    text, rows = answer("¿Le han formulado metformina?", record=ended)
    assert text.startswith("Sí, se le formuló metformina 50 mg") and "terminó el" in text


def test_active_problems_leave_out_what_passed() -> None:
    def dx(chunk_id: int, days_ago: int, icd: str | None, name: str, **facts: Any) -> Row:
        return _row(chunk_id, "diagnosis", NOW - dt.timedelta(days=days_ago), icd_code=icd,
                    description=name, kind="Principal", **facts)  # fmt: skip

    record = [
        dx(1, 400, "I10", "Hipertensión esencial (primaria)"),  # chronic in the catalog
        dx(2, 700, "A09", "Diarrea y gastroenteritis"),  # acute, long ago
        dx(3, 10, "J06.9", "Infección aguda de las vías respiratorias superiores"),  # recent
        dx(
            4,
            30,
            None,
            "Essential hypertension (disorder)",
            code_system="SNOMED CT",
            code="59621000",
            clinical_status="resolved",
        ),
    ]
    text, rows = answer("¿Qué problemas activos tiene?", record=record)
    assert text.startswith("Problemas activos:") and sorted(rows) == [1, 3]
    assert "SNOMED CT 59621000" not in text and "None" not in text
