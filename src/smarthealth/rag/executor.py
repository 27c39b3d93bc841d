"""Answers a `QuestionPlan` from one patient's structured record, deterministically.

The record is read as its chunks' `facts` (one clinical fact per chunk, see `chunking.py`), only
the kinds the plan's subject needs, always `WHERE patient_id = :patient`. Selection, ordering,
windows and counts happen here; the answer engines only phrase the result and cite its rows.
Free-text questions (notes without a section, or no subject) are not executed: they go to the
hybrid retrieval.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.rag.plan import SUMMARY_PARTS, QuestionPlan, TimeWindow
from smarthealth.rag.vocabulary import (
    atc_by_ingredient,
    base_name,
    chronic_conditions,
    condition_labels,
    condition_names,
    same_word,
    translations,
    words,
)

BOGOTA = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")
MAX_ROWS = 6
MAX_LISTED = 15  # a list asked for over a window ("¿qué le formularon en 2024?")
MAX_POINTS = 12
UPCOMING = ("Scheduled", "Confirmed")
# A diagnosis seen this recently is an active problem even when the catalog does not call the
# condition chronic (an acute illness under follow-up).
RECENT_PROBLEM_DAYS = 90
UPCOMING_STATUS = "upcoming"  # a plan's status for "programadas", "pendientes"
Verdict = Literal["found", "yes", "no", "count", "empty"]


@dataclass(frozen=True)
class Row:
    """One chunk of the patient's record, as the executor and the engines see it."""

    chunk_id: int
    source_type: str
    source_id: int
    record_id: int | None
    occurred_at: dt.datetime | None
    content: str
    facts: dict[str, Any] = field(hash=False, compare=False)

    @property
    def moment(self) -> dt.datetime:
        if self.source_type == "appointment" and self.facts.get("start"):
            return dt.datetime.fromisoformat(self.facts["start"])
        if self.occurred_at is not None:
            return self.occurred_at
        return dt.datetime.min.replace(tzinfo=dt.UTC)

    @property
    def day(self) -> dt.date | None:
        """The fact's day in the clinic's time zone (what the chunk's text says)."""
        for key in ("date", "start"):
            value = self.facts.get(key)
            if value:
                return dt.date.fromisoformat(str(value)[:10])
        return self.occurred_at.astimezone(BOGOTA).date() if self.occurred_at else None


@dataclass(frozen=True)
class Execution:
    plan: QuestionPlan
    verdict: Verdict
    rows: tuple[Row, ...] = ()  # what the answer states, in the order to state it
    count: int | None = None
    context: tuple[Row, ...] = ()  # what the record does hold, when the answer is "No"
    # of that, what shares the asked drug's pharmacological group (naproxeno for ibuprofeno)
    related: tuple[Row, ...] = ()
    at_visit: Row | None = None  # the previous answer's visit the rows were recorded at
    encounters: dict[int, Row] = field(default_factory=dict)  # record_id → its encounter

    @property
    def cited(self) -> tuple[Row, ...]:
        rows = self.rows + tuple(r for r in self.context if r not in self.rows)
        if self.plan.attribute in ("doctor", "specialty"):
            # who prescribed or diagnosed: the visit's chunk names the doctor
            visits = (self.encounter_of(r) for r in rows)
            rows += tuple(dict.fromkeys(v for v in visits if v is not None and v not in rows))
        return rows

    def encounter_of(self, row: Row) -> Row | None:
        if row.source_type == "encounter":
            return row
        return self.encounters.get(row.record_id) if row.record_id is not None else None


ROWS_SQL = text(
    "SELECT chunk_id, source_type, source_id, record_id, occurred_at, content, facts "
    "FROM smart_health.clinical_chunks "
    "WHERE patient_id = :patient AND source_type = ANY(:types) "
    "ORDER BY occurred_at NULLS FIRST, chunk_id"
)
# Structured subjects; a note is executed only when a section was asked.
EXECUTED = frozenset(
    {
        "allergy",
        "medication",
        "diagnosis",
        "vital",
        "appointment",
        "encounter",
        "doctor",
        "specialty",
        "demographics",
        "summary",
        "lab",
        "immunization",
        "procedure",
        "out_of_record",
    }
)


DOCTORS_SQL = text(
    "SELECT DISTINCT facts->>'doctor_last_name' AS surname FROM smart_health.clinical_chunks "
    "WHERE patient_id = :patient AND source_type IN ('encounter', 'appointment') "
    "AND facts ? 'doctor_last_name'"
)


async def doctor_surnames(session: AsyncSession, patient_id: int) -> tuple[str, ...]:
    """The surnames of the doctors who saw (or will see) the patient: the planner's vocabulary
    for "el Dr. Gómez" — only this patient's own doctors can be named."""
    result = await session.execute(DOCTORS_SQL, {"patient": patient_id})
    return tuple(sorted({r.surname for r in result if r.surname}, key=len, reverse=True))


def executes(plan: QuestionPlan) -> bool:
    """Structured subjects; a note when a section, a visit kind or the latest/first one is asked
    (otherwise what a note says about something is found by the hybrid retrieval)."""
    return plan.subject in EXECUTED or (
        plan.subject == "note"
        and (
            plan.note_section is not None
            or plan.encounter_type is not None
            or plan.operation in ("latest", "first")
        )
    )


async def load_rows(session: AsyncSession, patient_id: int, plan: QuestionPlan) -> list[Row]:
    if plan.subject == "out_of_record":
        return []
    types = set(plan.source_types) | {"encounter"}
    result = await session.execute(ROWS_SQL, {"patient": patient_id, "types": sorted(types)})
    return [
        Row(r.chunk_id, r.source_type, r.source_id, r.record_id, r.occurred_at, r.content, r.facts)
        for r in result
    ]


def execute(plan: QuestionPlan, rows: Sequence[Row], now: dt.datetime) -> Execution:
    """The plan's answer over the patient's rows (all of one patient, any order)."""
    encounters = {r.record_id: r for r in rows if r.source_type == "encounter" and r.record_id}
    run = _Run(plan, rows, now.astimezone(BOGOTA), encounters)
    handler = HANDLERS.get(plan.subject)
    result = handler(run) if handler else Execution(plan, "empty")
    return replace(result, encounters=encounters, at_visit=run.visit)


# -- helpers ------------------------------------------------------------------------------------


@dataclass
class _Run:
    plan: QuestionPlan
    all_rows: Sequence[Row]
    now: dt.datetime
    encounters: dict[int, Row]
    visit: Row | None = None  # set when the rows are those of the previous answer's visit

    @property
    def today(self) -> dt.date:
        return self.now.date()

    def of(self, *types: str) -> list[Row]:
        return [r for r in self.all_rows if r.source_type in types]

    def window(self) -> TimeWindow | None:
        """The plan's window, moved back before the previous answer for "¿y antes de eso?"."""
        window = self.plan.window
        days = [d for d in (r.day for r in self.previous()) if d is not None]
        if self.plan.before and days:
            window = (window or TimeWindow()).narrowed(min(days))
        return window

    def in_window(self, rows: Iterable[Row]) -> list[Row]:
        """The rows inside the plan's window (and of its named doctor, if any)."""
        window = self.window()
        return self.by_doctor(r for r in rows if window is None or window.contains(r.day))

    def visit_fact(self, row: Row, key: str) -> Any:
        """A fact of the row, or else of the visit (encounter) it was recorded at."""
        if key in row.facts:
            return row.facts[key]
        visit = self.encounters.get(row.record_id) if row.record_id is not None else None
        return visit.facts.get(key) if visit is not None else None

    def in_encounter_type(self, rows: Iterable[Row]) -> list[Row]:
        wanted = self.plan.encounter_type
        if wanted is None:
            return list(rows)
        return [r for r in rows if self.visit_fact(r, "record_type") == wanted]

    def by_doctor(self, rows: Iterable[Row]) -> list[Row]:
        """Rows of the named doctor: their own surname fact, or their visit's."""
        wanted = self.plan.doctor
        if wanted is None:
            return list(rows)
        return [r for r in rows if self.visit_fact(r, "doctor_last_name") == wanted]

    def of_previous_visits(self, rows: list[Row]) -> list[Row]:
        """After an answer about visits ("¿cuándo fue su última consulta?"), what those visits
        recorded ("¿qué le diagnosticaron?", "¿qué le formularon?")."""
        encounters = self.previous("encounter")
        visits = {r.record_id for r in encounters if r.record_id is not None}
        if not (self.plan.follow_up and visits):
            return rows
        self.visit = encounters[0]
        return [r for r in rows if r.record_id in visits]

    def previous(self, source_type: str | None = None) -> list[Row]:
        """The rows the previous answer cited (of one kind, when given)."""
        ids = set(self.plan.rows)
        return [
            r for r in self.all_rows if r.chunk_id in ids and source_type in (None, r.source_type)
        ]


def newest_first(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.moment, r.chunk_id), reverse=True)


def oldest_first(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.moment, r.chunk_id))


def latest_per(rows: Iterable[Row], key: Callable[[Row], Any]) -> list[Row]:
    seen: dict[Any, Row] = {}
    for row in newest_first(rows):
        seen.setdefault(key(row), row)
    return list(seen.values())


def first_per(rows: Iterable[Row], key: Callable[[Row], Any]) -> list[Row]:
    seen: dict[Any, Row] = {}
    for row in oldest_first(rows):
        seen.setdefault(key(row), row)
    return list(seen.values())


def _drug_words(name: str) -> list[str]:
    base = words(base_name(name))
    return [w for w in base if len(w) >= 4] or base


def names_drug(ingredient: str, asked: Iterable[str]) -> bool:
    """True when the recorded ingredient is one of the asked drugs ("losartán potásico" is
    "losartán"; "losartán + hidroclorotiazida" contains it)."""
    have = words(ingredient)
    return any(all(any(same_word(w, h) for h in have) for w in _drug_words(a)) for a in asked)


def in_class(ingredient: str, atc: str | None, prefixes: Sequence[str]) -> bool:
    codes = [atc] if atc else list(atc_by_ingredient().get(ingredient, ()))
    return any(c.startswith(p) for c in codes for p in prefixes)


def names_condition(row: Row, plan: QuestionPlan) -> bool:
    """Whether a diagnosis (or the diagnosis a prescription treats) is one the plan names.

    An unspecified code stands for its family: "artritis" (M13.9, "Artritis, no especificada")
    is asked of a patient with rheumatoid arthritis (M06.9), "diabetes tipo 2" (E11.9) of one
    with E11.65: the same category, or a row whose names hold every word of one of its names.
    """
    code = str(row.facts.get("icd_code") or "")
    if not code:  # imported, coded otherwise (SNOMED CT, often in English): by its words
        return _names_uncoded(row, plan)
    have = _name_words(row, code)
    for asked in plan.conditions:
        if code == asked or ("." not in asked and code.split(".")[0] == asked):
            return True
        if _unspecified(asked) and (
            code.split(".")[0] == asked.split(".")[0]
            or any(_all_in(name, have) for name in _names_by_code().get(asked, ()))
        ):
            return True
    return bool(plan.condition_words) and _all_in(plan.condition_words, have)


def _names_uncoded(row: Row, plan: QuestionPlan) -> bool:
    """A diagnosis without an ICD-10 code ("Essential hypertension (disorder)") named by the
    head words of an asked condition, or by the asked words, in Spanish or English."""
    have = words(str(row.facts.get("description") or ""))
    asked = [
        [w for w in name if w not in _GENERIC_CONDITION_WORDS]
        for code in plan.conditions
        for name in _names_by_code().get(code, ())
    ]
    asked += [list(plan.condition_words)] if plan.condition_words else []
    return any(name and all(mentions(w, have) for w in name[:1]) for name in asked)


# Words of condition names that do not identify one in another language's display.
_GENERIC_CONDITION_WORDS = frozenset(
    "enfermedad trastorno cronica cronico aguda agudo esencial primaria arterial tipo".split()
)


def mentions(word: str, have: Sequence[str]) -> bool:
    """A Spanish word, or one of its English equivalents, among `have`."""
    return any(same_word(t, h) for t in translations(word) for h in have)


def dx_key(row: Row) -> Any:
    """One diagnosis, however coded: its ICD-10 code, else its own system's code."""
    f = row.facts
    return f.get("icd_code") or (f.get("code_system"), f.get("code") or f.get("description"))


def _unspecified(code: str) -> bool:
    return "." not in code or code.endswith(".9")


def _name_words(row: Row, code: str) -> list[str]:
    described = row.facts.get("description") or row.facts.get("diagnosis") or ""
    names = [str(described), condition_labels().get(code, "")]
    return [w for name in names for w in words(name)] + [
        w for name in _names_by_code().get(code, ()) for w in name
    ]


@functools.cache
def _names_by_code() -> dict[str, tuple[tuple[str, ...], ...]]:
    found: dict[str, list[tuple[str, ...]]] = {}
    for code, name in condition_names():
        found.setdefault(code, []).append(name)
    return {code: tuple(names) for code, names in found.items()}


def _all_in(wanted: Iterable[str], have: Sequence[str]) -> bool:
    return all(any(same_word(w, h) for h in have) for w in wanted)


# -- what the record says now: one definition each, for answers and the patient header --------


def recorded_allergies(rows: Iterable[Row]) -> list[Row]:
    """Every drug the patient is allergic to, once (its latest record), newest first."""
    return latest_per(
        (r for r in rows if r.source_type == "allergy"), lambda r: r.facts.get("ingredient")
    )


def current_medications(rows: Iterable[Row], today: dt.date) -> list[Row]:
    """Current medications: each drug's latest prescription still in force (`in_force`),
    newest first."""
    prescriptions = (r for r in rows if r.source_type == "prescription")
    latest = latest_per(prescriptions, lambda r: r.facts.get("ingredient"))
    return [r for r in latest if in_force(r, today)]


def upcoming_appointments(rows: Iterable[Row], now: dt.datetime) -> list[Row]:
    """Scheduled or confirmed appointments from now on, soonest first (the first is the
    next appointment)."""
    return sorted(
        (
            r
            for r in rows
            if r.source_type == "appointment"
            and r.moment >= now
            and r.facts.get("status") in UPCOMING
        ),
        key=lambda r: r.moment,
    )


def active_problems(rows: Iterable[Row], today: dt.date) -> list[Row]:
    """Active problems: each condition once (its latest diagnosis, newest first) when the
    catalog calls it chronic or it was diagnosed in the last `RECENT_PROBLEM_DAYS` days.
    A differential diagnosis is a hypothesis, not a problem."""
    chronic = chronic_conditions()
    since = today - dt.timedelta(days=RECENT_PROBLEM_DAYS)
    diagnoses = (
        r for r in rows if r.source_type == "diagnosis" and r.facts.get("kind") != "Differential"
    )
    return [
        r
        for r in latest_per(diagnoses, dx_key)
        if r.facts.get("clinical_status") not in ENDED_CONDITIONS
        and (
            r.facts.get("icd_code") in chronic
            or r.facts.get("clinical_status") in ("active", "recurrence", "relapse")
            or (r.day is not None and r.day >= since)
        )
    ]


# An imported condition's clinical status that says it is over.
ENDED_CONDITIONS = frozenset({"inactive", "remission", "resolved"})


@dataclass(frozen=True)
class RecordSummary:
    """The chart header: who, what they are allergic to, what they have, what they take, and
    when they are seen next. Every row is a chunk of the patient's record (its citation)."""

    demographics: Row | None
    allergies: tuple[Row, ...]
    problems: tuple[Row, ...]
    medications: tuple[Row, ...]
    next_appointment: Row | None

    @property
    def rows(self) -> tuple[Row, ...]:
        card = (self.demographics,) if self.demographics is not None else ()
        coming = (self.next_appointment,) if self.next_appointment is not None else ()
        return card + self.allergies + self.problems + self.medications + coming


SUMMARY_PLAN = QuestionPlan(subject="summary", source="none")


def summarize(rows: Sequence[Row], now: dt.datetime) -> RecordSummary:
    """The header of one patient's rows (as `load_rows` returns them for `SUMMARY_PLAN`)."""
    today = now.astimezone(BOGOTA).date()
    card = [r for r in rows if r.source_type == "demographics"]
    upcoming = upcoming_appointments(rows, now)
    return RecordSummary(
        demographics=card[0] if card else None,
        allergies=tuple(recorded_allergies(rows)),
        problems=tuple(active_problems(rows, today)),
        medications=tuple(current_medications(rows, today)),
        next_appointment=upcoming[0] if upcoming else None,
    )


# -- subjects -----------------------------------------------------------------------------------


def _medications(run: _Run) -> Execution:
    plan = run.plan
    rows = run.of_previous_visits(run.in_encounter_type(run.in_window(run.of("prescription"))))
    previous = run.previous("prescription")
    prev_dx = run.previous("diagnosis")
    if plan.drugs:
        rows = [r for r in rows if names_drug(str(r.facts.get("ingredient")), plan.drugs)]
    elif previous and plan.follow_up:
        wanted = {r.facts.get("ingredient") for r in previous}
        rows = [r for r in rows if r.facts.get("ingredient") in wanted]
    if plan.purpose:
        # what treats a symptom: the prescriptions whose diagnosis names it ("¿qué toma para
        # la presión?": I10), else the drugs of a class that treats it ("para el dolor")
        named = [r for r in rows if names_condition(r, plan)]
        rows = named or [r for r in rows if _of_class(r, plan)]
    else:
        if plan.drug_classes:
            rows = [r for r in rows if _of_class(r, plan)]
        if plan.conditions or plan.condition_words:
            rows = [r for r in rows if names_condition(r, plan)]
        elif prev_dx and plan.follow_up:  # "¿Tiene amigdalitis?" → "¿con qué la tratan?"
            codes = {dx_key(r) for r in prev_dx}
            rows = [r for r in rows if dx_key(r) in codes]
    latest = latest_per(rows, lambda r: r.facts.get("ingredient"))
    active = current_medications(rows, run.today)
    op = plan.operation
    if plan.status == "inactive" and op in ("list", "latest", "count", "attribute"):
        # "¿qué medicamentos ha suspendido / tomaba antes?": those no longer in force
        ended = [r for r in latest if not in_force(r, run.today)]
        if op == "count":
            return Execution(plan, "count", tuple(ended[:MAX_ROWS]), len(ended))
        return _found(plan, ended[:MAX_LISTED]) if ended else Execution(plan, "no")
    if op == "count":
        if "veces" in " ".join(plan.cues) or plan.drugs:
            return Execution(plan, "count", tuple(newest_first(rows)[:MAX_ROWS]), len(rows))
        chosen = latest if plan.window or plan.status == "ever" else active
        return Execution(plan, "count", tuple(chosen[:MAX_ROWS]), len(chosen))
    if op == "first":
        return _found(plan, first_per(rows, lambda r: r.facts.get("ingredient"))[:MAX_ROWS])
    if op == "exists":
        asked = plan.drugs or plan.drug_classes or plan.conditions or plan.purpose
        if active or (latest and (asked or plan.window or plan.status == "ever")):
            # a named drug prescribed once is a "Sí" ("se le formuló …, terminó …")
            return Execution(plan, "yes", tuple(active or latest)[:MAX_ROWS])
        # "¿Recibe algún medicamento?" with nothing in force: "No", with the last prescribed
        return Execution(plan, "no", context=tuple(latest[:MAX_ROWS]))
    if op == "attribute" and plan.attribute in ("doctor", "specialty"):
        return _found(plan, newest_first(rows)[:1])
    if plan.window is not None:
        return _found(plan, latest[:MAX_LISTED])
    if plan.drugs or plan.drug_classes or plan.conditions or plan.condition_words:
        # "¿Qué antihipertensivos toma?" with none prescribed: a plain "No"
        return _found(plan, latest[:MAX_ROWS]) if latest else Execution(plan, "no")
    if active:
        return _found(plan, active[:MAX_ROWS])
    # nothing current: the latest prescribing visit
    if not latest:
        return Execution(plan, "empty")
    last_day = latest[0].day
    return _found(plan, [r for r in latest if r.day == last_day][:MAX_ROWS])


def _of_class(row: Row, plan: QuestionPlan) -> bool:
    return in_class(str(row.facts.get("ingredient")), row.facts.get("atc_code"), plan.drug_classes)


ENDED_STATUSES = frozenset({"completed", "stopped", "cancelled", "entered-in-error", "ended"})


def in_force(row: Row, today: dt.date) -> bool:
    """A prescription still taken: an imported one says so by its status; otherwise its
    duration has not run out."""
    status = row.facts.get("status")
    if status == "active":
        return True
    return status not in ENDED_STATUSES and _end(row) >= today


def _end(row: Row) -> dt.date:
    end = row.facts.get("end")
    return dt.date.fromisoformat(end) if end else dt.date.min


def _allergies(run: _Run) -> Execution:
    plan = run.plan
    every = recorded_allergies(run.of("allergy"))
    rows = run.in_window(every)
    terms = plan.terms
    if plan.status == "nondrug":  # foods, latex, pollen, insects: not a medicine
        rows = [r for r in rows if r.facts.get("category") not in (None, "medication")]
        if len(terms) > 1:  # "¿a comida, látex o polen?": examples of the kind, not a filter
            terms = ()
        if not rows and plan.operation != "count":
            return Execution(plan, "no", context=tuple(every[:MAX_ROWS]))
    named = bool(plan.drugs or plan.drug_classes or terms)
    if terms and not (plan.drugs or plan.drug_classes):  # "¿es alérgico al maní?"
        rows = [r for r in rows if _names_terms(r, terms, "ingredient")]
    elif plan.drugs or plan.drug_classes:
        rows = [
            r
            for r in rows
            if (plan.drugs and names_drug(str(r.facts.get("ingredient")), plan.drugs))
            or (
                plan.drug_classes
                and in_class(str(r.facts.get("ingredient")), None, plan.drug_classes)
            )
        ]
    elif plan.follow_up and run.previous("allergy"):
        rows = [r for r in rows if r in run.previous("allergy")]
    if plan.operation == "count":
        return Execution(plan, "count", tuple(rows), len(rows))
    if plan.operation == "exists" or named:
        if rows:
            return Execution(plan, "yes", tuple(rows))
        groups = {c[:5] for d in plan.drugs for c in atc_by_ingredient().get(d, ()) if len(c) >= 5}
        related = tuple(
            r for r in every if in_class(str(r.facts.get("ingredient")), None, tuple(groups))
        )
        return Execution(plan, "no", context=tuple(every[:MAX_ROWS]), related=related)
    if plan.operation == "first":  # "¿desde cuándo?": when each allergy was noted
        return _found(plan, oldest_first(rows)[:MAX_ROWS])
    if plan.operation == "latest":
        return _found(plan, rows[:1])
    return _found(plan, rows[:MAX_ROWS]) if rows else Execution(plan, "no")


def _diagnoses(run: _Run) -> Execution:
    plan = run.plan
    rows = run.of_previous_visits(run.in_encounter_type(run.in_window(run.of("diagnosis"))))
    named = bool(plan.conditions or plan.condition_words)
    if named:
        rows = [r for r in rows if names_condition(r, plan)]
    elif plan.follow_up and run.previous("diagnosis"):
        codes = {dx_key(r) for r in run.previous("diagnosis")}
        rows = [r for r in rows if dx_key(r) in codes]
    latest = latest_per(rows, dx_key)
    if plan.status == "active":  # "¿qué problemas activos tiene?": the header's definition
        latest = active_problems(latest, run.today)
        if plan.operation in ("latest", "list"):
            return _found(plan, latest[:MAX_LISTED]) if latest else Execution(plan, "no")
    op = plan.operation
    if op == "count":
        return Execution(plan, "count", tuple(latest[:MAX_ROWS]), len(latest))
    if op == "exists":
        return Execution(plan, "yes", tuple(latest[:MAX_ROWS])) if latest else Execution(plan, "no")
    if op == "first":
        firsts = first_per(rows, dx_key)
        order = {dx_key(r): i for i, r in enumerate(latest)}
        firsts.sort(key=lambda r: order.get(dx_key(r), 99))
        return _found(plan, firsts[:MAX_ROWS])
    if op == "attribute" and plan.attribute in ("doctor", "specialty", "date"):
        return _found(plan, latest[:1])
    if op == "latest" and latest:  # everything recorded at the most recent visit
        newest = latest[0].day
        return _found(plan, [r for r in latest if r.day == newest][:MAX_ROWS])
    if named and not latest:
        return Execution(plan, "no")
    return _found(plan, latest[:MAX_ROWS])


def _vitals(run: _Run) -> Execution:
    plan = run.plan
    rows = run.in_encounter_type(run.in_window(run.of("vitals")))
    kinds = plan.vitals or ()
    rows = [r for r in rows if all(_vital(r, k) is not None for k in kinds)]
    op = plan.operation
    if op == "series":
        if plan.window is None:
            rows = newest_first(rows)[:MAX_POINTS]
        return _found(plan, oldest_first(rows)[-MAX_POINTS:])
    if op == "count":
        return Execution(plan, "count", tuple(newest_first(rows)[:MAX_ROWS]), len(rows))
    if op == "first":
        return _found(plan, oldest_first(rows)[:1])
    if op in ("max", "min") and kinds:
        # the extreme of the first value (systolic for blood pressure); the latest on a tie
        def value(r: Row) -> float:
            return float(_vital(r, kinds[0])[0])

        pick = max if op == "max" else min
        return _found(plan, [pick(newest_first(rows), key=value)] if rows else [])
    return _found(plan, newest_first(rows)[:1])


VITAL_KEYS = {
    "bp": ("systolic", "diastolic"),
    "hr": ("heart_rate",),
    "rr": ("respiratory_rate",),
    "spo2": ("spo2",),
    "temp": ("temperature",),
    "weight": ("weight_kg",),
    "height": ("height_cm",),
    "bmi": ("bmi",),
}


def _vital(row: Row, kind: str) -> Any:
    values = [row.facts.get(k) for k in VITAL_KEYS[kind]]
    return None if any(v is None for v in values) else values


def _appointments(run: _Run) -> Execution:
    plan = run.plan
    rows = run.in_window(run.of("appointment"))
    if plan.specialty:
        rows = [r for r in rows if r.facts.get("specialty") == plan.specialty]
    if plan.follow_up and plan.operation == "attribute" and run.previous("appointment"):
        return _found(plan, newest_first(run.previous("appointment"))[:1])
    upcoming = upcoming_appointments(rows, run.now)
    past = newest_first(r for r in rows if r.moment < run.now)
    if plan.status is not None:
        past = [r for r in past if r.facts.get("status") == plan.status]
    op = plan.operation
    if op == "count":
        chosen = (
            upcoming if plan.status == UPCOMING_STATUS else past if plan.status else past + upcoming
        )
        return Execution(plan, "count", tuple(chosen[:MAX_ROWS]), len(chosen))
    if op == "exists":
        chosen = past if plan.status not in (None, UPCOMING_STATUS) else upcoming
        return Execution(plan, "yes", tuple(chosen[:MAX_ROWS])) if chosen else Execution(plan, "no")
    asked = (
        upcoming
        if plan.status == UPCOMING_STATUS or op == "next"
        else past
        if plan.status
        else past + upcoming
    )
    if rows and not asked:
        # appointments are recorded, none of the kind asked: "¿Faltó a alguna cita?" → "No"
        return Execution(plan, "no")
    coming_first = plan.status in (None, UPCOMING_STATUS) and upcoming and not run.window()
    if op == "next" or (op in ("attribute", "list") and coming_first):
        return _found(plan, upcoming[: 1 if op != "list" else 3])
    if op == "first":
        return _found(plan, past[-1:])
    if op in ("latest", "attribute"):
        return _found(plan, past[:1])
    return _found(plan, past[:MAX_ROWS])


def _encounters(run: _Run) -> Execution:
    plan = run.plan
    rows = run.in_encounter_type(run.in_window(run.of("encounter")))
    rows = [r for r in rows if r.moment < run.now]
    if plan.specialty:
        rows = [r for r in rows if r.facts.get("specialty") == plan.specialty]
    if plan.follow_up and plan.operation == "attribute" and run.previous("encounter"):
        return _found(plan, newest_first(run.previous("encounter"))[:1])
    rows = newest_first(rows)
    op = plan.operation
    if op == "count":
        return Execution(plan, "count", tuple(rows[:MAX_ROWS]), len(rows))
    if op == "exists":
        return Execution(plan, "yes", tuple(rows[:1]), len(rows)) if rows else Execution(plan, "no")
    if op == "first":
        return _found(plan, rows[-1:])
    if op in ("latest", "attribute", "next"):
        return _found(plan, rows[:1])
    return _found(plan, rows[:MAX_ROWS])


def _people(run: _Run) -> Execution:
    """Doctors or specialties who attended the patient, most recent first, each once."""
    plan = run.plan
    key = "doctor" if plan.subject == "doctor" else "specialty"
    rows = run.in_encounter_type(run.in_window(run.of("encounter")))
    rows = [r for r in rows if r.moment < run.now]
    if not rows:  # no visits recorded: attended appointments say who
        rows = [
            r for r in run.in_window(run.of("appointment")) if r.facts.get("status") == "Attended"
        ]
    if plan.operation == "next":
        return _appointments(replace_run(run, replace(plan, subject="appointment")))
    chosen = latest_per(rows, lambda r: r.facts.get(key))
    if plan.operation == "count":
        return Execution(plan, "count", tuple(chosen[:MAX_ROWS]), len(chosen))
    if plan.operation == "latest":
        chosen = chosen[:1]
    return _found(plan, chosen[: MAX_ROWS + 2])


def replace_run(run: _Run, plan: QuestionPlan) -> _Run:
    return _Run(plan, run.all_rows, run.now, run.encounters)


def _demographics(run: _Run) -> Execution:
    return _found(run.plan, run.of("demographics")[:1])


def _notes(run: _Run) -> Execution:
    plan = run.plan
    rows = run.in_encounter_type(run.in_window(run.of("note")))
    if plan.note_section is None and rows:  # "la última nota", "la nota de urgencias": whole
        pick = oldest_first(rows)[0] if plan.operation == "first" else newest_first(rows)[0]
        whole = sorted((r for r in rows if r.record_id == pick.record_id), key=lambda r: r.chunk_id)
        return _found(plan, whole[:MAX_ROWS])
    rows = [r for r in rows if r.facts.get("section") == plan.note_section]
    rows = newest_first(rows)
    if plan.operation == "first":
        return _found(plan, rows[-1:])
    return _found(plan, rows[: 1 if plan.operation in ("latest", "attribute") else 3])


def _summary(run: _Run) -> Execution:
    """The whole chart at a glance, or only the parts asked for (then in full)."""
    parts = run.plan.parts
    few = MAX_ROWS if parts else 4
    card = run.of("demographics")[:1] if not parts or "demographics" in parts else []
    diagnoses = latest_per(run.of("diagnosis"), dx_key)[:few]
    prescriptions = latest_per(run.of("prescription"), lambda r: r.facts.get("ingredient"))
    active = (current_medications(prescriptions, run.today) or prescriptions)[:few]
    allergies = recorded_allergies(run.of("allergy"))
    upcoming = upcoming_appointments(run.of("appointment"), run.now)[:1]
    chosen = {"diagnosis": diagnoses, "medication": active, "allergy": allergies}
    chosen["appointment"] = upcoming
    asked = tuple(part for part in parts if part in chosen) or SUMMARY_PARTS
    rows = [*card, *(r for part in asked for r in chosen[part])]
    return Execution(run.plan, "found", tuple(rows))


def _names_terms(row: Row, terms: Sequence[str], key: str) -> bool:
    have = words(str(row.facts.get(key) or ""))
    return all(mentions(t, have) for t in terms)


def _labs(run: _Run) -> Execution:
    """Laboratory results (observations other than vital signs) of a named test, or all."""
    plan = run.plan
    rows = [
        r for r in run.in_window(run.of("observation")) if r.facts.get("category") != "vital-signs"
    ]
    if plan.labs:
        rows = [r for r in rows if r.facts.get("code") in plan.labs]
    op = plan.operation
    if plan.status == "abnormal" and op not in ("series", "count", "max", "min"):
        # "¿algún examen alterado?": each test's latest result, when it is out of range
        latest = latest_per(rows, lambda r: r.facts.get("code"))
        flagged = [r for r in latest if r.facts.get("out_of_range") or _flagged(r)]
        if not flagged:
            return (
                Execution(plan, "no", context=tuple(latest[:MAX_ROWS]))
                if latest
                else (Execution(plan, "empty"))
            )
        return Execution(plan, "yes" if op == "exists" else "found", tuple(flagged[:MAX_LISTED]))
    if plan.status == "abnormal":
        rows = [r for r in rows if r.facts.get("out_of_range") or _flagged(r)]
    if op == "count":
        return Execution(plan, "count", tuple(newest_first(rows)[:MAX_ROWS]), len(rows))
    if op == "exists":
        return (
            Execution(plan, "yes", tuple(newest_first(rows)[:1])) if rows else Execution(plan, "no")
        )
    if op == "series" or (plan.window is not None and plan.labs and op not in ("latest",)):
        return _found(plan, oldest_first(rows)[-MAX_POINTS:])
    if op == "first":
        return _found(plan, first_per(rows, lambda r: r.facts.get("code"))[:MAX_ROWS])
    if op in ("max", "min") and rows:
        numeric = [r for r in newest_first(rows) if r.facts.get("value") is not None]
        pick = max if op == "max" else min
        return _found(
            plan, [pick(numeric, key=lambda r: float(r.facts["value"]))] if numeric else []
        )
    latest = latest_per(rows, lambda r: r.facts.get("code"))
    return _found(plan, latest[: 1 if plan.labs and op == "latest" else MAX_ROWS])


def _flagged(row: Row) -> bool:
    return str(row.facts.get("interpretation") or "").upper() in {
        "H",
        "HH",
        "HU",
        "L",
        "LL",
        "LU",
        "A",
        "AA",
        "POS",
    }


def _recorded(kind: str) -> Callable[[_Run], Execution]:
    """Immunizations or procedures, optionally of a named thing ("¿tiene la vacuna de la
    influenza?", "¿le hicieron colonoscopia?")."""

    def handler(run: _Run) -> Execution:
        plan = run.plan
        every = newest_first(
            r for r in run.in_window(run.of(kind)) if r.facts.get("status") != "not-done"
        )
        rows = [r for r in every if _names_terms(r, plan.terms, "display")] if plan.terms else every
        op = plan.operation
        if op == "count":
            return Execution(plan, "count", tuple(rows[:MAX_ROWS]), len(rows))
        if op == "exists" or (plan.terms and not rows and every):
            if rows:
                return Execution(plan, "yes", tuple(rows[:MAX_ROWS]))
            return (
                Execution(plan, "no", context=tuple(every[:MAX_ROWS]))
                if every
                else Execution(plan, "empty")
            )
        if op in ("latest", "attribute"):
            return _found(plan, rows[:1])
        if op == "first":
            return _found(plan, rows[-1:])
        if plan.window is None:  # every vaccine / procedure once, with its latest date
            rows = latest_per(rows, lambda r: r.facts.get("display"))
        return _found(plan, rows[:MAX_LISTED])

    return handler


def _out_of_record(run: _Run) -> Execution:
    return Execution(run.plan, "empty")


def _found(plan: QuestionPlan, rows: Sequence[Row]) -> Execution:
    return Execution(plan, "found" if rows else "empty", tuple(rows))


HANDLERS: dict[str, Callable[[_Run], Execution]] = {
    "medication": _medications,
    "allergy": _allergies,
    "diagnosis": _diagnoses,
    "vital": _vitals,
    "appointment": _appointments,
    "encounter": _encounters,
    "doctor": _people,
    "specialty": _people,
    "demographics": _demographics,
    "note": _notes,
    "summary": _summary,
    "lab": _labs,
    "immunization": _recorded("immunization"),
    "procedure": _recorded("procedure"),
    "out_of_record": _out_of_record,
}
