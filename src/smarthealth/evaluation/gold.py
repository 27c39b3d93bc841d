"""The Spanish gold set, built from the database it will be asked against.

Nothing expected is hard-coded: for every selected patient, SQL over the clinical tables (and
the chunk table, for the chunk ids) yields the facts an answer must contain and the chunks that
state them — e.g. "the active ingredients prescribed at the patient's latest prescribing visit",
"the blood pressure of the latest visit with vital signs", "the visit before that one". Questions
come from templates per intent, each either *direct* (the record's own words) or a *paraphrase*
(colloquial wording, kept only when none of its keywords occurs in that patient's chunks).

Unanswerable questions are of two kinds: things the synthetic record can never contain
(colonoscopia, transfusiones, vacunas…; kept only when none of their probe terms occurs in the
patient's chunks) and kinds of data the patient has none of (allergies, an upcoming appointment,
prescriptions in 2024…). Follow-ups are asked in the same chat session as the question before
them; their expectation assumes the previous turn was answered as expected.

One clock for the expectations and the pipeline: `GoldSet.now`, noon in Bogotá of the evaluation
day (by default today; the record's anchor day for a seeded record), which the runner hands to
`QuestionPipeline(clock=…)`. "Upcoming" means `start_time >= now`, "before that" means before the
day of the previous expected answer, ages are counted on the evaluation day.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from smarthealth.ingest.catalogs import load_catalog_files
from smarthealth.rag.text import fold

BOGOTA = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")
INTENTS = (
    "medications",
    "allergies",
    "diagnoses",
    "appointments",
    "vitals",
    "notes",
    "summary",
    "demographics",
)
OUT_OF_SCOPE = "out_of_scope"
INTENT_TYPES: dict[str, tuple[str, ...]] = {
    "medications": ("prescription",),
    "allergies": ("allergy",),
    "diagnoses": ("diagnosis",),
    "appointments": ("appointment",),
    "vitals": ("vitals",),
    "notes": ("note",),
    "demographics": ("demographics",),
    "summary": ("demographics", "diagnosis", "prescription", "allergy", "appointment", "vitals"),
    OUT_OF_SCOPE: (),
}
YEAR = 2024  # "en 2024": inside the five-year history of any recent seeding
OLD_YEAR = 2019  # before the five-year history of a seeding anchored after 2024: no data

# Words that carry no topic: a paraphrase may share these with the record.
FUNCTION_WORDS = frozenset(
    """a al algo algun alguna alguno como con cual cuales cuando cuanto cuanta cuantos cuantas
    de del desde donde el ella ellos en es esa ese eso esta este esto fue ha han hay la las le
    les lo los me mi mis muy no nos o para pero por que quien se si sin su sus te tiene tienen
    tu tuvo un una unas uno unos y ya yo usted dame dime cual""".split()
)
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Fact:
    """Something the answer must state: a label and its accepted surface forms."""

    label: str
    forms: tuple[str, ...]


@dataclass(frozen=True)
class GoldQuestion:
    qid: str
    patient_id: int
    document_type_id: int
    document_number: str
    session: str  # questions with the same key are asked in order in one chat session
    turn: int  # 1 for the first question of a session
    text: str
    intent: str  # one of INTENTS, or OUT_OF_SCOPE
    template: str
    answerable: bool
    facts: tuple[Fact, ...] = ()
    relevant: tuple[tuple[int, ...], ...] = ()  # groups of chunk ids (see metrics.recall@8)
    paraphrase: bool = False
    follow_up: bool = False
    time: str | None = None  # ultimo | mas_reciente | proxima | anio | antes
    expectation: str = ""  # how the expected answer was computed

    @property
    def expected_types(self) -> tuple[str, ...]:
        return INTENT_TYPES[self.intent]


@dataclass(frozen=True)
class EvaluatedPatient:
    patient_id: int
    full_name: str
    document_type_id: int
    document_number: str
    profile: str  # why it was selected


@dataclass
class GoldSet:
    today: dt.date
    now: dt.datetime  # the evaluation clock (see the module docstring)
    patients: list[EvaluatedPatient]
    questions: list[GoldQuestion]
    skipped: list[str] = field(default_factory=list)  # templates dropped, and why

    def shares(self) -> dict[str, float]:
        total = len(self.questions) or 1
        return {
            "paraphrase": sum(q.paraphrase for q in self.questions) / total,
            "unanswerable": sum(not q.answerable for q in self.questions) / total,
            "follow_up": sum(q.follow_up for q in self.questions) / total,
            "time": sum(q.time is not None for q in self.questions) / total,
        }

    def sample(self, size: int | None) -> GoldSet:
        """At most `size` questions in whole sessions, spread over templates and patients.

        Round after round, every template contributes the session of another patient, so a
        small sample still covers every intent and kind of question.
        """
        if size is None or size >= len(self.questions):
            return self
        sessions: dict[str, list[GoldQuestion]] = {}
        for q in self.questions:
            sessions.setdefault(q.session, []).append(q)
        by_template: dict[str, list[str]] = {}
        for key, turns in sessions.items():
            by_template.setdefault(turns[0].template, []).append(key)
        picked: set[str] = set()
        count = 0
        for round_ in range(max(len(keys) for keys in by_template.values())):
            for position, keys in enumerate(by_template.values()):
                key = keys[(position + round_) % len(keys)]
                if key not in picked and count + len(sessions[key]) <= size:
                    picked.add(key)
                    count += len(sessions[key])
        kept = [q for q in self.questions if q.session in picked]
        ids = {q.patient_id for q in kept}
        return GoldSet(
            self.today,
            self.now,
            [p for p in self.patients if p.patient_id in ids],
            kept,
            self.skipped,
        )


def clock_for(day: dt.date) -> dt.datetime:
    """The evaluation clock of a day: noon in Bogotá."""
    return dt.datetime.combine(day, dt.time(12, 0), BOGOTA)


def keywords(text: str) -> set[str]:
    """Folded content words of a question (function words and one-letter words dropped)."""
    return {w for w in _WORD.findall(fold(text)) if len(w) > 1 and w not in FUNCTION_WORDS}


def dmy(day: dt.date) -> tuple[str, ...]:
    return (day.strftime("%d/%m/%Y"), day.isoformat())


def _number(value: Decimal | float | int) -> tuple[str, ...]:
    as_float = float(value)
    forms = {f"{as_float}", f"{as_float:.1f}".rstrip("0").rstrip(".")}
    return tuple(sorted(forms))


# -- SQL: what the record says ------------------------------------------------------------------

PATIENT_SQL = """
SELECT p.patient_id, p.document_type_id, p.document_number, p.birth_date, p.blood_type, p.city,
       concat_ws(' ', p.first_name, p.middle_name, p.first_surname, p.second_surname) AS full_name,
       date_part('year', age($2::date, p.birth_date))::int AS age,
       (SELECT chunk_id FROM smart_health.clinical_chunks c
         WHERE c.source_type = 'demographics' AND c.source_id = p.patient_id) AS chunk_id
FROM smart_health.patients p WHERE p.patient_id = $1
"""
# The prescriptions of the latest visit that prescribed anything (optionally within a year).
LATEST_PRESCRIPTIONS_SQL = """
WITH visit AS (
  SELECT r.medical_record_id FROM smart_health.medical_records r
  WHERE r.patient_id = $1
    AND EXISTS (SELECT 1 FROM smart_health.prescriptions x
                WHERE x.medical_record_id = r.medical_record_id)
    AND ($2::int IS NULL
         OR extract(year FROM r.registration_datetime AT TIME ZONE 'America/Bogota') = $2)
  ORDER BY r.registration_datetime DESC, r.medical_record_id DESC LIMIT 1)
SELECT p.prescription_id, m.active_ingredient, p.dosage, p.frequency, p.prescription_date,
       c.chunk_id
FROM smart_health.prescriptions p
JOIN visit USING (medical_record_id)
JOIN smart_health.medications m USING (medication_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'prescription' AND c.source_id = p.prescription_id
ORDER BY p.prescription_id
"""
ALLERGIES_SQL = """
SELECT a.allergy_id, m.active_ingredient, a.reaction, c.chunk_id
FROM smart_health.patient_allergies a
JOIN smart_health.medications m USING (medication_id)
JOIN smart_health.clinical_chunks c ON c.source_type = 'allergy' AND c.source_id = a.allergy_id
WHERE a.patient_id = $1 ORDER BY a.allergy_id
"""
# The diagnoses of the latest visit (every visit records at least its principal diagnosis),
# optionally the latest visit on a day before $2.
LATEST_DIAGNOSES_SQL = """
WITH visit AS (
  SELECT r.medical_record_id, r.registration_datetime FROM smart_health.medical_records r
  WHERE r.patient_id = $1
    AND EXISTS (SELECT 1 FROM smart_health.record_diagnoses x
                WHERE x.medical_record_id = r.medical_record_id)
    AND ($2::date IS NULL
         OR r.registration_datetime < ($2::date)::timestamp AT TIME ZONE 'America/Bogota')
  ORDER BY r.registration_datetime DESC, r.medical_record_id DESC LIMIT 1)
SELECT g.icd_code, g.description, d.diagnosis_type, c.chunk_id,
       (visit.registration_datetime AT TIME ZONE 'America/Bogota')::date AS day
FROM smart_health.record_diagnoses d
JOIN visit USING (medical_record_id)
JOIN smart_health.diagnoses g USING (diagnosis_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'diagnosis' AND c.source_id = d.record_diagnosis_id
ORDER BY d.diagnosis_type = 'Principal' DESC, d.record_diagnosis_id
"""
# The first visit at which an ICD-10 code was recorded for the patient.
FIRST_DIAGNOSIS_SQL = """
SELECT (r.registration_datetime AT TIME ZONE 'America/Bogota')::date AS day, c.chunk_id
FROM smart_health.record_diagnoses d
JOIN smart_health.diagnoses g USING (diagnosis_id)
JOIN smart_health.medical_records r USING (medical_record_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'diagnosis' AND c.source_id = d.record_diagnosis_id
WHERE d.patient_id = $1 AND g.icd_code = $2
ORDER BY r.registration_datetime, r.medical_record_id LIMIT 1
"""
# Other appointment chunks of the same local day (and specialty) state the same date (and
# specialty): any of them is evidence for that fact.
_SAME_DAY = """
ARRAY(SELECT c2.chunk_id FROM smart_health.appointments a2
      JOIN smart_health.clinical_chunks c2
        ON c2.source_type = 'appointment' AND c2.source_id = a2.appointment_id
      WHERE a2.patient_id = a.patient_id AND {condition}
        AND (a2.start_time AT TIME ZONE 'America/Bogota')::date
          = (a.start_time AT TIME ZONE 'America/Bogota')::date) AS day_chunks,
ARRAY(SELECT c2.chunk_id FROM smart_health.appointments a2
      JOIN smart_health.clinical_chunks c2
        ON c2.source_type = 'appointment' AND c2.source_id = a2.appointment_id
      WHERE a2.patient_id = a.patient_id AND {condition} AND a2.specialty_id = a.specialty_id
        AND (a2.start_time AT TIME ZONE 'America/Bogota')::date
          = (a.start_time AT TIME ZONE 'America/Bogota')::date) AS specialty_chunks
"""
_UPCOMING = "a{n}.status IN ('Scheduled', 'Confirmed') AND a{n}.start_time >= $2"
_BEFORE = "a{n}.start_time < coalesce(($2::date)::timestamp AT TIME ZONE 'America/Bogota', $3)"
# Upcoming: programmed or confirmed, not yet started (the pipeline's notion of "próxima").
NEXT_APPOINTMENT_SQL = f"""
SELECT (a.start_time AT TIME ZONE 'America/Bogota') AS local_start, s.name AS specialty,
       {_SAME_DAY.format(condition=_UPCOMING.format(n=2))}
FROM smart_health.appointments a
JOIN smart_health.specialties s ON s.specialty_id = a.specialty_id
WHERE a.patient_id = $1 AND {_UPCOMING.format(n="")}
ORDER BY a.start_time LIMIT 1
"""
# The latest appointment before a bound (any status): the clock, or the day of a later one.
PAST_APPOINTMENT_SQL = f"""
SELECT (a.start_time AT TIME ZONE 'America/Bogota') AS local_start, s.name AS specialty,
       {_SAME_DAY.format(condition=_BEFORE.format(n=2))}
FROM smart_health.appointments a
JOIN smart_health.specialties s ON s.specialty_id = a.specialty_id
WHERE a.patient_id = $1 AND {_BEFORE.format(n="")}
ORDER BY a.start_time DESC, a.appointment_id DESC LIMIT 1
"""
# The latest visit with vital signs, before a day and/or within a year when given.
VITALS_SQL = """
SELECT r.medical_record_id, (r.registration_datetime AT TIME ZONE 'America/Bogota')::date AS day,
       r.systolic_pressure, r.diastolic_pressure, r.heart_rate, r.temperature_c, r.weight_kg,
       c.chunk_id
FROM smart_health.medical_records r
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'vitals' AND c.source_id = r.medical_record_id
WHERE r.patient_id = $1 AND r.systolic_pressure IS NOT NULL
  AND ($2::date IS NULL
       OR r.registration_datetime < ($2::date)::timestamp AT TIME ZONE 'America/Bogota')
  AND ($3::int IS NULL
       OR extract(year FROM r.registration_datetime AT TIME ZONE 'America/Bogota') = $3)
ORDER BY r.registration_datetime DESC, r.medical_record_id DESC LIMIT 1
"""
# The note sections of the latest visit.
LATEST_NOTE_SQL = """
WITH visit AS (
  SELECT medical_record_id, summary_text FROM smart_health.medical_records
  WHERE patient_id = $1 ORDER BY registration_datetime DESC, medical_record_id DESC LIMIT 1)
SELECT visit.summary_text, c.section, c.chunk_id
FROM visit JOIN smart_health.clinical_chunks c
  ON c.source_type = 'note' AND c.source_id = visit.medical_record_id
ORDER BY c.section
"""
VOCABULARY_SQL = """
SELECT DISTINCT regexp_split_to_table(search_text, '[^a-z0-9]+') AS word
FROM smart_health.clinical_chunks WHERE patient_id = $1
"""
MENTIONS_SQL = """
SELECT count(*) FROM smart_health.clinical_chunks WHERE patient_id = $1 AND search_text ~ $2
"""
CANDIDATES_SQL = """
SELECT p.patient_id,
       date_part('year', age($1::date, p.birth_date))::int AS age,
       (SELECT count(*) FROM smart_health.medical_records r
         WHERE r.patient_id = p.patient_id) AS visits,
       EXISTS (SELECT 1 FROM smart_health.patient_allergies a
               WHERE a.patient_id = p.patient_id) AS allergic,
       EXISTS (SELECT 1 FROM smart_health.appointments a WHERE a.patient_id = p.patient_id
               AND a.status IN ('Scheduled', 'Confirmed') AND a.start_time >= $4) AS upcoming,
       EXISTS (SELECT 1 FROM smart_health.prescriptions x WHERE x.patient_id = p.patient_id
               AND extract(year FROM x.prescription_date) = $2) AS prescribed_in_year,
       (SELECT count(*) FROM smart_health.clinical_chunks c
         WHERE c.patient_id = p.patient_id) AS chunks,
       EXISTS (SELECT 1 FROM smart_health.chunk_queue q
               WHERE q.patient_id = p.patient_id) AS queued,
       (SELECT count(*) FROM smart_health.clinical_chunks c
         WHERE c.patient_id = p.patient_id AND NOT EXISTS (
           SELECT 1 FROM smart_health.embedding_cache e
           WHERE e.text_hash = c.embedding_text_hash AND e.model = $3)) AS unembedded
FROM smart_health.patients p ORDER BY p.patient_id
"""


# -- question wording ---------------------------------------------------------------------------

PARAPHRASES: dict[str, tuple[str, ...]] = {
    "medications": (
        "¿Qué pastillas le recetaron?",
        "¿Qué remedios le mandaron?",
        "¿Qué medicinas le dieron?",
    ),
    "allergies": ("¿Es alérgico a algo?", "¿Qué le cae mal?", "¿A qué es sensible?"),
    "diagnoses": ("¿Qué enfermedades padece?", "¿De qué lo tratan?", "¿Qué males sufre?"),
    "appointments": ("¿Cuándo vuelve?", "¿Cuándo le toca regresar?"),
    "pressure": ("¿Cómo anda de la tensión?", "¿Cómo tenía la tensión?"),
    "weight": ("¿Cuántos kilos pesa?", "¿Cuánto pesa?"),
    "pulse": ("¿Cómo tenía el pulso?", "¿Cómo le late el corazón?"),
    "exam": ("¿Qué le encontraron al revisarlo?", "¿Qué le hallaron al revisarlo?"),
    "summary": ("¿Qué sabemos de esta persona?", "Dame un panorama", "Cuéntame sobre él"),
    "birth": ("¿Cuándo nació?",),
    "city": ("¿Dónde vive?", "¿De dónde es?"),
}
# Things the synthetic record never holds, with the folded probes that would betray them.
OUT_OF_SCOPE_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("¿Le han hecho una colonoscopia?", r"colonoscop"),
    ("¿Ha recibido transfusiones de sangre?", r"transfus"),
    ("¿Qué mostró la resonancia magnética?", r"resonancia"),
    ("¿Tiene la vacuna de la fiebre amarilla?", r"vacun|amarilla"),
    ("¿Cuántas cirugías previas tiene?", r"cirug|quirurg|operad"),
    ("¿Fuma o ha fumado alguna vez?", r"fuma|tabaq"),
    ("¿Cuál fue el último resultado de HbA1c?", r"hba1c|glicosil"),
    ("¿Qué EPS tiene?", r"\meps\M"),
    ("¿Tiene antecedentes familiares de cáncer?", r"famili|cancer"),
    ("¿A qué se dedica?", r"ocupaci|trabaj|dedica"),
    ("¿Ha viajado al exterior recientemente?", r"viaj|exterior"),
    ("¿Cuántas horas duerme por la noche?", r"duerme|sueno|insomnio"),
)
# Conditions asked about in "¿Tiene …?" when the patient has no record of them.
ABSENT_CONDITIONS: tuple[str, ...] = (
    "asma",
    "epilepsia",
    "hipotiroidismo",
    "artritis reumatoide",
    "migraña",
    "insuficiencia cardiaca",
    "psoriasis",
    "gota",
)


@dataclass(frozen=True)
class Expected:
    """What a question's answer must contain; no facts means it must abstain."""

    facts: tuple[Fact, ...] = ()
    relevant: tuple[tuple[int, ...], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[Fact, Sequence[int]]]) -> Expected:
        """One relevant group per fact (the chunks stating it)."""
        items = list(pairs)
        return cls(tuple(f for f, _ in items), tuple(tuple(g) for _, g in items))


NOTHING = Expected()


def _ingredients(rows: Sequence[asyncpg.Record]) -> Expected:
    return Expected.of(
        (Fact(r["active_ingredient"], (r["active_ingredient"],)), [r["chunk_id"]]) for r in rows
    )


def _doses(rows: Sequence[asyncpg.Record]) -> Expected:
    return Expected.of(
        (
            Fact(
                f"{r['active_ingredient']}: {r['dosage']} {r['frequency']}",
                (f"{r['dosage']} {r['frequency']}",),
            ),
            [r["chunk_id"]],
        )
        for r in rows
    )


def _pressure(row: asyncpg.Record | None) -> Expected:
    if row is None:
        return NOTHING
    bp = f"{row['systolic_pressure']}/{row['diastolic_pressure']}"
    return Expected.of([(Fact(f"{bp} on {row['day']}", (bp,)), [row["chunk_id"]])])


def _appointment(row: asyncpg.Record | None, what: str, specialty: bool) -> Expected:
    if row is None:
        return NOTHING
    day = row["local_start"].date()
    pairs = [(Fact(f"{what} on {day}", dmy(day)), row["day_chunks"])]
    if specialty:
        pairs.append((Fact(row["specialty"], (row["specialty"],)), row["specialty_chunks"]))
    return Expected.of(pairs)


@dataclass
class _Builder:
    conn: asyncpg.Connection
    today: dt.date
    now: dt.datetime
    patient: asyncpg.Record
    index: int  # position of the patient: rotates the paraphrase variants
    labels: dict[str, str]
    questions: list[GoldQuestion] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    vocabulary: set[str] = field(default_factory=set)
    _sessions: int = 0

    @property
    def pid(self) -> int:
        return int(self.patient["patient_id"])

    def session(self) -> str:
        self._sessions += 1
        return f"p{self.pid}-s{self._sessions}"

    def ask(
        self,
        session: str | None,
        template: str,
        text: str,
        intent: str,
        expected: Expected,
        how: str,
        *,
        paraphrase: bool = False,
        time: str | None = None,
    ) -> str:
        """Add a question (a new session when `session` is None); returns its session."""
        session = session or self.session()
        turn = 1 + sum(1 for q in self.questions if q.session == session)
        self.questions.append(
            GoldQuestion(
                qid=f"{session}-t{turn}",
                patient_id=self.pid,
                document_type_id=int(self.patient["document_type_id"]),
                document_number=str(self.patient["document_number"]),
                session=session,
                turn=turn,
                text=text,
                intent=intent,
                template=template,
                answerable=bool(expected.facts),
                facts=expected.facts,
                relevant=expected.relevant,
                paraphrase=paraphrase,
                follow_up=turn > 1,
                time=time,
                expectation=how,
            )
        )
        return session

    def paraphrase(self, key: str) -> str | None:
        """The first variant (rotating per patient) sharing no keyword with the record."""
        variants = PARAPHRASES[key]
        for shift in range(len(variants)):
            text = variants[(self.index + shift) % len(variants)]
            if not keywords(text) & self.vocabulary:
                return text
        self.skipped.append(f"patient {self.pid}: every '{key}' paraphrase shares a keyword")
        return None

    async def mentions(self, pattern: str) -> bool:
        return bool(await self.conn.fetchval(MENTIONS_SQL, self.pid, pattern))

    # -- per intent -----------------------------------------------------------------------------

    async def medications(self) -> None:
        rows = await self.conn.fetch(LATEST_PRESCRIPTIONS_SQL, self.pid, None)
        how = "active ingredients prescribed at the latest prescribing visit"
        s = self.ask(
            None,
            "med_list",
            "¿Qué medicamentos tiene formulados?",
            "medications",
            _ingredients(rows),
            how,
        )
        self.ask(
            s,
            "med_dose",
            "¿y la dosis?",
            "medications",
            _doses(rows),
            "dosage and frequency of those prescriptions",
        )
        if text := self.paraphrase("medications"):
            self.ask(
                None, "med_para", text, "medications", _ingredients(rows), how, paraphrase=True
            )
        rows = await self.conn.fetch(LATEST_PRESCRIPTIONS_SQL, self.pid, YEAR)
        s = self.ask(
            None,
            "med_year",
            f"¿Qué medicamentos le formularon en {YEAR}?",
            "medications",
            _ingredients(rows),
            f"ingredients of the latest prescribing visit of {YEAR}",
            time="anio",
        )
        self.ask(
            s,
            "med_year_dose",
            "¿y la dosis?",
            "medications",
            _doses(rows),
            f"dosage and frequency at the latest prescribing visit of {YEAR}",
            time="anio",
        )
        rows = await self.conn.fetch(LATEST_PRESCRIPTIONS_SQL, self.pid, OLD_YEAR)
        self.ask(
            None,
            "med_old_year",
            f"¿Qué medicamentos le formularon en {OLD_YEAR}?",
            "medications",
            _ingredients(rows),
            f"ingredients of the latest prescribing visit of {OLD_YEAR} (none: abstain)",
            time="anio",
        )

    async def allergies(self) -> None:
        rows = await self.conn.fetch(ALLERGIES_SQL, self.pid)
        how = "ingredients of patient_allergies (none: abstain)"
        s = self.ask(
            None,
            "allergy_list",
            "¿Tiene alergias a medicamentos?",
            "allergies",
            _ingredients(rows),
            how,
        )
        if rows:
            reactions = Expected.of(
                (Fact(r["reaction"], (r["reaction"],)), [r["chunk_id"]]) for r in rows
            )
            self.ask(
                s,
                "allergy_reaction",
                "¿y qué reacción le dio?",
                "allergies",
                reactions,
                "reaction recorded for each allergy",
            )
        if text := self.paraphrase("allergies"):
            self.ask(
                None, "allergy_para", text, "allergies", _ingredients(rows), how, paraphrase=True
            )

    async def diagnoses(self) -> None:
        rows = await self.conn.fetch(LATEST_DIAGNOSES_SQL, self.pid, None)
        codes = [
            (Fact(f"{r['icd_code']} {r['description']}", (r["icd_code"],)), [r["chunk_id"]])
            for r in rows
        ]
        how = "ICD-10 codes recorded at the latest visit"
        s = self.ask(
            None, "dx_list", "¿Qué diagnósticos tiene?", "diagnoses", Expected.of(codes), how
        )
        since = NOTHING
        if rows:
            first = await self.conn.fetchrow(FIRST_DIAGNOSIS_SQL, self.pid, rows[0]["icd_code"])
            since = Expected.of(
                [
                    (
                        Fact(f"{rows[0]['icd_code']} since {first['day']}", dmy(first["day"])),
                        [first["chunk_id"]],
                    )
                ]
            )
        self.ask(
            s,
            "dx_since",
            "¿desde cuándo?",
            "diagnoses",
            since,
            "first day the latest principal diagnosis was recorded",
        )
        s = self.ask(
            None,
            "dx_latest",
            "¿Cuál es el diagnóstico más reciente?",
            "diagnoses",
            Expected.of(codes[:1]),
            "principal diagnosis of the latest visit",
            time="mas_reciente",
        )
        earlier = []
        if rows:
            earlier = await self.conn.fetch(LATEST_DIAGNOSES_SQL, self.pid, rows[0]["day"])
        self.ask(
            s,
            "dx_latest_before",
            "¿y antes de eso?",
            "diagnoses",
            Expected.of(
                [
                    (Fact(f"{r['icd_code']} {r['description']}", (r["icd_code"],)), [r["chunk_id"]])
                    for r in earlier[:1]
                ]
            ),
            "principal diagnosis of the latest visit on an earlier day",
            time="antes",
        )
        if text := self.paraphrase("diagnoses"):
            self.ask(None, "dx_para", text, "diagnoses", Expected.of(codes), how, paraphrase=True)
        if rows and rows[0]["icd_code"] in self.labels:
            self.ask(
                None,
                "dx_yes",
                f"¿Tiene {self.labels[rows[0]['icd_code']]}?",
                "diagnoses",
                Expected.of(codes[:1]),
                "the latest principal diagnosis, asked by its common name",
            )
        for offset in range(len(ABSENT_CONDITIONS)):
            label = ABSENT_CONDITIONS[(self.index + offset) % len(ABSENT_CONDITIONS)]
            words = [w for w in _WORD.findall(fold(label)) if len(w) > 3]
            if await self.mentions("|".join(rf"\m{w}" for w in words)):
                continue
            self.ask(
                None,
                "dx_absent",
                f"¿Tiene {label}?",
                "diagnoses",
                NOTHING,
                "a condition the record never mentions: abstain",
            )
            break

    async def appointments(self) -> None:
        upcoming = await self.conn.fetchrow(NEXT_APPOINTMENT_SQL, self.pid, self.now)
        how = "earliest programmed/confirmed appointment from now on (none: abstain)"
        self.ask(
            None,
            "appt_next",
            "¿Cuándo es su próxima cita?",
            "appointments",
            _appointment(upcoming, "next", True),
            how,
            time="proxima",
        )
        if text := self.paraphrase("appointments"):
            self.ask(
                None,
                "appt_para",
                text,
                "appointments",
                _appointment(upcoming, "next", True),
                how,
                paraphrase=True,
                time="proxima",
            )
        last = await self.conn.fetchrow(PAST_APPOINTMENT_SQL, self.pid, None, self.now)
        s = self.ask(
            None,
            "appt_last",
            "¿Cuándo fue su última cita?",
            "appointments",
            _appointment(last, "last", True),
            "latest appointment before now, any status",
            time="ultimo",
        )
        before = None
        if last is not None:
            before = await self.conn.fetchrow(
                PAST_APPOINTMENT_SQL, self.pid, last["local_start"].date(), self.now
            )
        self.ask(
            s,
            "appt_before",
            "¿y antes de eso?",
            "appointments",
            _appointment(before, "previous", False),
            "latest appointment on an earlier day than the last one",
            time="antes",
        )

    async def vitals(self) -> None:
        latest = await self.conn.fetchrow(VITALS_SQL, self.pid, None, None)
        s = self.ask(
            None,
            "bp_last",
            "¿Cuál fue la última presión arterial?",
            "vitals",
            _pressure(latest),
            "blood pressure of the latest visit with vital signs",
            time="ultimo",
        )
        previous = None
        if latest is not None:
            previous = await self.conn.fetchrow(VITALS_SQL, self.pid, latest["day"], None)
        self.ask(
            s,
            "bp_before",
            "¿y antes de eso?",
            "vitals",
            _pressure(previous),
            "blood pressure of the latest visit on an earlier day",
            time="antes",
        )
        if self.index % 2 == 0:
            third = None
            if previous is not None:
                third = await self.conn.fetchrow(VITALS_SQL, self.pid, previous["day"], None)
            self.ask(
                s,
                "bp_before2",
                "¿y antes de eso?",
                "vitals",
                _pressure(third),
                "blood pressure one visit further back",
                time="antes",
            )
        if text := self.paraphrase("pressure"):
            self.ask(
                None,
                "bp_para",
                text,
                "vitals",
                _pressure(latest),
                "blood pressure of the latest visit",
                paraphrase=True,
            )

        def measure(column: str, unit: str) -> Expected:
            if latest is None or latest[column] is None:
                return NOTHING
            value = latest[column]
            forms = tuple(f"{n} {unit}" for n in _number(value))
            return Expected.of([(Fact(f"{value} {unit}", forms), [latest["chunk_id"]])])

        if text := self.paraphrase("weight"):
            self.ask(
                None,
                "weight_para",
                text,
                "vitals",
                measure("weight_kg", "kg"),
                "weight at the latest visit",
                paraphrase=True,
            )
        if text := self.paraphrase("pulse"):
            self.ask(
                None,
                "pulse_para",
                text,
                "vitals",
                measure("heart_rate", "lpm"),
                "heart rate at the latest visit",
                paraphrase=True,
            )
        self.ask(
            None,
            "temp_last",
            "¿Qué temperatura tuvo en la última consulta?",
            "vitals",
            measure("temperature_c", "°C"),
            "temperature at the latest visit",
            time="ultimo",
        )
        in_year = await self.conn.fetchrow(VITALS_SQL, self.pid, None, YEAR)
        self.ask(
            None,
            "bp_year",
            f"¿Cuál fue la presión arterial en {YEAR}?",
            "vitals",
            _pressure(in_year),
            f"blood pressure of the latest visit of {YEAR}",
            time="anio",
        )
        in_old_year = await self.conn.fetchrow(VITALS_SQL, self.pid, None, OLD_YEAR)
        self.ask(
            None,
            "bp_old_year",
            f"¿Qué presión arterial tenía en {OLD_YEAR}?",
            "vitals",
            _pressure(in_old_year),
            f"blood pressure of the latest visit of {OLD_YEAR} (none: abstain)",
            time="anio",
        )

    async def notes(self) -> None:
        rows = await self.conn.fetch(LATEST_NOTE_SQL, self.pid)
        chunks = {r["section"]: r["chunk_id"] for r in rows}
        sections: dict[str, str] = {}
        for line in (rows[0]["summary_text"] if rows else "").splitlines():
            title, _, body = line.partition(":")
            sections[title.strip()] = body.strip()
        exam = sections.get("EXAMEN FÍSICO", "")
        phrases = {
            1: sections.get("MOTIVO DE CONSULTA", "").rstrip("."),
            4: exam.split(" cm. ", 1)[1].rstrip(".") if " cm. " in exam else "",
            5: sections.get("ANÁLISIS Y PLAN", "").split(". ", 1)[0].rstrip("."),
        }

        def phrase(section: int, label: str) -> Expected:
            if not phrases[section] or section not in chunks:
                return NOTHING
            return Expected.of([(Fact(label, (phrases[section],)), [chunks[section]])])

        s = self.ask(
            None,
            "note_reason",
            "¿Cuál fue el motivo de la última consulta?",
            "notes",
            phrase(1, "reason"),
            "MOTIVO DE CONSULTA of the latest visit",
            time="ultimo",
        )
        self.ask(
            s,
            "note_plan",
            "¿y cuál fue el plan?",
            "notes",
            phrase(5, "plan"),
            "first sentence of ANÁLISIS Y PLAN of the latest visit",
        )
        self.ask(
            None,
            "note_exam",
            "¿Qué se encontró en el examen físico más reciente?",
            "notes",
            phrase(4, "exam finding"),
            "finding of EXAMEN FÍSICO at the latest visit",
            time="mas_reciente",
        )
        if text := self.paraphrase("exam"):
            self.ask(
                None,
                "note_para",
                text,
                "notes",
                phrase(4, "exam finding"),
                "finding of EXAMEN FÍSICO at the latest visit",
                paraphrase=True,
            )

    async def summary(self) -> None:
        p = self.patient
        pairs: list[tuple[Fact, Sequence[int]]] = [
            (Fact("full name", (p["full_name"],)), [p["chunk_id"]])
        ]
        dx = await self.conn.fetch(LATEST_DIAGNOSES_SQL, self.pid, None)
        if dx:
            pairs.append(
                (
                    Fact(f"{dx[0]['icd_code']} {dx[0]['description']}", (dx[0]["icd_code"],)),
                    [dx[0]["chunk_id"]],
                )
            )
        rx = await self.conn.fetch(LATEST_PRESCRIPTIONS_SQL, self.pid, None)
        if rx:
            pairs.append(
                (
                    Fact(
                        "a drug of the latest prescribing visit",
                        tuple(r["active_ingredient"] for r in rx),
                    ),
                    [r["chunk_id"] for r in rx],
                )
            )
        for a in await self.conn.fetch(ALLERGIES_SQL, self.pid):
            pairs.append(
                (
                    Fact(f"allergy {a['active_ingredient']}", (a["active_ingredient"],)),
                    [a["chunk_id"]],
                )
            )
        how = "name, latest principal diagnosis, a drug of the latest visit, every allergy"
        s = self.ask(
            None,
            "summary",
            "Hazme un resumen de la historia clínica",
            "summary",
            Expected.of(pairs),
            how,
        )
        upcoming = await self.conn.fetchrow(NEXT_APPOINTMENT_SQL, self.pid, self.now)
        self.ask(
            s,
            "summary_next",
            "¿y la próxima cita?",
            "appointments",
            _appointment(upcoming, "next", False),
            "earliest upcoming appointment (none: abstain)",
            time="proxima",
        )
        if text := self.paraphrase("summary"):
            self.ask(
                None, "summary_para", text, "summary", Expected.of(pairs), how, paraphrase=True
            )

    async def demographics(self) -> None:
        p = self.patient
        card = [p["chunk_id"]]

        def field_(label: str, forms: tuple[str, ...]) -> Expected:
            return Expected.of([(Fact(label, forms), card)]) if forms[0] else NOTHING

        s = self.ask(
            None,
            "demo_age",
            "¿Qué edad tiene?",
            "demographics",
            field_(f"{p['age']} años", (f"{p['age']} años",)),
            "age on the evaluation day, from patients.birth_date",
        )
        self.ask(
            s,
            "demo_blood",
            "¿y su grupo sanguíneo?",
            "demographics",
            field_(str(p["blood_type"]), (p["blood_type"] or "",)),
            "patients.blood_type",
        )
        if text := self.paraphrase("birth"):
            self.ask(
                None,
                "demo_birth",
                text,
                "demographics",
                field_(str(p["birth_date"]), dmy(p["birth_date"])),
                "patients.birth_date",
                paraphrase=True,
            )
        if text := self.paraphrase("city"):
            self.ask(
                None,
                "demo_city",
                text,
                "demographics",
                field_(str(p["city"]), (p["city"] or "",)),
                "patients.city",
                paraphrase=True,
            )

    async def out_of_scope(self, count: int) -> None:
        added = 0
        for offset in range(len(OUT_OF_SCOPE_QUESTIONS)):
            text, probe = OUT_OF_SCOPE_QUESTIONS[
                (self.index * count + offset) % len(OUT_OF_SCOPE_QUESTIONS)
            ]
            if await self.mentions(probe):
                self.skipped.append(f"patient {self.pid}: record mentions /{probe}/")
                continue
            self.ask(
                None,
                "out_of_scope",
                text,
                OUT_OF_SCOPE,
                NOTHING,
                "never in a synthetic record (probes checked): abstain",
            )
            added += 1
            if added == count:
                return


async def select_patients(
    conn: asyncpg.Connection, count: int, today: dt.date, model: str, now: dt.datetime
) -> list[tuple[int, str]]:
    """A deterministic, varied sample: allergic, upcoming appointment, child, no history, rich.

    Only fully indexed patients are eligible: none queued for re-chunking, every chunk with a
    vector of `model` (the evaluated embedder's).
    """
    rows = [
        r
        for r in await conn.fetch(CANDIDATES_SQL, today, YEAR, model, now)
        if not r["queued"] and r["unembedded"] == 0
    ]
    chosen: dict[int, str] = {}

    def take(profile: str, pool: Iterable[asyncpg.Record], n: int) -> None:
        for r in pool:
            if n <= 0 or len(chosen) >= count:
                return
            if r["patient_id"] not in chosen:
                chosen[r["patient_id"]] = profile
                n -= 1

    with_history = [r for r in rows if r["visits"] >= 3]
    take("sin historia clínica", (r for r in rows if r["visits"] == 0 and r["chunks"] > 0), 1)
    take("alérgico", (r for r in with_history if r["allergic"]), max(2, count // 4))
    take("cita próxima", (r for r in with_history if r["upcoming"]), max(1, count // 6))
    take("menor de 12 años", (r for r in with_history if r["age"] < 12), max(1, count // 8))
    take("mayor de 65 años", (r for r in with_history if r["age"] >= 65), max(1, count // 8))
    rest = [r for r in with_history if r["prescribed_in_year"] and r["patient_id"] not in chosen]
    step = max(1, len(rest) // max(1, count - len(chosen)))
    take("historia completa", rest[::step], count)
    take("otro", rows, count)
    return sorted(chosen.items())


async def build_gold_set(
    conn: asyncpg.Connection,
    model: str,
    patients: int = 12,
    today: dt.date | None = None,
    patient_ids: Sequence[int] | None = None,
) -> GoldSet:
    """Questions and SQL-computed expectations for `patients` selected patients (among those
    fully indexed for the embedding `model`), as of `today` (default: today in Bogotá)."""
    today = today or dt.datetime.now(BOGOTA).date()
    now = clock_for(today)
    if patient_ids is None:
        selected = await select_patients(conn, patients, today, model, now)
    else:
        selected = [(pid, "elegido") for pid in patient_ids]
    labels = {c.icd_code: c.label for c in load_catalog_files().conditions}
    gold = GoldSet(today=today, now=now, patients=[], questions=[])
    for index, (pid, profile) in enumerate(selected):
        patient = await conn.fetchrow(PATIENT_SQL, pid, today)
        builder = _Builder(conn, today, now, patient, index, labels)
        builder.vocabulary = {r["word"] for r in await conn.fetch(VOCABULARY_SQL, pid) if r["word"]}
        await builder.medications()
        await builder.allergies()
        await builder.diagnoses()
        await builder.appointments()
        await builder.vitals()
        await builder.notes()
        await builder.summary()
        await builder.demographics()
        await builder.out_of_scope(3)
        gold.questions += builder.questions
        gold.skipped += builder.skipped
        gold.patients.append(
            EvaluatedPatient(
                pid,
                patient["full_name"],
                int(patient["document_type_id"]),
                str(patient["document_number"]),
                profile,
            )
        )
    return gold
