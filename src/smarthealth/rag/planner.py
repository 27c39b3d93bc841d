"""Question → `QuestionPlan`, deterministically and offline.

1. Fold the question and correct misspelt words against the vocabulary (`vocabulary.correct`).
2. Read the named things first, longest first, and mask them: conditions (ICD-10 codes, the
   catalog's descriptions, common names and aliases), drugs (ingredient, base name, brand), drug
   classes, specialties; then the clinical lexicon's phrases. Each gives cues (subject,
   operation, attribute, vital sign, status, encounter type, topic, …).
3. Decide: a strong subject cue wins (ties go to the more specific subject); an out-of-record
   topic wins over weak cues only; a question with no subject of its own leans on the previous
   turn's plan (follow-up); otherwise the nearest labelled exemplar decides if its margin is
   clear, and below the margin the plan abstains (`unknown`).
Words that say nothing about the subject ("paciente", "médico", "toma" alone) are weak or absent
from the lexicon, so they never decide it.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace

from smarthealth.rag.plan import SUMMARY_PARTS, QuestionPlan, TimeWindow
from smarthealth.rag.text import STOPWORDS, fold
from smarthealth.rag.vocabulary import (
    QUALIFIERS,
    SHORTHAND,
    Symptom,
    condition_names,
    correct,
    drug_classes,
    drug_names,
    lab_tests,
    lexicon,
    same_word,
    spanish_frequencies,
    specialties,
    split_joined,
    symptoms,
    translations,
)

# When two subjects have equally strong cues, the more specific one wins.
PRIORITY: tuple[str, ...] = (
    "summary",
    "allergy",
    "medication",
    "diagnosis",
    "lab",
    "procedure",
    "immunization",
    "vital",
    "appointment",
    "doctor",
    "specialty",
    "encounter",
    "demographics",
    "note",
)
_SECTIONS = {
    "MOTIVO_DE_CONSULTA": "MOTIVO DE CONSULTA",
    "EXAMEN_FISICO": "EXAMEN FÍSICO",
    "ANALISIS_Y_PLAN": "ANÁLISIS Y PLAN",
    "ENFERMEDAD_ACTUAL": "ENFERMEDAD ACTUAL",
}
_TOKEN = re.compile(r"[a-z0-9°]+")
_ICD = re.compile(r"\b([a-z]\d{2}(?:\.\d{1,2})?)\b")
_YES_NO_START = re.compile(
    r"^(?:y\s+)?(?:si\s+)?(?:el|la)?\s*(?:paciente\s+)?(?!la (?:ultim|proxim|primer|cita|consulta))"
    r"(?:antecedentes? de|tiene|tuvo|ha|han|hay|es|esta|estuvo|toma|tomo|"
    r"usa|recibe|recibio|padece|sufre|sufrio|le|lo|la|fue|presenta|presento|cuenta|existe|"
    r"se|registra|aparece|figura|hace|sigue|continua|hubo|alguna|algun|alguno|existe|anda|sale)\b"
)
# A question that opens with one of these asks what/which/when, not whether.
_WH_START = re.compile(
    r"^(?:y\s+)?(?:(?:el|la)\s+paciente\s+)?(?:que|cual|cuales|cuando|cuanto|cuanta|cuantos|cuantas|como|donde|quien|"
    r"quienes|desde|hace cuanto|por que|para que|con que|en que|a que|de que)\b"
)
_REFERS = re.compile(
    r"^\W*y\b|\b(eso|esa|ese|esos|esas|ello|lo mismo|dicha|dicho)\b"
    r"|\bse (lo|la|los|las) (formul|receta|mand|dio|dieron|indic|suspend|cambi)"
)
_NUMBER_WORDS = {
    "un": 1, "una": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "dieciocho": 18,
    "veinticuatro": 24,
}  # fmt: skip
_UNITS = {
    "trimestre": 90,
    "trimestres": 90,
    "semestre": 180,
    "semestres": 180,
    "dia": 1,
    "dias": 1,
    "semana": 7,
    "semanas": 7,
    "mes": 30,
    "meses": 30,
    "ano": 365,
    "anos": 365,
}
_N = r"(\d+|" + "|".join(_NUMBER_WORDS) + r")"
_UNIT = r"(dias?|semanas?|mes(?:es)?|m|anos?|trimestres?|semestres?)\b"
_LAST_N = re.compile(r"\b(?:ultim[oa]s?|pasad[oa]s?)\s+" + _N + r"?\s*" + _UNIT)
# with a number only: "estos días" is now, "estos seis meses" a window
_SPAN_N = re.compile(r"\b(?:est[oa]s|desde hace|durante (?:los|las))\s+" + _N + r"\s*" + _UNIT)
# "de seis meses para acá"
_SPAN_TO_NOW = re.compile(
    r"\bde\s+" + _N + r"\s*" + _UNIT + r"(?=\s+(?:para|pa|a)\s+(?:aca|aqui|la fecha|hoy)\b)"
)
# "6m" is six months only after one of those words or glued to its number ("peso 12m")
_GLUED_MONTHS = re.compile(r"(?<![\d.,])\b(\d{1,2})m\b")
# How many of a unit "los últimos días / semanas / meses / años" (no number) mean.
_VAGUE_PLURAL = {"dias": 7, "semanas": 4, "meses": 12, "anos": 3}
_IN_N = re.compile(r"\ben\s+(?:los\s+|las\s+)?(\d+|" + "|".join(_NUMBER_WORDS) + r")\s+"
                   r"(dias|semanas|meses|anos)\b")  # fmt: skip
_YEAR = re.compile(r"\b(?:en|del|de|durante|el ano|para)\s+(?:el\s+)?(?:ano\s+)?((?:19|20)\d{2})\b")
_THIS_YEAR = re.compile(
    r"\b(?:este ano|en lo que va del? ano|en lo que llevamos del? ano|en lo corrido del ano|"
    r"(?:en )?el ano en curso|"
    r"(?:(?:del|en el) )?ano actual|(?:en )?el presente ano|durante el ano|"
    r"(?:del|en el) ano(?!\s+(?:pasado|anterior|\d)))\b"
)
_HALF_YEAR = re.compile(r"\b(?:el |este |ultimo |en el |de )?medio ano\b")
_BARE_YEAR = re.compile(r"(?<![\d/.-])\b((?:19|20)\d{2})\b(?![\d/.-])")
_LAST_YEAR = re.compile(r"\b(?:el )?ano pasado\b")
_SINCE_YEAR = re.compile(r"\bdesde\s+(?:el\s+)?(?:ano\s+)?((?:19|20)\d{2})\b")
_BEFORE_YEAR = re.compile(r"\bantes\s+de(?:l)?\s+(?:ano\s+)?((?:19|20)\d{2})\b")
_MONTHS = ("enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
           "diciembre").split()  # fmt: skip
_SINCE_DAY = re.compile(r"\bdesde\s+el\s+(\d{1,2}|primero)\s+de\s+(" + "|".join(_MONTHS) + r")\b")
_SINCE_MONTH = re.compile(r"\bdesde\s+(?:el\s+(?:mes\s+de\s+)?)?(" + "|".join(_MONTHS) + r")\b")


@dataclass
class _Reading:
    """What the words of one question say, before deciding."""

    text: str
    strong: Counter[str] = field(default_factory=Counter)
    weak: Counter[str] = field(default_factory=Counter)
    cues: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    vitals: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    encounter_types: list[str] = field(default_factory=list)
    demographics: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    drugs: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    class_label: str | None = None
    purpose: Symptom | None = None  # the symptom in "¿qué toma para el dolor?"
    labs: list[str] = field(default_factory=list)  # LOINC codes of a named laboratory test
    lab_label: str | None = None
    terms: list[str] = field(default_factory=list)  # words of a vaccine, a food, a procedure
    conditions: list[str] = field(default_factory=list)
    condition_words: list[str] = field(default_factory=list)
    specialty: str | None = None
    doctor: str | None = None
    refers: bool = False
    yes_no: bool = False
    joined: bool = False  # several things asked together ("dx, meds y alergias")
    asks_which: bool = False  # what, which, when, who… (not whether)
    window: TimeWindow | None = None


_DOCUMENT_NUMBER = re.compile(r"(?<![a-z0-9°])(?:n°|nro|num|numero|no\.?)\s*(?:de\s+)?doc\b\.?")
_NUMBER_OF = re.compile(r"\bno\.\s*de\b|\bn\.\s*o\.?\s*de\b", re.IGNORECASE)
# "pa'" is "para", always; "pa" alone before a question word, an article or a verb
_PA_IS_PARA = re.compile(
    r"\bpa['’]\s*|\bpa\s+(?=(?:cuando|que|quien|donde|el|la|los|las|mi|su|eso|(?!ayer)\w+(?:ar|er|ir))\b)"
)


def normalise(question: str) -> str:
    """Folded, with each unknown word replaced by the known word it stands for."""
    folded = fold(question).replace("sat o2", "sato2").replace("t °", "t°").replace("º", "°")
    folded = _DOCUMENT_NUMBER.sub("numero de documento", folded)  # "nº doc" is no doctor
    folded = _NUMBER_OF.sub("numero de", folded)  # "No. de consultas" is not a "no"
    folded = _PA_IS_PARA.sub("para ", folded)  # "¿pa cuándo es la cita?" is not a PA
    tokens = (SHORTHAND.get(t, t) for t in _TOKEN.findall(folded))
    return " ".join(split_joined(correct(t)) for t in tokens)


def _mask(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _key(word: str) -> str:
    """Words that `_same` can match share this key: their first five letters (or the whole
    word, when shorter: a short word only matches itself)."""
    return word[:5]


@functools.cache
def _names_by_key(
    names: tuple[tuple[str, tuple[str, ...]], ...],
) -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    index: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for key, name in names:
        index.setdefault(_key(name[0]), []).append((key, name))
    return {k: tuple(v) for k, v in index.items()}


# A word this common (Zipf) that a name only starts like is the common word, not the name.
COMMON_WORD_ZIPF = 4.0
_INFLECTIONS = frozenset({"", "a", "o", "as", "os", "e", "es", "s"})


def _names(word: str, typed: str, inflected: bool = True) -> bool:
    """Whether a typed word is `word` of a name, inflected ("amlodipino" for "amlodipina"). A
    common Spanish word is never another word that merely starts like it ("entrega" is not
    "entresto"), and, where `inflected` is False, not even an inflection of it ("rápido" is not
    the "rápida" of a condition's name)."""
    if not same_word(word, typed):
        return False
    if typed == word or spanish_frequencies().get(typed, 0.0) < COMMON_WORD_ZIPF:
        return True
    pairs = enumerate(zip(word, typed, strict=False))
    stem = next((i for i, (a, b) in pairs if a != b), min(len(word), len(typed)))
    inflection = word[stem:] in _INFLECTIONS and typed[stem:] in _INFLECTIONS
    return inflected and (inflection or stem >= 6)  # "embarazada" is of "embarazo"


def _find_names(
    tokens: list[str], names: tuple[tuple[str, tuple[str, ...]], ...]
) -> list[tuple[str, set[int]]]:
    """Every (key, token positions) whose name's words all occur among `tokens`."""
    index = _names_by_key(names)
    candidates = [
        n for key in dict.fromkeys(_key(t) for t in tokens if t) for n in index.get(key, ())
    ]
    found = []
    for key, name in candidates:
        positions: set[int] = set()
        for word in name:
            hit = next((i for i, t in enumerate(tokens) if t and _names(word, t)), None)
            if hit is None:
                break
            positions.add(hit)
        else:
            found.append((key, positions))
    # a name inside a longer one that also matched ("diabetes" in "diabetes gestacional") yields
    return [(k, p) for k, p in found if not any(p < other for _, other in found)]


_TITLE = r"(?:(?:el|la)\s+)?(?:dr|dra|doctor|doctora|medico|medica)?\s*"


def _read_doctor(reading: _Reading, text: str, doctors: tuple[str, ...]) -> str:
    """A doctor of the patient named by surname ("¿cuándo lo vio el Dr. Gómez?"): the
    patient's own record is the vocabulary, so no other name can match."""
    for surname in doctors:
        folded = fold(surname)
        if len(folded) < 3:
            continue
        match = re.search(rf"\b{_TITLE}{re.escape(folded)}\b", text)
        if match:
            reading.doctor = surname
            reading.cues.append(match.group(0).strip())
            return _mask(text, *match.span())
    return text


_PURPOSE = re.compile(r"\bpara\s+(?:el\s+|la\s+|los\s+|las\s+|su\s+|sus\s+)?")


def _read_purpose(reading: _Reading, text: str) -> str:
    """A symptom named after "para" ("¿qué le dan para el dolor?", "¿algo para dormir?"): what
    the treatment asked about is for. Only the symptom is masked ("para" is read again by the
    lexicon's "que toma para")."""
    for match in _PURPOSE.finditer(text):
        for symptom, pattern in symptoms():
            found = pattern.match(text, match.end())
            if found:
                reading.purpose = symptom
                reading.conditions.extend(
                    c for c in symptom.conditions if c not in reading.conditions
                )
                reading.cues.append(found.group(0))
                return _mask(text, *found.span())
    return text


def _read_labs(reading: _Reading, text: str) -> str:
    """A laboratory test named in Spanish ("la última hemoglobina glicosilada")."""
    for test, pattern in lab_tests():
        match = pattern.search(text)
        if match:
            reading.labs.extend(c for c in test.loinc if c not in reading.labs)
            reading.lab_label = reading.lab_label or test.label
            reading.strong["lab"] += 1
            reading.cues.append(match.group(0))
            text = _mask(text, *match.span())
    return text


def _read_entities(reading: _Reading, text: str) -> str:
    """Conditions, drugs, drug classes and specialties; returns the text with them masked."""
    tokens = text.split()
    for code in _ICD.findall(text):
        reading.conditions.append(code.upper())
    conditions = _find_names(tokens, condition_names())
    drugs = _find_names(tokens, drug_names())
    used: set[int] = set()
    for code, positions in conditions:
        # a drug's name wins over a condition sharing its word only when longer
        if code not in reading.conditions:
            reading.conditions.append(code)
        used |= positions
    named_by_condition = set(used)
    for ingredient, positions in drugs:
        if positions <= named_by_condition:
            continue  # "rinitis alérgica" is not a drug named "…"
        if ingredient not in reading.drugs:
            reading.drugs.append(ingredient)
        used |= positions
    kept = [t if i not in used else "" for i, t in enumerate(tokens)]
    text = " ".join(t or "_" * 3 for t in kept)
    for drug_class, pattern in drug_classes():
        match = pattern.search(text)
        if match:
            reading.classes.extend(drug_class.atc_prefixes)
            reading.class_label = reading.class_label or drug_class.label
            reading.cues.append(match.group(0))
            text = _mask(text, *match.span())
    for name, pattern in specialties():
        match = pattern.search(text)
        if match and reading.specialty is None:
            reading.specialty = name
            reading.cues.append(match.group(0))
            text = _mask(text, *match.span())
    return text


_NEGATED = re.compile(r"\b(?:no|nunca)\s+(?:se\s+|le\s+|lo\s+|la\s+)?$")


def _read_lexicon(reading: _Reading, text: str) -> str:
    for phrase, pattern in lexicon():
        for match in list(pattern.finditer(text)):
            reading.cues.append(match.group(0))
            text = _mask(text, *match.span())
            for cue in phrase.meaning:
                kind, _, value = cue.partition(":")
                if kind == "s":
                    reading.strong[value] += 1
                elif kind == "w":
                    reading.weak[value] += 1
                elif kind == "op":
                    reading.operations.append(value)
                elif kind == "a":
                    reading.attributes.append(value)
                elif kind == "v":
                    reading.vitals.append(value)
                elif kind == "st":
                    if value == "Attended" and _NEGATED.search(text[: match.start()]):
                        value = "NoShow"  # "la última cita a la que no acudió"
                    reading.statuses.append(value)
                elif kind == "et":
                    reading.encounter_types.append(value)
                elif kind == "d":
                    reading.demographics.append(value)
                elif kind == "ns":
                    reading.sections.append(_SECTIONS[value])
                elif kind == "t":
                    reading.topics.append(value)
                elif kind == "ref":
                    reading.refers = True
                elif kind == "yes":
                    reading.yes_no = True
                elif kind == "c" and value not in reading.conditions:
                    reading.conditions.append(value)
    return text


def _window(text: str, today: dt.date) -> tuple[TimeWindow, tuple[int, int]] | None:
    """The time window a question names, and where it says it (its words are not read again:
    "últimos" in "los últimos 6 meses" does not ask for the latest reading)."""

    def months_back(days: int) -> dt.date:
        if days % 365 == 0:
            years = days // 365
            try:
                return today.replace(year=today.year - years)
            except ValueError:  # 29 February
                return today.replace(year=today.year - years, day=28)
        if days % 30 == 0:
            months = days // 30
            year, month = divmod(today.month - 1 - months, 12)
            day = min(today.day, 28)
            return dt.date(today.year + year, month + 1, day)
        return today - dt.timedelta(days=days)

    for pattern in (_LAST_N, _SPAN_N, _SPAN_TO_NOW, _IN_N, _GLUED_MONTHS):
        if match := pattern.search(text):
            raw = match.group(1)
            said_unit = match.group(2) if pattern.groups > 1 else "m"
            if said_unit == "m" and raw is None:
                continue  # "últimos m…": no number, no months
            unit = "meses" if said_unit == "m" else said_unit
            if raw is None:  # "el último mes"; "los últimos meses": a few, up to a year
                n = _VAGUE_PLURAL.get(unit, 1)
            else:
                n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
            start = months_back(n * _UNITS[unit])
            return TimeWindow(
                start, today + dt.timedelta(days=1), _span_label(n, unit)
            ), match.span()
    if match := _HALF_YEAR.search(text):  # "de medio año para acá"
        return TimeWindow(months_back(180), today + dt.timedelta(days=1), "últimos 6 meses"), (
            match.span()
        )
    if match := _LAST_YEAR.search(text):  # before "durante el año" in "durante el año pasado"
        window = TimeWindow(
            dt.date(today.year - 1, 1, 1), dt.date(today.year, 1, 1), "el año pasado"
        )
        return window, match.span()
    if match := _SINCE_DAY.search(text):  # "desde el 1 de enero": its latest, as "desde enero"
        day = 1 if match.group(1) == "primero" else int(match.group(1))
        month = _MONTHS.index(match.group(2)) + 1
        year = today.year if (month, day) <= (today.month, today.day) else today.year - 1
        try:
            first_day = dt.date(year, month, day)
        except ValueError:  # "el 31 de febrero": no window
            first_day = None
        if first_day is not None:
            label = f"desde el {day} de {match.group(2)}"
            return TimeWindow(first_day, None, label), match.span()
    if match := _THIS_YEAR.search(text):
        return TimeWindow(dt.date(today.year, 1, 1), None, "este año"), match.span()
    if match := _SINCE_MONTH.search(text):  # "desde enero": its latest start, this year or last
        month = _MONTHS.index(match.group(1)) + 1
        year = today.year if month <= today.month else today.year - 1
        since = TimeWindow(dt.date(year, month, 1), None, f"desde {match.group(1)}")
        return since, match.span()
    if match := _SINCE_YEAR.search(text):
        year = int(match.group(1))
        return TimeWindow(dt.date(year, 1, 1), None, f"desde {year}"), match.span()
    if match := _BEFORE_YEAR.search(text):
        year = int(match.group(1))
        return TimeWindow(None, dt.date(year, 1, 1), f"antes de {year}"), match.span()
    if match := _YEAR.search(text) or _BARE_YEAR.search(text):  # "meds 2025"
        year = int(match.group(1))
        return TimeWindow(dt.date(year, 1, 1), dt.date(year + 1, 1, 1), str(year)), match.span()
    return None


_UNIT_NAMES = {"dia": ("día", "días"), "semana": ("semana", "semanas"), "mes": ("mes", "meses"),
               "ano": ("año", "años"), "trimestre": ("trimestre", "trimestres"),
               "semestre": ("semestre", "semestres")}  # fmt: skip


def _span_label(n: int, unit: str) -> str:
    """ "último año", "últimos 6 meses", "última semana" (labels are shown to users)."""
    singular, plural = _UNIT_NAMES[unit[:3] if unit.startswith("mes") else unit.rstrip("s")]
    if n == 1:
        return f"{'última' if singular == 'semana' else 'último'} {singular}"
    return f"{'últimas' if singular == 'semana' else 'últimos'} {n} {plural}"


def _residual_condition_words(text: str) -> list[str]:
    """Content words left after every known phrase was read: a condition the catalog knows
    only in part ("amigdalitis") or only the patient's record names."""
    return [
        t
        for t in text.split()
        if len(t) >= 5
        and t not in STOPWORDS
        and t not in QUALIFIERS
        and not t.startswith("_")
        and not t.isdigit()
        and any(_names(w, t, inflected=False) for w in _condition_words().get(_key(t), ()))
    ]


@functools.cache
def _condition_words() -> dict[str, tuple[str, ...]]:
    """The words of every catalog condition name, by key: a leftover word that is none of
    them ("lista", "registros") names no condition."""
    index: dict[str, set[str]] = {}
    for _, name in condition_names():
        for word in name:
            index.setdefault(_key(word), set()).add(word)
    return {k: tuple(v) for k, v in index.items()}


def read(question: str, today: dt.date, doctors: tuple[str, ...] = ()) -> _Reading:
    reading = _Reading(normalise(question))
    text = reading.text
    if found := _window(text, today):
        reading.window, span = found
        text = _mask(text, *span)
    text = _read_doctor(reading, text, doctors)
    text = _read_purpose(reading, text)
    text = _read_entities(reading, text)
    text = _read_labs(reading, text)
    text = _read_lexicon(reading, text)
    if reading.purpose is not None and "treatment" not in reading.attributes:
        reading.attributes.append("treatment")
    if (
        reading.drugs
        and "dose" not in reading.attributes
        and (
            _HOW_MUCH.search(reading.text)
            or _HOW_TAKEN.search(reading.text)
            or _STRENGTH.search(reading.text)
        )
    ):
        # "¿cuánto carvedilol toma?", "¿la furosemida a cuánto?", "¿cómo le indicaron el
        # losartán?", "¿el losartán es de 50 o de 100?"
        reading.attributes.append("dose")
    if _VACCINE_WORD.search(reading.text):
        # "¿Está vacunado contra la influenza?": the catalog's vaccines are drugs too, but a
        # vaccine word asks about the immunizations; the disease is a term of their displays
        reading.drugs = [d for d in reading.drugs if not fold(d).startswith(_VACCINE_DRUGS)]
        if "vacunas" not in reading.topics:
            reading.topics.append("vacunas")
    reading.condition_words = _residual_condition_words(text)
    # words the Spanish↔English table knows (a vaccine, a food, a procedure), to find them in an
    # imported record's displays
    tokens = reading.text.split()
    reading.terms = [t for t in tokens if len(t) >= 3 and translations(t)[1:]]
    # "hepatitis b": the letter tells the vaccines (and the diseases) apart
    reading.terms += [
        b for a, b in itertools.pairwise(tokens) if a in reading.terms and b in ("a", "b", "c")
    ]
    for token in reading.text.split():
        if token.endswith(_PROCEDURE_ENDINGS):  # "apendicectomía", "colonoscopia"
            reading.strong["procedure"] += 1
            if token not in reading.terms:
                reading.terms.append(token)
    reading.refers = reading.refers or bool(_REFERS.search(reading.text))
    reading.yes_no = reading.yes_no or bool(
        _YES_NO_START.search(reading.text) and not _WH_START.search(reading.text)
    )  # "¿Hace ejercicio?" asks yes or no, "¿Hace cuánto…?" asks when
    said = fold(question)
    # "dx, meds, alergias" or "… y …" (one comma may only end an opener: "En ese caso, ¿…?")
    reading.joined = said.count(",") >= 2 or bool(_JOINED.search(reading.text))
    if reading.strong.get("allergy") and _NON_DRUG.search(reading.text):
        reading.strong.pop("medication", None)  # "aparte de medicamentos, ¿alguna alergia?"
    if _ALLERGEN_IS_A_DRUG.search(reading.text):
        # "¿alergia a algún medicamento?", "reacción a medicamentos": the drug is the allergen
        reading.strong.pop("medication", None)
        reading.strong["allergy"] = max(1, reading.strong["allergy"])
    clauses = _clauses(question)
    last = clauses[-1][0]
    reading.asks_which = bool(_WH_START.search(last) or _WH_ANYWHERE.search(last))
    unmarked = "¿" not in question and question.count("?") <= 1  # typed without ¿
    first, first_asked = clauses[0]
    first_asked = first_asked or (unmarked and bool(_VERB_START.search(first)))
    if len(clauses) > 1 and first_asked and _asks_whether(first):
        reading.yes_no = True  # "¿Ha estado hospitalizado? ¿Cuándo?": "Sí, …; la última…"
    elif reading.asks_which:
        # "¿y la última cita a la que sí vino cuándo fue?" asks when; "¿qué medicinas está
        # tomando?" asks which, although "está tomando" alone asks whether
        reading.yes_no = False
    elif len(clauses) > 1 and _asks_whether(last):
        reading.yes_no = True  # "¿Qué hay del diclofenaco, se lo han formulado?"
    if _ASKS_WHETHER.search(reading.text):
        reading.yes_no = True  # "Favor confirmar si tiene…", "dime si ha estado hospitalizado"
    if set(reading.statuses) & {"Attended", "Cancelled", "NoShow"}:
        # "la inasistencia más reciente a una cita programada": a past appointment, which had
        # been scheduled
        reading.statuses = [st for st in reading.statuses if st != "upcoming"]
        reading.operations = [op for op in reading.operations if op != "next"]
    return reading


_CLAUSE = re.compile(r"[^,;:?]+[,;:?]?")
# A yes/no question's verb ("tiene alguna hospitalización, y cuándo…"), not a pronoun: "la hija
# dice que…" is no question.
_VERB_START = re.compile(r"^(?:y\s+)?(?:tiene|tuvo|ha|han|hay|es|esta|estuvo|toma|tomo|padece)\b")
_WH_ANYWHERE = re.compile(
    r"\b(?:cuando|cual|cuales|quien|quienes|donde|cuant[oa]s?)\b"
    r"|\b(?:decir|decirme|dime|digame|saber|indicar|indicarme|indique|informar|informe|contarme|"
    r"cuenteme|cuentame)\s+(?:que|como)\b"  # "¿me podría decir qué medicamentos toma?"
)
_ALLERGEN_IS_A_DRUG = re.compile(
    r"\b(?:alergi|alergic|ram\b|reaccion)\w*\s+(?:(?!(?:y|e|que|cual\w*|toma\w*)\b)\w+\s+){0,3}"
    r"(?:medicament|remedio|farmac|medicina|pastilla)"
)
_ASKS_WHO = re.compile(r"\bquien|\b(?:que|cual) (?:medic|doctor|dr)|\bnombre\b")
_ASKS_WHETHER = re.compile(
    r"\b(?:dime|digame|decir|decirme|informar|informe|informarme|indicar|indique|indicarme|confirmar|"
    r"confirme|confirma|confirmarme|saber|sabe|sabes|pregunta|preguntan|verificar|verifique|"
    r"revisar|revise|averiguar|preguntar)\s+si\b"
)


def _clauses(question: str) -> list[tuple[str, bool]]:
    """The clauses of a question, folded, each with whether it was asked ("¿…?"): "¿Ha estado
    hospitalizado? ¿Cuándo?" asks two; "La hija dice que ya fue, ¿cuándo?" says one, asks one."""
    found = []
    for match in _CLAUSE.finditer(question):
        said = match.group(0)
        if text := normalise(said.rstrip(",;:?")):
            found.append((text, said.endswith("?") or "¿" in said))
    return found or [("", False)]


def _asks_whether(clause: str) -> bool:
    return bool(_YES_NO_START.search(clause) and not _WH_ANYWHERE.search(clause)) and not bool(
        _WH_START.search(clause)
    )


_VACCINE_WORD = re.compile(r"\b(vacun\w*|inmuniz\w*|vacs?)\b")
_VACCINE_DRUGS = ("vacuna", "toxoide")
# An allergy to something that is not a medicine: "alergias no medicamentosas", "que no sea a
# medicamentos", "diferente de los remedios", or a kind of allergen ("a alimentos", "al látex").
_NON_DRUG = re.compile(
    r"\b(?:\w+\s+no|diferentes?|distint[oa]s?|fuera|aparte|excepto|salvo|otras?)\s+"
    r"(?:(?:sea|sean|es|son|a|al|de|del|un|una|las|los|que)\s+){0,3}"
    r"(?:medicament|medicamet|farmac|remedio|medicina)\w*"
    r"|\b(?:alimento|comida|ambiental|picadura|insecto)\w*"
)
# "¿cuándo recibió cada vacuna?", "el carnet, con fechas": all of them
_PLURAL_RECORDED = re.compile(
    r"\b(vacunas|vacs|inmunizaciones|procedimientos|cirugias|operaciones|intervenciones|"
    r"antecedentes quirurgicos|qx|cada|esquema|calendario|carne|carnet|fechas|cuales|"
    r"registradas|registrados|se las|se los)\b"
)
_EXPLICIT_LATEST = re.compile(r"\b(ultim[oa]s?|mas recientes?|reciente)\b")


def _demographic(fields: list[str]) -> str | None:
    """The field asked: the birth date of "¿qué fecha de nacimiento consta en su documento?"."""
    return "birth_date" if "birth_date" in fields else (fields[0] if fields else None)


def _subject(reading: _Reading) -> str | None:
    if reading.strong:
        best = max(reading.strong.values())
        tied = [s for s in PRIORITY if reading.strong.get(s) == best]
        if tied:
            return tied[0]
    return None


_EVERY_READING = re.compile(
    r"\b(?:todos los|todas las)\s+(?:\w+\s+)?(?:pesos|presiones|tensiones|cifras|valores|tomas|"
    r"mediciones|registros|resultados)\b|\bcada\s+(?:peso|presion|tension|cifra|valor|toma|"
    r"medicion|registro|resultado)\b"
)
_COUNTED_READINGS = re.compile(r"\b(veces|tomas|mediciones|registros|controles)\b")


def _operation(reading: _Reading, subject: str) -> str:
    ops = reading.operations
    counts = "dose" not in reading.attributes  # "¿cuántos miligramos…?" asks the dose
    counts = counts and subject != "demographics"  # "número de documento" is the number
    counts = counts and "por minuto" not in reading.text  # "¿cuántas veces respiraba por minuto?"
    if "count" in ops and counts and (subject != "vital" or _COUNTED_READINGS.search(reading.text)):
        return "count"  # "¿cuántos kilos pesa?" asks a value, "¿cuántas tomas…?" a count
    extreme = [op for op in ops if op in ("max", "min")]
    if extreme and subject in ("vital", "lab"):
        return extreme[0]  # "¿la saturación más baja?"; "dosis máxima" is no extreme reading
    measured = subject in ("vital", "lab")
    every = bool(_EVERY_READING.search(reading.text))  # "todos los pesos que le tomaron"
    if measured and ("series" in ops or every or (reading.window and "latest" not in ops)):
        return "series"
    if "first" in ops:
        return "first"
    if "next" in ops and subject in ("appointment", "doctor", "specialty", "encounter"):
        return "next"
    asks_part = "dose" in reading.attributes  # "¿La furosemida a cuánto?" wants a dose
    if (
        reading.yes_no
        and not asks_part
        and subject
        in (
            "allergy",
            "medication",
            "diagnosis",
            "encounter",
            "appointment",
            "lab",
            "immunization",
            "procedure",
        )
    ):
        return "exists"
    if "latest" in ops:
        return "latest"
    if reading.attributes and subject not in ("note",):
        return "attribute"
    return "list"


@dataclass(frozen=True)
class Context:
    """What the planner knows besides the question."""

    today: dt.date
    previous: QuestionPlan | None = None
    previous_rows: tuple[int, ...] = ()  # chunk ids the previous answer cited
    exemplar: tuple[str, float] | None = None  # nearest labelled question: (subject, margin)
    doctors: tuple[str, ...] = ()  # surnames of the patient's own doctors, as recorded


_ATTRIBUTE_SUBJECTS = {"dose": "medication", "treatment": "medication", "reaction": "allergy"}


# A clause that says why the question is asked before asking it: "Antes de formular, …",
# "Para la ronda: …". Its words are not the question's subject.
# Where the words before the question may end: a sentence (a capital letter follows: "Dr. prox.
# cita" is one), a colon or semicolon, or the comma after an opener ("Antes de formular, …",
# "Oiga, …", "Revisando los antecedentes, …").
_CONTEXT_END = re.compile(r"[.!?]+\s+(?=[¿¡A-ZÁÉÍÓÚÑ])|[;:]\s*")
_OPENER = re.compile(
    r"^\W*(?:antes de|para|con el fin de|a fin de|de cara a|revisando|mirando|viendo|"
    r"considerando|dado que|bueno|oiga|oye|mire|perdon|hola|doctora?|buen[oa]s? \w+)\b[^,:;?]*,\s*"
)


# An addendum that says why it is asked ("Pa' la ficha.", "Lo piden en el formulario.")
_WHY_ASKED = re.compile(
    r"^\W*(?:pa['’]?|para|es para|lo (?:pregunto|necesito|piden|pide|pregunta)|me (?:lo )?piden|"
    r"me falta|porque|tengo que|necesito (?:anotar|ponerl|llenar|saberlo)|"
    r"quiero (?:confirm|saber|revis|verific|descart|tener|estar))\w*"
)
_TRAILING_WHY = re.compile(
    r",\s*(?:para|pa['’]?|porque|es para)\s+(?:la|el|los|las|su|sus)\s+[^,]*$"
)
# "Cuando terminó la consulta, ¿qué…?": when, not a question of when (no "¿" before it)
_WHEN_CLAUSE = re.compile(r"^(?:cuando|despues de que|al terminar|al final de)\b[^,:;?¿]*,\s*")
# What is needed, after why: "Para sacarle la cita necesito …"
_NEEDED = re.compile(r"\b(?:necesito|necesitamos|requiero|preciso|me falta|me hace falta)\s+")
# "Para ajustar la analgesia, …": why it is asked (a verb), not what for ("Para la tos, …")
_FOR_DOING = re.compile(r"^\W*(?:para|antes de)\s+\w+(?:ar|er|ir)(?:le|lo|la|se)?\b")


def _letters(text: str) -> str:
    """Lower-case without accents, one character for each of `text`'s (positions kept)."""
    return "".join(unicodedata.normalize("NFD", c)[0].lower()[0] for c in text)


def _asks(reading: _Reading) -> bool:
    """Whether words say what they ask about (a subject, a topic, a named thing)."""
    return bool(
        reading.strong or reading.topics or reading.drugs or reading.conditions
        or reading.demographics
    )  # fmt: skip


def _names_what_is_asked(reading: _Reading, purpose: Symptom | None) -> bool:
    """Whether words name something a question needs: a drug, a condition, a purpose, a lab
    test, a time window or a kind of visit."""
    return bool(
        reading.drugs or reading.classes or reading.conditions or purpose or reading.labs
        or reading.window or reading.encounter_types
    )  # fmt: skip


def _without_context(question: str, context: Context) -> str | None:
    """The question without the words said before it, when they only set the scene: "Voy a
    administrar el medicamento; verifico la FC: ¿cuál fue la última?" asks the heart rate. Words
    that name something the question needs (a drug, a condition, a purpose, a time window, a
    kind of visit) are the question's own, and it is kept whole."""
    text = unicodedata.normalize("NFC", question)
    asked_until = text.rfind("?")  # words after the question are an addendum, not the question
    if asked_until >= 0 and (tail := text[asked_until + 1 :].strip()):
        # "¿Tiene obesidad? El hijo cree que sí.": what the tail says is no question of its own
        after = read(tail, context.today, context.doctors)
        said_nothing = _WHY_ASKED.match(_letters(tail)) is not None or not (
            (set(after.strong) - {"summary"}) or after.attributes or after.operations
            or after.drugs or after.conditions or after.classes or after.window
            or after.demographics or after.statuses
        )  # fmt: skip
        asked = read(text[: asked_until + 1], context.today, context.doctors)
        condition = bool(asked.condition_words) and not after.topics  # "…sangre? una transfusión"
        if said_nothing and (_asks(asked) or bool(asked.attributes) or condition):
            # "¿y cada cuánto? La hija…", "¿Arrastra lupus? Quiero confirmarlo."
            return text[: asked_until + 1]
    if asked_until < 0 and (why := _TRAILING_WHY.search(text)):
        # "Dx de la atención más reciente, para la nota de seguimiento": why, after a comma;
        # ", para el dolor" says what for, and stays
        reason = read(text[why.start() :], context.today, context.doctors)
        if not _names_what_is_asked(reason, reason.purpose) and _asks(
            read(text[: why.start()], context.today, context.doctors)
        ):
            return text[: why.start()]
    cuts = {m.end() for m in _CONTEXT_END.finditer(text) if m.end() < len(text.rstrip())}
    if opener := _OPENER.match(_letters(text)) or _WHEN_CLAUSE.match(_letters(text)):
        cuts.add(opener.end())
    if _FOR_DOING.match(_letters(text)) and (needed := _NEEDED.search(_letters(text))):
        cuts.add(needed.end())  # "Para sacarle la cita necesito el número de documento"
    for cut in sorted((c for c in cuts if asked_until < 0 or c <= asked_until), reverse=True):
        said = read(text[:cut], context.today, context.doctors)
        rest = read(text[cut:], context.today, context.doctors)
        if not _asks(rest):
            continue  # "…: ¿cuál fue la última?" needs what was said before it
        purpose = said.purpose if not _FOR_DOING.match(_letters(text)) else None
        named = _names_what_is_asked(said, purpose)
        summary = said.strong.get("summary") or said.weak.get("summary")
        if named or (summary and _parts(rest)):
            return None  # "Un resumen: diagnósticos, medicación y alergias" is a summary
        return text[cut:]
    return None


def plan_question(question: str, context: Context) -> QuestionPlan:
    if (question_only := _without_context(question, context)) is not None:
        return plan_question(question_only, context)
    reading = read(question, context.today, context.doctors)
    window = reading.window
    subject = _subject(reading)
    cues = tuple(reading.cues)
    entities = bool(reading.drugs or reading.classes or reading.conditions)
    source = "rules"
    previous = context.previous

    if not reading.strong.get("summary") and (parts := _parts(reading)):
        if reading.weak.get("summary"):  # "resúmeme: dx, meds y alergias" says whose they are
            parts = ("demographics", *parts)
        return QuestionPlan("summary", parts=parts, cues=cues)
    if reading.topics and reading.topics[0] in ABOUT_SOMEONE_ELSE:
        # "¿De qué enfermedades sufrían los papás?": not the patient's own diagnoses
        return QuestionPlan("out_of_record", topic=reading.topics[0], cues=cues)
    if subject is None and reading.topics:
        if reading.topics[0] not in RECORDED_TOPICS:
            return QuestionPlan("out_of_record", topic=reading.topics[0], cues=cues)
        subject = RECORDED_TOPICS[reading.topics[0]]  # an imported chart may hold them
    if (
        subject == "medication"
        and _SECTIONS["ANALISIS_Y_PLAN"] in reading.sections
        and reading.strong["note"] >= reading.strong["medication"]
        and not (entities or reading.purpose)
    ):
        subject = "note"  # "plan / tto de la última consulta", "el plan de tratamiento"
    if subject == "note" and reading.topics and reading.topics[0] in RECORDED_TOPICS:
        # "ECG del pte, hallazgos?": what such a record holds (or that it holds none)
        subject = RECORDED_TOPICS[reading.topics[0]]
    if (
        subject in ("encounter", "appointment")
        and reading.conditions
        and reading.yes_no
        and not (reading.encounter_types or reading.attributes or reading.operations)
    ):
        subject = "diagnosis"  # "¿aparece gota en alguna de sus consultas?"
    if subject in ("appointment", "encounter") and not reading.operations:
        # "¿con qué especialidades / doctores ha tenido citas?": those, listed
        subject = next((s for s in ("specialty", "doctor") if reading.strong.get(s)), subject)
    if subject is None and reading.encounter_types:
        subject = "encounter"
    if subject == "encounter" and set(reading.statuses) & {"Cancelled", "NoShow"}:
        subject = "appointment"  # "la última consulta que dejó plantada": a missed appointment
    if subject == "demographics" and "first" in reading.operations:
        # "¿Hace cuántos años tiene artritis?" asks since when, not the age
        if reading.conditions or reading.condition_words:
            subject = "diagnosis"
        elif reading.drugs or reading.classes:
            subject = "medication"
    if subject is None and reading.specialty is not None and not reading.weak:
        subject = "encounter"  # "¿La ha visto cardiología?": the visits of that specialty
    if subject is None and reading.doctor is not None:
        subject = "encounter"  # "¿Cuándo lo vio el Dr. Gómez?": the visits with that doctor
    if subject is None and set(reading.statuses) & {"Attended", "Cancelled", "NoShow"}:
        subject = "appointment"  # "# inasistencias?"
    if subject is None:
        # named things decide the subject of a question without one: "¿Toma losartán?",
        # "¿Tiene diabetes?", "¿Es alérgico a los AINE?" (allergy words are strong cues)
        if reading.drugs or reading.classes:
            subject = "medication"
        elif reading.conditions:
            subject = "diagnosis"
    attribute = reading.attributes[0] if reading.attributes else None
    if attribute == "date" and len(reading.attributes) > 1:
        attribute = reading.attributes[1]
    if attribute == "doctor" and reading.sections and not _ASKS_WHO.search(reading.text):
        attribute = None  # "¿qué plan dejó el dr?" asks the plan, not who wrote it
    if subject == "medication" and attribute == "reaction":
        subject = "allergy"  # "¿qué reacción le da la penicilina?": a drug's reaction is an allergy
    if subject is None and attribute in _ATTRIBUTE_SUBJECTS and previous is None:
        subject = _ATTRIBUTE_SUBJECTS[attribute]
    if subject is None and previous is None and attribute in ("doctor", "specialty"):
        # "¿Quién lo atendió?": the latest visit; "¿con qué especialista es la próxima?": the
        # next; "listado de especialistas": all of them
        subject = "appointment" if "next" in reading.operations else "encounter"
        subject = attribute if "list" in reading.operations else subject
    if previous is not None and not entities and _ELLIPTIC.search(reading.text):
        subject = None  # "¿A qué medicamento?" after "¿Tiene alergias?": still the allergies
    is_follow_up = previous is not None and (
        subject is None
        or reading.refers
        or (not entities and "before" in reading.operations)
        or (subject == "medication" and not entities and _names_a_condition(previous))
        # "¿Quién la diagnosticó?" after "¿Tiene artritis?": the same rows, another attribute
        or (subject == previous.subject and attribute is not None and not entities and not window)
        # "¿Qué le formularon?" after "¿Cuándo fue su última consulta?": at that visit
        or (
            previous.subject == "encounter"
            and subject in ("diagnosis", "medication", "vital")
            and not entities
            and not window
            and bool(_AT_THAT_VISIT.search(reading.text))
        )
    )
    if is_follow_up and previous is not None:
        return _follow_up(reading, previous, context, subject, attribute, window, cues)
    others = max((n for s, n in reading.weak.items() if s != "summary"), default=0)
    if subject is None and reading.weak.get("summary", 0) > others:
        subject = "summary"  # "Resume la historia", "resúmame el caso, qué tiene y qué toma"
    if subject is None and reading.weak:
        weak = max(reading.weak.values())
        guess = next(s for s in PRIORITY if reading.weak.get(s) == weak)
        # "¿le aplicaron la de tétanos?": a weak cue with a thing such records name settles it
        named_record = guess in ("immunization", "procedure") and bool(reading.terms)
        if context.exemplar is None or context.exemplar[0] == guess or named_record:
            agreed = context.exemplar is not None and context.exemplar[0] == guess
            subject, source = guess, "exemplar" if agreed else "weak"
    if subject is None and context.exemplar is not None:
        subject, source = context.exemplar[0], "exemplar"
        if subject == "out_of_record":
            return QuestionPlan(subject, topic="eso", source=source, cues=cues)
        if subject == "unknown":
            return QuestionPlan("unknown", source="none", cues=cues)
    if subject is None and "abnormal" in reading.statuses and not entities:
        subject = "lab"  # "¿labs anormales?", "¿algo fuera de rango?"
    if subject is None:
        if reading.demographics:
            subject = "demographics"
        elif reading.condition_words and reading.yes_no:
            subject = "diagnosis"
        else:
            return QuestionPlan("unknown", source="none", cues=cues)
    if subject == "summary" and (reading.conditions or reading.drugs or reading.classes):
        # "Revise la historia completa y dígame si figura epilepsia": that diagnosis
        subject = "diagnosis" if reading.conditions else "medication"
    if subject == "diagnosis" and (reading.drugs or reading.classes) and not reading.conditions:
        subject = "medication"
    if subject == "medication" and reading.labs and not (reading.drugs or reading.classes):
        subject = "lab"  # "¿cuánto dio el colesterol que le mandaron?": the test, not a drug
    if subject == "lab" and reading.drugs and "dose" in reading.attributes:
        subject = "medication"  # "por función renal, ¿cuánto losartán recibe?": a test has no dose
    if subject == "note" and (reading.conditions or reading.condition_words) and reading.yes_no:
        subject = "diagnosis"  # "¿Le han encontrado gonartrosis?" asks about a diagnosis
    if "abnormal" in reading.statuses and subject in ("note", "diagnosis") and not entities:
        subject = "lab"  # "¿algún examen alterado?": only results lie outside a range
    if subject == "summary":
        attribute = None  # "cuénteme quién es y qué tiene": the summary, not who attended
    plan = _build(reading, subject, attribute, window, cues, source)
    if source == "exemplar" and context.exemplar is not None:
        plan = replace(plan, margin=context.exemplar[1])
    return plan


_JOINED = re.compile(r"\s(?:y|e)\s")


# Topics a seeded record cannot hold but an imported chart can (FHIR Observation,
# Immunization, Procedure): asked as those subjects, abstaining with the topic when absent.
RECORDED_TOPICS = {
    "resultados de laboratorio": "lab",
    "vacunas": "immunization",
    "cirugías": "procedure",
    "procedimientos": "procedure",
    "imágenes diagnósticas": "procedure",  # an electrocardiogram, an ultrasound: procedures
}

# Topics about other people than the patient: whatever else the question names, the record
# holds nothing of theirs.
ABOUT_SOMEONE_ELSE = frozenset({"antecedentes familiares"})


def _parts(reading: _Reading) -> tuple[str, ...]:
    """Two or more listable subjects joined in one question, nothing narrowing them: a summary
    of those subjects only."""
    asked = tuple(s for s in SUMMARY_PARTS if reading.strong.get(s))
    narrowed = (
        reading.drugs
        or reading.classes
        or reading.conditions
        or reading.purpose
        or reading.attributes
        or reading.window
        or set(reading.operations) & {"count", "first", "series", "max", "min"}
    )
    if len(asked) < 2 or narrowed or not reading.joined:
        return ()
    return asked


def _build(
    reading: _Reading,
    subject: str,
    attribute: str | None,
    window: TimeWindow | None,
    cues: tuple[str, ...],
    source: str,
) -> QuestionPlan:
    if subject == "vital" and attribute in ("dose", "reaction", "treatment"):
        attribute = None
    if subject == "medication" and attribute is None and reading.vitals == ["hr"]:
        attribute = "dose"  # "la frecuencia de la metformina": how often, not a heart rate
    if attribute in _ATTRIBUTE_SUBJECTS and subject not in ("medication", "allergy", "diagnosis"):
        attribute = None
    if subject == "appointment" and reading.encounter_types and "next" not in reading.operations:
        subject = "encounter"  # "la última cita por videollamada": visits carry the kind
    if subject in ("note", "encounter") and attribute == "date":
        subject = "encounter"  # "¿Cuándo consultó por urgencias?": the visit's date
    elif subject in ("encounter", "appointment") and (
        reading.sections or reading.strong.get("note")
    ):
        subject = "note"  # "el motivo / el plan de la última consulta", "la nota de urgencias"
    operation = _operation(reading, subject)
    named = reading.drugs or reading.classes or reading.conditions or reading.condition_words
    if (
        named
        and subject in ("medication", "allergy", "diagnosis")
        and operation in ("list", "latest", "attribute")
        and attribute not in ("dose", "doctor", "specialty", "date", "reason")
        and not reading.asks_which
    ):
        operation = "exists"  # "¿Sigue con metformina?", "dx de reflujo?": whether it is there
    if operation == "attribute" and (attribute is None or subject in ("vital", attribute)):
        operation = "list"  # "¿cuánto pesa?": a reading, not an attribute of one
    if subject in ("vital", "demographics") and operation == "list":
        operation = "latest"  # "¿IMC?", "¿saturando cuánto?": the latest reading
    if subject == "note" and operation == "list" and (reading.sections or reading.encounter_types):
        operation = "latest"  # "¿el plan?": the latest note's; what a note says of X: retrieval
    if attribute == "date" and operation in ("list", "attribute"):
        # "¿cuándo fue su última cita?" is the latest; "¿cuándo tiene cita?" the next
        past_status = set(reading.statuses) & {"Attended", "Cancelled", "NoShow"}
        past = past_status or "before" in reading.operations  # "¿la cita anterior?"
        operation = "latest" if subject != "appointment" or past else "next"
        if subject in ("medication", "diagnosis") and not reading.operations:
            operation = "first" if not reading.yes_no else "exists"
    if subject in ("immunization", "procedure"):
        plural = _PLURAL_RECORDED.search(reading.text)
        if (
            operation in ("latest", "attribute")
            and plural
            and not _EXPLICIT_LATEST.search(reading.text)
        ):
            operation = "list"  # "¿qué vacunas tiene y cuándo?": every one, with its date
        if (
            reading.terms
            and operation in ("list", "latest", "attribute")
            and (
                attribute == "date"  # "¿en qué fecha le pusieron la del tétanos?": whether, when
                or not (_WH_START.search(reading.text) or _EXPLICIT_LATEST.search(reading.text))
            )
        ):
            operation = "exists"  # "¿tiene la vacuna de la influenza?": whether, and when
    if subject == "appointment" and operation == "list" and not reading.statuses:
        operation = "next" if "next" in reading.operations else operation
    if subject in ("doctor", "specialty") and attribute is None:
        attribute = subject
    if attribute == "specialty" and subject == "doctor":
        subject = "specialty"
    # the first status this subject's rows have ("en total" says nothing of an appointment's)
    status = next((st for st in reading.statuses if st in _STATUSES.get(subject, ())), None)
    if subject == "allergy" and status is None and _NON_DRUG.search(reading.text):
        status = "nondrug"  # "¿alergias a alimentos o que no sean medicamentos?"
    conditions = tuple(reading.conditions)
    condition_words: tuple[str, ...] = ()
    treats = subject == "medication" and attribute == "treatment"
    purpose_classes = list(reading.purpose.atc_prefixes) if treats and reading.purpose else []
    if (subject == "diagnosis" or treats) and not conditions and reading.condition_words:
        condition_words = tuple(reading.condition_words)  # "¿qué toma para la diarrea?"
    if subject == "diagnosis" and attribute == "treatment":
        subject, operation = "medication", "list"
    return QuestionPlan(
        subject=subject,
        operation=operation,
        attribute=attribute
        if operation in ("attribute", "latest", "next", "first", "list")
        else None,
        vitals=tuple(dict.fromkeys(reading.vitals)),
        drugs=tuple(reading.drugs),
        drug_classes=tuple(dict.fromkeys(reading.classes + purpose_classes)),
        drug_class_label=reading.class_label,
        purpose=reading.purpose.label if purpose_classes and reading.purpose else None,
        labs=tuple(reading.labs) if subject == "lab" else (),
        lab_label=reading.lab_label if subject == "lab" else None,
        terms=tuple(reading.terms) if subject in _TERMED else (),
        topic=reading.topics[0] if subject in RECORDED_TOPICS.values() and reading.topics else None,
        conditions=conditions,
        condition_words=condition_words,
        specialty=reading.specialty,
        doctor=reading.doctor,
        encounter_type=reading.encounter_types[0] if reading.encounter_types else None,
        status=status,
        window=window,
        demographic=_demographic(reading.demographics),
        note_section=reading.sections[0] if reading.sections else None,
        source=source,
        cues=cues,
    )


# What a visit recorded, asked in the past tense right after a question about that visit.
_AT_THAT_VISIT = re.compile(
    r"\b(formularon|diagnosticaron|recetaron|mandaron|dieron|encontraron|dejaron|indicaron|"
    r"tomaron|midieron)\b"
)
_HOW_TAKEN = re.compile(
    r"\bcomo\s+(?:se\s+)?(?:le|lo|la|los|las|se)\s+(?:lo\s+|la\s+|los\s+|las\s+)?"
    r"(?:indic|formul|mand|recet|dej|pus|tom|dan|dier)\w*"
)
_STRENGTH = re.compile(
    r"\b(?:es|son|de)\s+\d+(?:[.,]\d+)?\s*(?:mg|mcg|g|ml|miligramos)\b|\bde\s+\d+\s+o\s+(?:de\s+)?\d+"
)
_HOW_MUCH = re.compile(r"(?<!hace )\bcuanto\b(?! tiempo| hace)")
_ORDINALS = {"primero": 0, "primer": 0, "primera": 0, "segundo": 1, "segunda": 1,
             "tercero": 2, "tercer": 2, "tercera": 2, "cuarto": 3, "cuarta": 3}  # fmt: skip
# A question that only asks which of the previous answer's things ("¿a qué medicamento?").
_ELLIPTIC = re.compile(r"^(?:y\s+)?(?:a|con|de|para|por|en)\s+(?:que|cual|cuales|quien)\b")
_PROCEDURE_ENDINGS = ("ectomia", "otomia", "ostomia", "scopia", "plastia", "centesis", "rrafia")
# The statuses each subject's rows can be filtered by.
_STATUSES = {
    "medication": ("active", "inactive", "ever"),
    "diagnosis": ("active",),
    "lab": ("abnormal",),
    "allergy": ("nondrug",),
    "appointment": ("Attended", "Cancelled", "NoShow", "Scheduled", "Confirmed", "upcoming"),
    "doctor": ("Attended", "Cancelled", "NoShow", "Scheduled", "Confirmed", "upcoming"),
    "specialty": ("Attended", "Cancelled", "NoShow", "Scheduled", "Confirmed", "upcoming"),
}
_TERMED = frozenset({"immunization", "procedure", "allergy"})


def _follow_up(
    reading: _Reading,
    previous: QuestionPlan,
    context: Context,
    subject: str | None,
    attribute: str | None,
    window: TimeWindow | None,
    cues: tuple[str, ...],
) -> QuestionPlan:
    """A question leaning on the previous turn: keep what it does not change."""
    rows = context.previous_rows
    if subject is None and reading.weak.get("medication") and _names_a_condition(previous):
        subject = "medication"  # "¿Tiene asma?" → "¿y qué le han dado para eso?"
    if "before" in reading.operations and subject in ("appointment", "encounter"):
        if previous.subject in ("vital", "lab"):
            subject = None  # "¿Y en la cita de antes?" after a reading: that visit's reading
    ordinal = next((_ORDINALS[w] for w in reading.text.split() if w in _ORDINALS), None)
    if ordinal is not None and ordinal < len(rows):
        rows = (rows[ordinal],)  # "¿y el segundo cada cuánto?": the second thing listed
    if subject is not None and subject != previous.subject and attribute is None:
        plan = replace(
            _build(reading, subject, None, window, cues, "rules"), follow_up=True, rows=rows
        )
        if _treats(plan, previous):
            # "¿Tiene gota?" → "¿Qué tratamiento le dieron (para eso)?": for that condition
            return replace(
                plan,
                operation="list",
                conditions=previous.conditions,
                condition_words=previous.condition_words,
                rows=rows,
            )
        return plan
    base = replace(previous, follow_up=True, source="follow_up", rows=(), cues=cues)
    if window is not None:
        base = replace(base, window=window)
    if previous.subject in ("vital", "lab") and (
        window is not None or "series" in reading.operations
    ):
        return replace(base, operation="series")  # "¿Y cómo ha estado en el último año?"
    if "before" in reading.operations:
        op = (
            previous.operation
            if previous.operation in ("latest", "list", "attribute")
            else "latest"
        )
        return replace(base, operation=op, rows=rows, before=True)
    if attribute == "treatment" or (attribute is None and "tratamiento" in " ".join(cues)):
        return replace(
            base,
            subject="medication",
            operation="list",
            attribute=None,
            drugs=(),
            rows=rows,
            vitals=(),
        )
    if attribute == "dose" or (
        attribute is None and previous.subject == "medication" and _HOW_MUCH.search(reading.text)
    ):  # "¿y la dosis?", "¿cuánto?" after a drug
        return replace(
            base, subject="medication", operation="attribute", attribute="dose", rows=rows
        )
    if attribute is not None:
        op = "attribute"
        if attribute == "date" and "first" in reading.operations:
            op = "first"
        return replace(base, operation=op, attribute=attribute, rows=rows)
    if "first" in reading.operations:  # "¿Desde cuándo?" after "¿Qué reacción le da?"
        return replace(base, operation="first", attribute=None, rows=rows)
    if "count" in reading.operations:
        return replace(base, operation="count")
    valid = [st for st in reading.statuses if st in _STATUSES.get(base.subject, ())]
    if valid:
        return replace(base, status=valid[0])
    if subject is not None:
        return replace(_build(reading, subject, None, window, cues, "rules"), follow_up=True)
    return base


def _names_a_condition(plan: QuestionPlan) -> bool:
    return plan.subject == "diagnosis" and bool(plan.conditions or plan.condition_words)


def _treats(plan: QuestionPlan, previous: QuestionPlan) -> bool:
    """A question about medications right after one about a named condition, naming nothing
    of its own, asks what treats that condition."""
    return (
        plan.subject == "medication"
        and _names_a_condition(previous)
        and not (plan.drugs or plan.drug_classes or plan.conditions or plan.window)
    )


def warm_up_planner() -> None:
    """Build the vocabularies a first question would otherwise wait for (~0.3 s)."""
    plan_question("¿Le pido la última presión?", Context(dt.date.today()))
