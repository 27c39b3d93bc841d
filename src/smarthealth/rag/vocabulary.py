"""The words the planner knows, built from data: the clinical lexicon and drug classes shipped
under `rag/data/`, and the catalogs (drugs by ingredient, base name without its salt and brand;
conditions by ICD-10 code, description, common name and aliases; specialties).

Also the typo tolerance: a word the vocabulary does not know is replaced by the known word it
sounds like ("sita" → "cita", "alerjias" → "alergias", "precion" → "presion") or, for longer
words, the known word one or two edits away (`rapidfuzz`, optimal string alignment).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Protocol, TypeVar

from rapidfuzz import process
from rapidfuzz.distance import OSA
from wordfreq import get_frequency_dict

from smarthealth.rag.text import fold

_WORD = re.compile(r"[a-z0-9°]+")

# Salt and ester words: "warfarina" names "warfarina sódica", "losartán" names "losartán potásico".
SALTS = frozenset(
    """sodica sodico potasico potasica clorhidrato maleato succinato tartrato fumarato
    cilexetilo etexilato axetilo trometamina trometamol dietilamina acetato propionato
    dipropionato furoato citrato fosfato besilato mesilato micronizada micronizado
    macrocristales disoproxil calcica calcico magnesico sulfato bromuro hidrobromuro
    monohidrato dihidrato trihidrato hemihidrato valerato decanoato lactato gluconato""".split()
)
# Names in common use that the catalog does not hold (international names of Colombian ones).
DRUG_ALIASES = {"paracetamol": "acetaminofén", "aspirina": "ácido acetilsalicílico"}
# Words of brand names that name no drug by themselves ("Dolex Forte", "… Adulto").
BRAND_QUALIFIERS = frozenset(
    "adulto adultos pediatrico infantil forte plus retard compuesto gotas jarabe crema xr".split()
)
# Words in condition names that do not identify the condition.
CONDITION_FILLERS = frozenset(
    """no especificada especificado especificadas especificados otra otras otro otros sin
    mencion de del la las el los y o en por con a al tipo sitio""".split()
)
# Words that qualify a diagnosis without naming one ("dx principal", "diagnósticos activos").
QUALIFIERS = frozenset(
    """principal principales secundario secundarios secundaria activo activos activa activas
    actual actuales registrado registrados registrada registradas cronico cronicos cronica
    cronicas importante importantes reciente recientes previo previos previas conocido
    conocidos medico medicos medica medicas tiene tienen todos todas cuales otros algun
    alguno alguna ninguno ninguna diferencial diferenciales vigente vigentes pendiente
    pendientes paciente problema problemas""".split()
)

# Ordinary words that must never be "corrected" into a clinical one ("pasa" is not "pesa").
COMMON = frozenset(
    """a al algo algun alguna alguno algunos algunas ante antes asi aun ayer bien cada casa
    como con cual cuales cuando cuanto cuanta cuantos cuantas de del desde donde dia dias
    dijo dice dicen duele dolor durante e el ella ellos en entre era es esa ese eso esta
    estaba estado estan estar este esto estos estuvo fue fueron ha hace hacia han hasta hay
    hecho hizo hoy ido la las le les lo los mal mas me mes meses mi mucho muy nada ni no
    nos nunca o otra otro para pasa paso pasado pero poco por porque puede pudo que queda
    quedo quien se sea semana semanas senor senora ser si siempre sin sobre su sus tal
    tambien tanto tenia tener tiene tienen toda todo todos tuvo un una uno unos usted va
    vez veces vino visto vista y ya ano anos paciente doctor doctora medico medica dado
    dieron mando sabe saber siente sintio esto tengo favor dime dame decir muestra mostrar
    cual cuales hubo habia sido pesado venido vuelto tomado actual estado algunos tenido
    tenia tener recibido presentado usado hecho puesto decidido dicho llevado seguido
    tomada tomadas tomados registro registrada registrado pasas pasame pase necesito
    necesita quiero quisiera puedes podrias regalas regalame cumpliendo presente confirmar
    confirme informar informe indicar indique verificar verifique revisar revise confirma mire
    mira oiga oye bueno perdon confirmas rapido rapidito nomas reporte reportes reporta
    pasai fijate fijese""".split()
)


@dataclass(frozen=True)
class Phrase:
    """One line of a phrase table: its words (a trailing `*` is a prefix) and what it means."""

    words: tuple[str, ...]
    meaning: tuple[str, ...]

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = [
            re.escape(w[:-1]) + r"[a-z0-9°]*" if w.endswith("*") else re.escape(w)
            for w in self.words
        ]
        return re.compile(r"(?<![a-z0-9°])" + r"\s+".join(parts) + r"(?![a-z0-9°])")


def _table(name: str) -> list[tuple[str, list[str]]]:
    text = resources.files("smarthealth.rag").joinpath("data", name).read_text("utf-8")
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split("|")]
        rows.append((cells[0], cells[1:]))
    return rows


def _cues(cell: str) -> tuple[str, ...]:
    """`s:vital v:bp` → two cues; a topic (`t:…`) is the rest of the cell, spaces included."""
    head, sep, topic = cell.partition("t:")
    if sep and (not head or head.endswith(" ")):
        return (*head.split(), f"t:{topic.strip()}")
    return tuple(cell.split())


@functools.cache
def lexicon() -> tuple[tuple[Phrase, re.Pattern[str]], ...]:
    """The lexicon's phrases, longest first (a longer phrase is read before its words)."""
    phrases = [Phrase(tuple(fold(p).split()), _cues(c[0])) for p, c in _table("lexicon.txt")]
    phrases.sort(key=lambda p: (-len(p.words), -sum(len(w) for w in p.words)))
    return tuple((p, p.pattern) for p in phrases)


@dataclass(frozen=True)
class DrugClass:
    phrase: Phrase
    atc_prefixes: tuple[str, ...]
    label: str


class _Named(Protocol):
    @property
    def phrase(self) -> Phrase: ...


_N = TypeVar("_N", bound=_Named)


def _longest_first(items: list[_N]) -> tuple[tuple[_N, re.Pattern[str]], ...]:
    """Each entry with its pattern, the longest phrase first (read before its words)."""
    items.sort(key=lambda i: (-len(i.phrase.words), -sum(len(w) for w in i.phrase.words)))
    return tuple((i, i.phrase.pattern) for i in items)


def _named(text: str) -> Phrase:
    return Phrase(tuple(fold(text).split()), ())


@functools.cache
def drug_classes() -> tuple[tuple[DrugClass, re.Pattern[str]], ...]:
    return _longest_first(
        [DrugClass(_named(p), tuple(c[0].split()), c[1]) for p, c in _table("drug_classes.txt")]
    )


@dataclass(frozen=True)
class LabTest:
    phrase: Phrase
    loinc: tuple[str, ...]
    label: str


@functools.cache
def lab_tests() -> tuple[tuple[LabTest, re.Pattern[str]], ...]:
    """Laboratory tests named in Spanish, with their LOINC codes (`data/labs.txt`); longest
    first."""
    return _longest_first(
        [LabTest(_named(p), tuple(c[0].split()), c[1]) for p, c in _table("labs.txt")]
    )


@functools.cache
def _english() -> dict[str, tuple[str, ...]]:
    return {fold(p): tuple(c[0].split()) for p, c in _table("terms_en.txt")}


@functools.lru_cache(maxsize=8192)
def translations(word: str) -> tuple[str, ...]:
    """A Spanish word and the English words imported records use for it (`data/terms_en.txt`):
    "hipertension" → ("hipertension", "hypertension", "hypertensive")."""
    english = _english()
    found = english.get(word) or next((v for k, v in english.items() if same_word(word, k)), ())
    return (word, *found)


@dataclass(frozen=True)
class Symptom(DrugClass):
    conditions: tuple[str, ...] = ()  # ICD-10 codes it names ("la presión": I10)


@functools.cache
def symptoms() -> tuple[tuple[Symptom, re.Pattern[str]], ...]:
    """Symptoms named after "para" in "¿qué toma para el dolor?", with the drug classes that
    treat them and the conditions they name (`data/symptoms.txt`); longest first."""
    return _longest_first(
        [
            Symptom(_named(p), tuple(c[0].split()), c[1], tuple(c[2].split()) if c[2:] else ())
            for p, c in _table("symptoms.txt")
        ]
    )


def same_word(a: str, b: str) -> bool:
    """One word, inflected ("amlodipina"/"amlodipino", "cardiaca"/"cardiaco"): equal, or
    sharing at least five first letters and differing by at most three at the end."""
    if a == b:
        return True
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n >= 5 and n >= max(len(a), len(b)) - 3


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


@functools.cache
def drug_names() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(catalog ingredient, the words that name it): its first component without salt words,
    each name in parentheses, and each brand."""
    from smarthealth.ingest.catalogs import load_catalog_files

    names: set[tuple[str, tuple[str, ...]]] = set()
    for row in load_catalog_files().medications:
        ingredient = row.active_ingredient
        first = ingredient.split("+")[0]
        texts = [re.sub(r"\(.*?\)", " ", first), *re.findall(r"\((.*?)\)", first)]
        texts.append(row.commercial_name)
        texts += [alias for alias, name in DRUG_ALIASES.items() if name == ingredient]
        for text in texts:
            kept = tuple(
                w
                for w in words(text)
                if len(w) >= 4 and w not in SALTS and w not in BRAND_QUALIFIERS
            )
            if kept:
                names.add((ingredient, kept))
    return tuple(sorted(names))


def base_name(ingredient: str) -> str:
    """What a clinician calls a recorded ingredient: "warfarina" for "warfarina sódica",
    "amlodipino" for "amlodipino + valsartán"."""
    first = re.sub(r"\(.*?\)", " ", ingredient.split("+")[0])
    # a salt named first is the drug's usual name ("sulfato ferroso"), kept
    kept = [w for i, w in enumerate(first.split()) if i == 0 or fold(w) not in SALTS]
    return " ".join(kept) or ingredient


@functools.cache
def atc_by_ingredient() -> dict[str, tuple[str, ...]]:
    from smarthealth.ingest.catalogs import load_catalog_files

    found: dict[str, set[str]] = {}
    for row in load_catalog_files().medications:
        found.setdefault(row.active_ingredient, set()).add(row.atc_code)
    return {k: tuple(sorted(v)) for k, v in found.items()}


@functools.cache
def condition_names() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(ICD-10 code, the content words of one of its names), for every name the catalogs
    give: the CIE-10 description, the common name and its aliases."""
    from smarthealth.ingest.catalogs import load_catalog_files

    catalogs = load_catalog_files()
    names: set[tuple[str, tuple[str, ...]]] = set()

    def add(code: str, text: str) -> None:
        kept = tuple(w for w in words(text) if w not in CONDITION_FILLERS and len(w) >= 2)
        if kept and not _lexicon_only(kept):
            names.add((code, kept))

    for d in catalogs.diagnoses:
        add(d.icd_code, d.description)
    for c in catalogs.conditions:
        for name in (c.label, *c.aliases):
            add(c.icd_code, name)
    return tuple(sorted(names))


def _lexicon_only(name: tuple[str, ...]) -> bool:
    """True for a name the lexicon already reads as something else: "Alergia no especificada"
    names no condition a clinician asks about when saying "alergias"."""
    text = " ".join(name)
    for _, pattern in lexicon():
        match = pattern.fullmatch(text)
        if match:
            return True
    return False


@functools.cache
def condition_labels() -> dict[str, str]:
    """The name a clinician uses for each code (common name, else the CIE-10 description)."""
    from smarthealth.ingest.catalogs import load_catalog_files

    catalogs = load_catalog_files()
    labels = {d.icd_code: d.description for d in catalogs.diagnoses}
    labels.update({c.icd_code: c.label for c in catalogs.conditions})
    return labels


@functools.cache
def chronic_conditions() -> frozenset[str]:
    """ICD-10 codes the conditions catalog calls chronic (hypertension, diabetes, COPD, …)."""
    from smarthealth.ingest.catalogs import load_catalog_files

    return frozenset(c.icd_code for c in load_catalog_files().conditions if c.chronic)


_SPECIALTY_ALIASES = {
    "MED_GENERAL": ("medico general", "medicina general"),
    "MED_FAMILIAR": ("medico familiar", "medicina familiar"),
    "MED_INTERNA": ("internista*", "medicina interna"),
    "CIRUGIA_GENERAL": ("cirujano*", "cirugia general"),
    "NUTRICION_DIETETICA": ("nutricion*", "dietista*"),
    "MED_FISICA_REHABILITACION": ("fisiatr*", "rehabilitacion"),
    "ORTOPEDIA_TRAUMATOLOGIA": ("ortoped*", "traumatolog*"),
    "GINECOLOGIA_OBSTETRICIA": ("ginecolog*", "obstetr*"),
    "OTORRINOLARINGOLOGIA": ("otorrino*",),
    "MED_URGENCIAS": ("medicina de urgencias",),
}


@functools.cache
def specialties() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(specialty name as in the catalog, a pattern that names it: "cardiólogo" names
    Cardiología)."""
    from smarthealth.ingest.catalogs import load_catalog_files

    found: list[tuple[str, re.Pattern[str]]] = []
    for row in load_catalog_files().specialties:
        phrases = list(_SPECIALTY_ALIASES.get(row.code, ()))
        if not phrases:
            first = fold(row.name).split()[0]
            for ending in ("logia", "iatria"):
                if first.endswith(ending):
                    first = first[: -len(ending) + (3 if ending == "logia" else 4)] + "*"
            phrases.append(first)
        for phrase in phrases:
            found.append((row.name, Phrase(tuple(phrase.split()), ()).pattern))
    return tuple(found)


def _sound(word: str) -> str:
    """How a Spanish word sounds, roughly: the spelling mistakes of ear (c/s/z, b/v, g/j, h)."""
    w = word.replace("h", "").replace("v", "b").replace("z", "s").replace("ll", "y")
    w = re.sub(r"c([ei])", r"s\1", w)
    w = re.sub(r"g([ei])", r"j\1", w)
    w = w.replace("qu", "k").replace("c", "k").replace("x", "ks")
    return re.sub(r"(.)\1", r"\1", w)


# Chat shorthand clinicians type, read as the words they stand for ("prox cita con q medico?").
SHORTHAND = {
    "q": "que", "k": "que", "xq": "por que", "pq": "por que", "pcte": "paciente",
    "pte": "paciente", "prox": "proxima", "ult": "ultima", "ultm": "ultima", "tb": "tambien",
    "nro": "numero", "n°": "numero", "num": "numero", "cant": "cantidad",
    "hosp": "hospitalizacion", "hospi": "hospitalizacion", "urg": "urgencias",
    "meds": "medicamentos", "ctrl": "control", "cx": "cirugia", "doc": "doctor",
    "sig": "siguiente", "x": "por", "mg": "miligramos", "qien": "quien", "quen": "quien",
    "kien": "quien", "qn": "quien", "fn": "fecha de nacimiento", "fnac": "fecha de nacimiento",
    "qx": "quirurgicos", "esp": "especialidad", "esps": "especialidades", "frec": "frecuencia",
    "nac": "nacimiento", "evol": "evolucion", "sgte": "siguiente", "sgt": "siguiente",
}  # fmt: skip

# Words of time windows (read by the planner's patterns, not the lexicon): known, correctable.
TIME_WORDS = """dia dias semana semanas mes meses ano anos ultimo ultimos ultima ultimas pasado
    pasada enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre
    diciembre curso semestre semestres trimestre trimestres seis siete ocho nueve doce""".split()


@dataclass(frozen=True)
class Vocabulary:
    exact: frozenset[str]
    stems: tuple[str, ...]
    by_sound: dict[str, str]
    core: tuple[str, ...]  # the lexicon's words: preferred corrections, also for short words
    choices: tuple[str, ...]  # every correction target, the lexicon's words first
    spelled: tuple[str, ...]  # whole words of the lexicon's stems: targets one edit away only


@functools.cache
def vocabulary() -> Vocabulary:
    core: set[str] = set(TIME_WORDS)
    stems: set[str] = set()
    for phrase, _ in lexicon():
        for w in phrase.words:
            if w.endswith("*"):
                stems.add(w[:-1])
                if len(w) > 4:  # "proxim*" → "proxima", "proximo": typos are of whole words
                    endings = ("", "s") if w[-2] in "aeiou" else ("a", "o", "as", "os")
                    core.update(w[:-1] + ending for ending in endings)
            else:
                core.add(w)
    names: set[str] = set()
    for drug_class, _ in drug_classes():
        names.update(w.rstrip("*") for w in drug_class.phrase.words)
    for _, name in drug_names():
        names.update(name)
    for _, name in condition_names():
        names.update(w for w in name if len(w) >= 4)
    for test, _ in lab_tests():
        names.update(w.rstrip("*") for w in test.phrase.words if len(w) >= 4)
    names.update(w for w in _english() if len(w) >= 4)
    core = {w for w in core if not w.isdigit()}
    names = {w for w in names if not w.isdigit()} - core
    by_sound: dict[str, str] = {}
    for w in [*sorted(core), *sorted(stems), *sorted(names)]:
        by_sound.setdefault(_sound(w), w)
    # short aliases ("hta", "epoc" is longer) are known as they are, never correction targets
    short = {w for _, name in condition_names() for w in name if len(w) == 3 and w.isalpha()}
    return Vocabulary(
        frozenset(core | names | short),
        tuple(sorted(stems, key=len, reverse=True)),
        by_sound,
        tuple(sorted(core)),
        (*sorted(core), *sorted(names)),
        tuple(sorted((_spelled_out(stems) | _plurals(core)) - core - names)),
    )


def _spelled_out(stems: set[str], per_stem: int = 10) -> set[str]:
    """The commonest Spanish words each longer stem stands for ("alergi*" → "alergia",
    "inasist*" → "inasistencia"): whole words a typo can be measured against ("alrgia" is one
    edit from "alergia", two from the stem)."""
    zipf = spanish_frequencies()
    words = sorted(zipf)
    found: set[str] = set()
    for stem in stems:
        if len(stem) < 5:
            continue
        start = bisect.bisect_left(words, stem)
        end = bisect.bisect_left(words, stem + "\uffff")
        starting = sorted(words[start:end], key=lambda w: -zipf[w])[:per_stem]
        found.update(w for w in starting if w.isalpha())
    return found


def _plurals(words: set[str]) -> set[str]:
    """The plurals Spanish uses of the lexicon's words ("fecha" → "fechas"): typos of them are
    one edit from the plural, two from the word."""
    zipf = spanish_frequencies()
    return {
        plural
        for w in words
        if len(w) >= 4 and w.isalpha()
        for plural in (w + "s", w + "es")
        if zipf.get(plural, 0.0) >= ORDINARY_ZIPF
    }


def _known(word: str, vocab: Vocabulary) -> bool:
    return (
        word in vocab.exact
        or word in COMMON
        or word in QUALIFIERS
        or any(word.startswith(s) for s in vocab.stems if len(s) >= 3)
    )


# A word at least this common in Spanish (Zipf: log10 of uses per billion words) is taken as
# typed on purpose when the correction would be a rarer word: "pido" (4.6) is not "pico" (4.4),
# "mire" is not "mide", "relacione" is not "reaccione"; "vistas" (4.2) may still be "visitas"
# (4.5), and "sita" or "alerjias", rare, are the typos they look like.
ORDINARY_ZIPF = 3.0


@functools.cache
def spanish_frequencies() -> dict[str, float]:
    """Zipf frequency of each accent-folded Spanish word (wordfreq's list, installed with it;
    nothing is downloaded)."""
    zipf: dict[str, float] = {}
    for word, frequency in get_frequency_dict("es").items():
        value = math.log10(frequency * 1e9)
        if value < ORDINARY_ZIPF - 1:
            continue
        key = fold(word)
        zipf[key] = max(value, zipf.get(key, 0.0))
    return zipf


@functools.lru_cache(maxsize=8192)
def correct(word: str) -> str:
    """The known word a misspelt `word` stands for, or `word` itself."""
    fixed = _correction(word)
    if fixed != word:
        zipf = spanish_frequencies()
        typed = zipf.get(word, 0.0)
        if typed >= ORDINARY_ZIPF and typed >= zipf.get(fixed, 0.0):
            return word
    return fixed


def _correction(word: str) -> str:
    vocab = vocabulary()
    if len(word) < 3 or word.isdigit() or word in vocab.exact or word in COMMON:
        return word
    if word in QUALIFIERS:
        return word
    # a word that starts with a short stem ("medica*") may still be a longer one misspelt
    # ("medicametnos" → "medicament…"): the longer stems are tried first
    starts = [st for st in vocab.stems if len(st) >= 3 and word.startswith(st)]
    knowing = max(starts, key=len, default="")
    if not knowing and (sound := _sound(word)) in vocab.by_sound:
        return vocab.by_sound[sound]
    for stem in vocab.stems:  # "diagnostio" → "diagnostic…"; longest first
        if knowing and len(stem) < len(knowing) + 3:
            return word  # "alergias" is "alergi…", not a misspelt "alergic…"
        if len(stem) < 6 or len(word) < len(stem) - 1:
            continue
        # the stem's letters with one typo: a changed, swapped, missing or extra letter
        # ("medicametos" → "medicament…", "medicamenntos" → "medicament…")
        fits = sorted(
            (OSA.distance(word[:size], stem), len(word) - size, size)
            for size in (len(stem), *((len(stem) - 1, len(stem) + 1) if len(stem) >= 9 else ()))
            if size <= len(word)
        )
        if fits and fits[0][0] <= 1:
            # the stem's whole word one edit away, when there is one ("especialidaes" →
            # "especialidades", not "especialidad" + "s")
            wholes = [w for w in (*vocab.core, *vocab.spelled) if w.startswith(stem)]
            whole = process.extractOne(word, wholes, scorer=OSA.distance, score_cutoff=1)
            if whole:
                return str(whole[0])
            return stem + word[fits[0][2] :]
    if knowing:
        return word
    if len(word) <= 5:  # "sagre" → "sangre", "ctas" → "citas": one edit into the lexicon
        return _closest_core(word, vocab) if len(word) >= 4 else word
    limit = 1 if len(word) < 9 else 2
    # the first of the closest: the lexicon's words before drug and condition names
    best = process.extractOne(word, vocab.choices, scorer=OSA.distance, score_cutoff=limit)
    # a stem's whole word or a plural one edit away, read as that word would be ("fehcas" →
    # "fechas"), when nearer than any other ("especialidaes" → "especialidades")
    spelled = process.extractOne(word, vocab.spelled, scorer=OSA.distance, score_cutoff=1)
    if spelled and 0 < spelled[1] and (best is None or spelled[1] < best[1]):
        return _correction(spelled[0])
    return best[0] if best else word


def _closest_core(word: str, vocab: Vocabulary) -> str:
    """The lexicon word one edit away, with the same first letter, when there is no doubt which:
    the only one, else the only one of the same length (a changed or swapped letter), else of
    one more letter (a letter left out). A short word has too many neighbours to guess more."""
    near = [c for c, _, _ in process.extract(word, vocab.core, scorer=OSA.distance,
                                             score_cutoff=1, limit=None)]  # fmt: skip
    # same first letter ("acio" is not "nacio"), or the first two swapped ("emses" → "meses")
    near = [c for c in near if c[0] == word[0] or c[:2] == word[1::-1]]
    if len(near) == 1:
        return near[0]
    for extra in (0, 1):
        kind = [c for c in near if c[0] == word[0] and len(c) == len(word) + extra]
        if kind:
            return kind[0] if len(kind) == 1 else word
    return word


@functools.lru_cache(maxsize=4096)
def split_joined(word: str) -> str:
    """Two known words typed without the space between them ("tenidoeste" → "tenido este"),
    or `word` itself."""
    vocab = vocabulary()
    if len(word) < 7 or _known(word, vocab):
        return word
    for cut in range(2, len(word) - 1):
        left, right = word[:cut], word[cut:]
        if _known(left, vocab) and _known(right, vocab) and len(max(left, right, key=len)) > 3:
            return f"{left} {right}"
    return word
