"""The typed plan every question becomes before anything is read from the record.

A plan says what the question is about (`subject`), what to do with it (`operation`), which
part of the answer is wanted (`attribute`) and how to narrow the rows (filters). The planner
(`planner.py`) builds it from the words of the question and the previous turn's plan; the
executor (`executor.py`) answers it from the patient's structured record. It is returned to the
client as `metadata.plan` and logged (it holds no patient data: only catalog codes, names of
drugs and conditions, dates of a window).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace
from typing import Any

OPERATIONS = frozenset(
    {"list", "latest", "first", "count", "series", "exists", "next", "attribute", "max", "min"}
)
# Which part of the selected rows the question wants ("¿y la dosis?", "¿quién lo atendió?").
ATTRIBUTES = frozenset({"dose", "doctor", "specialty", "date", "reason", "reaction", "treatment"})
VITAL_KINDS = frozenset({"bp", "hr", "rr", "spo2", "temp", "weight", "height", "bmi"})
# How answers and charts name each vital sign, and its unit as the chunks write it.
VITAL_NAMES = {
    "bp": "presión arterial",
    "hr": "frecuencia cardiaca",
    "rr": "frecuencia respiratoria",
    "spo2": "saturación de oxígeno",
    "temp": "temperatura",
    "weight": "peso",
    "height": "talla",
    "bmi": "IMC",
}
VITAL_UNITS = {
    "bp": "mmHg",
    "hr": "lpm",
    "rr": "rpm",
    "spo2": "%",
    "temp": "°C",
    "weight": "kg",
    "height": "cm",
    "bmi": "",
}

# Subjects a question may ask for together ("¿Qué medicamentos y alergias tiene?"): a summary
# of those parts only; the whole summary has them all, in this order.
SUMMARY_PARTS = ("diagnosis", "medication", "allergy", "appointment")

# Chunk kinds that hold each subject's facts (the executor reads these, and retrieval uses
# them when a subject is answered from free text).
SUBJECT_SOURCES: dict[str, tuple[str, ...]] = {
    "allergy": ("allergy",),
    "medication": ("prescription",),
    "diagnosis": ("diagnosis",),
    "vital": ("vitals",),
    "appointment": ("appointment",),
    "encounter": ("encounter",),
    "doctor": ("encounter", "appointment"),
    "specialty": ("encounter", "appointment"),
    "demographics": ("demographics",),
    "note": ("note",),
    "summary": ("demographics", "diagnosis", "prescription", "allergy", "appointment"),
    "lab": ("observation",),  # laboratory results (imported charts)
    "immunization": ("immunization",),
    "procedure": ("procedure",),
    "out_of_record": (),
    "unknown": (),
}


@dataclass(frozen=True)
class TimeWindow:
    """[start, end) in local (Bogotá) days; either side may be open."""

    start: dt.date | None = None
    end: dt.date | None = None
    label: str = ""

    def contains(self, day: dt.date | None) -> bool:
        if day is None:
            return False
        return (self.start is None or day >= self.start) and (self.end is None or day < self.end)

    def narrowed(self, end: dt.date) -> TimeWindow:
        """The same window, ending before `end` ("¿y antes de eso?")."""
        new_end = end if self.end is None else min(self.end, end)
        return replace(self, end=new_end, label=self.label or "antes")


@dataclass(frozen=True)
class QuestionPlan:
    subject: str  # a key of SUBJECT_SOURCES
    operation: str = "list"  # one of OPERATIONS
    attribute: str | None = None  # one of ATTRIBUTES
    vitals: tuple[str, ...] = ()  # VITAL_KINDS; empty: every vital sign
    drugs: tuple[str, ...] = ()  # catalog active ingredients named
    drug_classes: tuple[str, ...] = ()  # ATC prefixes of a named class ("J01D": cefalosporinas)
    drug_class_label: str | None = None
    purpose: str | None = None  # "el dolor" in "¿qué toma para el dolor?" (treatment)
    conditions: tuple[str, ...] = ()  # ICD-10 codes named (catalog or the patient's own)
    condition_words: tuple[str, ...] = ()  # a named condition no code matched, as words
    specialty: str | None = None
    doctor: str | None = None  # a doctor of the patient named by surname ("el Dr. Gómez")
    encounter_type: str | None = None  # a medical_records.record_type
    status: str | None = None  # appointment status, or "active" for medications
    window: TimeWindow | None = None
    demographic: str | None = None  # age, blood_type, birth_date, city, document, name, sex
    note_section: str | None = None
    topic: str | None = None  # what an out-of-record question is about, in Spanish
    labs: tuple[str, ...] = ()  # LOINC codes of a named laboratory test
    lab_label: str | None = None
    terms: tuple[str, ...] = ()  # other words naming the thing asked about (a vaccine, a food)
    parts: tuple[str, ...] = ()  # a summary of these subjects only ("¿medicamentos y alergias?")
    follow_up: bool = False  # leans on the previous turn
    rows: tuple[int, ...] = ()  # chunk ids of the previous answer the question refers to
    before: bool = False  # the rows before those of the previous answer ("¿y antes de eso?")
    source: str = "rules"  # rules | follow_up | exemplar | none
    margin: float = 1.0  # how clearly the planner chose (exemplar similarity margin)
    cues: tuple[str, ...] = field(default=(), compare=False)  # words that decided, for debugging

    def __post_init__(self) -> None:
        if (
            self.subject not in SUBJECT_SOURCES
            or self.operation not in OPERATIONS
            or (self.attribute is not None and self.attribute not in ATTRIBUTES)
            or not set(self.vitals) <= VITAL_KINDS
        ):
            raise ValueError("not a question plan")

    @property
    def source_types(self) -> tuple[str, ...]:
        return SUBJECT_SOURCES[self.subject]

    @property
    def series_vitals(self) -> tuple[str, ...]:
        """The vital signs a series follows: those named, else blood pressure ("¿cómo ha
        evolucionado?" after nothing in particular)."""
        return self.vitals or ("bp",)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        window = self.window
        data["window"] = (
            None
            if window is None
            else {
                "start": window.start.isoformat() if window.start else None,
                "end": window.end.isoformat() if window.end else None,
                "label": window.label,
            }
        )
        data["vitals"] = list(self.vitals)
        for key in (
            "drugs",
            "drug_classes",
            "conditions",
            "condition_words",
            "parts",
            "labs",
            "terms",
            "rows",
            "cues",
        ):
            data[key] = list(data[key])
        return {k: v for k, v in data.items() if v not in (None, [], False) or k == "subject"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuestionPlan | None:
        """The plan stored with a previous turn (None when it cannot be read back)."""
        try:
            window = data.get("window")
            return cls(
                subject=data["subject"],
                operation=data.get("operation", "list"),
                attribute=data.get("attribute"),
                vitals=tuple(data.get("vitals", ())),
                drugs=tuple(data.get("drugs", ())),
                drug_classes=tuple(data.get("drug_classes", ())),
                drug_class_label=data.get("drug_class_label"),
                purpose=data.get("purpose"),
                parts=tuple(data.get("parts", ())),
                labs=tuple(data.get("labs", ())),
                lab_label=data.get("lab_label"),
                terms=tuple(data.get("terms", ())),
                conditions=tuple(data.get("conditions", ())),
                condition_words=tuple(data.get("condition_words", ())),
                specialty=data.get("specialty"),
                doctor=data.get("doctor"),
                encounter_type=data.get("encounter_type"),
                status=data.get("status"),
                window=None
                if not window
                else TimeWindow(
                    dt.date.fromisoformat(window["start"]) if window.get("start") else None,
                    dt.date.fromisoformat(window["end"]) if window.get("end") else None,
                    window.get("label", ""),
                ),
                demographic=data.get("demographic"),
                note_section=data.get("note_section"),
                topic=data.get("topic"),
                follow_up=bool(data.get("follow_up", False)),
                before=bool(data.get("before", False)),
                rows=tuple(data.get("rows", ())),
                source=data.get("source", "rules"),
            )
        except (KeyError, TypeError, ValueError):
            return None
