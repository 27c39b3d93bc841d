"""The planner: ordinary clinical Spanish → a typed plan (abbreviations, typos, yes/no about a
named thing, operations, out-of-record topics, follow-ups that keep their subject)."""

from __future__ import annotations

import datetime as dt

import pytest

from smarthealth.rag.plan import QuestionPlan, TimeWindow
from smarthealth.rag.planner import Context, normalise, plan_question

TODAY = dt.date(2026, 6, 15)


def plan(question: str, previous: QuestionPlan | None = None) -> QuestionPlan:
    return plan_question(question, Context(TODAY, previous, (1, 2) if previous else ()))


@pytest.mark.parametrize(
    ("question", "vitals"),
    [
        ("¿Cuál fue la última PA?", ("bp",)),
        ("TA del paciente", ("bp",)),
        ("¿Cómo anda de la tensión?", ("bp",)),
        ("FC", ("hr",)),
        ("¿cuál es la FR?", ("rr",)),
        ("¿Está saturando bien?", ("spo2",)),
        ("SatO2", ("spo2",)),
        ("T° de la última consulta", ("temp",)),
        ("¿IMC?", ("bmi",)),
        ("¿cuánto pesa la paciente?", ("weight",)),
        ("¿Cuánto mide?", ("height",)),
    ],
)
def test_vital_sign_abbreviations(question: str, vitals: tuple[str, ...]) -> None:
    p = plan(question)
    assert (p.subject, p.vitals, p.operation) == ("vital", vitals, "latest")


@pytest.mark.parametrize(
    ("typo", "fixed"),
    [
        ("¿tiene alerjias?", "tiene alergias"),
        ("¿tiene sita proxima?", "tiene cita proxima"),
        ("¿cual fue la ultima precion?", "cual fue la ultima presion"),
        ("diagnosticos de hipertencion", "diagnosticos de hipertension"),
    ],
)
def test_typos_and_missing_accents_are_read_as_meant(typo: str, fixed: str) -> None:
    assert normalise(typo) == fixed


def test_ordinary_words_are_not_corrected_into_clinical_ones() -> None:
    assert normalise("¿qué le pasa?") == "que le pasa"  # not "pesa"
    assert normalise("¿tiene problemas de la vista?") == "tiene problemas de la vista"


@pytest.mark.parametrize(
    ("question", "subject", "operation"),
    [
        ("¿Cuántas veces ha ido a urgencias?", "encounter", "count"),
        ("¿Cómo ha evolucionado la presión en el último año?", "vital", "series"),
        ("¿cómo viene el peso en los últimos 12 meses?", "vital", "series"),
        ("¿Desde cuándo tiene diabetes?", "diagnosis", "first"),
        ("¿Quién lo atendió en la última consulta?", "encounter", "latest"),
        ("¿Cuándo fue su última visita a urgencias?", "encounter", "latest"),
        ("¿Ha estado hospitalizado?", "encounter", "exists"),
        ("¿Qué especialidades lo han atendido?", "specialty", "list"),
        ("¿Cuándo es la próxima cita?", "appointment", "next"),
        ("¿Tiene alergia al naproxeno?", "allergy", "exists"),
        ("¿Está tomando warfarina?", "medication", "exists"),
        ("¿Cuál es el tto actual?", "medication", "latest"),
        ("dx", "diagnosis", "list"),
    ],
)
def test_operations(question: str, subject: str, operation: str) -> None:
    p = plan(question)
    assert (p.subject, p.operation) == (subject, operation), p


def test_appointment_status() -> None:
    assert plan("¿Cuándo fue la última cita a la que asistió?").status == "Attended"
    assert plan("¿Qué citas ha cancelado?").status == "Cancelled"
    assert plan("¿Faltó a alguna cita?").status == "NoShow"


def test_named_things() -> None:
    assert plan("¿Está tomando warfarina?").drugs == ("warfarina sódica",)  # salt name
    assert plan("¿Le formularon Glucophage?").drugs == ("metformina",)  # brand
    p = plan("¿Es alérgico a las cefalosporinas?")
    assert p.subject == "allergy" and p.drug_classes == ("J01DB", "J01DC", "J01DD", "J01DE")
    assert plan("¿es alergico a los AINE?").drug_classes == ("M01A",)
    assert plan("¿Tiene dislipidemia?").conditions == ("E78.5",)
    assert plan("¿Tiene colesterol alto?").conditions == ("E78.5",)
    # "alérgica" in "rinitis alérgica" names a diagnosis, not an allergy question
    assert plan("¿Tiene rinitis alérgica?").subject == "diagnosis"
    # a condition the catalog names only in part
    p = plan("¿Tiene amigdalitis?")
    assert (p.subject, p.operation, p.condition_words) == ("diagnosis", "exists", ("amigdalitis",))


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("¿Cuántos hijos tiene el paciente?", "hijos"),
        ("¿cuántos tragos se toma?", "consumo de alcohol"),
        ("¿Fuma?", "tabaquismo"),
        ("¿Qué EPS tiene?", "afiliación a salud (EPS)"),
        ("¿A qué se dedica?", "ocupación"),
    ],
)
def test_out_of_record_topics_are_not_hijacked_by_stray_words(question: str, topic: str) -> None:
    p = plan(question)
    assert (p.subject, p.topic) == ("out_of_record", topic)


@pytest.mark.parametrize(
    ("question", "subject", "topic"),
    [
        ("¿Tiene la vacuna de la fiebre amarilla?", "immunization", "vacunas"),
        ("¿Le han hecho cirugías?", "procedure", "cirugías"),
        ("¿Le hicieron una colonoscopia?", "procedure", "procedimientos"),
    ],
)
def test_kinds_only_an_imported_chart_holds(question: str, subject: str, topic: str) -> None:
    """Vaccines, procedures and lab results: executed (an imported chart holds them), with the
    topic kept for the abstention when the record has none."""
    p = plan(question)
    assert (p.subject, p.topic) == (subject, topic)
    lab = plan("¿Cuál fue el último resultado de HbA1c?")
    assert (lab.subject, lab.operation, lab.labs[0]) == ("lab", "latest", "4548-4")


def test_words_that_say_nothing_do_not_decide() -> None:
    assert plan("¿Cómo está el paciente hoy? ¿algo más?").subject == "unknown"


def test_time_windows() -> None:
    assert plan("¿Qué le formularon en 2024?").window == TimeWindow(
        dt.date(2024, 1, 1), dt.date(2025, 1, 1), "2024"
    )
    window = plan("presión en los últimos 6 meses").window
    assert window is not None and window.start == dt.date(2025, 12, 15)
    assert window.label == "últimos 6 meses"


def test_follow_ups_keep_the_subject() -> None:
    dx = plan("¿Tiene amigdalitis?")
    treated = plan("¿Y con qué lo están tratando?", dx)
    assert (treated.subject, treated.operation, treated.follow_up) == ("medication", "list", True)
    assert treated.condition_words == ("amigdalitis",) and treated.rows == (1, 2)

    drug = plan("¿Le han formulado amlodipino?")
    dose = plan("¿y la dosis?", drug)
    assert (dose.subject, dose.attribute) == ("medication", "dose")
    assert set(dose.drugs) == {"amlodipino", "amlodipino + valsartán"}  # every product with it

    last = plan("¿Cuándo fue la última cita a la que asistió?")
    specialty = plan("¿Y con qué especialidad fue?", last)
    assert (specialty.subject, specialty.attribute) == ("appointment", "specialty")
    assert specialty.status == "Attended" and specialty.rows == (1, 2)

    bp = plan("¿Cuál fue la última presión arterial?")
    before = plan("¿y antes de eso?", bp)
    assert (before.subject, before.vitals, before.follow_up) == ("vital", ("bp",), True)

    # a new subject in a follow-up is a new question
    assert plan("¿y las alergias?", bp).subject == "allergy"


def test_plan_round_trips_through_json() -> None:
    p = plan("¿cómo ha evolucionado la presión en el último año?")
    assert QuestionPlan.from_json(p.to_json()) == p
    assert QuestionPlan.from_json({"subject": "nonsense"}) is None


def test_a_doctor_of_the_patient_is_named_by_surname() -> None:
    doctors = ("Gómez", "Ruiz")
    p = plan_question("¿Cuándo lo vio el Dr. Gómez?", Context(TODAY, doctors=doctors))
    assert (p.subject, p.operation, p.doctor) == ("encounter", "latest", "Gómez")
    p = plan_question("¿Qué le formuló la doctora Ruiz?", Context(TODAY, doctors=doctors))
    assert (p.subject, p.doctor) == ("medication", "Ruiz")
    # only the patient's own doctors are names: anyone else is just a word
    assert (
        plan_question("¿Cuándo lo vio el Dr. Pérez?", Context(TODAY, doctors=doctors)).doctor
        is None
    )


def test_what_a_treatment_is_for() -> None:
    plan: QuestionPlan = plan_question("¿Qué le dan para la fiebre?", Context(TODAY))
    assert (plan.subject, plan.attribute, plan.purpose) == ("medication", "treatment", "la fiebre")
    assert "N02BE" in plan.drug_classes and not plan.vitals
    # the symptom alone, without "para", is not a treatment question
    assert plan_question("¿Tiene fiebre?", Context(TODAY)).subject == "vital"
    plan = plan_question("¿Con qué le tratan la artritis reumatoide?", Context(TODAY))
    assert (plan.subject, plan.attribute, plan.conditions) == (
        "medication",
        "treatment",
        ("M06.9",),
    )
    plan = plan_question("¿Por qué le formularon metformina?", Context(TODAY))
    assert (plan.subject, plan.attribute, plan.drugs) == ("medication", "reason", ("metformina",))


def test_how_long_since_is_not_a_yes_no_question() -> None:
    assert plan("¿Hace cuánto toma omeprazol?").operation == "first"
    since = plan("¿Hace cuánto no viene a control?")
    assert (since.subject, since.operation, since.attribute) == ("encounter", "latest", "date")
    assert plan("¿Hace ejercicio?").operation != "first"


@pytest.mark.parametrize(
    ("typo", "fixed"),
    [
        ("¿Qué medicametnos toma?", "que medicamentos toma"),  # known by a shorter stem
        ("¿Cuantas vicitas tiene?", "cuantas visitas tiene"),
        ("¿Qué le recetaron el año pasdo?", "que le recetaron el ano pasado"),
        ("ultima PA tomada", "ultima pa tomada"),  # a real word is not "corrected"
        ("¿Qué medicamenntos toma?", "que medicamentos toma"),
        ("ctas pendientes", "citas pendientes"),  # a short word: the only neighbour of its kind
        ("¿Quén lo atendió?", "quien lo atendio"),
        ("alergias", "alergias"),  # known by a stem: not a misspelt longer one
        ("¿IPA?", "ipa"),  # three letters are too few to guess
        ("odsis", "dosis"),  # the first two letters swapped
        ("acio", "acio"),  # one edit from "nacio", but not with its first letter
        ("prfesional", "profesional"),  # not "presion…": a short stem needs its exact letters
    ],
)
def test_more_misspellings(typo: str, fixed: str) -> None:
    assert normalise(typo) == fixed


def test_generalisations_found_by_independent_phrasings() -> None:
    since = plan("¿Cuántas veces ha venido desde enero?")
    assert since.operation == "count" and since.window is not None
    assert since.window.start == dt.date(2026, 1, 1)
    assert plan("¿Qué tensiones arteriales ha tenido en el último año?").operation == "series"
    gout = plan("¿Hay registro de gota?")  # no series of a diagnosis: a yes/no
    assert (gout.subject, gout.operation) == ("diagnosis", "exists")
    video = plan("¿Cuándo fue la última cita por videollamada?")
    assert (video.subject, video.encounter_type) == ("encounter", "Telemedicina")
    dose = plan("¿Cuántos miligramos de acetaminofén toma y cada cuánto?")
    assert (dose.operation, dose.attribute) == ("attribute", "dose")
    family = plan("¿De qué enfermedades sufrían los papás de la paciente?")
    assert family.subject == "out_of_record"
    last = plan("¿La paciente cuándo vino a cita por última vez?")
    assert (last.subject, last.operation) == ("appointment", "latest")


def test_chat_shorthand() -> None:
    assert normalise("prox cita con q medico?") == "proxima cita con que medico"
    assert normalise("CC del pcte") == "cc del paciente"
    nxt = plan("¿Con quién tiene la cita que viene?")
    assert (nxt.subject, nxt.operation, nxt.attribute) == ("appointment", "next", "doctor")
    visits = plan("n° de atenciones en el año")
    assert visits.operation == "count" and visits.window is not None
    assert visits.window.start == dt.date(2026, 1, 1)


def test_more_ordinary_wordings() -> None:
    years = plan("¿Hace cuántos años tiene artritis?")  # since when, not the age
    assert (years.subject, years.operation) == ("diagnosis", "first")
    assert plan("¿La ha visto cardiología?").subject == "encounter"
    assert plan("¿Por cuántos días le formularon la hidroxicloroquina?").attribute == "dose"
    assert plan("¿Qué refería la paciente en la última consulta?").subject == "note"
    assert plan("antecedentes quirurgicos?").subject == "procedure"
    zinc = plan("¿A qué dosis recibe sulfato de zinc?")  # a salt named first, not the sulfas
    assert zinc.drugs and not zinc.drug_classes


def test_statuses_belong_to_their_subject() -> None:
    ever = plan("¿Cuántos medicamentos diferentes le han formulado?")
    assert (ever.operation, ever.status) == ("count", "ever")
    cancelled = plan("¿El paciente cuántas citas tiene canceladas en total?")
    assert (cancelled.subject, cancelled.status) == ("appointment", "Cancelled")
    assert plan("¿Cuántas hospitalizaciones ha tenido en total?").status is None
    year = plan("¿En qué año le diagnosticaron artritis reumatoide?")
    assert (year.operation, year.attribute) == ("first", "date")


def test_clinical_acronyms_and_visit_dates() -> None:
    assert normalise("¿Tiene HTA?") == "tiene hta"  # not corrected into "ta"
    assert plan("¿Tiene HTA?").conditions == ("I10",)
    assert plan("¿Tiene DM2?").conditions == ("E11.9",)
    visit = plan("¿Cuándo consultó por urgencias la última vez?")
    assert (visit.subject, visit.encounter_type, visit.attribute) == (
        "encounter",
        "Urgencias",
        "date",
    )
    assert plan("¿Desde qué momento tiene dislipidemia?").operation == "first"


def test_frequency_and_the_previous_appointment() -> None:
    assert plan("¿A cuánto estaba la frecuencia?").vitals == ("hr",)
    assert plan("¿Cuál es la frecuencia de la metformina?").attribute == "dose"
    assert plan("¿Con qué frecuencia toma losartán?").attribute == "dose"
    before = plan("¿Cuándo fue la cita anterior?")
    assert (before.subject, before.operation) == ("appointment", "latest")


def test_how_much_of_a_drug_is_its_dose() -> None:
    for question in (
        "¿Cuánto carvedilol toma?",
        "¿Cuántos mg de metotrexato?",
        "¿La furosemida a cuánto?",
        "¿Cuántas veces al día toma carvedilol?",
    ):
        asked = plan(question)
        assert (asked.subject, asked.attribute) == ("medication", "dose"), question
    listed = plan("¿Qué medicamentos toma?")
    second = plan_question("¿y el segundo cada cuánto?", Context(TODAY, listed, (7, 8, 9)))
    assert (second.attribute, second.rows) == ("dose", (8,))


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("¿Ha tenido consultas por teléfono?", "Telemedicina"),
        ("¿Cuándo fue la última atención remota?", "Telemedicina"),
        ("¿Cuándo visitó el servicio de urgencias?", "Urgencias"),
        ("¿Ha requerido manejo intrahospitalario?", "Hospitalización"),
    ],
)
def test_visit_kinds_said_otherwise(question: str, kind: str) -> None:
    asked = plan(question)
    assert (asked.subject, asked.encounter_type) == ("encounter", kind)


def test_how_much_is_a_dose_only_of_a_drug() -> None:
    assert plan("¿La furosemida a cuánto?").attribute == "dose"
    vital = plan("¿Cuál fue la última presión?")
    before = plan_question("¿Y cuánto tenía en el control anterior?", Context(TODAY, vital, (1,)))
    assert (before.subject, before.vitals) == ("vital", ("bp",))
    assert plan("¿Hace cuánto toma omeprazol?").operation == "first"


def test_how_long_ago_and_who_saw_him() -> None:
    for question in (
        "¿Cuánto lleva con la dislipidemia?",
        "¿Antigüedad del diagnóstico de hipertensión?",
        "¿Hace cuántos meses toma carvedilol?",
    ):
        assert plan(question).operation == "first", question
    seen = plan("¿Cuántas veces lo vieron en 2026?")
    assert (seen.subject, seen.operation) == ("encounter", "count")


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        (
            "¿Cómo ha ido la presión en estos tres meses?",
            (2026, 3, 15),
            (2026, 6, 16),
        ),
        ("pesos desde hace 4 meses", (2026, 2, 15), (2026, 6, 16)),
        ("FC ultimos 3m", (2026, 3, 15), (2026, 6, 16)),
        ("¿cuántas consultas van desde el 15 de marzo?", (2026, 3, 15), None),
        ("¿cuántas consultas van desde el 20 de noviembre?", (2025, 11, 20), None),
        ("¿Qué le formularon durante el año pasado?", (2025, 1, 1), (2026, 1, 1)),
    ],
)
def test_time_windows_said_otherwise(
    question: str, start: tuple[int, int, int], end: tuple[int, int, int] | None
) -> None:
    window = plan(question).window
    assert window is not None
    assert window.start == dt.date(*start)
    assert window.end == (dt.date(*end) if end else None)


def test_six_m_is_a_window_only_after_a_window_word() -> None:
    assert plan("talla de 1.70 m?").window is None


@pytest.mark.parametrize(
    "question",
    [
        "¿A cuántas citas no ha ido?",
        "¿cuántas veces se ha volado las citas?",
        "¿Cuándo fue la última cita a la que no vino?",
        "¿Ha dejado de ir a alguna cita?",
    ],
)
def test_a_negated_attendance_is_a_missed_appointment(question: str) -> None:
    p = plan(question)
    assert (p.subject, p.status) == ("appointment", "NoShow")


def test_the_last_clause_says_whether_it_asks_yes_or_no() -> None:
    # "¿…, cuándo fue?" asks when even though it opens like a yes/no question
    p = plan("¿La última hospitalización, cuándo fue?")
    assert (p.subject, p.operation, p.encounter_type) == ("encounter", "latest", "Hospitalización")
    p = plan("y de metformina, ya se la formularon?")
    assert (p.subject, p.operation) == ("medication", "exists")


def test_a_clause_saying_why_the_question_is_asked_does_not_decide_its_subject() -> None:
    p = plan("Antes de formularle, ¿cuál fue la última creatinina?")
    assert p.subject == "lab"
    p = plan("Para revisar la adherencia al tratamiento: peso de los últimos 6 meses")
    assert (p.subject, p.operation, p.vitals) == ("vital", "series", ("weight",))
    # a purpose that names a symptom is the question's own
    p = plan("Para la fiebre, ¿qué medicamentos tiene?")
    assert p.subject == "medication" and p.purpose is not None


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("¿saturaba bien en urgencias?", "vital"),
        ("¿cuándo tuvo la última cita por video?", "encounter"),
        ("¿vive con alguien?", "out_of_record"),
        ("¿quién lo cuida en casa?", "out_of_record"),
        ("¿Me pasas la fecha de nacimiento?", "demographics"),
        ("FN?", "demographics"),
        ("¿qué me cuentas de la paciente?", "summary"),
        ("resúmeme la historia", "summary"),
    ],
)
def test_ordinary_wordings(question: str, subject: str) -> None:
    assert plan(question).subject == subject


def test_a_summary_verb_with_a_subject_summarises_that_subject() -> None:
    p = plan("Resume las frecuencias cardiacas del último año")
    assert (p.subject, p.operation, p.vitals) == ("vital", "series", ("hr",))
    assert plan("Resume el motivo de la última consulta").subject == "note"


def test_surgical_history_in_shorthand_asks_for_procedures() -> None:
    assert plan("antecedentes qx?").subject == "procedure"


def test_words_before_a_colon_are_context_not_the_question() -> None:
    p = plan("Pregunta rápida: ¿en qué ciudad vive?")
    assert (p.subject, p.demographic) == ("demographics", "city")
    p = plan("Estoy armando el resumen: ¿qué especialidades lo han visto?")
    assert p.subject == "specialty"
    # a summary that names its parts stays a summary
    assert plan("Necesito un resumen: diagnósticos, medicamentos y alergias").subject == "summary"


def test_asking_whether_inside_a_request_is_a_yes_no_question() -> None:
    p = plan("Favor confirmar si ha estado hospitalizado y la fecha de la última vez")
    assert (p.subject, p.operation, p.encounter_type) == ("encounter", "exists", "Hospitalización")


def test_a_missed_or_cancelled_visit_is_an_appointment_in_the_past() -> None:
    p = plan("¿Cuál fue la última cita programada que canceló?")
    assert (p.subject, p.operation, p.status) == ("appointment", "latest", "Cancelled")
    p = plan("¿cuándo fue la última consulta a la que faltó?")
    assert (p.subject, p.status) == ("appointment", "NoShow")


def test_the_doctor_who_wrote_a_section_is_asked_only_with_who() -> None:
    p = plan("¿qué plan dejó la doctora la última vez?")
    assert (p.subject, p.attribute) == ("note", None)
    assert plan("¿quién escribió el plan?").attribute == "doctor"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("¿cuándo fue la última vez que fue a la guardia?", ("encounter", "Urgencias")),
        ("DNI?", ("demographics", "document")),
        ("No. de hospitalizaciones", ("encounter", "count")),
        ("sodio sérico", ("lab", None)),
        ("¿cada cuánto y con qué intervalo?", ("medication", "dose")),
        ("¿de qué se trata el caso?", ("summary", None)),
    ],
)
def test_regional_and_formal_wordings(question: str, expected: tuple[str, str | None]) -> None:
    p = plan(question)
    second = {
        "encounter": p.encounter_type if expected[1] != "count" else p.operation,
        "demographics": p.demographic,
        "medication": p.attribute,
    }.get(p.subject)
    assert (p.subject, second) == expected


def test_this_calendar_year_said_otherwise() -> None:
    window = plan("¿cuántas consultas lleva en el presente año?").window
    assert window is not None and window.start == dt.date(2026, 1, 1)


def test_how_it_is_treated_after_a_diagnosis_asks_its_treatment() -> None:
    first = plan("¿Tiene hipotiroidismo?")
    p = plan("¿y con qué se trata?", first)
    assert p.subject == "medication"


@pytest.mark.parametrize(
    ("word", "typed"),
    [("pido", True), ("mire", True), ("relacione", True), ("alerjias", False), ("sita", False)],
)
def test_an_ordinary_spanish_word_is_not_corrected_into_a_rarer_one(word: str, typed: bool) -> None:
    # "le pido" is not "le pico" (a peak: the highest reading), "mire" is not "mide"
    from smarthealth.rag.vocabulary import correct

    assert (correct(word) == word) is typed


def test_sentences_said_before_the_question_set_the_scene() -> None:
    p = plan("Voy a formular. Le pido que me indique la última temperatura registrada.")
    assert (p.subject, p.operation, p.vitals) == ("vital", "latest", ("temp",))
    p = plan("Buenos días. ¿Tiene alergias a medicamentos o a alguna otra cosa?")
    assert p.subject == "allergy"
    # an abbreviation's full stop is no sentence: "Dr. prox. cita" asks the next appointment's
    p = plan("Dr. prox. cita")
    assert (p.subject, p.operation, p.attribute) == ("appointment", "next", "doctor")
    # a context that names a window keeps it
    p = plan("Revisando el año pasado: ¿qué medicamentos le formularon?")
    assert p.window is not None and p.window.label == "el año pasado"


def test_an_allergy_to_medicines_is_an_allergy_question() -> None:
    assert plan("¿le da alergia algún remedio?").subject == "allergy"
    assert plan("RAM a penicilinas").subject == "allergy"
    assert plan("¿alguna reacción adversa a medicamentos?").subject == "allergy"
    # two things asked together stay two
    assert set(plan("¿Tiene alergias y qué medicamentos toma?").parts) == {"allergy", "medication"}


def test_whether_then_when_is_a_yes_no_question_and_when_alone_is_not() -> None:
    assert plan("¿Ha estado hospitalizado? ¿Cuándo?").operation == "exists"
    p = plan("oiga, y la última urgencia cuándo fue?")
    assert (p.operation, p.attribute) == ("latest", "date")
    assert plan("¿Qué medicinas está tomando?").operation != "exists"


@pytest.mark.parametrize(
    ("question", "label"),
    [("meds 2024", "2024"), ("peso 6m", "últimos 6 meses"), ("¿qué toma en estos días?", None)],
)
def test_terse_windows(question: str, label: str | None) -> None:
    window = plan(question).window
    assert (window.label if window else None) == label


def test_pa_before_a_question_word_is_para() -> None:
    p = plan("¿y la próxima cita pa cuándo es?")
    assert (p.subject, p.operation) == ("appointment", "next")
    assert plan("PA de la última consulta").vitals == ("bp",)


def test_a_summary_request_that_names_a_condition_asks_about_it() -> None:
    p = plan("Revise la historia completa y dígame si figura asma")
    assert (p.subject, p.operation) == ("diagnosis", "exists")
    assert plan("cuénteme rápido quién es y qué tiene").attribute is None
    assert plan("número de documento").operation == "latest"


def test_a_common_word_is_not_a_drug_that_starts_like_it() -> None:
    # "entrega" shares five letters with "Entresto" (sacubitril + valsartán)
    p = plan("Para la entrega de turno, ¿qué medicamentos tiene vigentes?")
    assert (p.subject, p.drugs) == ("medication", ())
    assert plan("¿Está embarazada?").subject == "diagnosis"  # "embarazada" is of "embarazo"


def test_what_is_said_after_the_question_does_not_change_it() -> None:
    p = plan("¿Le han dicho que tiene asma? La mamá cree que sí.")
    assert (p.subject, p.operation) == ("diagnosis", "exists")
    p = plan("¿Cuál fue la última cita? Necesito la especialidad.")
    assert p.attribute == "specialty"


def test_only_an_asked_clause_makes_a_yes_no_question() -> None:
    p = plan("La hija dice que ya fue a su última cita, ¿cuándo fue?")
    assert (p.subject, p.operation) == ("appointment", "latest")


def test_a_summary_asked_by_name_of_some_parts_says_whose_they_are() -> None:
    assert plan("resúmeme: diagnósticos, medicamentos y alergias").parts[0] == "demographics"
    assert "demographics" not in plan("¿qué alergias tiene y qué medicamentos toma?").parts


def test_the_visit_before_after_a_reading_is_that_visits_reading() -> None:
    first = plan("¿Cuál fue la última presión arterial?")
    p = plan("¿Y en la cita de antes?", first)
    assert (p.subject, p.vitals, p.before) == ("vital", ("bp",), True)


def test_each_lexicon_phrase_is_said_once() -> None:
    """A phrase listed twice is read by its first line only: a second meaning would be dead."""
    from importlib import resources

    text = resources.files("smarthealth.rag").joinpath("data/lexicon.txt").read_text("utf-8")
    phrases = [
        line.split("|")[0].strip()
        for line in text.splitlines()
        if "|" in line and not line.startswith("#")
    ]
    assert sorted(p for p in set(phrases) if phrases.count(p) > 1) == []


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("sgte ctrl?", ("appointment", "next")),
        ("¿pa' cuándo quedó la cita?", ("appointment", "next")),
        ("¿a cuántas citas faltó sin cancelar?", ("appointment", "count")),
        ("¿le han puesto bolsas de sangre?", ("out_of_record", "list")),
        ("¿tenía calentura?", ("vital", "latest")),
        ("¿cuántas veces respiraba por minuto?", ("vital", "latest")),
        ("¿en qué fecha vino al mundo?", ("demographics", "latest")),
        ("¿qué especialistas lo han visto hasta ahora?", ("specialty", "list")),
    ],
)
def test_wordings_of_a_fifth_independent_set(question: str, expected: tuple[str, str]) -> None:
    p = plan(question)
    assert (p.subject, p.operation) == expected


def test_birth_date_said_with_the_document_it_is_on() -> None:
    assert plan("¿qué fecha de nacimiento figura en su documento?").demographic == "birth_date"


def test_a_question_typed_without_marks_can_ask_whether_then_when() -> None:
    p = plan("tiene alguna hospitalizacion, y cuando fue la mas reciente")
    assert (p.subject, p.operation) == ("encounter", "exists")


def test_an_allergy_other_than_to_medicines_is_not_a_summary() -> None:
    p = plan("Aparte de medicamentos, ¿tiene alguna alergia, por ejemplo a alimentos o látex?")
    assert (p.subject, p.status) == ("allergy", "nondrug")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # negated attendance is a missed appointment, whatever the verb
        ("¿Cuál fue la última cita a la que no acudió?", ("appointment", "latest", "NoShow")),
        ("¿a cuántas citas nunca asistió?", ("appointment", "count", "NoShow")),
        # "tumbar", "anular" a cita: cancelled
        ("¿cuántas citas le tumbaron?", ("appointment", "count", "Cancelled")),
        ("¿cuándo se le anuló la última cita?", ("appointment", "latest", "Cancelled")),
        # above or below normal: out of range
        ("¿algún examen por debajo de lo normal?", ("lab", "exists", "abnormal")),
        # "en cualquiera de sus presentaciones" asks whether, not the dose
        (
            "¿Le formularon losartán en cualquiera de sus presentaciones?",
            ("medication", "exists", "ever"),
        ),
    ],
)
def test_statuses_said_in_other_words(question: str, expected: tuple[str, str, str]) -> None:
    p = plan(question)
    assert (p.subject, p.operation, p.status) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("¿Listado de especialistas que lo han atendido?", ("specialty", "list")),
        ("¿Qué médicos lo han visto hasta la fecha?", ("doctor", "list")),
        ("¿Me cuenta quién es y qué tiene?", ("summary", "list")),
        ("¿Me hace un pantallazo del paciente?", ("summary", "list")),
        ("¿Cuántos años lleva cumplidos?", ("demographics", "latest")),
        ("¿Qué grupo y factor tiene?", ("demographics", "latest")),
        ("¿En qué localidad tiene el domicilio?", ("demographics", "latest")),
        ("¿Qué lo trajo a urgencias la última vez?", ("note", "latest")),
        ("¿Con qué está medicada?", ("medication", "list")),
        ("¿Consume OH?", ("out_of_record", "list")),
        ("¿Le pusieron la de la influenza?", ("immunization", "exists")),
        ("¿Qué vacunas figuran en su carnet, con fechas?", ("immunization", "list")),
        ("¿Cuándo fue su última consulta por telemed?", ("encounter", "latest")),
    ],
)
def test_wordings_of_a_seventh_independent_set(question: str, expected: tuple[str, str]) -> None:
    p = plan(question)
    assert (p.subject, p.operation) == expected


def test_every_reading_asked_is_a_series() -> None:
    p = plan("¿Me dice todas las presiones que le han tomado?")
    assert (p.subject, p.operation, p.vitals) == ("vital", "series", ("bp",))


def test_a_question_that_asks_whether_then_when_may_open_with_si_or_antecedente() -> None:
    for question in ("¿Sí ha estado hospitalizado? ¿Cuándo fue?", "¿Antecedente de hosp? Fecha."):
        p = plan(question)
        assert (p.subject, p.operation, p.encounter_type) == (
            "encounter",
            "exists",
            "Hospitalización",
        ), question


def test_this_year_said_as_what_we_have_of_it() -> None:
    for question in ("¿Cuántas consultas en lo que llevamos de año?",
                     "¿Cuántas consultas desde el primero de enero?"):  # fmt: skip
        p = plan(question)
        assert p.window is not None and p.window.start == dt.date(TODAY.year, 1, 1), question


def test_not_finding_something_is_no_visit() -> None:
    # "no lo encuentro" (I can't find it) after the question adds nothing to it
    p = plan("¿Cuánto pesó la última vez? No lo encuentro en la hoja")
    assert (p.subject, p.vitals) == ("vital", ("weight",))


def test_a_regimen_after_a_drug_is_its_dose() -> None:
    first = plan("¿Toma losartán?")
    p = plan("¿Y qué pauta lleva?", first)
    assert (p.subject, p.attribute) == ("medication", "dose")
    first = plan("¿Tiene hipertensión?")
    p = plan("¿Y qué le han pautado para eso?", first)
    assert (p.subject, p.operation, p.conditions) == ("medication", "list", ("I10",))


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("alrgia", "alergia"),
        ("inasitencias", "inasistencias"),
        ("cncelada", "cancelada"),
        ("fehcas", "fechas"),  # the plural of a lexicon word
    ],
)
def test_a_typo_is_measured_against_the_whole_words_of_a_stem(typed: str, meant: str) -> None:
    # "alergi*" is two edits from "alrgia"; the word it stands for, "alergia", is one
    from smarthealth.rag.vocabulary import correct

    assert correct(typed) == meant


def test_a_rare_word_two_edits_from_a_stems_word_is_left_alone() -> None:
    # "arrendada" is not "agendada": whole words of stems are targets one edit away only
    p = plan("¿vive en casa propia o arrendada?")
    assert p.subject != "appointment"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("¿Cuándo fue la última cita que se le pasó sin venir?", ("appointment", "NoShow")),
        ("¿Última cita en la que figura como ausente?", ("appointment", "NoShow")),
        ("¿La última cita a la que sí fue?", ("appointment", "Attended")),
        ("¿Aparece mometasona? No importa la presentación.", ("medication", "ever")),
    ],
)
def test_statuses_of_an_eighth_independent_set(question: str, expected: tuple[str, str]) -> None:
    p = plan(question)
    assert (p.subject, p.status) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("¿Qué tanto losartán le toca y cada cuándo?", ("medication", "attribute")),
        # the relative who said it is no family history
        ("¿Sí tiene asma o nomás lo dijo el familiar?", ("diagnosis", "exists")),
        # "antes de la cirugía" says when it is asked, not about surgeries
        ("vacunas aplicadas con fechas, antes de la cirugía", ("immunization", "list")),
        ("nº doc del pte?", ("demographics", "latest")),
        # a condition asked of the visits is a diagnosis
        ("¿Aparece gota en alguna de sus consultas?", ("diagnosis", "exists")),
        ("plan / tto de la última consulta?", ("note", "latest")),
        # the findings of a kind of record: that record (or that there is none)
        ("ECG, hallazgos?", ("procedure", "exists")),
        (
            "¿De qué especialidad es la próxima cita? No la encontré en la agenda.",
            ("appointment", "next"),
        ),
    ],
)
def test_wordings_of_an_eighth_independent_set(question: str, expected: tuple[str, str]) -> None:
    p = plan(question)
    assert (p.subject, p.operation) == expected


def test_with_dates_lists_every_vaccine() -> None:
    p = plan("vac del pte con fechas")
    assert (p.subject, p.operation) == ("immunization", "list")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("¿Cuánto hace que toma losartán?", ("medication", "first", None)),
        ("¿Lleva mucho tiempo tomando losartán?", ("medication", "first", None)),
        ("¿Desde qué consulta tiene hipertensión?", ("diagnosis", "first", None)),
        ("¿Cómo le indicaron el losartán?", ("medication", "attribute", "dose")),
        ("¿El losartán es de 50 o de 100?", ("medication", "attribute", "dose")),
        ("¿Qué miligramaje tiene el losartán?", ("medication", "attribute", "dose")),
        ("Por función renal, ¿cuánto losartán recibe?", ("medication", "attribute", "dose")),
        ("¿Tomó losartán antes de 2023?", ("medication", "exists", None)),
        ("¿Qué doctores lo han atendido?", ("doctor", "list", "doctor")),
    ],
)
def test_since_when_dose_and_doctors_said_other_ways(
    question: str, expected: tuple[str, str, str | None]
) -> None:
    p = plan(question)
    assert (p.subject, p.operation, p.attribute) == expected


@pytest.mark.parametrize(
    ("question", "encounter_type"),
    [
        ("¿Ha tenido ingresos hospitalarios?", "Hospitalización"),
        ("¿Cuándo fue su última estancia hospitalaria?", "Hospitalización"),
        ("¿Se ha quedado en observación?", "Urgencias"),
    ],
)
def test_kinds_of_visit_said_other_ways(question: str, encounter_type: str) -> None:
    p = plan(question)
    assert (p.subject, p.encounter_type) == ("encounter", encounter_type)


@pytest.mark.parametrize(
    ("question", "loinc"),
    [
        ("¿Cómo está la función renal?", "2160-0"),
        ("¿Cómo tiene los lípidos?", "2571-8"),
        ("¿Tiene la glicada controlada?", "4548-4"),
        ("¿Tiene reporte de TSH?", "3016-3"),  # "reporte" is no "deporte"
    ],
)
def test_laboratory_tests_said_other_ways(question: str, loinc: str) -> None:
    p = plan(question)
    assert p.subject == "lab" and loinc in p.labs


@pytest.mark.parametrize(
    "question",
    ["¿Qué reacción le da la penicilina?", "¿Puede tomar ibuprofeno?", "¿Tolera los AINE?"],
)
def test_whether_a_drug_can_be_given_asks_its_allergies(question: str) -> None:
    assert plan(question).subject == "allergy"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # "pa'" is "para", never a blood pressure
        ("¿De qué ciudad es? Pa' coordinar el traslado.", ("demographics", "latest")),
        ("¿PA ayer?", ("vital", "latest")),
        # an addendum that says why it is asked, or only asks to be told, adds nothing
        ("¿Qué edad tiene? Me falta para el formulario.", ("demographics", "latest")),
        (
            "¿Con qué diagnósticos salió del último control? Cuéntame no más.",
            ("diagnosis", "latest"),
        ),
        (
            "¿Y cuántas pastillas y cada cuánto? La hija quiere anotarlo.",
            ("medication", "attribute"),
        ),
        # what is needed, after why it is needed
        ("Para sacarle la cita necesito el número de identificación", ("demographics", "latest")),
        # a clause saying when, before the question
        ("Cuando terminó la consulta, ¿qué se acordó hacer?", ("note", "latest")),
        # Chile: "hora" is an appointment
        ("Oye, ¿tiene alguna hora pendiente?", ("appointment", "next")),
        ("¿De qué fecha era la última hora cancelada?", ("appointment", "latest")),
        ("¿N.º de consultas en lo que va del año?", ("encounter", "count")),
        ("¿Con qué especialidaes ha tenido citas?", ("specialty", "list")),
        ("¿Me pasa cada presión de seis meses para acá?", ("vital", "series")),
        ("¿En qué fecha le pusieron la vacuna del tétanos?", ("immunization", "exists")),
        ("¿Qué altura tiene? Lo piden en el formulario.", ("vital", "latest")),
    ],
)
def test_wordings_of_a_ninth_independent_set(question: str, expected: tuple[str, str]) -> None:
    p = plan(question)
    assert (p.subject, p.operation) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # a reason after a comma, with no question mark, is no part of the question
        ("Dx de la atención más reciente, para la nota de seguimiento", ("diagnosis", "latest")),
        ("¿Qué vacunas tiene registradas y cuándo se aplicaron?", ("immunization", "list")),
        ("¿Cuál fue la última intervención que le hicieron?", ("procedure", "latest")),
        ("¿Qué le llevó a pedir la última consulta?", ("note", "latest")),
        ("¿Me da una visión general de su salud?", ("summary", "list")),
        ("¿Ha estado ingresada alguna vez?", ("encounter", "exists")),
        ("¿Qué áreas médicas lo han atendido?", ("specialty", "list")),
        ("¿Tiene lupus? Quiero confirmarlo antes del control.", ("diagnosis", "exists")),
        # the topic said after the question is part of it
        ("¿Alguna vez le han puesto sangre? Una transfusión, digo.", ("out_of_record", "list")),
    ],
)
def test_wordings_of_a_tenth_independent_set(question: str, expected: tuple[str, str]) -> None:
    p = plan(question)
    assert (p.subject, p.operation) == expected


def test_what_was_given_for_a_condition_asks_its_treatment() -> None:
    first = plan("¿Tiene asma?")
    p = plan("Ya, ¿y qué le han dado para eso?", first)
    assert (p.subject, p.operation, p.conditions) == ("medication", "list", ("J45.9",))


def test_what_for_after_a_comma_stays_part_of_the_question() -> None:
    # ", para la nota de seguimiento" says why it is asked; ", para el dolor" what for
    p = plan("medicamentos vigentes, para el dolor")
    assert (p.subject, p.attribute) == ("medication", "treatment") and "N02" in p.drug_classes
