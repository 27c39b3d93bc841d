"""The offline engine: a short, deterministic Spanish answer written from the plan's execution.

The direct answer comes first ("Sí." / "No." / the value / the date / the count), then the facts
that support it, each citing its chunk. Lists only when a list was asked. Every date is the
fact's day in the clinic's time zone. With no execution (free-text questions) it answers only
from retrieved sources that say what was asked, and otherwise abstains.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from smarthealth.rag.chunking import APPOINTMENT_STATUS, DIAGNOSIS_KIND
from smarthealth.rag.engines.base import AnswerContext, DraftAnswer, SourceFact
from smarthealth.rag.executor import (
    BOGOTA,
    VITAL_KEYS,
    Execution,
    Row,
    in_force,
    names_condition,
)
from smarthealth.rag.plan import VITAL_NAMES, VITAL_UNITS, QuestionPlan
from smarthealth.rag.text import fold, lexical_query
from smarthealth.rag.vocabulary import base_name, condition_labels

MODEL_NAME = "extractive-v2"
# Below this cosine similarity a vector hit alone is not evidence (multilingual-e5 scores are
# high for any clinical sentence); lexical evidence always counts.
VECTOR_EVIDENCE = 0.88
_TOKENS = re.compile(r"\S+\s*")

STATUS_PLURAL = {
    "Attended": "atendidas",
    "Cancelled": "canceladas",
    "NoShow": "no asistidas",
    "upcoming": "programadas",
}
ENCOUNTER = {
    "Urgencias": ("atención de urgencias", "atenciones de urgencias"),
    "Hospitalización": ("hospitalización", "hospitalizaciones"),
    "Telemedicina": ("teleconsulta", "teleconsultas"),
    "Consulta externa": ("consulta externa", "consultas externas"),
    "Control": ("consulta de control", "consultas de control"),
}
TOPIC = {
    "allergy": "alergias",
    "medication": "medicamentos formulados",
    "diagnosis": "diagnósticos",
    "vital": "signos vitales",
    "appointment": "citas",
    "encounter": "atenciones",
    "doctor": "médicos tratantes",
    "specialty": "especialidades",
    "demographics": "datos del paciente",
    "note": "notas clínicas",
    "summary": "información",
    "lab": "resultados de laboratorio",
    "immunization": "vacunas",
    "procedure": "cirugías ni procedimientos",
}


class _Writer:
    """Sentences with their citations; `cite(row)` gives the row's source number."""

    def __init__(self, ctx: AnswerContext, execution: Execution) -> None:
        self.ctx = ctx
        self.ex = execution
        self.plan: QuestionPlan = execution.plan
        self.numbers = {s.chunk_id: s.number for s in ctx.sources}

    def cite(self, *rows: Row | None) -> str:
        marks = "".join(
            f"[{self.numbers[r.chunk_id]}]" for r in rows if r and r.chunk_id in self.numbers
        )
        return f" {marks}" if marks else ""

    def rows_text(self, rows: Sequence[Row], describe: Callable[[Row], str]) -> str:
        return "; ".join(f"{describe(r)}{self.cite(r)}" for r in rows)

    @property
    def name(self) -> str:
        return self.ctx.patient_name

    def window(self) -> str:
        return _window_words(self.plan)


def _d(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else "fecha no registrada"


def _time(row: Row) -> str:
    if row.source_type == "encounter" and row.facts.get("time"):
        return str(row.facts["time"])
    moment = row.moment
    return moment.astimezone(BOGOTA).strftime("%H:%M")


def _drug(row: Row) -> str:
    f = row.facts
    return f"{f['ingredient']} {f.get('strength', '')}".strip()


def _dose(row: Row) -> str:
    f = row.facts
    return f"{f['dosage']} {f['frequency']} por {f['duration_days']} días"


def _asked_drug(plan: QuestionPlan) -> str:
    if plan.purpose:
        return f"medicamentos para {plan.purpose}"
    if plan.drug_class_label:
        return plan.drug_class_label
    if plan.drugs:
        return " ni ".join(dict.fromkeys(base_name(d) for d in sorted(plan.drugs)))
    if plan.conditions:
        return "medicamentos para " + _asked_condition(plan)
    return "ese medicamento"


def _asked_condition(plan: QuestionPlan) -> str:
    labels = condition_labels()
    names = [labels.get(c, c) for c in plan.conditions] or list(plan.condition_words)
    return " ni ".join(dict.fromkeys(n.lower() for n in names)) or "ese diagnóstico"


# -- per subject --------------------------------------------------------------------------------


def _prescription_line(r: Row, today: dt.date) -> str:
    end = dt.date.fromisoformat(r.facts["end"])
    period = (
        f"vigente hasta el {_d(end)}"
        if in_force(r, today)
        else f"formulado el {_d(r.day)}, terminó el {_d(min(end, today))}"
    )
    return f"{_drug(r)}, {r.facts['dosage']} {r.facts['frequency']} ({period})"


def _treated(plan: QuestionPlan, rows: Sequence[Row]) -> str:
    """What the listed prescriptions treat, as their diagnoses say ("artritis" asked →
    "artritis reumatoide, no especificada"), or the symptom when chosen by drug class."""
    if plan.purpose and not any(names_condition(r, plan) for r in rows):
        return plan.purpose  # chosen by the drugs' class ("para el dolor")
    names = dict.fromkeys(str(r.facts.get("diagnosis") or "").lower() for r in rows)
    return " y ".join(n for n in names if n) or _asked_condition(plan)


def _indication(r: Row) -> str:
    code, name = r.facts.get("icd_code"), r.facts.get("diagnosis")
    if not code:
        return "la fórmula no registra el diagnóstico que trata"
    return f"formulado para {name} (CIE-10 {code}) el {_d(r.day)}"


def _medication(w: _Writer) -> str:
    plan, ex = w.plan, w.ex
    if ex.verdict == "no" and plan.status == "inactive":
        return f"No tiene medicamentos suspendidos o terminados en la historia clínica de {w.name}."
    if ex.verdict == "no" and ex.context:  # prescribed before, not in force today
        asked = _asked_drug(plan)
        what = "medicamentos vigentes" if asked == "ese medicamento" else f"{asked} vigente"
        ended = w.rows_text(ex.context, lambda r: _prescription_line(r, w.ctx.today))
        return f"No tiene {what}; lo último formulado: {ended}."
    if ex.verdict == "no":
        return f"No, no encuentro {_asked_drug(plan)} entre los medicamentos formulados a {w.name}."
    rows, today = ex.rows, w.ctx.today

    def line(r: Row) -> str:
        return _prescription_line(r, today)

    if ex.at_visit is not None and ex.verdict == "found":
        return f"En la atención del {_d(ex.at_visit.day)} se formuló: {w.rows_text(rows, line)}."
    if plan.status == "inactive" and ex.verdict == "found":
        return f"Medicamentos que ya no están vigentes: {w.rows_text(rows, line)}."
    if ex.verdict == "count":
        if "veces" in " ".join(plan.cues) or plan.drugs:
            what = _asked_drug(plan) if plan.drugs else "medicamentos"
            last = f"; la última el {_d(rows[0].day)}{w.cite(rows[0])}" if rows else ""
            return f"Se le ha formulado {what} {ex.count} veces{w.window()}{last}."
        listed = f": {w.rows_text(rows, _drug)}." if rows else "."
        state = {"inactive": " que ya no están vigentes", "ever": " diferentes formulados"}.get(
            plan.status or "", " vigente(s)"
        )
        return f"{ex.count} medicamento(s){w.window() or state}{listed}"
    if plan.operation == "exists":
        others = f" También: {w.rows_text(rows[1:], line)}." if len(rows) > 1 else ""
        had = "tiene formulado" if in_force(rows[0], today) else "se le formuló"
        return f"Sí, {had} {line(rows[0])}{w.cite(rows[0])}.{others}"
    if plan.operation == "first":
        return " ".join(
            f"{r.facts['ingredient'].capitalize()}: formulado por primera vez el "
            f"{_d(r.day)}{w.cite(r)}."
            for r in rows
        )
    if plan.attribute == "dose":
        return " ".join(f"{_drug(r).capitalize()}: {_dose(r)}{w.cite(r)}." for r in rows)
    if plan.attribute in ("doctor", "specialty"):
        return _who(w, rows[0], f"{rows[0].facts['ingredient'].capitalize()} lo formuló", True)
    if plan.attribute == "reason":
        return " ".join(f"{_drug(r).capitalize()}: {_indication(r)}{w.cite(r)}." for r in rows)
    if plan.purpose or plan.conditions or plan.condition_words:
        return f"Para {_treated(plan, rows)} tiene formulado: {w.rows_text(rows, line)}."
    if plan.follow_up and plan.rows and not plan.drugs:
        return f"Para eso tiene formulado: {w.rows_text(rows, line)}."
    if w.window():
        listed = w.rows_text(rows, lambda r: f"{_drug(r)} ({_d(r.day)})")
        return f"Medicamentos formulados{w.window()}: {listed}."
    if all(dt.date.fromisoformat(r.facts["end"]) >= today for r in rows):
        return f"Tiene {len(rows)} medicamento(s) vigente(s): {w.rows_text(rows, line)}."
    return (
        f"No tiene medicamentos vigentes; lo último formulado ({_d(rows[0].day)}): "
        f"{w.rows_text(rows, line)}."
    )


def _severity(r: Row) -> str:
    return str(r.facts.get("severity") or "no registrada").lower()


def _allergy_line(r: Row) -> str:
    reaction = r.facts.get("reaction") or "reacción no registrada"
    return f"{r.facts['ingredient']} ({reaction}, severidad {_severity(r)})"


def _allergy(w: _Writer) -> str:
    plan, ex = w.plan, w.ex
    examples = plan.status == "nondrug" and len(plan.terms) > 1  # "¿a comida, látex o polen?"
    named = (
        plan.drug_class_label
        or (_asked_drug(plan) if plan.drugs else None)
        or (None if examples else " ".join(plan.terms) or None)
    )
    if ex.verdict == "no" and plan.status == "nondrug" and not named:
        drugs = (
            f" Alergias a medicamentos: {w.rows_text(ex.context, _allergy_line)}."
            if ex.context
            else ""
        )
        return (
            f"No tiene registradas alergias a alimentos, látex u otras sustancias que no sean "
            f"medicamentos en la historia clínica de {w.name}.{drugs}"
        )
    if ex.verdict == "no":
        if not named:
            return f"No tiene alergias registradas en la historia clínica de {w.name}."
        held = (
            f" Alergias registradas: {w.rows_text(ex.context, _allergy_line)}."
            if ex.context
            else " No tiene alergias registradas."
        )
        if ex.related:  # the safety-relevant part first: an allergy within the same group
            kin = w.rows_text(ex.related, _allergy_line)
            others = [r for r in ex.context if r not in ex.related]
            rest = f" Otras alergias: {w.rows_text(others, _allergy_line)}." if others else ""
            return (
                f"No tiene registrada alergia a {named}, pero sí a un medicamento del mismo "
                f"grupo farmacológico: {kin}.{rest}"
            )
        return f"No, no tiene registrada alergia a {named}.{held}"
    rows = ex.rows
    listed = w.rows_text(rows, _allergy_line)
    if ex.verdict == "count":
        return f"{ex.count} alergia(s) registrada(s)" + (f": {listed}." if rows else ".")
    if plan.attribute == "reaction":
        opening = "Sí. " if ex.verdict == "yes" and named else ""  # "¿reacción alérgica al maní?"
        return opening + " ".join(
            f"Con {r.facts['ingredient']} presentó "
            f"{r.facts.get('reaction') or 'una reacción no registrada'} (severidad "
            f"{_severity(r)}){w.cite(r)}."
            for r in rows
        )
    if plan.operation == "first" or plan.attribute == "date":
        return " ".join(
            f"{r.facts['ingredient'].capitalize()}: alergia registrada desde el "
            f"{_d(r.day)}{w.cite(r)}."
            for r in rows
        )
    if ex.verdict == "yes" and named:
        return f"Sí, tiene alergia a {named}: {listed}."
    opening = "Sí, tiene" if ex.verdict == "yes" else "Tiene"
    return f"{opening} {len(rows)} alergia(s) registrada(s): {listed}."


def _diagnosis_name(r: Row) -> str:
    f = r.facts
    code = (
        f"CIE-10 {f['icd_code']}"
        if f.get("icd_code")
        else f"{f.get('code_system')} {f.get('code')}"
    )
    return f"{f['description']} ({code})"


def _diagnosis(w: _Writer) -> str:
    plan, ex = w.plan, w.ex
    if ex.verdict == "no" and plan.status == "active" and not plan.conditions:
        return f"No tiene problemas activos registrados en la historia clínica de {w.name}."
    if ex.verdict == "no":
        return f"No, no encuentro {_asked_condition(plan)} entre los diagnósticos de {w.name}."
    rows = ex.rows
    if ex.verdict == "count":
        return f"{ex.count} diagnóstico(s) registrado(s): {w.rows_text(rows, _diagnosis_name)}."
    if ex.at_visit is not None:
        listed = w.rows_text(rows, _diagnosis_name)
        return f"En la atención del {_d(ex.at_visit.day)} se registró: {listed}."
    if plan.operation == "exists":
        if len(rows) > 1 and not (plan.conditions or plan.condition_words):
            # "¿Tiene alguna enfermedad?": every diagnosis, not the first one alone
            listed = w.rows_text(rows, lambda r: f"{_diagnosis_name(r)}, última vez el {_d(r.day)}")
            return f"Sí, tiene registrados: {listed}."
        r = rows[0]
        return f"Sí, tiene registrado {_diagnosis_name(r)}, última vez el {_d(r.day)}{w.cite(r)}."
    if plan.operation == "first":
        return " ".join(
            f"{_diagnosis_name(r)}: registrado desde el {_d(r.day)}{w.cite(r)}." for r in rows
        )
    if plan.attribute in ("doctor", "specialty"):
        return _who(w, rows[0], f"{rows[0].facts['description']} lo registró", True)
    if plan.operation == "latest":
        listed = w.rows_text(
            rows,
            lambda r: (
                f"{_diagnosis_name(r)}, {DIAGNOSIS_KIND.get(r.facts.get('kind', ''), 'otro')}"
            ),
        )
        return f"En la consulta más reciente ({_d(rows[0].day)}) se registró: {listed}."
    listed = w.rows_text(rows, lambda r: f"{_diagnosis_name(r)}, última vez el {_d(r.day)}")
    if plan.status == "active":
        return f"Problemas activos: {listed}."
    return f"Diagnósticos registrados: {listed}."


# vital sign → (fact key, unit)
VITAL_FACTS = {kind: (keys[0], VITAL_UNITS[kind]) for kind, keys in VITAL_KEYS.items()}


def _vital_value(row: Row, kind: str) -> str:
    """As the chunk's text writes it (the cited source must say the same)."""
    key, unit = VITAL_FACTS[kind]
    if kind == "bp":
        return f"{row.facts['systolic']}/{row.facts['diastolic']} mmHg"
    value = row.facts[key]
    if kind == "bmi":
        return f"{float(value):.1f}"
    if isinstance(value, float):
        value = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value} {unit}".strip()


def _vital(w: _Writer) -> str:
    plan, ex = w.plan, w.ex
    rows = ex.rows
    if ex.verdict == "count":
        last = f"; la última el {_d(rows[0].day)}{w.cite(rows[0])}" if rows else ""
        return f"{ex.count} toma(s) de signos vitales registradas{w.window()}{last}."
    kinds = list(plan.series_vitals if plan.operation == "series" else plan.vitals)
    if not kinds:
        r = rows[0]
        every = ", ".join(
            f"{VITAL_NAMES[k]} {_vital_value(r, k)}"
            for k, (key, _) in VITAL_FACTS.items()
            if r.facts.get(key) is not None
        )
        return f"Últimos signos vitales ({_d(r.day)}): {every}{w.cite(r)}."
    label = " y ".join(VITAL_NAMES[k] for k in kinds)

    def values(r: Row) -> str:
        return ", ".join(_vital_value(r, k) for k in kinds)

    if plan.operation == "series":
        listed = w.rows_text(rows, lambda r: f"{values(r)} el {_d(r.day)}")
        trend = ""
        if len(rows) >= 2:
            start, end = rows[0], rows[-1]
            trend = (
                f" De {values(start)} ({_d(start.day)}){w.cite(start)} a {values(end)} "
                f"({_d(end.day)}){w.cite(end)}."
            )
        span = w.window() or " en las últimas tomas"
        return f"{label.capitalize()}{span}, {len(rows)} toma(s):{trend} {listed}."
    r = rows[0]
    if plan.operation in ("max", "min"):
        most = "más alta" if plan.operation == "max" else "más baja"
        if kinds[0] in MASCULINE_VITALS:
            most = "más alto" if plan.operation == "max" else "más bajo"
        said = f"{_article(kinds[0]).capitalize()} {label} {most} registrad{_ending(kinds[0])}"
        return f"{said}{w.window()} fue {values(r)}, el {_d(r.day)}{w.cite(r)}."
    which = "última"
    if plan.operation == "first":
        which = "primera"
    elif plan.before:
        which = "anterior"
    if len(kinds) > 1:
        return f"Últimos valores de {label} ({_d(r.day)}): {values(r)}{w.cite(r)}."
    if kinds[0] in MASCULINE_VITALS:
        which = {"última": "último", "primera": "primer"}.get(which, which)
        return f"El {which} {label} registrado fue {values(r)}, el {_d(r.day)}{w.cite(r)}."
    return f"La {which} {label} registrada fue {values(r)}, el {_d(r.day)}{w.cite(r)}."


MASCULINE_VITALS = frozenset({"weight", "bmi"})


def _article(kind: str) -> str:
    return "el" if kind in MASCULINE_VITALS else "la"


def _ending(kind: str) -> str:
    return "o" if kind in MASCULINE_VITALS else "a"


def _appointment_line(r: Row) -> str:
    f = r.facts
    return (
        f"el {_d(r.day)} a las {_time(r)}, {f['specialty']} con {f['doctor']} "
        f"({APPOINTMENT_STATUS.get(f['status'], f['status'])})"
    )


APPOINTMENT_KIND = {
    "Attended": " a la que asistió",
    "Cancelled": " cancelada",
    "NoShow": " a la que no asistió",
}


def _appointment(w: _Writer) -> str:
    plan, ex = w.plan, w.ex
    rows, status = ex.rows, plan.status
    plural = STATUS_PLURAL.get(status or "", "")
    if ex.verdict == "no":
        what = f"citas {plural}" if status else "citas próximas"
        return f"No, no encuentro {what} en la historia clínica de {w.name}."
    if ex.verdict == "count":
        what = f"cita(s) {plural}" if status else "cita(s) registradas"
        which = "la próxima" if status == "upcoming" else "la más reciente"
        latest = f"; {which} {_appointment_line(rows[0])}{w.cite(rows[0])}" if rows else ""
        return f"{ex.count} {what}{w.window()}{latest}."
    r = rows[0]
    upcoming = r.moment >= (w.ctx.now or dt.datetime.now(BOGOTA))
    if plan.operation == "exists":
        return f"Sí: {w.rows_text(rows, _appointment_line)}."
    opening = "La próxima cita es" if upcoming else "Fue"
    when = f"el {_d(r.day)}{w.cite(r)}"
    if plan.attribute == "doctor":
        return f"{opening} con {r.facts['doctor']} ({r.facts['specialty']}), {when}."
    if plan.attribute == "specialty":
        return f"{opening} de {r.facts['specialty']}, con {r.facts['doctor']}, {when}."
    if plan.attribute == "reason":
        reason = r.facts.get("reason") or "no registrado"
        return f"Motivo de la cita del {_d(r.day)}: {reason}{w.cite(r)}."
    if upcoming:
        later = f" Después: {w.rows_text(rows[1:], _appointment_line)}." if len(rows) > 1 else ""
        return f"La próxima cita es {_appointment_line(r)}{w.cite(r)}.{later}"
    if plan.operation in ("latest", "attribute", "first") or len(rows) == 1:
        which = "última"
        if plan.operation == "first":
            which = "primera"
        elif plan.before:
            which = "anterior"
        kind = APPOINTMENT_KIND.get(status or "", "")
        return f"La {which} cita{kind} fue {_appointment_line(r)}{w.cite(r)}."
    title = f"Citas {plural}" if status else "Citas registradas"
    return f"{title}: {w.rows_text(rows, _appointment_line)}."


def _encounter_kind(record_type: str | None) -> tuple[str, str]:
    """(singular, plural) Spanish name of a kind of visit."""
    if record_type is None:
        return ("atención", "atenciones")
    return ENCOUNTER.get(record_type, (record_type.lower(), record_type.lower()))


def _encounter_line(r: Row, kind_first: bool = True) -> str:
    f = r.facts
    text = f"el {_d(r.day)} a las {_time(r)}, con {f.get('doctor')} ({f.get('specialty')})"
    if kind_first:
        text = f"{_encounter_kind(f.get('record_type'))[0]} {text}"
    if f.get("discharge"):
        stay = f" ({f['days']} días)" if f.get("days") else ""
        text += f", egreso el {_d(dt.date.fromisoformat(f['discharge']))}{stay}"
    if f.get("principal"):
        text += f"; diagnóstico principal: {f['principal']}"
    return text


def _encounter(w: _Writer) -> str:
    plan, ex = w.plan, w.ex
    one, many = _encounter_kind(plan.encounter_type)
    if ex.verdict == "no":
        return f"No, no tiene {many} registradas en la historia clínica de {w.name}."
    rows = ex.rows
    if ex.verdict == "count":
        if not ex.count:
            return f"0: no tiene {many} registradas{w.window()}."
        what = one if ex.count == 1 else many
        r = rows[0]
        return f"{ex.count} {what}{w.window()}; la última {_encounter_line(r)}{w.cite(r)}."
    r = rows[0]
    if plan.attribute in ("doctor", "specialty"):
        visit = one if plan.encounter_type else "última atención"
        return _who(w, r, f"En la {visit} del {_d(r.day)} lo atendió")
    if plan.operation == "exists":
        count = ex.count or len(rows)
        what = one if count == 1 else many
        return f"Sí, {count} {what}; la última {_encounter_line(r)}{w.cite(r)}."
    if plan.operation in ("latest", "first", "attribute", "next"):
        which = "primera" if plan.operation == "first" else "última"
        return f"La {which} {one} fue {_encounter_line(r, kind_first=False)}{w.cite(r)}."
    return f"{many.capitalize()}: {w.rows_text(rows, _encounter_line)}."


def _who(w: _Writer, row: Row, opening: str, dated: bool = False) -> str:
    enc = w.ex.encounter_of(row) or row
    doctor, specialty = enc.facts.get("doctor"), enc.facts.get("specialty")
    if w.plan.attribute == "specialty":
        return f"{specialty} ({doctor}), el {_d(enc.day)}{w.cite(*dict.fromkeys((row, enc)))}."
    when = f", el {_d(enc.day)}" if dated else ""
    return f"{opening} {doctor} ({specialty}){when}{w.cite(*dict.fromkeys((row, enc)))}."


def _people(w: _Writer) -> str:
    plan, ex = w.plan, w.ex
    rows = ex.rows
    key = "doctor" if plan.subject == "doctor" else "specialty"
    if plan.operation == "next":
        return _appointment(w)

    def line(r: Row) -> str:
        also = f" ({r.facts.get('specialty')})" if key == "doctor" else ""
        return f"{r.facts.get(key)}{also}, última vez el {_d(r.day)}"

    if ex.verdict == "count":
        one, many = ("médico", "médicos") if key == "doctor" else ("especialidad", "especialidades")
        counted = f"{ex.count} {one if ex.count == 1 else many}"
        return f"{counted}{w.window()}: {w.rows_text(rows, line)}."
    if plan.operation == "latest":
        r = rows[0]
        return (
            f"La última atención ({_d(r.day)}) fue con {r.facts.get('doctor')}, "
            f"{r.facts.get('specialty')}{w.cite(r)}."
        )
    title = (
        "Médicos que lo han atendido" if key == "doctor" else "Especialidades que lo han atendido"
    )
    return f"{title}{w.window()}: {w.rows_text(rows, line)}."


def _demographics(w: _Writer) -> str:
    r = w.ex.rows[0]
    f = r.facts
    today = w.ctx.today
    birth = dt.date.fromisoformat(f["birth_date"])
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    gender = {"F": "femenino", "M": "masculino"}.get(f.get("gender", ""), "otro")
    blood = f.get("blood_type") or "no registrado"
    city = f.get("city") or "no registrada"
    c = w.cite(r)
    answers = {
        "age": f"Tiene {age} años (nació el {_d(birth)}){c}.",
        "birth_date": f"Nació el {_d(birth)} ({age} años){c}.",
        "blood_type": f"Grupo sanguíneo {blood}{c}.",
        "city": f"Ciudad: {city}{c}.",
        "document": f"Documento: {f['document_code']} {f['document_number']}{c}.",
        "name": f"{f['full_name']}{c}.",
        "sex": f"Sexo {gender}{c}.",
    }
    return answers.get(w.plan.demographic or "") or (
        f"{f['full_name']}, {f['document_code']} {f['document_number']}, {age} años (nació el "
        f"{_d(birth)}), sexo {gender}, grupo sanguíneo {blood}, ciudad {city}{c}."
    )


def _strip_prefix(content: str) -> str:
    return content.split(" — ", 1)[-1] if " — " in content else content.split(" · ", 1)[-1]


def _note(w: _Writer) -> str:
    if w.plan.attribute in ("doctor", "specialty"):  # "¿Quién firmó la última nota?"
        return _who(w, w.ex.rows[0], f"La nota del {_d(w.ex.rows[0].day)} la escribió")
    rows = w.ex.rows
    if len(rows) > 1 and len({r.record_id for r in rows}) == 1:  # one note, its sections
        first = rows[0]
        parts = " ".join(f"{_strip_prefix(r.content).rstrip('.')}{w.cite(r)}." for r in rows)
        return f"Nota del {_d(first.day)} ({first.facts.get('record_type', 'nota')}): {parts}"
    return " ".join(
        f"El {_d(r.day)} ({r.facts.get('record_type', 'nota')}): "
        f"{_strip_prefix(r.content).rstrip('.')}{w.cite(r)}."
        for r in rows
    )


def _summary(w: _Writer) -> str:
    def of(kind: str) -> list[Row]:
        return [r for r in w.ex.rows if r.source_type == kind]

    asked = w.plan.parts  # only these, each said even when empty; else the chart at a glance
    parts = []
    if of("demographics"):
        card = Execution(w.plan, "found", tuple(of("demographics")))
        parts.append(_demographics(_Writer(w.ctx, card)))
    if dx := of("diagnosis"):
        parts.append(f"Diagnósticos: {w.rows_text(dx, _diagnosis_name)}.")
    elif "diagnosis" in asked:
        parts.append("Sin diagnósticos registrados.")
    if meds := of("prescription"):
        listed = w.rows_text(meds, lambda r: f"{_drug(r)}, {_dose(r)}")
        parts.append(f"Medicamentos: {listed}.")
    elif "medication" in asked:
        parts.append("Sin medicamentos formulados.")
    if allergies := of("allergy"):
        parts.append(f"Alergias: {w.rows_text(allergies, _allergy_line)}.")
    elif not asked or "allergy" in asked:
        parts.append("Sin alergias registradas.")
    if upcoming := of("appointment"):
        parts.append(f"Próxima cita {_appointment_line(upcoming[0])}{w.cite(upcoming[0])}.")
    elif "appointment" in asked:
        parts.append("Sin citas próximas.")
    return " ".join(parts)


def _lab_value(r: Row) -> str:
    f = r.facts
    if f.get("value") is not None:
        value = f"{f['value']:g} {f.get('unit') or ''}".strip()
    elif f.get("components"):
        value = "; ".join(
            f"{c.get('display') or c.get('code')} {c.get('value', c.get('text', ''))} "
            f"{c.get('unit') or ''}".strip()
            for c in f["components"]
        )
    else:
        value = str(f.get("text") or "sin valor")
    low, high = f.get("low"), f.get("high")
    reference = (
        f", referencia {low if low is not None else '…'}–{high if high is not None else '…'}"
    )
    flag = ", fuera de rango" if f.get("out_of_range") else ""
    return value + (reference if low is not None or high is not None else "") + flag


def _lab_name(plan: QuestionPlan, r: Row) -> str:
    return plan.lab_label if plan.labs and plan.lab_label else str(r.facts.get("display"))


def _lab(w: _Writer) -> str:
    plan, ex = w.plan, w.ex
    name = plan.lab_label or "resultados de laboratorio"
    if ex.verdict == "no" and plan.status == "abnormal":
        return (
            f"No: el último resultado de cada examen de laboratorio de {w.name} está dentro "
            "del rango de referencia."
        )
    if ex.verdict == "no":
        return f"No, no encuentro {name} en los resultados de laboratorio de {w.name}."
    rows = ex.rows
    if plan.status == "abnormal" and plan.operation not in ("series", "count", "max", "min"):
        listed = w.rows_text(
            rows, lambda r: f"{r.facts.get('display')} {_lab_value(r)} ({_d(r.day)})"
        )
        opening = "Sí. " if ex.verdict == "yes" else ""
        title = "Resultados fuera del rango de referencia (el último de cada examen)"
        return f"{opening}{title}: {listed}."
    if ex.verdict == "count":
        last = f"; el último el {_d(rows[0].day)}{w.cite(rows[0])}" if rows else ""
        return f"{ex.count} resultado(s) de {name}{w.window()}{last}."
    if plan.operation == "exists":
        r = rows[0]
        return f"Sí: {_lab_name(plan, r)} {_lab_value(r)}, el {_d(r.day)}{w.cite(r)}."
    if plan.operation == "series" or (len(rows) > 1 and plan.labs):
        listed = w.rows_text(rows, lambda r: f"{_lab_value(r)} el {_d(r.day)}")
        return f"{name.capitalize()}{w.window()}, {len(rows)} resultado(s): {listed}."
    if plan.labs:
        r = rows[0]
        which = {"first": "primer", "max": "más alto", "min": "más bajo"}.get(plan.operation)
        said = f"El {which} resultado de" if which else "El último resultado de"
        return f"{said} {name}{w.window()} fue {_lab_value(r)}, el {_d(r.day)}{w.cite(r)}."
    listed = w.rows_text(rows, lambda r: f"{r.facts.get('display')} {_lab_value(r)} ({_d(r.day)})")
    return f"Últimos resultados de laboratorio: {listed}."


@dataclass(frozen=True)
class _Noun:
    """How answers name a recorded kind: "1 vacuna registrada", "3 procedimientos registrados"."""

    one: str
    many: str
    ending: str  # of the participle: "a" (vacuna) or "o" (procedimiento)

    @property
    def article(self) -> str:
        return "las" if self.ending == "a" else "los"

    def counted(self, n: int) -> str:
        return (
            f"{n} {self.one if n == 1 else self.many} registrad{self.ending}{'' if n == 1 else 's'}"
        )

    @property
    def title(self) -> str:
        return f"{self.many.capitalize()} registrad{self.ending}s"


def _recorded(noun: _Noun) -> Callable[[_Writer], str]:
    def write(w: _Writer) -> str:
        plan, ex = w.plan, w.ex

        def line(r: Row) -> str:
            return f"{r.facts.get('display')} el {_d(r.day)}"

        if ex.verdict == "no":
            asked = " ".join(plan.terms) or noun.one
            held = f" {noun.title}: {w.rows_text(ex.context, line)}." if ex.context else ""
            return f"No, no encuentro {asked} entre {noun.article} {noun.many} de {w.name}.{held}"
        rows = ex.rows
        if ex.verdict == "count":
            return noun.counted(ex.count or 0) + (f": {w.rows_text(rows, line)}." if rows else ".")
        if ex.verdict == "yes" or plan.operation == "exists":
            return f"Sí: {w.rows_text(rows, line)}."
        if plan.operation in ("latest", "first", "attribute") and len(rows) == 1:
            which = "primer" if plan.operation == "first" else "último"
            return f"El {which} registro: {line(rows[0])}{w.cite(rows[0])}."
        return f"{noun.title}: {w.rows_text(rows, line)}."

    return write


VACCINES = _Noun("vacuna", "vacunas", "a")
PROCEDURES = _Noun("procedimiento", "procedimientos", "o")


WRITERS: dict[str, Callable[[_Writer], str]] = {
    "medication": _medication,
    "allergy": _allergy,
    "diagnosis": _diagnosis,
    "vital": _vital,
    "appointment": _appointment,
    "encounter": _encounter,
    "doctor": _people,
    "specialty": _people,
    "demographics": _demographics,
    "note": _note,
    "summary": _summary,
    "lab": _lab,
    "immunization": _recorded(VACCINES),
    "procedure": _recorded(PROCEDURES),
}


def _window_words(plan: QuestionPlan) -> str:
    w = plan.window
    if w is None or not w.label or w.label == "antes":
        return ""
    return f" en {w.label}" if w.label[:1].isdigit() else f" ({w.label})"


def abstention(ctx: AnswerContext) -> str:
    plan = ctx.plan
    if plan is None or plan.subject in ("unknown",):
        what = "eso"
    elif plan.subject == "out_of_record":
        what = plan.topic or "eso"
    elif plan.subject == "appointment" and plan.operation == "next":
        what = "citas próximas"
    elif plan.subject == "appointment" and plan.operation == "latest":
        what = "citas anteriores"
    elif plan.subject == "vital" and plan.vitals:
        what = " ni ".join(VITAL_NAMES[k] for k in plan.vitals)
    elif plan.subject == "encounter" and plan.encounter_type:
        what = ENCOUNTER.get(plan.encounter_type, ("", "atenciones"))[1]
    elif plan.subject == "medication" and (plan.drugs or plan.drug_classes or plan.conditions):
        what = _asked_drug(plan)
    elif plan.subject == "lab" and plan.lab_label:
        what = plan.lab_label
    elif plan.subject in ("immunization", "procedure") and plan.topic:
        what = plan.topic
    else:
        what = TOPIC.get(plan.subject, "eso")
    window = _window_words(plan) if plan is not None else ""
    if plan is not None and plan.before:
        window = " anterior a eso"
    return (
        f"No encuentro información sobre {what}{window} en la historia clínica de "
        f"{ctx.patient_name}."
    )


def _terms(text: str) -> set[str]:
    query = lexical_query(text) or ""
    return {t.rstrip(":*")[:5] for t in query.split(" | ") if t}


def _coverage(question: str, source: SourceFact) -> float:
    wanted = _terms(question)
    if not wanted:
        return 0.0
    words = fold(source.content).replace(".", " ").replace(",", " ").replace("(", " ").split()
    present = {w[:5] for w in words}
    return sum(1 for t in wanted if t in present) / len(wanted)


def _free_text(ctx: AnswerContext) -> str:
    """No structured answer: only sources that say what was asked (most of the question's
    content words, or a very close meaning)."""
    evidence = [
        s
        for s in ctx.sources
        if _coverage(ctx.question, s) >= 0.5 or s.scores.get("vector", 0.0) >= VECTOR_EVIDENCE
    ][:3]
    return " ".join(
        f"Según el registro del {_d(_local_day(s))}: "
        f"{_strip_prefix(s.content).rstrip('.')} [{s.number}]."
        for s in evidence
    )


def _local_day(source: SourceFact) -> dt.date | None:
    """The day a source states: its moment in the clinic's time zone (never UTC's day)."""
    return source.occurred_at.astimezone(BOGOTA).date() if source.occurred_at else None


def compose(ctx: AnswerContext) -> tuple[str, tuple[int, ...]]:
    """The answer text and the citation numbers it uses (empty when it abstains)."""
    execution = ctx.execution
    if execution is None:
        text = _free_text(ctx)
    elif execution.verdict == "empty":
        text = ""
    else:
        text = WRITERS[execution.plan.subject](_Writer(ctx, execution))
    cited: list[int] = []
    for n in (int(m) for m in re.findall(r"\[(\d+)\]", text)):
        if n not in cited:
            cited.append(n)
    no_answer = execution is not None and execution.verdict == "no"
    if not text or (
        not cited and not no_answer and execution is not None and execution.verdict != "count"
    ):
        return abstention(ctx), ()
    if not cited and execution is None:
        return abstention(ctx), ()
    return text, tuple(cited)


class ExtractiveEngine:
    name = "extractive"

    async def generate(self, context: AnswerContext) -> AsyncGenerator[str | DraftAnswer, None]:
        text, cited = compose(context)
        for token in _TOKENS.findall(text):
            yield token
        yield DraftAnswer(text=text, cited=cited, abstained=not cited, model_used=MODEL_NAME)
