"""One clinical fact per chunk: a short, dated Spanish sentence with its context.

`content` is what a clinician reads and what is cited; `facts` holds the same fact structured,
for the extractive engine; dates and times in both are the clinic's (America/Bogota).
`embedding_text` is the meaning without dates, numbers or names, so that repeated facts (a
renewed prescription, the same diagnosis in many patients) share one embedding. Nothing here
depends on today's date: content only changes when the record does.

Per medical record: an `encounter` chunk (the visit: type, local date and time, doctor,
specialty, the organization when known, principal diagnosis, discharge), its `vitals`, one
`note` chunk per section, and a `diagnosis` / `prescription` chunk per row of those tables.
Observations (laboratory results and other measurements), immunizations, procedures and
allergies to substances outside the medication catalog are in chunking_records.py.

Rows imported from FHIR may be coded in another system (a SNOMED CT condition, an RxNorm drug):
their chunks name the system and the source's display ("Hypertension (SNOMED CT 38341003)").
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from smarthealth.rag.text import fold, sha256_hex

BOGOTA = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")
GENDER = {"F": "femenino", "M": "masculino", "O": "otro"}
DIAGNOSIS_KIND = {
    "Principal": "principal",
    "Secondary": "secundario",
    "Differential": "diferencial",
}
APPOINTMENT_STATUS = {
    "Scheduled": "programada",
    "Confirmed": "confirmada",
    "Attended": "atendida",
    "Cancelled": "cancelada",
    "NoShow": "no asistida",
}
NOTE_SECTIONS = {
    "MOTIVO DE CONSULTA": 1,
    "ENFERMEDAD ACTUAL": 2,
    "ANTECEDENTES": 3,
    "EXAMEN FÍSICO": 4,
    "ANÁLISIS Y PLAN": 5,
}
# How an encounter chunk names each record type: "<label> con Dra. … (<specialty>)".
ENCOUNTER_LABEL = {
    "Urgencias": "Atención de urgencias",
    "Hospitalización": "Hospitalización",
    "Consulta externa": "Consulta externa",
    "Control": "Control",
    "Telemedicina": "Teleconsulta",
}
VITALS_EMBEDDING_TEXT = (
    "Signos vitales: presión arterial, frecuencia cardiaca, frecuencia respiratoria, "
    "temperatura, saturación de oxígeno, peso, talla e índice de masa corporal"
)
_PATIENT_PREFIX = re.compile(
    r"^(Paciente( femenina| masculino)?|Niña|Niño|Lactante|Adolescente)( de \d+ años?)?\.\s*"
)
_VITALS_IN_EXAM = re.compile(r"^TA .*? cm\.\s*")


_ADHERENCE = re.compile(r"\s*Refiere [^.]*adherencia[^.]*\.")
_PLAN_TAIL = re.compile(r"\s*(Se formula|Se evita|Diagnósticos:).*$", re.DOTALL)
_NUMBER = re.compile(r"\d+")


def _embedding_meaning(section: int, text: str) -> str:
    """The part of a note section that other chunks do not already carry.

    Vital signs, prescriptions and diagnoses have chunks of their own; removing them (and the
    patient's age) leaves text that recurs across visits and patients, so it is embedded once.
    """
    if section == NOTE_SECTIONS["ENFERMEDAD ACTUAL"]:
        text = _NUMBER.sub("varios", _ADHERENCE.sub("", _PATIENT_PREFIX.sub("", text)))
    elif section == NOTE_SECTIONS["EXAMEN FÍSICO"]:
        text = _VITALS_IN_EXAM.sub("", text)
    elif section == NOTE_SECTIONS["ANÁLISIS Y PLAN"]:
        text = _PLAN_TAIL.sub("", text)
    return text.strip()


@dataclass(frozen=True)
class ChunkDraft:
    patient_id: int
    source_type: str
    source_id: int
    section: int
    record_id: int | None
    occurred_at: dt.datetime | None
    content: str
    embedding_text: str
    facts: dict[str, Any] = field(hash=False, compare=False)

    @property
    def search_text(self) -> str:
        return fold(self.content)

    @property
    def content_hash(self) -> str:
        """Changes whenever anything the chunk's row stores does: the indexer rewrites a chunk
        when it differs, so new `facts` keys or a moved record reach existing chunks too."""
        facts = json.dumps(self.facts, ensure_ascii=False, sort_keys=True, default=str)
        when = self.occurred_at.isoformat() if self.occurred_at else ""
        parts = (self.content, facts, self.embedding_text, str(self.record_id), when)
        return sha256_hex("\x1f".join(parts))

    @property
    def embedding_text_hash(self) -> str:
        return sha256_hex(self.embedding_text)


def _day(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(BOGOTA).date()
    return value.isoformat()


def _at_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12, 0), BOGOTA)


def _num(value: Decimal | float | None) -> str:
    if value is None:
        return "?"
    return f"{float(value):.1f}".rstrip("0").rstrip(".")


def _doctor(row: asyncpg.Record) -> str:
    title = "Dra." if row["doctor_gender"] == "F" else "Dr."
    return f"{title} {row['doctor_first_name']} {row['doctor_last_name']}"


_DOCTOR_COLUMNS = """
    d.gender AS doctor_gender, d.first_name AS doctor_first_name, d.last_name AS doctor_last_name,
    (SELECT s.name FROM smart_health.doctor_specialties ds
       JOIN smart_health.specialties s USING (specialty_id)
      WHERE ds.doctor_id = d.doctor_id ORDER BY ds.is_primary DESC, s.specialty_id LIMIT 1)
      AS doctor_specialty
"""

PATIENTS_SQL = """
SELECT p.*, t.code AS document_code, t.name AS document_name
FROM smart_health.patients p JOIN smart_health.document_types t USING (document_type_id)
WHERE p.patient_id = ANY($1::bigint[])
"""
ALLERGIES_SQL = """
SELECT a.*, m.active_ingredient, m.commercial_name, m.strength, m.form, m.therapeutic_class,
       m.atc_code
FROM smart_health.patient_allergies a LEFT JOIN smart_health.medications m USING (medication_id)
WHERE a.patient_id = ANY($1::bigint[])
"""
RECORDS_SQL = f"""
SELECT r.*, s.name AS appointment_specialty, o.name AS organization, {_DOCTOR_COLUMNS}
FROM smart_health.medical_records r JOIN smart_health.doctors d USING (doctor_id)
LEFT JOIN smart_health.appointments a ON a.appointment_id = r.appointment_id
LEFT JOIN smart_health.specialties s ON s.specialty_id = a.specialty_id
LEFT JOIN smart_health.organizations o ON o.organization_id = r.organization_id
WHERE r.patient_id = ANY($1::bigint[])
"""
DIAGNOSES_SQL = """
SELECT rd.record_diagnosis_id, rd.medical_record_id, rd.patient_id, rd.diagnosis_type,
       rd.clinical_status, rd.onset_date, rd.abatement_date,
       g.icd_code, g.description, g.code_system, g.code
FROM smart_health.record_diagnoses rd JOIN smart_health.diagnoses g USING (diagnosis_id)
WHERE rd.patient_id = ANY($1::bigint[])
"""
PRESCRIPTIONS_SQL = """
SELECT p.*, m.atc_code, m.active_ingredient, m.commercial_name, m.strength, m.form, m.route,
       m.therapeutic_class, m.code_system, m.code, m.display,
       g.icd_code, g.description AS diagnosis_description
FROM smart_health.prescriptions p
JOIN smart_health.medications m USING (medication_id)
LEFT JOIN smart_health.diagnoses g USING (diagnosis_id)
WHERE p.patient_id = ANY($1::bigint[])
"""
APPOINTMENTS_SQL = f"""
SELECT a.*, s.name AS specialty_name, {_DOCTOR_COLUMNS}
FROM smart_health.appointments a
JOIN smart_health.doctors d USING (doctor_id)
JOIN smart_health.specialties s ON s.specialty_id = a.specialty_id
WHERE a.patient_id = ANY($1::bigint[])
"""


def _demographics(p: asyncpg.Record) -> ChunkDraft:
    names = [p["first_name"], p["middle_name"], p["first_surname"], p["second_surname"]]
    full_name = " ".join(n for n in names if n)
    content = (
        f"Paciente {full_name}, {p['document_name']} ({p['document_code']}) "
        f"{p['document_number']}, sexo {GENDER[p['gender']]}, nacido el {_day(p['birth_date'])}, "
        f"grupo sanguíneo {p['blood_type'] or 'no registrado'}, "
        f"ciudad {p['city'] or 'no registrada'}."
    )
    return ChunkDraft(
        p["patient_id"],
        "demographics",
        p["patient_id"],
        0,
        None,
        p["created_at"],
        content,
        "Datos del paciente: nombre, documento de identidad, sexo, fecha de nacimiento, edad, "
        "grupo sanguíneo y ciudad de residencia",
        {
            "full_name": full_name,
            "document_code": p["document_code"],
            "document_number": p["document_number"],
            "gender": p["gender"],
            "birth_date": _day(p["birth_date"]),
            "blood_type": p["blood_type"],
            "city": p["city"],
        },
    )


def _allergy(a: asyncpg.Record) -> ChunkDraft:
    if a["atc_code"] is None:  # a substance, or a drug coded outside the catalog
        from smarthealth.rag.chunking_records import substance_allergy

        return substance_allergy(a)
    content = (
        f"{_day(a['noted_on'])} · Alergia a {a['active_ingredient']} ({a['commercial_name']} "
        f"{a['strength']} {a['form']}; {a['therapeutic_class']}). Reacción: {a['reaction']}. "
        f"Severidad: {a['severity'].lower()}."
    )
    return ChunkDraft(
        a["patient_id"],
        "allergy",
        a["allergy_id"],
        0,
        None,
        _at_noon(a["noted_on"]),
        content,
        f"Alergia al medicamento {a['active_ingredient']} ({a['therapeutic_class']}), "
        f"reacción alérgica: {a['reaction']}",
        {
            "ingredient": a["active_ingredient"],
            "reaction": a["reaction"],
            "severity": a["severity"],
            "date": _day(a["noted_on"]),
        },
    )


VITAL_COLUMNS = (
    "systolic_pressure",
    "diastolic_pressure",
    "heart_rate",
    "respiratory_rate",
    "temperature_c",
    "oxygen_saturation",
    "weight_kg",
    "height_cm",
)


def _vital_parts(r: asyncpg.Record) -> list[str]:
    """The readings a record holds (an imported encounter may hold only some of them)."""
    shown = {
        "presión arterial": f"{r['systolic_pressure']}/{r['diastolic_pressure']} mmHg"
        if r["systolic_pressure"] is not None
        else None,
        "frecuencia cardiaca": f"{r['heart_rate']} lpm" if r["heart_rate"] is not None else None,
        "frecuencia respiratoria": f"{r['respiratory_rate']} rpm"
        if r["respiratory_rate"] is not None
        else None,
        "temperatura": f"{_num(r['temperature_c'])} °C" if r["temperature_c"] is not None else None,
        "saturación de oxígeno": f"{r['oxygen_saturation']} %"
        if r["oxygen_saturation"] is not None
        else None,
        "peso": f"{_num(r['weight_kg'])} kg" if r["weight_kg"] is not None else None,
        "talla": f"{_num(r['height_cm'])} cm" if r["height_cm"] is not None else None,
    }
    return [f"{name} {value}" for name, value in shown.items() if value is not None]


def _record_chunks(r: asyncpg.Record) -> list[ChunkDraft]:
    when = r["registration_datetime"]
    who = f"{_doctor(r)}, {r['doctor_specialty'] or 'sin especialidad'}"
    chunks = []
    if any(r[column] is not None for column in VITAL_COLUMNS):
        weight, height = r["weight_kg"], r["height_cm"]
        bmi = float(weight) / (float(height) / 100) ** 2 if weight and height else None
        content = (
            f"{_day(when)} · Signos vitales ({r['record_type']}, {who}): "
            + ", ".join(_vital_parts(r))
            + (f", IMC {bmi:.1f}." if bmi else ".")
        )
        chunks.append(
            ChunkDraft(
                r["patient_id"],
                "vitals",
                r["medical_record_id"],
                0,
                r["medical_record_id"],
                when,
                content,
                VITALS_EMBEDDING_TEXT,
                {
                    "date": _day(when),
                    "systolic": r["systolic_pressure"],
                    "diastolic": r["diastolic_pressure"],
                    "heart_rate": r["heart_rate"],
                    "respiratory_rate": r["respiratory_rate"],
                    "temperature": float(r["temperature_c"]) if r["temperature_c"] else None,
                    "spo2": r["oxygen_saturation"],
                    "weight_kg": float(weight) if weight else None,
                    "height_cm": float(height) if height else None,
                    "bmi": round(bmi, 1) if bmi else None,
                },
            )
        )
    for position, line in enumerate(r["summary_text"].splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        title, sep, body = line.partition(":")
        section = NOTE_SECTIONS.get(title.strip(), 10 + position) if sep else 10 + position
        meaning = body.strip() if sep else line
        meaning = _embedding_meaning(section, meaning)
        chunks.append(
            ChunkDraft(
                r["patient_id"],
                "note",
                r["medical_record_id"],
                section,
                r["medical_record_id"],
                when,
                f"{_day(when)} · Nota de {r['record_type'].lower()} ({who}) — {line}",
                f"{title.strip().capitalize() if sep else 'Nota'}: {meaning}",
                {
                    "date": _day(when),
                    "section": title.strip() if sep else None,
                    "record_type": r["record_type"],
                },
            )
        )
    return chunks


def _encounter(r: asyncpg.Record, principal: asyncpg.Record | None) -> ChunkDraft:
    """The visit itself: what kind, when (local date and time), with whom, why, how long."""
    when: dt.datetime = r["registration_datetime"].astimezone(BOGOTA)
    record_type = r["record_type"]
    label = ENCOUNTER_LABEL.get(record_type, record_type)
    # The service that saw the patient: the appointment's, else the doctor's primary specialty.
    specialty = r["doctor_specialty"]
    if r["appointment_id"] is not None and r["appointment_specialty"]:
        specialty = r["appointment_specialty"]
    discharge: dt.datetime | None = r["discharge_datetime"]
    days = None
    stay = ""
    if discharge is not None:
        days = (discharge.astimezone(BOGOTA).date() - when.date()).days
        stay = f", egreso el {_day(discharge)} ({days} {'día' if days == 1 else 'días'})"
    elif record_type == "Hospitalización":
        stay = ", sin egreso registrado"
    why = (
        f"Diagnóstico principal: {principal['description']} ({diagnosis_code(principal)})."
        if principal
        else "Sin diagnóstico principal registrado."
    )
    place = f" en {r['organization']}" if r["organization"] else ""
    content = (
        f"{when:%Y-%m-%d %H:%M} · {label} con {_doctor(r)} "
        f"({specialty or 'sin especialidad'}){place}{stay}. {why}"
    )
    meaning = f"{label} en {specialty or 'consulta'}" + (
        f" por {principal['description']}" if principal else ""
    )
    return ChunkDraft(
        r["patient_id"],
        "encounter",
        r["medical_record_id"],
        0,
        r["medical_record_id"],
        r["registration_datetime"],
        content,
        meaning,
        {
            "date": f"{when:%Y-%m-%d}",
            "time": f"{when:%H:%M}",
            "record_type": record_type,
            "doctor": _doctor(r),
            "doctor_last_name": r["doctor_last_name"],
            "specialty": specialty,
            "icd_code": principal["icd_code"] if principal else None,
            "principal": principal["description"] if principal else None,
            "discharge": _day(discharge) if discharge is not None else None,
            "days": days,
            "appointment_id": r["appointment_id"],
            # only when known, so that the chunks of visits without one keep their hash
            **({"organization": r["organization"]} if r["organization"] else {}),
        },
    )


def diagnosis_code(d: asyncpg.Record) -> str:
    """ "CIE-10 I10" for the catalog, "SNOMED CT 38341003" for a condition coded otherwise."""
    if d["icd_code"] is not None:
        return f"CIE-10 {d['icd_code']}"
    return f"{d['code_system']} {d['code']}"


CLINICAL_STATUS = {
    "active": "activo",
    "recurrence": "recurrente",
    "relapse": "recaída",
    "inactive": "inactivo",
    "remission": "en remisión",
    "resolved": "resuelto",
}


def _diagnosis(d: asyncpg.Record, record: asyncpg.Record | None) -> ChunkDraft:
    when: dt.datetime | None = record["registration_datetime"] if record else None
    if when is None and d["onset_date"] is not None:
        when = _at_noon(d["onset_date"])
    kind = DIAGNOSIS_KIND.get(d["diagnosis_type"], d["diagnosis_type"].lower())
    context = (
        f" {record['record_type']} con {_doctor(record)} "
        f"({record['doctor_specialty'] or 'sin especialidad'})."
        if record
        else ""
    )
    state = ""
    if d["clinical_status"]:
        status = CLINICAL_STATUS.get(d["clinical_status"], d["clinical_status"])
        state = f" Estado: {status}" + (
            f" desde {_day(d['abatement_date'])}." if d["abatement_date"] else "."
        )
    content = (
        f"{_day(when) + ' · ' if when else ''}Diagnóstico {kind}: {d['description']} "
        f"({diagnosis_code(d)}).{context}{state}"
    )
    return ChunkDraft(
        d["patient_id"],
        "diagnosis",
        d["record_diagnosis_id"],
        0,
        d["medical_record_id"],
        when,
        content,
        f"Diagnóstico {kind}: {d['description']} ({d['icd_code'] or d['code']})",
        _diagnosis_facts(d, kind, when, record),
    )


def _diagnosis_facts(
    d: asyncpg.Record, kind: str, when: dt.datetime | None, record: asyncpg.Record | None
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "icd_code": d["icd_code"],
        "description": d["description"],
        "kind": d["diagnosis_type"],
        "date": _day(when) if when else None,
        "record_type": record["record_type"] if record else None,
    }
    if d["icd_code"] is None or d["clinical_status"] is not None:  # imported: more to say
        facts.update(
            code_system=d["code_system"],
            code=d["icd_code"] or d["code"],
            clinical_status=d["clinical_status"],
            onset=_day(d["onset_date"]) if d["onset_date"] else None,
            abatement=_day(d["abatement_date"]) if d["abatement_date"] else None,
        )
    return facts


def _prescription(p: asyncpg.Record, record: asyncpg.Record | None) -> ChunkDraft:
    if p["atc_code"] is None:
        return _coded_prescription(p, record)
    start: dt.date = p["prescription_date"]
    end = start + dt.timedelta(days=p["duration_days"] - 1)
    treats = (
        f" Indicada para {p['diagnosis_description']} (CIE-10 {p['icd_code']})."
        if p["icd_code"]
        else ""
    )
    by = (
        f" Formulada por {_doctor(record)} ({record['doctor_specialty'] or 'sin especialidad'})."
        if record
        else ""
    )
    instruction = f" Indicación: {p['instruction']}" if p["instruction"] else ""
    content = (
        f"{_day(start)} · Prescripción: {p['active_ingredient']} ({p['commercial_name']}) "
        f"{p['strength']} {p['form']}, {p['dosage']} {p['frequency']} por {p['duration_days']} "
        f"días (hasta {_day(end)}), vía {p['route']}. Clase terapéutica: "
        f"{p['therapeutic_class']}.{treats}{by}{instruction}"
    ).strip()
    embedding = (
        f"Medicamento formulado: {p['active_ingredient']} {p['strength']} {p['form']}, "
        f"{p['therapeutic_class']}"
        + (f", tratamiento para {p['diagnosis_description']}" if p["icd_code"] else "")
    )
    return ChunkDraft(
        p["patient_id"],
        "prescription",
        p["prescription_id"],
        0,
        p["medical_record_id"],
        _at_noon(start),
        content,
        embedding,
        {
            "ingredient": p["active_ingredient"],
            "commercial_name": p["commercial_name"],
            "strength": p["strength"],
            "form": p["form"],
            "dosage": p["dosage"],
            "frequency": p["frequency"],
            "duration_days": p["duration_days"],
            "start": _day(start),
            "end": _day(end),
            "atc_code": p["atc_code"],
            "icd_code": p["icd_code"],
            "diagnosis": p["diagnosis_description"],
            "record_type": record["record_type"] if record else None,
        },
    )


PRESCRIPTION_STATUS = {
    "active": "activa",
    "completed": "completada",
    "stopped": "suspendida",
    "cancelled": "cancelada",
    "on-hold": "en espera",
    "intended": "prevista",
    "not-taken": "no tomada",
    "entered-in-error": "registrada por error",
}


def _coded_prescription(p: asyncpg.Record, record: asyncpg.Record | None) -> ChunkDraft:
    """A drug coded outside the ATC catalog (RxNorm, CUM, …), as imported: its display names
    it; no therapeutic class is known."""
    start: dt.date = p["prescription_date"]
    end = start + dt.timedelta(days=p["duration_days"] - 1)
    name = p["display"] or p["active_ingredient"]
    how = " ".join(x for x in (p["dosage"], p["frequency"]) if x)
    treats = (
        f" Indicada para {p['diagnosis_description']} (CIE-10 {p['icd_code']})."
        if p["icd_code"]
        else ""
    )
    by = (
        f" Formulada por {_doctor(record)} ({record['doctor_specialty'] or 'sin especialidad'})."
        if record
        else ""
    )
    status = PRESCRIPTION_STATUS.get(p["status"] or "", p["status"])
    content = (
        f"{_day(start)} · Prescripción: {name} ({p['code_system']} {p['code']})"
        + (f", {how}" if how else "")
        + f" por {p['duration_days']} días (hasta {_day(end)})."
        + (f" Estado: {status}." if status else "")
        + treats
        + by
        + (f" Indicación: {p['instruction']}" if p["instruction"] else "")
    )
    return ChunkDraft(
        p["patient_id"],
        "prescription",
        p["prescription_id"],
        0,
        p["medical_record_id"],
        _at_noon(start),
        content,
        f"Medicamento formulado: {name}",
        {
            "ingredient": p["active_ingredient"],
            "commercial_name": p["commercial_name"],
            "strength": p["strength"],
            "form": p["form"],
            "dosage": p["dosage"],
            "frequency": p["frequency"],
            "duration_days": p["duration_days"],
            "start": _day(start),
            "end": _day(end),
            "atc_code": None,
            "code_system": p["code_system"],
            "code": p["code"],
            "status": p["status"],
            "icd_code": p["icd_code"],
            "diagnosis": p["diagnosis_description"],
            "record_type": record["record_type"] if record else None,
        },
    )


def _appointment(a: asyncpg.Record) -> ChunkDraft:
    start: dt.datetime = a["start_time"].astimezone(BOGOTA)
    status = APPOINTMENT_STATUS.get(a["status"], a["status"])
    content = (
        f"{start:%Y-%m-%d %H:%M} · Cita {status} de {a['specialty_name']} con {_doctor(a)}. "
        f"Motivo: {a['reason'] or 'no registrado'}."
    )
    return ChunkDraft(
        a["patient_id"],
        "appointment",
        a["appointment_id"],
        0,
        None,
        a["start_time"],
        content,
        f"Cita médica {status} de {a['specialty_name']}. Motivo: {a['reason'] or 'consulta'}",
        {
            "start": start.isoformat(),
            "status": a["status"],
            "specialty": a["specialty_name"],
            "doctor": _doctor(a),
            "doctor_last_name": a["doctor_last_name"],
            "reason": a["reason"],
        },
    )


async def build_chunks(conn: asyncpg.Connection, patient_ids: Iterable[int]) -> list[ChunkDraft]:
    """Every chunk of the given patients, computed from the clinical tables."""
    ids = list(patient_ids)
    drafts: list[ChunkDraft] = [_demographics(p) for p in await conn.fetch(PATIENTS_SQL, ids)]
    drafts += [_allergy(a) for a in await conn.fetch(ALLERGIES_SQL, ids)]
    records = {r["medical_record_id"]: r for r in await conn.fetch(RECORDS_SQL, ids)}
    diagnoses = await conn.fetch(DIAGNOSES_SQL, ids)
    principal: dict[int, asyncpg.Record] = {}
    for d in sorted(diagnoses, key=lambda d: d["record_diagnosis_id"]):
        if d["diagnosis_type"] == "Principal":
            principal.setdefault(d["medical_record_id"], d)
    for record in records.values():
        drafts += _record_chunks(record)
        drafts.append(_encounter(record, principal.get(record["medical_record_id"])))
    drafts += [_diagnosis(d, records.get(d["medical_record_id"])) for d in diagnoses]
    drafts += [
        _prescription(p, records.get(p["medical_record_id"]))
        for p in await conn.fetch(PRESCRIPTIONS_SQL, ids)
    ]
    drafts += [_appointment(a) for a in await conn.fetch(APPOINTMENTS_SQL, ids)]
    from smarthealth.rag.chunking_records import record_kind_chunks

    drafts += await record_kind_chunks(conn, ids)
    return drafts
