"""Spanish clinical prose for one visit: motivo, enfermedad actual, antecedentes, examen, plan."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from smarthealth.ingest.catalogs import Condition, DiagnosisRow, MedicationRow
from smarthealth.ingest.vitals import VitalSigns


@dataclass(frozen=True)
class PrescribedLine:
    medication: MedicationRow
    dosage: str
    frequency: str
    duration_days: int


@dataclass(frozen=True)
class VisitNote:
    """What the note talks about; `compose` turns it into prose."""

    age_years: int
    sex: str
    record_type: str
    principal: Condition
    years_since_diagnosis: int
    is_follow_up: bool
    background: list[Condition]
    allergies: list[tuple[MedicationRow, str]]
    vitals: VitalSigns
    diagnoses: list[tuple[DiagnosisRow, str]]
    prescriptions: list[PrescribedLine]
    avoided_for_allergy: list[str]
    disposition: str | None = None  # e.g. "Se decide hospitalización en medicina interna."
    admitted: bool = False  # the visit ends in (or is) a hospitalisation


# Plans that send the patient home contradict an admission.
_OUTPATIENT_PLAN = re.compile(
    r"ambulatori|sin criterios de hospitalizaci|sin signos de alarma|sin deshidrataci|en casa|"
    r"control en (\d+ horas|una semana)",
    re.IGNORECASE,
)


_TYPE_LABEL = {"Principal": "principal", "Secondary": "secundario", "Differential": "diferencial"}


def _patient_phrase(age: int, sex: str) -> str:
    if age < 1:
        noun = "Lactante"
    elif age < 12:
        noun = "Niña" if sex == "F" else "Niño"
    elif age < 18:
        noun = "Adolescente"
    else:
        noun = (
            "Paciente femenina"
            if sex == "F"
            else "Paciente masculino"
            if sex == "M"
            else "Paciente"
        )
    return f"{noun} de {age} {'año' if age == 1 else 'años'}" if age >= 1 else noun


def _duration(days: int) -> str:
    return "en dosis única" if days == 1 else f"por {days} días"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def compose(rng: random.Random, note: VisitNote) -> str:
    c = note.principal
    reason = rng.choice(c.reasons)
    if note.is_follow_up:
        reason = f"control de {c.label}" if rng.random() < 0.6 else reason
    history = rng.choice(c.history).replace("{years}", str(max(note.years_since_diagnosis, 1)))
    lines = [f"MOTIVO DE CONSULTA: {_sentence(reason[:1].upper() + reason[1:])}"]
    current = f"{_patient_phrase(note.age_years, note.sex)}. {_sentence(history)}"
    if note.is_follow_up and note.prescriptions:
        names = ", ".join(p.medication.active_ingredient for p in note.prescriptions)
        adherence = rng.choice(["buena", "buena", "parcial"])
        current += f" Refiere {adherence} adherencia al tratamiento con {names}."
    lines.append(f"ENFERMEDAD ACTUAL: {current}")
    background = ", ".join(b.label for b in note.background) or "niega otros antecedentes"
    if note.allergies:
        allergic = "; ".join(
            f"{m.active_ingredient} ({reaction})" for m, reaction in note.allergies
        )
        allergy_text = f"alergia a {allergic}"
    else:
        allergy_text = "niega alergias conocidas a medicamentos"
    lines.append(f"ANTECEDENTES: Patológicos: {background}. Alérgicos: {allergy_text}.")
    v = note.vitals
    finding = _sentence(rng.choice(c.findings))
    lines.append(
        f"EXAMEN FÍSICO: TA {v.systolic}/{v.diastolic} mmHg, FC {v.heart_rate} lpm, "
        f"FR {v.respiratory_rate} rpm, T {v.temperature:.1f} °C, SatO2 {v.spo2} %, "
        f"peso {v.weight_kg:.1f} kg, talla {v.height_cm:.0f} cm. {finding}"
    )
    plans = c.plan
    if note.admitted:
        plans = tuple(p for p in c.plan if not _OUTPATIENT_PLAN.search(p)) or c.plan
    plan = [_sentence(rng.choice(plans))]
    if note.disposition:
        plan.append(_sentence(note.disposition))
    for p in note.prescriptions:
        m = p.medication
        plan.append(
            f"Se formula {m.active_ingredient} ({m.commercial_name}) {m.strength} {m.form}, "
            f"{p.dosage} {p.frequency} {_duration(p.duration_days)}."
        )
    for ingredient in note.avoided_for_allergy:
        plan.append(f"Se evita {ingredient} por antecedente de alergia.")
    diagnoses = "; ".join(
        f"{d.description} ({d.icd_code}) {_TYPE_LABEL[kind]}" for d, kind in note.diagnoses
    )
    plan.append(f"Diagnósticos: {diagnoses}.")
    lines.append("ANÁLISIS Y PLAN: " + " ".join(plan))
    return "\n".join(lines)
