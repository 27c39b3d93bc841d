"""The Spanish gold set, built from the database it will be asked against.

For every selected patient and every kind of question (`kinds.py`), SQL over the clinical tables
yields the *truth*: the facts an answer must state, the chunks that state them, the facts it must
not state (another drug's dose after "¿y la dosis?"), and whether it must cite evidence, must cite
nothing, or may do either. Nothing expected is written by hand. The wording comes from the
phrasing files (`phrasings.py`): each patient gets one development and one held-out phrasing of
every kind that applies to it (more for kinds few patients can be asked), rotating over patients,
so every phrasing is asked and every kind is asked at least `MIN_PER_HALF` times per half.

Conventions the expected facts follow (compared accent-folded and case-insensitive, see
`metrics.contains_form`): dates dd/mm/yyyy in America/Bogota (yyyy-mm-dd accepted); blood
pressure "S/D"; other numbers as the record states them ("36.5" or "36,5"); counts in digits;
drugs by active ingredient (the base name without the salt accepted); doctors by last name;
specialties by catalog name; conditions by ICD-10 code, description or catalog common name.
A form starting with "^" must open the answer: yes/no answers start with "Sí" or "No".

Evidence: `required` (an answer that cites at least one source), `none` (cites nothing: the
record has no such data, or the topic is one a record cannot hold — then "No encuentro …"),
`any` (a "No" to a yes/no question, or a zero count, may cite or not).

One clock for the expectations and the pipeline: `GoldSet.now`, noon in Bogotá of the evaluation
day, which the runner hands to `QuestionPipeline(clock=…)`. Records and appointments after it are
the future: "latest" means at or before now, "next" means from now on, windows ("los últimos 6
meses") run from the same calendar day N months before the evaluation day, inclusive.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import asyncpg

from smarthealth.evaluation import phrasings as ph
from smarthealth.evaluation.kinds import (
    HALVES,
    KINDS,
    ROBUST_TAGS,
    Kind,
)
from smarthealth.evaluation.metrics import ANY, NONE, REQUIRED
from smarthealth.ingest.catalogs import load_catalog_files
from smarthealth.rag.text import fold

BOGOTA = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")
PHRASINGS_PER_PATIENT = 1  # per kind and half; more for kinds few patients can be asked
MIN_PER_HALF = 8  # every kind is asked at least this often per half (when patients allow)


@dataclass(frozen=True)
class Fact:
    """Something the answer must state: a label and its accepted surface forms ("^…": the
    answer starts with it)."""

    label: str
    forms: tuple[str, ...]
    derived: bool = False  # computed from the record (an age, a count), not stated by a chunk


YES = Fact("starts with 'Sí'", ("^si",))
NO = Fact("starts with 'No'", ("^no",))
NEGATIVE = Fact("says there is none ('No …' / 'No encuentro …')", ("^no", "no encuentro"))
ABSTAIN = Fact("abstains ('No encuentro …')", ("no encuentro",))


@dataclass(frozen=True)
class Expected:
    """What one turn's answer must do."""

    facts: tuple[Fact, ...] = ()
    relevant: tuple[tuple[int, ...], ...] = ()  # one group of chunk ids per fact (may be empty)
    forbidden: tuple[Fact, ...] = ()  # must not appear (subject kept: no other drug)
    evidence: str = REQUIRED
    how: str = ""  # the truth in words, with the values found

    @classmethod
    def of(
        cls,
        pairs: Iterable[tuple[Fact, Sequence[int]]],
        how: str,
        *,
        lead: Fact | None = None,
        forbidden: Iterable[Fact] = (),
        evidence: str = REQUIRED,
    ) -> Expected:
        items = list(pairs)
        facts = ([lead] if lead else []) + [f for f, _ in items]
        groups = ([()] if lead else []) + [tuple(g) for _, g in items]
        return cls(tuple(facts), tuple(groups), tuple(forbidden), evidence, how)

    @classmethod
    def negative(cls, how: str) -> Expected:
        """The record has none: "No …" / "No encuentro …", citing nothing."""
        return cls((NEGATIVE,), ((),), (), NONE, how)

    @classmethod
    def no(cls, how: str) -> Expected:
        """A yes/no question whose answer is no: starts with "No", may cite."""
        return cls((NO,), ((),), (), ANY, how)


@dataclass(frozen=True)
class Instance:
    """The truth of one kind for one patient: placeholder values and each turn's expectation."""

    values: dict[str, str]
    turns: tuple[Expected, ...]
    probe_topics: bool = False  # out-of-record: skip phrasings whose topic the record mentions


@dataclass(frozen=True)
class GoldQuestion:
    qid: str
    patient_id: int
    document_type_id: int
    document_number: str
    session: str  # questions with the same key are asked in order in one chat session
    turn: int  # 1 for the first question of a session
    text: str
    kind: str
    category: str
    half: str  # dev | heldout | probe
    phrasing: str  # phrasing id, e.g. "dev:med_yes:3"
    tags: tuple[str, ...]
    scored: bool  # False for the first turn of a follow-up kind (it sets the subject up)
    facts: tuple[Fact, ...] = ()
    relevant: tuple[tuple[int, ...], ...] = ()
    forbidden: tuple[Fact, ...] = ()
    evidence: str = REQUIRED
    list_answer: bool = False
    types: tuple[str, ...] = ()  # chunk types an uncheckable citation may point to
    expectation: str = ""

    @property
    def answerable(self) -> bool:
        """The record holds the answer: it must be given with evidence."""
        return self.evidence == REQUIRED

    @property
    def robust(self) -> bool:
        return bool(set(self.tags) & ROBUST_TAGS)

    @property
    def expected_types(self) -> tuple[str, ...]:
        return self.types


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
    skipped: list[str] = field(default_factory=list)  # kinds/phrasings not asked, and why

    def _with(self, kept: list[GoldQuestion]) -> GoldSet:
        ids = {q.patient_id for q in kept}
        return GoldSet(
            self.today,
            self.now,
            [p for p in self.patients if p.patient_id in ids],
            kept,
            self.skipped,
        )

    def sample(self, size: int | None) -> GoldSet:
        """At most `size` questions in whole sessions, spread over kinds, halves and patients.

        Round after round, every (kind, half) contributes the session of another patient, so a
        small sample still covers every category and both halves.
        """
        if size is None or size >= len(self.questions):
            return self
        sessions: dict[str, list[GoldQuestion]] = {}
        for q in self.questions:
            sessions.setdefault(q.session, []).append(q)
        by_key: dict[tuple[str, str], list[str]] = {}
        for key, turns in sessions.items():
            by_key.setdefault((turns[0].kind, turns[0].half), []).append(key)
        picked: set[str] = set()
        count = 0
        for round_ in range(max(len(keys) for keys in by_key.values())):
            for position, keys in enumerate(by_key.values()):
                key = keys[(position + round_) % len(keys)]
                if key not in picked and count + len(sessions[key]) <= size:
                    picked.add(key)
                    count += len(sessions[key])
        return self._with([q for q in self.questions if q.session in picked])


def clock_for(day: dt.date) -> dt.datetime:
    """The evaluation clock of a day: noon in Bogotá."""
    return dt.datetime.combine(day, dt.time(12, 0), BOGOTA)


def months_before(day: dt.date, months: int) -> dt.date:
    """The same calendar day `months` earlier (the last day of a shorter month)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for d in range(day.day, 27, -1):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    return dt.date(year, month, min(day.day, 28))


# -- surface forms ------------------------------------------------------------------------------


def dmy(day: dt.date) -> tuple[str, ...]:
    return (day.strftime("%d/%m/%Y"), day.isoformat())


def number_forms(value: Decimal | float | int) -> tuple[str, ...]:
    """ "36.5" / "36,5"; "72" / "72.0" / "72,0" for a whole number."""
    d = Decimal(str(value))
    forms = {f"{d.normalize():f}"} if d == d.to_integral() else set()
    one = f"{d.quantize(Decimal('0.1'), ROUND_HALF_UP)}"
    forms |= {one, one.replace(".", ",")}
    if d == d.to_integral():
        forms.add(str(int(d)))
    return tuple(sorted(forms))


_SALTS = (
    "sódico sódica potásico potásica cálcico clorhidrato diclorhidrato maleato fumarato tartrato "
    "succinato fosfato sulfato acetato propionato dipropionato furoato besilato cilexetilo "
    "axetilo etexilato trometamol trometamina dietilamina benzoil citrato disoproxil micronizada"
).split()
_PAREN = re.compile(r"\s*\(([^)]*)\)")


def _strip_salt(name: str) -> str:
    words = name.split()
    while len(words) > 1 and words[-1] in _SALTS:
        words.pop()
    return " ".join(words)


def base_name(ingredient: str) -> str:
    """ "losartán potásico" → "losartán"; "dipirona (metamizol sódico)" → "dipirona"."""
    parts = _PAREN.sub("", ingredient).split(" + ")
    return " + ".join(_strip_salt(p.strip()) for p in parts)


def spoken_name(ingredient: str) -> str:
    """How a clinician names the drug in a question: base name, combinations with "con"."""
    return base_name(ingredient).replace(" + ", " con ")


def drug_forms(ingredient: str) -> tuple[str, ...]:
    plain = _PAREN.sub("", ingredient).strip()
    forms = {ingredient, plain, base_name(ingredient)}
    for inside in _PAREN.findall(ingredient):
        forms.add(_strip_salt(inside))
    for f in list(forms):
        if " + " in f:
            forms |= {f.replace(" + ", " y "), f.replace(" + ", " con "), f.replace(" + ", "/")}
    return tuple(sorted(forms))


def lab_forms(value: Decimal) -> tuple[str, ...]:
    """A laboratory value as stored ("5.11", "5,11") and rounded to one decimal ("5.1")."""
    exact = f"{Decimal(value).normalize():f}"
    return tuple(sorted({exact, exact.replace(".", ","), *number_forms(value)}))


def count_forms(n: int) -> tuple[str, ...]:
    if n == 0:
        return ("0", "cero", "ninguna", "ninguno", "^no")
    return (str(n), "una vez", "una") if n == 1 else (str(n),)


# -- catalogs -----------------------------------------------------------------------------------

# Drug classes asked about by name, decided from the ATC code of the allergy's medication (or of
# the same molecule's systemic form: ciprofloxacino ótico is still a quinolone).
DRUG_CLASSES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "penicilinas": (("J01C",), (("las penicilinas", "penicilinas"),)),
    "cefalosporinas": (
        ("J01DB", "J01DC", "J01DD", "J01DE"),
        (("las cefalosporinas", "cefalosporinas"),),
    ),
    "aine": (
        ("M01A",),
        (
            ("los AINE", "AINE"),
            ("los antiinflamatorios no esteroideos", "antiinflamatorios no esteroideos"),
        ),
    ),
    "sulfonamidas": (("J01E",), (("las sulfas", "sulfas"), ("las sulfonamidas", "sulfonamidas"))),
    "macrolidos": (("J01FA",), (("los macrólidos", "macrólidos"),)),
    "quinolonas": (("J01M",), (("las quinolonas", "quinolonas"),)),
    "opioides": (("N02A",), (("los opioides", "opioides"), ("los opiáceos", "opiáceos"))),
}
# Allergies that make an NSAID-class question ambiguous (clinically NSAIDs, not ATC M01A).
NSAID_LIKE = ("B01AC06", "N02BA", "N02BB")
# Drugs asked about in "¿Está tomando …?" when the patient never had them (spoken names).
ABSENT_DRUGS = (
    "warfarina",
    "digoxina",
    "clopidogrel",
    "espironolactona",
    "rosuvastatina",
    "pregabalina",
    "fluoxetina",
    "quetiapina",
    "enalapril",
    "metoprolol",
    "amiodarona",
    "carbamazepina",
    "valsartán",
    "prednisolona",
)
# Drugs asked about in "¿Es alérgico a …?" when the patient is not (spoken names).
NON_ALLERGENS = (
    "naproxeno",
    "ibuprofeno",
    "amoxicilina",
    "dipirona",
    "diclofenaco",
    "cefalexina",
    "azitromicina",
    "tramadol",
    "ciprofloxacino",
    "ácido acetilsalicílico",
    "clindamicina",
    "carbamazepina",
)
# Conditions asked about in "¿Tiene …?" when the record never mentions them.
ABSENT_CONDITIONS = (
    "asma",
    "epilepsia",
    "hipotiroidismo",
    "artritis reumatoide",
    "migraña",
    "insuficiencia cardíaca",
    "psoriasis",
    "gota",
    "glaucoma",
    "osteoporosis",
    "enfermedad de Parkinson",
    "lupus",
)
# Out-of-record topics: the folded words that would betray that this record does talk about it
# (then the phrasing is not asked of that patient).
OUT_OF_RECORD_PROBES: dict[str, str] = {
    "alcohol": r"alcohol|licor|trago|cerveza|bebedor|etil",
    "tabaco": r"fuma|tabac|cigarr|nicotin|vareniclina",
    "drogas": r"psicoactiv|marihuana|cocain|drogas|sustancias",
    "sueno": r"duerme|dormir|sueno|insomnio|melatonina|zolpidem|trazodona",
    "ejercicio": r"ejercicio|actividad fisica|deporte|sedentari",
    "dieta": r"dieta|aliment|nutricion|hiposodica",
    "hijos": r"\mhij[oa]|gestac|embaraz|parto|cesarea|prenatal",
    "ocupacion": r"ocupaci|trabaj|dedica|profesi|empleo|oficio",
    "eps": r"\meps\M|asegurador|afiliad|regimen|prepagad|poliza",
    "viajes": r"viaj|exterior|rural|zona endemica",
    "estado_civil": r"casad|solter|divorci|union libre|pareja|espos|viud",
    "vivienda": r"vive con|vive sol|convive|familia|cuidador",
    # a seeded record may hold vaccines, procedures and labs (issue 11): any such chunk betrays it
    "vacunas": r"vacun|toxoide|inmuniz",
    "cirugias": r"cirug|quirurg|operad|intervenid|apendicect|colecistect|cesarea|procedimiento",
    "familiares": r"famili|padre|madre|herman|hered",
    "transfusiones": r"transfus|hemoderiv",
    "hba1c": r"hba1c|glicosil|hemoglobina glic|laboratorio",
    "creatinina": r"creatinin|funcion renal|filtracion glomerular|\mtfg\M|laboratorio",
    "ldl": r"\mldl\M|colesterol|lipid|laboratorio",
    "glucosa": r"glucos|glucem|glicem|glucometr|laboratorio",
    "hemograma": r"hemograma|hemoglobina|cuadro hematico|leucocit|plaquet|laboratorio",
    "tsh": r"\mtsh\M|tiroid|t4|laboratorio",
    "imagen": r"radiograf|ecograf|tomograf|resonancia|imagen|\mrx\M|procedimiento",
    "ekg": r"electrocardiogram|\mekg\M|\mecg\M|procedimiento",
    "potasio": r"potasio|electrolit|laboratorio",
    "cafe": r"\mcafe|cafeina",
}
# Laboratory tests by LOINC code: how a clinician names them in a question (first: the {lab}).
LAB_NAMES: dict[str, tuple[str, ...]] = {
    "4548-4": ("hemoglobina glicosilada", "HbA1c", "hemoglobina glucosilada"),
    "1558-6": ("glucosa en ayunas", "glucosa", "glicemia"),
    "2160-0": ("creatinina",),
    "33914-3": ("tasa de filtración glomerular", "filtración glomerular"),
    "2823-3": ("potasio",),
    "2093-3": ("colesterol total",),
    "13457-7": ("colesterol LDL", "LDL"),
    "2085-9": ("colesterol HDL", "HDL"),
    "2571-8": ("triglicéridos",),
    "3016-3": ("TSH", "hormona estimulante de la tiroides"),
    "718-7": ("hemoglobina",),
    "14959-1": ("microalbuminuria",),
}
# Vaccines by CVX code: the diseases they protect against (first: the {vacuna}).
VACCINE_NAMES: dict[str, tuple[str, ...]] = {
    "141": ("influenza", "gripe"),
    "208": ("COVID-19", "covid", "SARS-CoV-2"),
    "139": ("tétanos", "difteria", "Td"),
    "43": ("hepatitis B",),
    "33": ("neumococo", "neumocócica"),
    "37": ("fiebre amarilla",),
    "03": ("sarampión", "triple viral", "rubéola", "paperas"),
    "165": ("virus del papiloma humano", "VPH", "papiloma"),
}
# Vaccines asked about in "¿Está vacunado contra …?" when the record has none of them.
ABSENT_VACCINES = (
    "fiebre amarilla",
    "hepatitis B",
    "neumococo",
    "varicela",
    "hepatitis A",
    "rabia",
    "fiebre tifoidea",
    "tétanos",
    "COVID-19",
    "influenza",
)
# How a question names a seeded allergen (the substance as stored, unless listed).
ALLERGEN_NAMES = {"ácaros del polvo": "ácaros", "caspa de animales": "caspa de animales"}
_NOT_A_CONDITION_NAME = frozenset({"hipertenso", "diabético"})  # adjectives, not "¿Tiene …?"


@dataclass(frozen=True)
class Catalog:
    condition_names: dict[str, tuple[str, ...]]  # ICD-10 → label first, then aliases
    chronic: frozenset[str]
    class_molecules: dict[str, frozenset[str]]  # class → folded base names of its molecules

    def classes_of(self, atc: str, ingredient: str) -> set[str]:
        parts = {fold(_strip_salt(p.strip())) for p in _PAREN.sub("", ingredient).split(" + ")}
        found = set()
        for name, (prefixes, _) in DRUG_CLASSES.items():
            if atc.startswith(prefixes) or parts & self.class_molecules[name]:
                found.add(name)
        return found


@cache
def catalog() -> Catalog:
    files = load_catalog_files()
    names = {
        c.icd_code: (c.label, *(a for a in c.aliases if a not in _NOT_A_CONDITION_NAME))
        for c in files.conditions
    }
    molecules: dict[str, set[str]] = {name: set() for name in DRUG_CLASSES}
    for m in files.medications:
        if " + " in m.active_ingredient:
            continue
        for name, (prefixes, _) in DRUG_CLASSES.items():
            if m.atc_code.startswith(prefixes):
                molecules[name].add(fold(base_name(m.active_ingredient)))
    return Catalog(
        names,
        frozenset(c.icd_code for c in files.conditions if c.chronic),
        {k: frozenset(v) for k, v in molecules.items()},
    )


def condition_forms(icd: str, description: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys((icd, description, *catalog().condition_names.get(icd, ()))))


# -- SQL: what the record says ------------------------------------------------------------------

PATIENT_SQL = """
SELECT p.patient_id, p.document_type_id, p.document_number, p.birth_date, p.blood_type, p.city,
       p.gender, t.code AS document_code,
       concat_ws(' ', p.first_name, p.middle_name, p.first_surname, p.second_surname) AS full_name,
       date_part('year', age($2::date, p.birth_date))::int AS age,
       (SELECT chunk_id FROM smart_health.clinical_chunks c
         WHERE c.source_type = 'demographics' AND c.source_id = p.patient_id) AS chunk_id
FROM smart_health.patients p JOIN smart_health.document_types t USING (document_type_id)
WHERE p.patient_id = $1
"""
# Prescriptions of the latest visit (at or before now) that prescribed anything.
LATEST_PRESCRIPTIONS_SQL = """
WITH visit AS (
  SELECT r.medical_record_id FROM smart_health.medical_records r
  WHERE r.patient_id = $1 AND r.registration_datetime <= $2
    AND EXISTS (SELECT 1 FROM smart_health.prescriptions x
                WHERE x.medical_record_id = r.medical_record_id)
  ORDER BY r.registration_datetime DESC, r.medical_record_id DESC LIMIT 1)
SELECT m.active_ingredient AS ingredient, p.dosage, p.frequency, c.chunk_id
FROM smart_health.prescriptions p
JOIN visit USING (medical_record_id)
JOIN smart_health.medications m USING (medication_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'prescription' AND c.source_id = p.prescription_id
ORDER BY p.prescription_id
"""
# Prescriptions in force on the evaluation day: started on or before it, not yet ended (the
# last day is prescription_date + duration_days - 1, as the chunk's "hasta" says).
IN_FORCE_SQL = """
SELECT DISTINCT ON (m.active_ingredient) m.active_ingredient AS ingredient, c.chunk_id
FROM smart_health.prescriptions p
JOIN smart_health.medical_records r USING (medical_record_id)
JOIN smart_health.medications m USING (medication_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'prescription' AND c.source_id = p.prescription_id
WHERE p.patient_id = $1 AND r.registration_datetime <= $2
  AND p.prescription_date <= $3::date AND p.prescription_date + p.duration_days - 1 >= $3::date
ORDER BY m.active_ingredient, p.prescription_date DESC, p.prescription_id DESC
"""
# Every drug ever prescribed (at or before now): first day, latest dose, their chunks.
PRESCRIBED_SQL = """
SELECT m.active_ingredient AS ingredient, count(*) AS times,
       min(p.prescription_date) AS first_day,
       (array_agg(c.chunk_id ORDER BY p.prescription_date, p.prescription_id))[1] AS first_chunk,
       (array_agg(p.dosage ORDER BY p.prescription_date DESC, p.prescription_id DESC))[1]
         AS dosage,
       (array_agg(p.frequency ORDER BY p.prescription_date DESC, p.prescription_id DESC))[1]
         AS frequency,
       (array_agg(c.chunk_id ORDER BY p.prescription_date DESC, p.prescription_id DESC))[1]
         AS latest_chunk
FROM smart_health.prescriptions p
JOIN smart_health.medical_records r USING (medical_record_id)
JOIN smart_health.medications m USING (medication_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'prescription' AND c.source_id = p.prescription_id
WHERE p.patient_id = $1 AND r.registration_datetime <= $2
GROUP BY m.active_ingredient
ORDER BY max(p.prescription_date) DESC, m.active_ingredient
"""
# Every drug prescribed in a calendar year.
PRESCRIBED_IN_YEAR_SQL = """
SELECT m.active_ingredient AS ingredient, array_agg(c.chunk_id) AS chunks
FROM smart_health.prescriptions p
JOIN smart_health.medications m USING (medication_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'prescription' AND c.source_id = p.prescription_id
WHERE p.patient_id = $1 AND extract(year FROM p.prescription_date) = $2
  AND p.prescription_date <= $3::date
GROUP BY m.active_ingredient ORDER BY m.active_ingredient
"""
# The drugs prescribed for a diagnosis at the latest visit that prescribed for it, and every
# drug ever prescribed for it.
TREATMENT_SQL = """
WITH rx AS (
  SELECT p.medical_record_id, p.prescription_date, m.active_ingredient, c.chunk_id
  FROM smart_health.prescriptions p
  JOIN smart_health.diagnoses g ON g.diagnosis_id = p.diagnosis_id
  JOIN smart_health.medical_records r USING (medical_record_id)
  JOIN smart_health.medications m USING (medication_id)
  JOIN smart_health.clinical_chunks c
    ON c.source_type = 'prescription' AND c.source_id = p.prescription_id
  WHERE p.patient_id = $1 AND g.icd_code = $2 AND r.registration_datetime <= $3),
latest AS (SELECT medical_record_id FROM rx
           ORDER BY prescription_date DESC, medical_record_id DESC LIMIT 1)
SELECT rx.active_ingredient AS ingredient, rx.chunk_id,
       rx.medical_record_id = (SELECT medical_record_id FROM latest) AS current
FROM rx ORDER BY rx.active_ingredient
"""
ALLERGIES_SQL = """
SELECT m.active_ingredient AS ingredient, m.atc_code, a.reaction, c.chunk_id
FROM smart_health.patient_allergies a
JOIN smart_health.medications m USING (medication_id)
JOIN smart_health.clinical_chunks c ON c.source_type = 'allergy' AND c.source_id = a.allergy_id
WHERE a.patient_id = $1 ORDER BY a.allergy_id
"""
# Allergies to something that is not a catalog medicine (foods, latex, pollen, insects…).
OTHER_ALLERGIES_SQL = """
SELECT a.substance, a.category, a.reaction, c.chunk_id
FROM smart_health.patient_allergies a
JOIN smart_health.clinical_chunks c ON c.source_type = 'allergy' AND c.source_id = a.allergy_id
WHERE a.patient_id = $1 AND a.medication_id IS NULL AND a.category <> 'medication'
ORDER BY a.allergy_id
"""
# Laboratory results at or before now, newest first.
LABS_SQL = """
SELECT o.observation_id, o.code, o.display, o.value_numeric, o.value_unit, o.interpretation,
       (o.effective_at AT TIME ZONE 'America/Bogota')::date AS day, c.chunk_id
FROM smart_health.observations o
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'observation' AND c.source_id = o.observation_id
WHERE o.patient_id = $1 AND o.effective_at <= $2 AND o.category = 'laboratory'
  AND o.value_numeric IS NOT NULL
ORDER BY o.effective_at DESC, o.observation_id DESC
"""
# Vaccines and procedures at or before now, newest first.
IMMUNIZATIONS_SQL = """
SELECT i.code, i.display, (i.occurred_at AT TIME ZONE 'America/Bogota')::date AS day, c.chunk_id
FROM smart_health.immunizations i
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'immunization' AND c.source_id = i.immunization_id
WHERE i.patient_id = $1 AND i.occurred_at <= $2 AND coalesce(i.status, '') <> 'not-done'
ORDER BY i.occurred_at DESC, i.immunization_id DESC
"""
PROCEDURES_SQL = """
SELECT p.code, p.display, (p.performed_at AT TIME ZONE 'America/Bogota')::date AS day, c.chunk_id
FROM smart_health.procedures p
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'procedure' AND c.source_id = p.procedure_id
WHERE p.patient_id = $1 AND p.performed_at <= $2 AND coalesce(p.status, '') <> 'not-done'
ORDER BY p.performed_at DESC, p.procedure_id DESC
"""
# The diagnoses of the latest visit at or before now (principal first).
LATEST_DIAGNOSES_SQL = """
WITH visit AS (
  SELECT r.medical_record_id FROM smart_health.medical_records r
  WHERE r.patient_id = $1 AND r.registration_datetime <= $2
    AND EXISTS (SELECT 1 FROM smart_health.record_diagnoses x
                WHERE x.medical_record_id = r.medical_record_id)
  ORDER BY r.registration_datetime DESC, r.medical_record_id DESC LIMIT 1)
SELECT g.icd_code, g.description, d.diagnosis_type, c.chunk_id
FROM smart_health.record_diagnoses d
JOIN visit USING (medical_record_id)
JOIN smart_health.diagnoses g USING (diagnosis_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'diagnosis' AND c.source_id = d.record_diagnosis_id
ORDER BY d.diagnosis_type = 'Principal' DESC, d.record_diagnosis_id
"""
# Every condition ever recorded: first day (Bogotá) and its chunk, whether drugs were
# prescribed for it.
DIAGNOSED_SQL = """
SELECT g.icd_code, g.description, count(*) AS times,
       min((r.registration_datetime AT TIME ZONE 'America/Bogota')::date) AS first_day,
       (array_agg(c.chunk_id ORDER BY r.registration_datetime, r.medical_record_id))[1]
         AS first_chunk,
       (array_agg(c.chunk_id ORDER BY r.registration_datetime DESC, r.medical_record_id DESC))[1]
         AS latest_chunk,
       EXISTS (SELECT 1 FROM smart_health.prescriptions x
               WHERE x.patient_id = $1 AND x.diagnosis_id = g.diagnosis_id) AS treated
FROM smart_health.record_diagnoses d
JOIN smart_health.diagnoses g USING (diagnosis_id)
JOIN smart_health.medical_records r USING (medical_record_id)
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'diagnosis' AND c.source_id = d.record_diagnosis_id
WHERE d.patient_id = $1 AND r.registration_datetime <= $2
GROUP BY g.diagnosis_id, g.icd_code, g.description
ORDER BY max(r.registration_datetime) DESC, g.icd_code
"""
# Visits with vital signs at or before now, newest first, optionally from a day on.
VITALS_SQL = """
SELECT (r.registration_datetime AT TIME ZONE 'America/Bogota')::date AS day,
       r.systolic_pressure, r.diastolic_pressure, r.heart_rate, r.respiratory_rate,
       r.temperature_c, r.oxygen_saturation, r.weight_kg, r.height_cm, c.chunk_id
FROM smart_health.medical_records r
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'vitals' AND c.source_id = r.medical_record_id
WHERE r.patient_id = $1 AND r.systolic_pressure IS NOT NULL AND r.registration_datetime <= $2
  AND ($3::date IS NULL
       OR (r.registration_datetime AT TIME ZONE 'America/Bogota')::date >= $3::date)
ORDER BY r.registration_datetime DESC, r.medical_record_id DESC
"""
# Visits (medical records) at or before now, newest first, with the doctor, the visit's
# specialty (its appointment's, else the doctor's primary one) and the visit's chunks.
VISITS_SQL = """
SELECT r.medical_record_id, r.record_type, r.registration_datetime,
       (r.registration_datetime AT TIME ZONE 'America/Bogota')::date AS day,
       d.last_name AS doctor, coalesce(sa.name, sd.name) AS specialty,
       ARRAY(SELECT c.chunk_id FROM smart_health.clinical_chunks c
             WHERE c.record_id = r.medical_record_id AND c.patient_id = r.patient_id
             ORDER BY c.chunk_id) AS chunks,
       (SELECT c.chunk_id FROM smart_health.clinical_chunks c
         WHERE c.source_type = 'appointment' AND c.source_id = r.appointment_id) AS appt_chunk
FROM smart_health.medical_records r
JOIN smart_health.doctors d USING (doctor_id)
LEFT JOIN smart_health.appointments a ON a.appointment_id = r.appointment_id
LEFT JOIN smart_health.specialties sa ON sa.specialty_id = a.specialty_id
LEFT JOIN LATERAL (
  SELECT s.name FROM smart_health.doctor_specialties ds
  JOIN smart_health.specialties s USING (specialty_id)
  WHERE ds.doctor_id = r.doctor_id ORDER BY ds.is_primary DESC, ds.specialty_id LIMIT 1
) sd ON true
WHERE r.patient_id = $1 AND r.registration_datetime <= $2
ORDER BY r.registration_datetime DESC, r.medical_record_id DESC
"""
# Appointments with their specialty, doctor and chunk; appointment chunks of the same local day
# and specialty state the same date and specialty, so any of them is evidence.
APPOINTMENTS_SQL = """
SELECT a.appointment_id, a.status, a.start_time,
       (a.start_time AT TIME ZONE 'America/Bogota')::date AS day,
       s.name AS specialty, d.last_name AS doctor, c.chunk_id,
       ARRAY(SELECT c2.chunk_id FROM smart_health.appointments a2
             JOIN smart_health.clinical_chunks c2
               ON c2.source_type = 'appointment' AND c2.source_id = a2.appointment_id
             WHERE a2.patient_id = a.patient_id AND a2.status = a.status
               AND (a2.start_time AT TIME ZONE 'America/Bogota')::date
                 = (a.start_time AT TIME ZONE 'America/Bogota')::date) AS day_chunks
FROM smart_health.appointments a
JOIN smart_health.specialties s ON s.specialty_id = a.specialty_id
JOIN smart_health.doctors d ON d.doctor_id = a.doctor_id
JOIN smart_health.clinical_chunks c
  ON c.source_type = 'appointment' AND c.source_id = a.appointment_id
WHERE a.patient_id = $1
ORDER BY a.start_time DESC, a.appointment_id DESC
"""
# The note sections of the latest visit at or before now.
LATEST_NOTE_SQL = """
WITH visit AS (
  SELECT medical_record_id, summary_text FROM smart_health.medical_records
  WHERE patient_id = $1 AND registration_datetime <= $2
  ORDER BY registration_datetime DESC, medical_record_id DESC LIMIT 1)
SELECT visit.summary_text, c.section, c.chunk_id
FROM visit JOIN smart_health.clinical_chunks c
  ON c.source_type = 'note' AND c.source_id = visit.medical_record_id
ORDER BY c.section
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
               WHERE a.patient_id = p.patient_id AND a.medication_id IS NOT NULL) AS allergic,
       EXISTS (SELECT 1 FROM smart_health.appointments a WHERE a.patient_id = p.patient_id
               AND a.status IN ('Scheduled', 'Confirmed') AND a.start_time >= $3) AS upcoming,
       EXISTS (SELECT 1 FROM smart_health.medical_records r WHERE r.patient_id = p.patient_id
               AND r.record_type = 'Urgencias' AND r.registration_datetime <= $3) AS emergency,
       EXISTS (SELECT 1 FROM smart_health.medical_records r WHERE r.patient_id = p.patient_id
               AND r.record_type = 'Hospitalización' AND r.registration_datetime <= $3)
         AS hospitalised,
       EXISTS (SELECT 1 FROM smart_health.appointments a WHERE a.patient_id = p.patient_id
               AND a.status IN ('Cancelled', 'NoShow')) AS missed,
       EXISTS (SELECT 1 FROM smart_health.medical_records r WHERE r.patient_id = p.patient_id
               AND r.record_type = 'Telemedicina' AND r.registration_datetime <= $3) AS remote,
       (SELECT count(*) FROM smart_health.clinical_chunks c
         WHERE c.patient_id = p.patient_id) AS chunks,
       EXISTS (SELECT 1 FROM smart_health.chunk_queue q
               WHERE q.patient_id = p.patient_id) AS queued,
       (SELECT count(*) FROM smart_health.clinical_chunks c
         WHERE c.patient_id = p.patient_id AND NOT EXISTS (
           SELECT 1 FROM smart_health.embedding_cache e
           WHERE e.text_hash = c.embedding_text_hash AND e.model = $2)) AS unembedded
FROM smart_health.patients p ORDER BY p.patient_id
"""


# -- truths -------------------------------------------------------------------------------------


def _unique(rows: Iterable[asyncpg.Record], key: str) -> list[asyncpg.Record]:
    seen: dict[str, asyncpg.Record] = {}
    for r in rows:
        seen.setdefault(r[key], r)
    return list(seen.values())


def _drug_fact(ingredient: str) -> Fact:
    return Fact(ingredient, drug_forms(ingredient))


def _allergen_fact(substance: str) -> Fact:
    return Fact(
        substance, tuple(dict.fromkeys((substance, ALLERGEN_NAMES.get(substance, substance))))
    )


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", fold(text)) if len(w) > 3}


def _mention_pattern(name: str) -> str:
    return "|".join(rf"\m{re.escape(w)}" for w in sorted(_words(name))) or r"\m$^"


@dataclass
class _Record:
    """One patient's record as the truths need it (fetched once, by the SQL above)."""

    conn: asyncpg.Connection
    patient: asyncpg.Record
    index: int
    today: dt.date
    now: dt.datetime
    rx_latest: list[asyncpg.Record] = field(default_factory=list)
    in_force: list[asyncpg.Record] = field(default_factory=list)
    prescribed: list[asyncpg.Record] = field(default_factory=list)
    allergies: list[asyncpg.Record] = field(default_factory=list)
    dx_latest: list[asyncpg.Record] = field(default_factory=list)
    diagnosed: list[asyncpg.Record] = field(default_factory=list)
    vitals: list[asyncpg.Record] = field(default_factory=list)
    visits: list[asyncpg.Record] = field(default_factory=list)
    appointments: list[asyncpg.Record] = field(default_factory=list)
    notes: list[asyncpg.Record] = field(default_factory=list)
    other_allergies: list[asyncpg.Record] = field(default_factory=list)
    labs: list[asyncpg.Record] = field(default_factory=list)
    vaccines: list[asyncpg.Record] = field(default_factory=list)
    procedures: list[asyncpg.Record] = field(default_factory=list)
    _mentions: dict[str, bool] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return int(self.patient["patient_id"])

    async def load(self) -> None:
        c, pid, now = self.conn, self.pid, self.now
        self.rx_latest = _unique(await c.fetch(LATEST_PRESCRIPTIONS_SQL, pid, now), "ingredient")
        self.in_force = list(await c.fetch(IN_FORCE_SQL, pid, now, self.today))
        self.prescribed = list(await c.fetch(PRESCRIBED_SQL, pid, now))
        self.allergies = list(await c.fetch(ALLERGIES_SQL, pid))
        self.dx_latest = list(await c.fetch(LATEST_DIAGNOSES_SQL, pid, now))
        self.diagnosed = list(await c.fetch(DIAGNOSED_SQL, pid, now))
        self.vitals = list(await c.fetch(VITALS_SQL, pid, now, None))
        self.visits = list(await c.fetch(VISITS_SQL, pid, now))
        self.appointments = list(await c.fetch(APPOINTMENTS_SQL, pid))
        self.notes = list(await c.fetch(LATEST_NOTE_SQL, pid, now))
        self.other_allergies = list(await c.fetch(OTHER_ALLERGIES_SQL, pid))
        self.labs = list(await c.fetch(LABS_SQL, pid, now))
        self.vaccines = list(await c.fetch(IMMUNIZATIONS_SQL, pid, now))
        self.procedures = list(await c.fetch(PROCEDURES_SQL, pid, now))

    async def mentions(self, pattern: str) -> bool:
        if pattern not in self._mentions:
            found = await self.conn.fetchval(MENTIONS_SQL, self.pid, pattern)
            self._mentions[pattern] = bool(found)
        return self._mentions[pattern]

    def pick(self, options: Sequence[str], offset: int = 0) -> str:
        return options[(self.index + offset) % len(options)]

    def values(self) -> dict[str, str]:
        female = self.patient["gender"] == "F"
        return {
            "pac": "la paciente" if female else "el paciente",
            "Pac": "La paciente" if female else "El paciente",
            "al_pac": "a la paciente" if female else "al paciente",
            "o": "a" if female else "o",
            "lo": "la" if female else "lo",
            "Lo": "La" if female else "Lo",
            "anio": str(self.today.year - 1),
        }

    # -- helpers shared by several kinds ---------------------------------------------------------

    def _prescribed(self, ingredient: str) -> asyncpg.Record:
        return next(r for r in self.prescribed if r["ingredient"] == ingredient)

    def _current_drug(
        self, offset: int, plain_first: bool = False, in_force: bool = False
    ) -> str | None:
        """A drug of the latest prescribing visit (`in_force`: only one in force today;
        `plain_first`: one named without a salt when there is one)."""
        rows = self.in_force if in_force else self.rx_latest
        names = [r["ingredient"] for r in rows]
        if plain_first:
            plain = [n for n in names if " + " not in n and base_name(n) == _PAREN.sub("", n)]
            names = plain or names
        return self.pick(names, offset) if names else None

    def _drug_values(self, ingredient: str) -> dict[str, str]:
        spoken = spoken_name(ingredient)
        return {"drug": spoken, "drug_f": fold(spoken)}

    def _dose(self, ingredient: str) -> Expected:
        row = self._prescribed(ingredient)
        asked = _words(base_name(ingredient))
        others = [
            _drug_fact(r["ingredient"])
            for r in self.rx_latest
            if r["ingredient"] != ingredient and not _words(base_name(r["ingredient"])) & asked
        ]
        return Expected.of(
            [
                (Fact(f"dosage {row['dosage']}", (row["dosage"],)), [row["latest_chunk"]]),
                (Fact(f"frequency {row['frequency']}", (row["frequency"],)), [row["latest_chunk"]]),
            ],
            f"dosage and frequency of the latest prescription of {ingredient} only",
            forbidden=others,
        )

    def _conditions(self, offset: int, treated: bool = False) -> asyncpg.Record | None:
        names = catalog().condition_names
        rows = [
            r
            for r in self.diagnosed
            if r["icd_code"] in names
            and not r["icd_code"].startswith("Z")
            and (r["treated"] or not treated)
        ]
        chronic = [r for r in rows if r["icd_code"] in catalog().chronic]
        rows = chronic or rows
        return rows[(self.index + offset) % len(rows)] if rows else None

    def _condition_values(self, icd: str) -> dict[str, str]:
        name = self.pick(catalog().condition_names[icd])
        return {"condicion": name, "condicion_f": fold(name)}

    def _appointment(self, which: str) -> asyncpg.Record | None:
        if which == "next":
            rows = [
                a
                for a in self.appointments
                if a["status"] in ("Scheduled", "Confirmed") and a["start_time"] >= self.now
            ]
            return min(rows, key=lambda a: (a["start_time"], a["appointment_id"]), default=None)
        status = {"attended": "Attended", "cancelled": "Cancelled", "missed": "NoShow"}[which]
        rows = [
            a
            for a in self.appointments
            if a["status"] == status and (which != "attended" or a["start_time"] < self.now)
        ]
        return rows[0] if rows else None  # newest first

    def _visits(self, record_type: str) -> list[asyncpg.Record]:
        return [v for v in self.visits if v["record_type"] == record_type]

    def _bp(self, row: asyncpg.Record, what: str) -> Expected:
        bp = f"{row['systolic_pressure']}/{row['diastolic_pressure']}"
        return Expected.of([(Fact(f"{bp} on {row['day']}", (bp,)), [row["chunk_id"]])], what)

    def _measure(self, column: str, what: str) -> Expected:
        if not self.vitals or self.vitals[0][column] is None:
            return Expected.negative(f"no {what} recorded")
        row = self.vitals[0]
        forms = number_forms(row[column])
        return Expected.of(
            [(Fact(f"{what} {row[column]} on {row['day']}", forms), [row["chunk_id"]])],
            f"{what} of the latest visit with vital signs",
        )

    def _note(self, section: int, label: str) -> Expected:
        chunks = {r["section"]: r["chunk_id"] for r in self.notes}
        sections: dict[str, str] = {}
        for line in (self.notes[0]["summary_text"] if self.notes else "").splitlines():
            title, _, body = line.partition(":")
            sections[title.strip()] = body.strip()
        exam = sections.get("EXAMEN FÍSICO", "")
        phrase = {
            1: sections.get("MOTIVO DE CONSULTA", "").rstrip("."),
            4: exam.split(" cm. ", 1)[1].rstrip(".") if " cm. " in exam else "",
            5: sections.get("ANÁLISIS Y PLAN", "").split(". ", 1)[0].rstrip("."),
        }[section]
        if not phrase or section not in chunks:
            return Expected.negative(f"no {label} in the latest visit")
        return Expected.of([(Fact(label, (phrase,)), [chunks[section]])], f"{label} (latest visit)")

    # -- one method per kind: None when it cannot be asked of this patient -------------------------

    def med_current(self) -> Instance:
        if self.in_force:
            rows, how = self.in_force, "drugs in force today"
        elif self.rx_latest:
            rows, how = self.rx_latest, "none in force: drugs of the latest prescribing visit"
        else:
            return Instance({}, (Expected.negative("no prescriptions"),))
        pairs = [(_drug_fact(r["ingredient"]), [r["chunk_id"]]) for r in rows]
        return Instance({}, (Expected.of(pairs, how),))

    def med_yes(self) -> Instance | None:
        drug = self._current_drug(0, plain_first=True, in_force=True)
        if drug is None:
            return None
        chunk = self._prescribed(drug)["latest_chunk"]
        how = f"'Sí': {drug} is in force today"
        return Instance(
            self._drug_values(drug), (Expected.of([(_drug_fact(drug), [chunk])], how, lead=YES),)
        )

    async def med_no(self) -> Instance | None:
        had = set().union(*(_words(r["ingredient"]) for r in self.prescribed), set())
        had |= set().union(*(_words(r["ingredient"]) for r in self.allergies), set())
        for offset in range(len(ABSENT_DRUGS)):
            name = self.pick(ABSENT_DRUGS, offset)
            if _words(name) & had or await self.mentions(_mention_pattern(name)):
                continue
            return Instance(
                {"drug": name, "drug_f": fold(name)},
                (Expected.no(f"'No': {name} never prescribed nor mentioned"),),
            )
        return None

    def med_salt(self) -> Instance | None:
        salted = [
            r["ingredient"]
            for r in self.prescribed
            if " + " not in r["ingredient"]
            and base_name(r["ingredient"]) != _PAREN.sub("", r["ingredient"]).strip()
        ]
        if not salted:
            return None
        drug = self.pick(salted)
        chunk = self._prescribed(drug)["latest_chunk"]
        how = f"'Sí': {drug} was prescribed (asked as {base_name(drug)})"
        return Instance(
            self._drug_values(drug), (Expected.of([(_drug_fact(drug), [chunk])], how, lead=YES),)
        )

    async def med_year(self) -> Instance:
        year = self.today.year - 1
        rows = await self.conn.fetch(PRESCRIBED_IN_YEAR_SQL, self.pid, year, self.today)
        if not rows:
            return Instance({}, (Expected.negative(f"no prescriptions in {year}"),))
        return Instance(
            {},
            (
                Expected.of(
                    [(_drug_fact(r["ingredient"]), r["chunks"]) for r in rows],
                    f"every drug prescribed in {year}",
                ),
            ),
        )

    def dose_follow(self) -> Instance | None:
        drug = self._current_drug(1, in_force=True) or self._current_drug(1)
        if drug is None:
            return None
        chunk = self._prescribed(drug)["latest_chunk"]
        if any(r["ingredient"] == drug for r in self.in_force):
            first = Expected.of([(_drug_fact(drug), [chunk])], f"'Sí': {drug}", lead=YES)
        else:  # "¿Está tomando …?" of a prescription that has ended: no "Sí" expected
            first = Expected.of([(_drug_fact(drug), [chunk])], f"{drug} (ended)")
        return Instance(self._drug_values(drug), (first, self._dose(drug)))

    def dose_direct(self) -> Instance | None:
        drug = self._current_drug(2)
        return None if drug is None else Instance(self._drug_values(drug), (self._dose(drug),))

    def _allergy_pairs(self) -> list[tuple[Fact, Sequence[int]]]:
        """Every allergy: to catalog drugs, and to anything else (foods, latex, pollen…)."""
        pairs: list[tuple[Fact, Sequence[int]]] = [
            (_drug_fact(a["ingredient"]), [a["chunk_id"]]) for a in self.allergies
        ]
        return pairs + [
            (_allergen_fact(a["substance"]), [a["chunk_id"]]) for a in self.other_allergies
        ]

    def allergy_list(self) -> Instance:
        if not self.allergies and not self.other_allergies:
            return Instance({}, (Expected.negative("no allergies: 'No …', no sources"),))
        return Instance({}, (Expected.of(self._allergy_pairs(), "every allergy"),))

    def allergy_yes(self) -> Instance | None:
        if not self.allergies:
            return None
        a = self.allergies[self.index % len(self.allergies)]
        how = f"'Sí': allergic to {a['ingredient']}"
        return Instance(
            self._drug_values(a["ingredient"]),
            (Expected.of([(_drug_fact(a["ingredient"]), [a["chunk_id"]])], how, lead=YES),),
        )

    async def allergy_no(self) -> Instance | None:
        cat = catalog()
        allergic = set().union(*(_words(a["ingredient"]) for a in self.allergies), set())
        classes = set().union(
            *(cat.classes_of(a["atc_code"], a["ingredient"]) for a in self.allergies), set()
        )
        for offset in range(len(NON_ALLERGENS)):
            name = self.pick(NON_ALLERGENS, offset)
            if _words(name) & allergic or cat.classes_of("", name) & classes:
                continue
            words = _mention_pattern(name)
            if await self.mentions(f"alerg.*({words})|({words}).*alerg"):
                continue
            return Instance(
                {"drug": name, "drug_f": fold(name)},
                (Expected.no(f"'No': no allergy to {name} (nor to its class)"),),
            )
        return None

    def _class_values(self, name: str) -> dict[str, str]:
        forms = DRUG_CLASSES[name][1]
        article, bare = forms[self.index % len(forms)]
        return {"clase": article, "clase_n": bare}

    def allergy_class_yes(self) -> Instance | None:
        cat = catalog()
        by_class: dict[str, list[asyncpg.Record]] = {}
        for a in self.allergies:
            for name in sorted(cat.classes_of(a["atc_code"], a["ingredient"])):
                by_class.setdefault(name, []).append(a)
        if not by_class:
            return None
        name = self.pick(sorted(by_class))
        rows = by_class[name]
        forms = tuple(dict.fromkeys(f for a in rows for f in drug_forms(a["ingredient"])))
        fact = Fact(" / ".join(a["ingredient"] for a in rows), forms)
        how = f"'Sí': allergic to {fact.label} ({name}, by ATC)"
        return Instance(
            self._class_values(name),
            (Expected.of([(fact, [a["chunk_id"] for a in rows])], how, lead=YES),),
        )

    def allergy_class_no(self) -> Instance | None:
        cat = catalog()
        taken = set().union(
            *(cat.classes_of(a["atc_code"], a["ingredient"]) for a in self.allergies), set()
        )
        if any(a["atc_code"].startswith(NSAID_LIKE) for a in self.allergies):
            taken.add("aine")  # aspirin or dipyrone: an NSAID question would be ambiguous
        options = [name for name in DRUG_CLASSES if name not in taken]
        if not options:
            return None
        name = self.pick(options)
        return Instance(
            self._class_values(name), (Expected.no(f"'No': no allergen of class {name}"),)
        )

    def dx_list(self) -> Instance:
        if not self.dx_latest:
            return Instance({}, (Expected.negative("no diagnoses"),))
        return Instance(
            {},
            (
                Expected.of(
                    [
                        (
                            Fact(
                                f"{r['icd_code']} {r['description']}",
                                condition_forms(r["icd_code"], r["description"]),
                            ),
                            [r["chunk_id"]],
                        )
                        for r in self.dx_latest
                    ],
                    "diagnoses of the latest visit",
                ),
            ),
        )

    def dx_yes(self) -> Instance | None:
        row = self._conditions(0)
        if row is None:
            return None
        fact = Fact(
            f"{row['icd_code']} {row['description']}",
            condition_forms(row["icd_code"], row["description"]),
        )
        how = f"'Sí': {row['icd_code']} recorded {row['times']} time(s)"
        return Instance(
            self._condition_values(row["icd_code"]),
            (Expected.of([(fact, [row["latest_chunk"]])], how, lead=YES),),
        )

    async def dx_no(self) -> Instance | None:
        had = set().union(
            *(
                _words(n)
                for r in self.diagnosed
                for n in (r["description"], *catalog().condition_names.get(r["icd_code"], ()))
            ),
            set(),
        )
        for offset in range(len(ABSENT_CONDITIONS)):
            name = self.pick(ABSENT_CONDITIONS, offset)
            if _words(name) & had or await self.mentions(_mention_pattern(name)):
                continue
            return Instance(
                {"condicion": name, "condicion_f": fold(name)},
                (Expected.no(f"'No': {name} never recorded nor mentioned"),),
            )
        return None

    def first_dx(self) -> Instance | None:
        row = self._conditions(1)
        if row is None:
            return None
        day = row["first_day"]
        fact = Fact(f"{row['icd_code']} first recorded {day}", dmy(day))
        return Instance(
            self._condition_values(row["icd_code"]),
            (Expected.of([(fact, [row["first_chunk"]])], "date of the first record"),),
        )

    def first_drug(self) -> Instance | None:
        names = [r["ingredient"] for r in self.in_force or self.rx_latest]
        repeated = [n for n in names if self._prescribed(n)["times"] > 1]
        names = repeated or names
        if not names:
            return None
        drug = self.pick(names, 1)
        row = self._prescribed(drug)
        fact = Fact(f"{drug} first prescribed {row['first_day']}", dmy(row["first_day"]))
        return Instance(
            self._drug_values(drug),
            (Expected.of([(fact, [row["first_chunk"]])], "date of the first prescription"),),
        )

    def vital_bp(self) -> Instance:
        if not self.vitals:
            return Instance({}, (Expected.negative("no vital signs"),))
        return Instance({}, (self._bp(self.vitals[0], "latest blood pressure"),))

    def vital_hr(self) -> Instance:
        return Instance({}, (self._measure("heart_rate", "heart rate"),))

    def vital_rr(self) -> Instance:
        return Instance({}, (self._measure("respiratory_rate", "respiratory rate"),))

    def vital_spo2(self) -> Instance:
        return Instance({}, (self._measure("oxygen_saturation", "oxygen saturation"),))

    def vital_temp(self) -> Instance:
        return Instance({}, (self._measure("temperature_c", "temperature"),))

    def vital_weight(self) -> Instance:
        return Instance({}, (self._measure("weight_kg", "weight"),))

    def vital_height(self) -> Instance:
        return Instance({}, (self._measure("height_cm", "height"),))

    def vital_bmi(self) -> Instance:
        row = self.vitals[0] if self.vitals else None
        if row is None or not row["weight_kg"] or not row["height_cm"]:
            return Instance({}, (Expected.negative("no weight and height"),))
        bmi = float(row["weight_kg"]) / (float(row["height_cm"]) / 100) ** 2
        exact = Decimal(row["weight_kg"]) / (Decimal(row["height_cm"]) / 100) ** 2
        forms = {f"{bmi:.1f}", f"{bmi:.1f}".replace(".", ","), *number_forms(exact)}
        fact = Fact(f"BMI {bmi:.1f} on {row['day']}", tuple(sorted(forms)))
        return Instance({}, (Expected.of([(fact, [row["chunk_id"]])], "BMI of the latest visit"),))

    async def _series(self, months: int, column: str) -> Instance:
        start = months_before(self.today, months)
        rows = await self.conn.fetch(VITALS_SQL, self.pid, self.now, start)
        what = f"every {column} from {start} on"
        if not rows:
            return Instance({}, (Expected.negative(f"no readings from {start} on"),))
        groups: dict[str, list[int]] = {}
        forms: dict[str, tuple[str, ...]] = {}
        for r in rows:
            if column == "bp":
                value = f"{r['systolic_pressure']}/{r['diastolic_pressure']}"
                forms[value] = (value,)
            else:
                value = f"{r[column]}"
                forms[value] = number_forms(r[column])
            groups.setdefault(value, []).append(r["chunk_id"])
        return Instance(
            {}, (Expected.of([(Fact(v, forms[v]), g) for v, g in groups.items()], what),)
        )

    async def series_bp_12m(self) -> Instance:
        return await self._series(12, "bp")

    async def series_bp_6m(self) -> Instance:
        return await self._series(6, "bp")

    async def series_weight_12m(self) -> Instance:
        return await self._series(12, "weight_kg")

    def _count(
        self, chunks: list[int], n: int, what: str, alternative: int | None = None
    ) -> Instance:
        """A count in digits; its evidence is the counted rows' chunks (any of them)."""
        forms = count_forms(n)
        if alternative is not None and alternative != n:
            forms = (*forms, str(alternative))
        fact = Fact(f"{n} {what}", forms, derived=True)
        if not n:
            return Instance({}, (Expected((fact,), ((),), (), ANY, what),))
        return Instance({}, (Expected.of([(fact, chunks)], what),))

    def count_er(self) -> Instance:
        visits = self._visits("Urgencias")
        chunks = [c for v in visits for c in v["chunks"]]
        return self._count(chunks, len(visits), "emergency visits")

    def count_visits_year(self) -> Instance:
        year = [v for v in self.visits if v["day"].year == self.today.year]
        planned = [v for v in year if v["record_type"] not in ("Urgencias", "Hospitalización")]
        chunks = [c for v in year for c in v["chunks"]]
        return self._count(chunks, len(year), f"visits in {self.today.year}", len(planned))

    def _status_count(self, status: str, what: str) -> Instance:
        rows = [a for a in self.appointments if a["status"] == status]
        return self._count([a["chunk_id"] for a in rows], len(rows), what)

    def count_cancelled(self) -> Instance:
        return self._status_count("Cancelled", "cancelled appointments")

    def count_noshow(self) -> Instance:
        return self._status_count("NoShow", "missed appointments")

    def _appointment_truth(self, which: str, specialty: bool) -> Expected:
        a = self._appointment(which)
        if a is None:
            return Expected.negative(f"no {which} appointment")
        pairs = [(Fact(f"{which} appointment on {a['day']}", dmy(a["day"])), a["day_chunks"])]
        if specialty:
            pairs.append((Fact(a["specialty"], (a["specialty"],)), a["day_chunks"]))
        return Expected.of(pairs, f"the {which} appointment")

    def appt_next(self) -> Instance:
        return Instance({}, (self._appointment_truth("next", True),))

    def appt_last_attended(self) -> Instance:
        return Instance({}, (self._appointment_truth("attended", True),))

    def appt_cancelled(self) -> Instance:
        return Instance({}, (self._appointment_truth("cancelled", False),))

    def appt_missed(self) -> Instance:
        return Instance({}, (self._appointment_truth("missed", False),))

    def _latest_visit(self, record_type: str, what: str) -> Expected | None:
        rows = self._visits(record_type)
        if not rows:
            return None
        v = rows[0]
        return Expected.of([(Fact(f"{what} on {v['day']}", dmy(v["day"])), v["chunks"])], what)

    def enc_er_last(self) -> Instance:
        found = self._latest_visit("Urgencias", "latest emergency visit")
        return Instance({}, (found or Expected.negative("no emergency visits"),))

    def enc_hosp(self) -> Instance:
        found = self._latest_visit("Hospitalización", "latest hospitalisation")
        if found is None:
            return Instance({}, (Expected.no("'No': never hospitalised"),))
        return Instance({}, (replace_lead(found, YES),))

    def enc_tele(self) -> Instance:
        found = self._latest_visit("Telemedicina", "latest telemedicine visit")
        return Instance({}, (found or Expected.negative("no telemedicine visits"),))

    def doc_last(self) -> Instance:
        if not self.visits:
            return Instance({}, (Expected.negative("no visits"),))
        v = self.visits[0]
        fact = Fact(f"Dr(a). {v['doctor']} on {v['day']}", (v["doctor"],))
        return Instance({}, (Expected.of([(fact, v["chunks"])], "doctor of the latest visit"),))

    def doc_next(self) -> Instance:
        a = self._appointment("next")
        if a is None:
            return Instance({}, (Expected.negative("no upcoming appointment"),))
        fact = Fact(f"Dr(a). {a['doctor']} on {a['day']}", (a["doctor"],))
        how = "doctor of the next appointment"
        return Instance({}, (Expected.of([(fact, [a["chunk_id"]])], how),))

    def spec_list(self) -> Instance:
        groups: dict[str, list[int]] = {}
        for v in self.visits:
            chunks = [v["appt_chunk"]] if v["appt_chunk"] else list(v["chunks"])
            groups.setdefault(v["specialty"], []).extend(chunks)
        if not groups:
            return Instance({}, (Expected.negative("no visits"),))
        return Instance(
            {},
            (
                Expected.of(
                    [(Fact(s, (s,)), g) for s, g in sorted(groups.items())],
                    "every specialty of the patient's visits",
                ),
            ),
        )

    def spec_next(self) -> Instance:
        a = self._appointment("next")
        if a is None:
            return Instance({}, (Expected.negative("no upcoming appointment"),))
        how = "specialty of the next appointment"
        return Instance(
            {}, (Expected.of([(Fact(a["specialty"], (a["specialty"],)), a["day_chunks"])], how),)
        )

    def _card(self, label: str, forms: tuple[str, ...], derived: bool = False) -> Instance:
        if not forms or not forms[0]:
            return Instance({}, (Expected.negative(f"no {label}"),))
        fact = Fact(label, forms, derived)
        return Instance({}, (Expected.of([(fact, [self.patient["chunk_id"]])], label),))

    def demo_age(self) -> Instance:
        age = self.patient["age"]
        forms = {0: ("0 años", "meses", "mes", "días"), 1: ("1 año", "1 años")}.get(
            age, (f"{age} años",)
        )
        return self._card(f"{age} años", forms, derived=True)

    def demo_blood(self) -> Instance:
        return self._card(str(self.patient["blood_type"]), (self.patient["blood_type"] or "",))

    def demo_birth(self) -> Instance:
        return self._card(str(self.patient["birth_date"]), dmy(self.patient["birth_date"]))

    def demo_city(self) -> Instance:
        return self._card(str(self.patient["city"]), (self.patient["city"] or "",))

    def demo_document(self) -> Instance:
        return self._card(self.patient["document_number"], (self.patient["document_number"],))

    def note_reason(self) -> Instance:
        return Instance({}, (self._note(1, "reason for the visit"),))

    def note_plan(self) -> Instance:
        return Instance({}, (self._note(5, "plan"),))

    def note_exam(self) -> Instance:
        return Instance({}, (self._note(4, "exam finding"),))

    def summary(self) -> Instance:
        p = self.patient
        pairs: list[tuple[Fact, Sequence[int]]] = [
            (Fact("full name", (p["full_name"],)), [p["chunk_id"]])
        ]
        if self.dx_latest:
            r = self.dx_latest[0]
            pairs.append(
                (
                    Fact(
                        f"{r['icd_code']} {r['description']}",
                        condition_forms(r["icd_code"], r["description"]),
                    ),
                    [r["chunk_id"]],
                )
            )
        if self.rx_latest:
            forms = tuple(f for r in self.rx_latest for f in drug_forms(r["ingredient"]))
            pairs.append(
                (
                    Fact("a drug of the latest prescribing visit", forms),
                    [r["chunk_id"] for r in self.rx_latest],
                )
            )
        pairs += self._allergy_pairs()
        how = "name, latest principal diagnosis, a drug of the latest visit, every allergy"
        return Instance({}, (Expected.of(pairs, how),))

    # -- labs, vaccines, procedures, non-drug allergies (issue 11) -------------------------------

    def _lab_values(self, code: str) -> dict[str, str]:
        name = LAB_NAMES[code][0]
        return {"lab": name, "lab_f": fold(name)}

    def _lab_value_fact(self, row: asyncpg.Record) -> Fact:
        label = f"{row['display']} {row['value_numeric']} {row['value_unit'] or ''} on {row['day']}"
        return Fact(label.strip(), lab_forms(row["value_numeric"]))

    def _named_labs(self) -> list[str]:
        """LOINC codes of this patient's results a question can name, most results first."""
        counts: dict[str, int] = {}
        for r in self.labs:
            if r["code"] in LAB_NAMES:
                counts[r["code"]] = counts.get(r["code"], 0) + 1
        return sorted(counts, key=lambda c: (-counts[c], c))

    def lab_latest(self) -> Instance | None:
        codes = self._named_labs()
        if not codes:
            return None
        code = self.pick(codes)
        row = next(r for r in self.labs if r["code"] == code)  # newest first
        pairs: list[tuple[Fact, Sequence[int]]] = [(self._lab_value_fact(row), [row["chunk_id"]])]
        if row["value_unit"]:
            pairs.append(
                (Fact(f"unit {row['value_unit']}", (row["value_unit"],)), [row["chunk_id"]])
            )
        pairs.append((Fact(f"date {row['day']}", dmy(row["day"])), [row["chunk_id"]]))
        return Instance(self._lab_values(code), (Expected.of(pairs, f"latest {code} result"),))

    def lab_series(self) -> Instance | None:
        start = months_before(self.today, 12)
        recent = [r for r in self.labs if r["day"] >= start and r["code"] in LAB_NAMES]
        counts: dict[str, int] = {}
        for r in recent:
            counts[r["code"]] = counts.get(r["code"], 0) + 1
        if not counts:
            return None
        most = max(counts.values())
        code = self.pick(sorted(c for c, n in counts.items() if n == most or n >= 2))
        rows = [r for r in recent if r["code"] == code]
        groups: dict[str, list[int]] = {}
        forms: dict[str, tuple[str, ...]] = {}
        for r in rows:
            value = f"{r['value_numeric']}"
            forms[value] = lab_forms(r["value_numeric"])
            groups.setdefault(value, []).append(r["chunk_id"])
        pairs = [(Fact(v, forms[v]), g) for v, g in groups.items()]
        return Instance(
            self._lab_values(code), (Expected.of(pairs, f"every {code} result from {start} on"),)
        )

    def lab_abnormal(self) -> Instance:
        if not self.labs:
            return Instance({}, (Expected.negative("no laboratory results"),))
        latest: dict[str, asyncpg.Record] = {}
        for r in self.labs:
            latest.setdefault(r["code"], r)  # newest first
        flagged = [r for r in latest.values() if (r["interpretation"] or "N") in ("H", "L")]
        if not flagged:
            how = "'No': every test's latest result is within its reference range"
            return Instance({}, (Expected((NEGATIVE,), ((),), (), ANY, how),))
        pairs = [(self._lab_value_fact(r), [r["chunk_id"]]) for r in flagged]
        return Instance({}, (Expected.of(pairs, "each test whose latest result is H or L"),))

    def _vaccine_fact(self, code: str, display: str) -> Fact:
        return Fact(display, tuple(dict.fromkeys((*VACCINE_NAMES.get(code, ()), display))))

    def vaccine_list(self) -> Instance:
        if not self.vaccines:
            return Instance({}, (Expected.negative("no vaccines recorded"),))
        pairs: list[tuple[Fact, Sequence[int]]] = []
        for code in dict.fromkeys(r["code"] for r in self.vaccines):
            rows = [r for r in self.vaccines if r["code"] == code]
            pairs.append(
                (self._vaccine_fact(code, rows[0]["display"]), [r["chunk_id"] for r in rows])
            )
            pairs.append(
                (
                    Fact(f"{code} last on {rows[0]['day']}", dmy(rows[0]["day"])),
                    [rows[0]["chunk_id"]],
                )
            )
        return Instance({}, (Expected.of(pairs, "every vaccine and the date of its last dose"),))

    def vaccine_yes(self) -> Instance | None:
        codes = [c for c in dict.fromkeys(r["code"] for r in self.vaccines) if c in VACCINE_NAMES]
        if not codes:
            return None
        code = self.pick(codes)
        row = next(r for r in self.vaccines if r["code"] == code)
        name = VACCINE_NAMES[code][0]
        fact = Fact(f"{row['display']} last on {row['day']}", dmy(row["day"]))
        how = f"'Sí': {row['display']}, latest dose"
        return Instance(
            {"vacuna": name, "vacuna_f": fold(name)},
            (Expected.of([(fact, [row["chunk_id"]])], how, lead=YES),),
        )

    async def vaccine_no(self) -> Instance | None:
        had = {fold(n) for r in self.vaccines for n in VACCINE_NAMES.get(r["code"], ())}
        for offset in range(len(ABSENT_VACCINES)):
            name = self.pick(ABSENT_VACCINES, offset)
            if fold(name) in had or await self.mentions(_mention_pattern(name)):
                continue
            return Instance(
                {"vacuna": name, "vacuna_f": fold(name)},
                (Expected.no(f"'No': no vaccine against {name} recorded nor mentioned"),),
            )
        return None

    def procedure_list(self) -> Instance:
        if not self.procedures:
            return Instance({}, (Expected.negative("no procedures recorded"),))
        pairs: list[tuple[Fact, Sequence[int]]] = []
        for display in dict.fromkeys(r["display"] for r in self.procedures):
            rows = [r for r in self.procedures if r["display"] == display]
            pairs.append((Fact(display, (display,)), [r["chunk_id"] for r in rows]))
            pairs.append(
                (
                    Fact(f"{display} last on {rows[0]['day']}", dmy(rows[0]["day"])),
                    [rows[0]["chunk_id"]],
                )
            )
        return Instance({}, (Expected.of(pairs, "every procedure and the date it was last done"),))

    def procedure_last(self) -> Instance:
        if not self.procedures:
            return Instance({}, (Expected.negative("no procedures recorded"),))
        row = self.procedures[0]
        pairs: list[tuple[Fact, Sequence[int]]] = [
            (Fact(row["display"], (row["display"],)), [row["chunk_id"]]),
            (Fact(f"on {row['day']}", dmy(row["day"])), [row["chunk_id"]]),
        ]
        return Instance({}, (Expected.of(pairs, "the latest procedure"),))

    def allergy_nondrug(self) -> Instance:
        if not self.other_allergies:
            how = "'No': no allergy to anything but medicines"
            return Instance({}, (Expected((NEGATIVE,), ((),), (), ANY, how),))
        pairs = [(_allergen_fact(a["substance"]), [a["chunk_id"]]) for a in self.other_allergies]
        return Instance({}, (Expected.of(pairs, "every allergy not to a medicine"),))

    def allergy_substance_yes(self) -> Instance | None:
        if not self.other_allergies:
            return None
        a = self.other_allergies[self.index % len(self.other_allergies)]
        name = ALLERGEN_NAMES.get(a["substance"], a["substance"])
        how = f"'Sí': allergic to {a['substance']}"
        return Instance(
            {"alergeno": name, "alergeno_f": fold(name)},
            (Expected.of([(_allergen_fact(a["substance"]), [a["chunk_id"]])], how, lead=YES),),
        )

    def _out_of_record(self) -> Instance:
        how = "a record never holds it (probe checked): 'No encuentro …', no sources"
        return Instance({}, (Expected((ABSTAIN,), ((),), (), NONE, how),), probe_topics=True)

    oor_habits = oor_social = oor_history = oor_labs = _out_of_record

    async def fu_dx_treatment(self) -> Instance | None:
        row = self._conditions(2, treated=True)
        if row is None:
            return None
        rx = await self.conn.fetch(TREATMENT_SQL, self.pid, row["icd_code"], self.now)
        current = _unique([r for r in rx if r["current"]], "ingredient")
        if not current:
            return None
        ever = set().union(*(_words(r["ingredient"]) for r in rx), set())
        others = [
            _drug_fact(r["ingredient"])
            for r in self.rx_latest
            if not _words(r["ingredient"]) & ever
        ]
        fact = Fact(
            f"{row['icd_code']} {row['description']}",
            condition_forms(row["icd_code"], row["description"]),
        )
        first = Expected.of([(fact, [row["latest_chunk"]])], "'Sí'", lead=YES)
        second = Expected.of(
            [(_drug_fact(r["ingredient"]), [r["chunk_id"]]) for r in current],
            f"drugs of the latest prescription for {row['icd_code']}; none of other diagnoses",
            forbidden=others,
        )
        return Instance(self._condition_values(row["icd_code"]), (first, second))

    def fu_drug_dose(self) -> Instance | None:
        drug = self._current_drug(3)
        if drug is None:
            return None
        chunk = self._prescribed(drug)["latest_chunk"]
        first = Expected.of([(_drug_fact(drug), [chunk])], f"'Sí': {drug}", lead=YES)
        return Instance(self._drug_values(drug), (first, self._dose(drug)))

    def fu_attended_specialty(self) -> Instance | None:
        a = self._appointment("attended")
        if a is None:
            return None
        when = Fact(f"attended appointment on {a['day']}", dmy(a["day"]))
        first = Expected.of([(when, a["day_chunks"])], "date of the last attended appointment")
        upcoming = self._appointment("next")
        forbidden = []
        if upcoming is not None and upcoming["specialty"] != a["specialty"]:
            forbidden.append(
                Fact(f"next appointment's {upcoming['specialty']}", (upcoming["specialty"],))
            )
        second = Expected.of(
            [(Fact(a["specialty"], (a["specialty"],)), a["day_chunks"])],
            "specialty of that appointment (not of the next one)",
            forbidden=forbidden,
        )
        return Instance({}, (first, second))

    def fu_bp_before(self) -> Instance | None:
        if not self.vitals:
            return None
        latest = self.vitals[0]
        earlier = [r for r in self.vitals if r["day"] < latest["day"]]
        second = (
            self._bp(earlier[0], "blood pressure of the latest visit on an earlier day")
            if earlier
            else Expected.negative("no earlier blood pressure")
        )
        return Instance({}, (self._bp(latest, "latest blood pressure"), second))


def replace_lead(expected: Expected, lead: Fact) -> Expected:
    return Expected(
        (lead, *expected.facts),
        ((), *expected.relevant),
        expected.forbidden,
        expected.evidence,
        expected.how,
    )


# -- assembling the questions -------------------------------------------------------------------


async def _truth(record: _Record, kind: Kind) -> Instance | None:
    result = getattr(record, kind.name)()
    if inspect.isawaitable(result):
        result = await result
    assert result is None or isinstance(result, Instance), kind.name
    return result


def phrasings_per_patient(applicable: int, available: int) -> int:
    """Enough phrasings per patient for `MIN_PER_HALF` questions per half, at least
    `PHRASINGS_PER_PATIENT`, at most every phrasing of the half."""
    need = math.ceil(MIN_PER_HALF / applicable) if applicable else 0
    return min(available, max(PHRASINGS_PER_PATIENT, need))


def _questions(
    record: _Record,
    kind: Kind,
    instance: Instance,
    chosen: Sequence[ph.Phrasing],
) -> list[GoldQuestion]:
    values = {**record.values(), **instance.values}
    p = record.patient
    out: list[GoldQuestion] = []
    for phrasing in chosen:
        session = f"p{record.pid}-{phrasing.pid.replace(':', '-')}"
        for turn, (text, expected) in enumerate(
            zip(phrasing.turns, instance.turns, strict=True), start=1
        ):
            out.append(
                GoldQuestion(
                    qid=f"{session}-t{turn}",
                    patient_id=record.pid,
                    document_type_id=int(p["document_type_id"]),
                    document_number=str(p["document_number"]),
                    session=session,
                    turn=turn,
                    text=ph.render(text, values),
                    kind=kind.name,
                    category=kind.category,
                    half=phrasing.half,
                    phrasing=phrasing.pid,
                    tags=tuple(sorted(phrasing.tags)),
                    scored=turn == len(phrasing.turns),
                    facts=expected.facts,
                    relevant=expected.relevant,
                    forbidden=expected.forbidden,
                    evidence=expected.evidence,
                    list_answer=kind.list_answer,
                    types=kind.types,
                    expectation=expected.how,
                )
            )
    return out


async def select_patients(
    conn: asyncpg.Connection, count: int, today: dt.date, model: str, now: dt.datetime
) -> list[tuple[int, str]]:
    """A deterministic, varied sample: no history, allergic, upcoming appointment, child, elderly,
    emergency visits, hospitalised, missed appointments, telemedicine, full history.

    Only fully indexed patients are eligible: none queued for re-chunking, every chunk with a
    vector of `model` (the evaluated embedder's).
    """
    rows = [
        r
        for r in await conn.fetch(CANDIDATES_SQL, today, model, now)
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
    take("hospitalizado", (r for r in with_history if r["hospitalised"]), max(1, count // 8))
    take("urgencias", (r for r in with_history if r["emergency"]), max(1, count // 8))
    take("citas perdidas", (r for r in with_history if r["missed"]), max(1, count // 8))
    take("telemedicina", (r for r in with_history if r["remote"]), max(1, count // 12))
    take("menor de 12 años", (r for r in with_history if r["age"] < 12), max(1, count // 8))
    take("mayor de 65 años", (r for r in with_history if r["age"] >= 65), max(1, count // 8))
    rest = [r for r in with_history if r["patient_id"] not in chosen]
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
    halves: Sequence[str] = HALVES,
) -> GoldSet:
    """Questions and SQL-computed expectations for `patients` selected patients (among those
    fully indexed for the embedding `model`), as of `today` (default: today in Bogotá)."""
    today = today or dt.datetime.now(BOGOTA).date()
    now = clock_for(today)
    if patient_ids is None:
        selected = await select_patients(conn, patients, today, model, now)
    else:
        selected = [(pid, "elegido") for pid in patient_ids]
    gold = GoldSet(today=today, now=now, patients=[], questions=[])
    records: list[_Record] = []
    for index, (pid, profile) in enumerate(selected):
        row = await conn.fetchrow(PATIENT_SQL, pid, today)
        record = _Record(conn, row, index, today, now)
        await record.load()
        records.append(record)
        gold.patients.append(
            EvaluatedPatient(
                pid,
                row["full_name"],
                int(row["document_type_id"]),
                str(row["document_number"]),
                profile,
            )
        )
    by_patient: dict[int, list[GoldQuestion]] = {r.pid: [] for r in records}
    for kind in KINDS:
        truths: list[tuple[_Record, Instance]] = []
        for record in records:
            instance = await _truth(record, kind)
            if instance is None:
                gold.skipped.append(f"patient {record.pid}: {kind.name} does not apply")
            else:
                truths.append((record, instance))
        for half in halves:
            pool = ph.load(half)[kind.name]
            k = phrasings_per_patient(len(truths), len(pool))
            for position, (record, instance) in enumerate(truths):
                chosen: list[ph.Phrasing] = []
                for step in range(len(pool)):
                    phrasing = pool[(position * k + step) % len(pool)]
                    if instance.probe_topics and phrasing.topic:
                        if await record.mentions(OUT_OF_RECORD_PROBES[phrasing.topic]):
                            gold.skipped.append(
                                f"patient {record.pid}: record mentions {phrasing.topic}"
                            )
                            continue
                    chosen.append(phrasing)
                    if len(chosen) == k:
                        break
                by_patient[record.pid] += _questions(record, kind, instance, chosen)
    for record in records:
        gold.questions += by_patient[record.pid]
    return gold
