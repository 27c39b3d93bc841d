"""Pure mappings from FHIR R4 resources (as validated JSON) to SmartHealth's column values.

Nothing here touches the database: references are resolved by the importer, which passes the
local ids in. A missing required value raises `MappingError` naming the field.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from smarthealth.fhir import codes
from smarthealth.fhir.cie10 import normalise, spanish_name

BOGOTA = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")
ICD10_FORMAT_MAX = 6  # "E11.65": longer ICD-10-CM codes keep their system, not the catalog

ENCOUNTER_CLASS = {
    "AMB": "Consulta externa",
    "EMER": "Urgencias",
    "IMP": "Hospitalización",
    "ACUTE": "Hospitalización",
    "NONAC": "Hospitalización",
    "VR": "Telemedicina",
}
APPOINTMENT_STATUS = {
    "proposed": "Scheduled",
    "pending": "Scheduled",
    "booked": "Scheduled",
    "arrived": "Attended",
    "checked-in": "Attended",
    "waitlist": "Scheduled",
    "fulfilled": "Attended",
    "cancelled": "Cancelled",
    "entered-in-error": "Cancelled",
    "noshow": "NoShow",
}
SEVERITY = {"mild": "Leve", "moderate": "Moderada", "severe": "Severa"}
GENDER = {"male": "M", "female": "F"}

# LOINC vital signs → medical_records columns (see README: vital signs).
VITAL_COLUMNS = {
    "8480-6": "systolic_pressure",
    "8462-4": "diastolic_pressure",
    "8867-4": "heart_rate",
    "9279-1": "respiratory_rate",
    "8310-5": "temperature_c",
    "8331-1": "temperature_c",  # oral temperature (Synthea's)
    "59408-5": "oxygen_saturation",
    "2708-6": "oxygen_saturation",
    "29463-7": "weight_kg",
    "8302-2": "height_cm",
}
BLOOD_PRESSURE_PANELS = {"85354-9", "55284-4"}
VITAL_RANGES = {
    "systolic_pressure": (50, 260),
    "diastolic_pressure": (25, 160),
    "heart_rate": (25, 250),
    "respiratory_rate": (5, 80),
    "temperature_c": (30, 44),
    "oxygen_saturation": (50, 100),
    "weight_kg": (0.1, 399.9),
    "height_cm": (20.1, 259.9),
}
WHOLE = {"systolic_pressure", "diastolic_pressure", "heart_rate", "respiratory_rate"}


class MappingError(ValueError):
    def __init__(self, field: str, code: str = "MISSING_FIELD") -> None:
        super().__init__(code)
        self.field = field
        self.code = code


@dataclass(frozen=True)
class Coded:
    system: str  # stored name ("SNOMED CT") or URI
    code: str
    display: str


def codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict) and c.get("code")]


def text_of(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for c in codings(concept):
        if c.get("display"):
            return str(c["display"])
    return None


def coded(concept: Any, field: str, prefer: tuple[str, ...] = ()) -> Coded:
    """The concept's coding (the first of a preferred system, else the first), with a display."""
    found = codings(concept)
    if not found:
        raise MappingError(field)
    chosen = found[0]
    for name in prefer:
        match = [c for c in found if codes.short_name(c.get("system")) == name]
        if match:
            chosen = match[0]
            break
    display = chosen.get("display") or text_of(concept) or str(chosen["code"])
    return Coded(codes.short_name(chosen.get("system")), str(chosen["code"])[:40], str(display))


def coding_in(concept: Any, system: str) -> str | None:
    for c in codings(concept):
        if c.get("system") == system:
            return str(c["code"])
    return None


def instant(value: Any, field: str) -> dt.datetime:
    """A FHIR date or dateTime as an aware datetime (a bare date is noon in Bogotá)."""
    if not isinstance(value, str) or not value:
        raise MappingError(field)
    try:
        if len(value) <= 10:
            parts = [int(p) for p in value.split("-")] + [1, 1]
            return dt.datetime(parts[0], parts[1], parts[2], 12, tzinfo=BOGOTA)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(field, "INVALID_VALUE") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BOGOTA)


def local_date(value: Any, field: str) -> dt.date:
    return instant(value, field).astimezone(BOGOTA).date()


def first_instant(resource: dict[str, Any], *fields: str) -> dt.datetime:
    """The first present of several date fields ("effectivePeriod.start" reaches inside)."""
    for name in fields:
        holder: Any = resource
        for part in name.split("."):
            holder = holder.get(part) if isinstance(holder, dict) else None
        if holder:
            return instant(holder, name)
    raise MappingError(fields[0].split(".")[0])


def decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


# -- Patient ----------------------------------------------------------------------------------


def contact(resource: dict[str, Any]) -> dict[str, str | None]:
    phone = email = None
    for telecom in resource.get("telecom") or []:
        if not isinstance(telecom, dict) or not telecom.get("value"):
            continue
        if telecom.get("system") == "phone" and phone is None:
            phone = str(telecom["value"])[:30]
        elif telecom.get("system") == "email" and email is None:
            email = str(telecom["value"])[:160]
    address = city = None
    addresses = [a for a in resource.get("address") or [] if isinstance(a, dict)]
    if addresses:
        lines = addresses[0].get("line") or []
        address = ", ".join(str(x) for x in lines)[:200] or None
        city = str(addresses[0]["city"])[:80] if addresses[0].get("city") else None
    return {"email": email, "phone": phone, "address": address, "city": city}


def gender(value: Any) -> str:
    return GENDER.get(str(value), "O")


# -- Encounter, Condition, medication ---------------------------------------------------------


def record_type(encounter: dict[str, Any]) -> str:
    for concept in encounter.get("type") or []:
        own = coding_in(concept, codes.RECORD_TYPE_SYSTEM)
        if own:
            return own
    klass = encounter.get("class") or {}
    return ENCOUNTER_CLASS.get(str(klass.get("code", "")).upper(), "Consulta externa")


def icd10(concept: Any) -> tuple[str, str] | None:
    """(code, Spanish description) of an ICD-10 coding that fits the catalog's format."""
    for c in codings(concept):
        if codes.short_name(c.get("system")) in codes.ICD10_SYSTEMS:
            code = normalise(str(c["code"]))
            if len(code) <= ICD10_FORMAT_MAX and code[:1].isalpha() and code[1:3].isdigit():
                name = spanish_name(code) or c.get("display") or text_of(concept) or code
                return code, str(name)
    return None


DAYS_PER_UNIT = {
    "d": 1.0,
    "day": 1.0,
    "days": 1.0,
    "wk": 7.0,
    "week": 7.0,
    "weeks": 7.0,
    "mo": 30.0,
    "month": 30.0,
    "months": 30.0,
    "a": 365.0,
    "year": 365.0,
    "h": 1 / 24,
}


def days_of(quantity: Any) -> int | None:
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or "d").lower()
    factor = DAYS_PER_UNIT.get(unit, 1.0)
    value = decimal(quantity["value"])
    return max(1, round(float(value) * factor)) if value is not None else None


def _frequency(timing: Any) -> str:
    if not isinstance(timing, dict):
        return ""
    own = text_of(timing.get("code"))
    if own:
        return own
    repeat = timing.get("repeat") or {}
    times, period, unit = repeat.get("frequency"), repeat.get("period"), repeat.get("periodUnit")
    if not times or not period or not unit:
        return ""
    unit_name = {"h": "hora", "d": "día", "wk": "semana", "mo": "mes"}.get(str(unit), str(unit))
    if unit == "d" and period == 1:
        return f"{times} {'vez' if times == 1 else 'veces'} al día"
    if times == 1:
        return f"cada {period} {unit_name}{'s' if period != 1 and unit_name[-1] != 's' else ''}"
    return f"{times} veces cada {period} {unit_name}"


def dosage(resource: dict[str, Any]) -> tuple[str, str, str | None, int | None]:
    """(dose, frequency, instruction, duration in days) of a MedicationRequest/Statement."""
    field = "dosageInstruction" if resource["resourceType"] == "MedicationRequest" else "dosage"
    items = [d for d in resource.get(field) or [] if isinstance(d, dict)]
    dose = frequency = ""
    instruction: str | None = None
    duration: int | None = None
    if items:
        first = items[0]
        frequency = _frequency(first.get("timing"))
        dose = str(first.get("text") or "")
        if not dose:
            for rate in first.get("doseAndRate") or []:
                quantity = (rate or {}).get("doseQuantity") or {}
                if quantity.get("value") is not None:
                    amount = f"{Decimal(str(quantity['value'])).normalize():f}"
                    dose = f"{amount} {quantity.get('unit') or 'dosis'}"
                    break
        if first.get("asNeededBoolean") and not frequency:
            frequency = "según necesidad"
        instruction = str(first["patientInstruction"]) if first.get("patientInstruction") else None
        bounds = ((first.get("timing") or {}).get("repeat") or {}).get("boundsDuration")
        duration = days_of(bounds)
    dispense = resource.get("dispenseRequest") or {}
    duration = days_of(dispense.get("expectedSupplyDuration")) or duration
    period = resource.get("effectivePeriod") or dispense.get("validityPeriod") or {}
    if duration is None and period.get("start") and period.get("end"):
        start, end = instant(period["start"], "period"), instant(period["end"], "period")
        duration = max(1, (end - start).days + 1)
    return dose[:160], frequency[:160], instruction, duration


# -- Observations -----------------------------------------------------------------------------


def _quantity(resource: dict[str, Any]) -> tuple[Decimal | None, str | None, str | None]:
    """(number, unit, text) of an observation's or a component's value[x]."""
    q = resource.get("valueQuantity")
    if isinstance(q, dict):
        unit = q.get("unit") or q.get("code")
        return decimal(q.get("value")), (str(unit)[:40] if unit else None), None
    for name in ("valueInteger", "valueDecimal"):
        if resource.get(name) is not None:
            return decimal(resource[name]), None, None
    if resource.get("valueCodeableConcept"):
        return None, None, text_of(resource["valueCodeableConcept"])
    if resource.get("valueString") is not None:
        return None, None, str(resource["valueString"])
    if resource.get("valueBoolean") is not None:
        return None, None, "sí" if resource["valueBoolean"] else "no"
    if resource.get("dataAbsentReason"):
        return None, None, "sin dato (" + (text_of(resource["dataAbsentReason"]) or "") + ")"
    return None, None, None


def loinc(resource: dict[str, Any]) -> str | None:
    return coding_in(resource.get("code"), "http://loinc.org")


BLOOD_TYPE_LOINC = "882-1"  # ABO and Rh group [Type] in Blood
_BLOOD_TYPE = re.compile(
    r"\b(AB|A|B|O)\s*(?:RH\s*(?:\(D\))?\s*)?(\+|-|POS(?:ITIVE|ITIVO)?\b|NEG(?:ATIVE|ATIVO)?\b)"
)


def blood_type(resource: dict[str, Any]) -> str | None:
    """ "A+", "O-"… from an ABO and Rh group Observation (LOINC 882-1): its value's text or
    displays ("A+", "A Rh(D) positive", "Blood group O Rh(D) negative (finding)", "AB
    negativo"), or None when it is not one or does not say both group and Rh."""
    if loinc(resource) != BLOOD_TYPE_LOINC:
        return None
    concept = resource.get("valueCodeableConcept")
    texts = [text_of(concept)] + [c.get("display") for c in codings(concept)]
    texts.append(resource.get("valueString"))
    for text in texts:
        if not isinstance(text, str):
            continue
        match = _BLOOD_TYPE.search(text.upper())
        if match:
            sign = "+" if match[2][0] in "+P" else "-"
            return match[1] + sign
    return None


def reactions(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    """An AllergyIntolerance's reactions as one text (every manifestation of every reaction,
    in order, without repeats: Synthea lists hives, dyspnea… as separate reactions) and the
    most severe severity given."""
    seen: list[str] = []
    worst: str | None = None
    for reaction in resource.get("reaction") or []:
        if not isinstance(reaction, dict):
            continue
        for manifestation in reaction.get("manifestation") or []:
            text = text_of(manifestation)
            if text and text not in seen:
                seen.append(text)
        severity = SEVERITY.get(str(reaction.get("severity")))
        order = list(SEVERITY.values())
        if severity and (worst is None or order.index(severity) > order.index(worst)):
            worst = severity
    text = ", ".join(seen)
    if len(text) > 200:
        text = text[:199].rsplit(", ", 1)[0] + "…"
    return text or None, worst


def vital_values(resource: dict[str, Any]) -> dict[str, Decimal] | None:
    """The medical_records columns a vital-sign Observation fills, or None when it is not one
    of them (or a value is outside what the columns admit: then it is kept as an observation)."""
    code = loinc(resource)
    values: dict[str, Decimal] = {}
    if code in BLOOD_PRESSURE_PANELS:
        for component in resource.get("component") or []:
            column = VITAL_COLUMNS.get(coding_in(component.get("code"), "http://loinc.org") or "")
            number = _quantity(component)[0]
            if column and number is not None:
                values[column] = number
    elif code in VITAL_COLUMNS:
        number = _quantity(resource)[0]
        if number is not None:
            values[VITAL_COLUMNS[code]] = number
    if not values:
        return None
    for column, number in list(values.items()):
        low, high = VITAL_RANGES[column]
        if not low <= number <= high:
            return None
        values[column] = number.quantize(Decimal(1) if column in WHOLE else Decimal("0.1"))
    systolic, diastolic = values.get("systolic_pressure"), values.get("diastolic_pressure")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        return None
    return values


def observation_values(resource: dict[str, Any]) -> dict[str, Any]:
    concept = coded(resource.get("code"), "code", prefer=("LOINC",))
    category = None
    for concept_category in resource.get("category") or []:
        for c in codings(concept_category):
            category = str(c["code"])[:40]
            break
        if category:
            break
    number, unit, text = _quantity(resource)
    components = []
    for component in resource.get("component") or []:
        part = coded(component.get("code"), "component.code", prefer=("LOINC",))
        c_number, c_unit, c_text = _quantity(component)
        components.append(
            {
                "code": part.code,
                "display": part.display,
                "value": float(c_number) if c_number is not None else None,
                "unit": c_unit,
                "text": c_text,
            }
        )
    ranges = [r for r in resource.get("referenceRange") or [] if isinstance(r, dict)]
    low = high = None
    reference_text = None
    if ranges:
        low = decimal((ranges[0].get("low") or {}).get("value"))
        high = decimal((ranges[0].get("high") or {}).get("value"))
        reference_text = str(ranges[0]["text"]) if ranges[0].get("text") else None
    interpretation = None
    for concept_i in resource.get("interpretation") or []:
        found = codings(concept_i)
        interpretation = str(found[0]["code"])[:40] if found else text_of(concept_i)
        break
    return {
        "category": category,
        "code_system": concept.system,
        "code": concept.code,
        "display": concept.display,
        "value_numeric": number,
        "value_unit": unit,
        "value_text": text,
        "reference_low": low,
        "reference_high": high,
        "reference_text": reference_text,
        "interpretation": interpretation,
        "components": components or None,
        "status": str(resource.get("status"))[:20] if resource.get("status") else None,
        "effective_at": first_instant(
            resource, "effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"
        ),
    }


# -- Notes ------------------------------------------------------------------------------------


def plain_text_note(resource: dict[str, Any]) -> str | None:
    """The text of a DocumentReference's first text/plain attachment with inline data."""
    for content in resource.get("content") or []:
        attachment = (content or {}).get("attachment") or {}
        kind = str(attachment.get("contentType") or "")
        if kind.startswith("text/plain") and attachment.get("data"):
            try:
                return base64.b64decode(attachment["data"], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise MappingError("content.attachment.data", "INVALID_VALUE") from None
    return None
