"""Chunks of the record kinds imported charts hold: laboratory and other observations,
immunizations, procedures, and allergies to substances outside the medication catalog.

Same shape as chunking.py: a dated Spanish sentence (`content`), the fact structured (`facts`)
and its meaning without dates, numbers or names (`embedding_text`). Codes and displays are the
source's (an English SNOMED CT or LOINC display stays English: the multilingual embedding and
the code bridge the languages).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import asyncpg

from smarthealth.rag.chunking import BOGOTA, ChunkDraft
from smarthealth.rag.chunking import _at_noon as at_noon
from smarthealth.rag.chunking import _day as day

OBSERVATION_CATEGORY = {
    "laboratory": "Laboratorio",
    "vital-signs": "Signo vital",
    "survey": "Encuesta",
    "social-history": "Antecedente social",
    "imaging": "Imagen diagnóstica",
    "procedure": "Resultado de procedimiento",
    "exam": "Examen físico",
    "therapy": "Terapia",
    "activity": "Actividad",
}
INTERPRETATION = {
    "H": "alto",
    "HH": "críticamente alto",
    "HU": "muy alto",
    "L": "bajo",
    "LL": "críticamente bajo",
    "LU": "muy bajo",
    "N": "normal",
    "A": "anormal",
    "AA": "críticamente anormal",
    "POS": "positivo",
    "NEG": "negativo",
    "IND": "indeterminado",
}
ALLERGY_CATEGORY = {
    "medication": "medicamento",
    "food": "alimento",
    "environment": "ambiental",
    "biologic": "biológico",
}
CRITICALITY = {"low": "baja", "high": "alta", "unable-to-assess": "no evaluable"}

OBSERVATIONS_SQL = """
SELECT o.* FROM smart_health.observations o WHERE o.patient_id = ANY($1::bigint[])
"""
IMMUNIZATIONS_SQL = """
SELECT i.* FROM smart_health.immunizations i WHERE i.patient_id = ANY($1::bigint[])
"""
PROCEDURES_SQL = """
SELECT p.* FROM smart_health.procedures p WHERE p.patient_id = ANY($1::bigint[])
"""


def number(value: Decimal | float | None) -> str | None:
    """A stored number as a person writes it: 6.20 → "6.2", 120.0 → "120"."""
    if value is None:
        return None
    text = f"{Decimal(value).normalize():f}"
    return text


def _float(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _value(numeric: Decimal | None, unit: str | None, text: str | None) -> str:
    shown = number(numeric)
    if shown is not None:
        return f"{shown} {unit}".strip() if unit else shown
    return text or "sin valor"


def out_of_range(o: asyncpg.Record) -> bool | None:
    """Whether the value falls outside its reference range (or is flagged so); None when
    neither a range nor a flag says."""
    flag = (o["interpretation"] or "").upper()
    if flag in INTERPRETATION:
        return flag not in ("N", "NEG")
    value, low, high = o["value_numeric"], o["reference_low"], o["reference_high"]
    if value is None or (low is None and high is None):
        return None
    return bool((low is not None and value < low) or (high is not None and value > high))


def observation(o: asyncpg.Record) -> ChunkDraft:
    when: dt.datetime = o["effective_at"]
    label = OBSERVATION_CATEGORY.get(o["category"] or "", "Observación")
    raw = o["components"]
    components: list[dict[str, Any]] = (json.loads(raw) if isinstance(raw, str) else raw) or []
    if components:
        parts = [
            f"{c.get('display') or c.get('code')} "
            + _value(
                Decimal(str(c["value"])) if c.get("value") is not None else None,
                c.get("unit"),
                c.get("text"),
            )
            for c in components
        ]
        shown = "; ".join(parts)
        if o["value_numeric"] is not None or o["value_text"]:
            shown = _value(o["value_numeric"], o["value_unit"], o["value_text"]) + "; " + shown
    else:
        shown = _value(o["value_numeric"], o["value_unit"], o["value_text"])
    reference = ""
    low, high = number(o["reference_low"]), number(o["reference_high"])
    if low is not None or high is not None:
        reference = f" Referencia: {low or '…'}–{high or '…'}."
    elif o["reference_text"]:
        reference = f" Referencia: {o['reference_text']}."
    flag = INTERPRETATION.get((o["interpretation"] or "").upper())
    outside = out_of_range(o)
    if flag:
        reading = f" Interpretación: {flag}."
    elif outside is not None:
        reading = " Fuera del rango de referencia." if outside else " Dentro del rango."
    else:
        reading = ""
    content = (
        f"{day(when)} · {label}: {o['display']} ({o['code_system']} {o['code']}): "
        f"{shown}.{reference}{reading}"
    )
    return ChunkDraft(
        o["patient_id"],
        "observation",
        o["observation_id"],
        0,
        o["medical_record_id"],
        when,
        content,
        f"{label}, resultado de {o['display']}",
        {
            "date": day(when),
            "time": f"{when.astimezone(BOGOTA):%H:%M}",
            "category": o["category"],
            "code_system": o["code_system"],
            "code": o["code"],
            "display": o["display"],
            "value": _float(o["value_numeric"]),
            "unit": o["value_unit"],
            "text": o["value_text"],
            "low": _float(o["reference_low"]),
            "high": _float(o["reference_high"]),
            "interpretation": o["interpretation"],
            "out_of_range": outside,
            "components": components or None,
        },
    )


def immunization(i: asyncpg.Record) -> ChunkDraft:
    when: dt.datetime = i["occurred_at"]
    dose = f", dosis {i['dose_number']}" if i["dose_number"] else ""
    lot = f", lote {i['lot_number']}" if i["lot_number"] else ""
    status = " No aplicada." if i["status"] == "not-done" else ""
    content = (
        f"{day(when)} · Vacuna: {i['display']} ({i['code_system']} {i['code']}){dose}{lot}.{status}"
    )
    return ChunkDraft(
        i["patient_id"],
        "immunization",
        i["immunization_id"],
        0,
        i["medical_record_id"],
        when,
        content,
        f"Vacuna aplicada (inmunización): {i['display']}",
        {
            "date": day(when),
            "code_system": i["code_system"],
            "code": i["code"],
            "display": i["display"],
            "dose_number": i["dose_number"],
            "lot": i["lot_number"],
            "status": i["status"],
        },
    )


def procedure(p: asyncpg.Record) -> ChunkDraft:
    when: dt.datetime = p["performed_at"]
    status = {"not-done": " No realizado.", "in-progress": " En curso."}.get(p["status"] or "", "")
    content = (
        f"{day(when)} · Procedimiento: {p['display']} ({p['code_system']} {p['code']}).{status}"
    )
    return ChunkDraft(
        p["patient_id"],
        "procedure",
        p["procedure_id"],
        0,
        p["medical_record_id"],
        when,
        content,
        f"Procedimiento o cirugía realizada: {p['display']}",
        {
            "date": day(when),
            "code_system": p["code_system"],
            "code": p["code"],
            "display": p["display"],
            "status": p["status"],
        },
    )


def substance_allergy(a: asyncpg.Record) -> ChunkDraft:
    """An allergy to a substance outside the medication catalog (food, latex, pollen, or a drug
    known only by its code). `ingredient` names the substance, as for a catalog drug."""
    category = ALLERGY_CATEGORY.get(a["category"], a["category"])
    code = f"{a['substance_system']} {a['substance_code']}; " if a["substance_code"] else ""
    reaction = f" Reacción: {a['reaction']}." if a["reaction"] else " Reacción no registrada."
    severity = f" Severidad: {a['severity'].lower()}." if a["severity"] else ""
    criticality = (
        f" Criticidad: {CRITICALITY[a['criticality']]}." if a["criticality"] in CRITICALITY else ""
    )
    content = (
        f"{day(a['noted_on'])} · Alergia a {a['substance']} ({code}{category})."
        f"{reaction}{severity}{criticality}"
    )
    return ChunkDraft(
        a["patient_id"],
        "allergy",
        a["allergy_id"],
        0,
        None,
        at_noon(a["noted_on"]),
        content,
        f"Alergia ({category}) a {a['substance']}"
        + (f", reacción alérgica: {a['reaction']}" if a["reaction"] else ""),
        {
            "ingredient": a["substance"],
            "substance": a["substance"],
            "category": a["category"],
            "code_system": a["substance_system"],
            "code": a["substance_code"],
            "reaction": a["reaction"],
            "severity": a["severity"],
            "criticality": a["criticality"],
            "date": day(a["noted_on"]),
        },
    )


async def record_kind_chunks(conn: asyncpg.Connection, ids: list[int]) -> list[ChunkDraft]:
    drafts = [observation(o) for o in await conn.fetch(OBSERVATIONS_SQL, ids)]
    drafts += [immunization(i) for i in await conn.fetch(IMMUNIZATIONS_SQL, ids)]
    drafts += [procedure(p) for p in await conn.fetch(PROCEDURES_SQL, ids)]
    return drafts
