"""Which recorded diagnoses or drugs a question names ("¿Tiene dislipidemia?", "¿Toma losartán?").

A diagnosis is named by its ICD-10 code and description and by the common name and aliases of
the clinical-knowledge catalog (`conditions.json`): clinicians say "dislipidemia" or "colesterol
alto", the record says "Hiperlipidemia no especificada". Words match whole, allowing a short
inflected ending ("insomnio"/"insomnios", "cardiaca"/"cardiaco") but never a shared beginning
alone: "hipertensión" is not "hiperlipidemia", "hipotiroidismo" is not "hipertiroidismo".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from smarthealth.rag.text import fold, lexical_query

# Words that ask *whether* something is recorded, not *what*.
GENERIC = frozenset(
    """diagnostico diagnosticos diagnosticado diagnosticada diagnosticaron padece padecido
    sufre sufrido tenido antecedente antecedentes registrados registradas cuadro enfermo
    enferma""".split()
)
MIN_SHARED = 5  # letters two different words must share to be one word inflected
MAX_ENDING = 3  # letters of ending they may differ by
COVERED = 0.75  # share of the asked words one name must contain
_ALTERNATIVES = re.compile(r"\s(?:o|u|y|e)\s|,|;|/")
_WORD = re.compile(r"[a-z0-9]+")
# Words of brand names that name no drug by themselves ("Dolex Forte", "… Adulto").
_BRAND_QUALIFIERS = frozenset(
    "adulto adultos pediatrico infantil forte plus retard compuesto gotas jarabe crema".split()
)


def asked_conditions(question: str) -> list[tuple[str, ...]]:
    """The conditions a question names, each as its content words ("¿hipertensión o diabetes?"
    names two); empty when it names none ("¿Tiene diagnósticos registrados?")."""
    asked = []
    for part in _ALTERNATIVES.split(fold(question)):
        query = lexical_query(part) or ""
        words = tuple(
            w for w in (t.rstrip(":*") for t in query.split(" | ") if t) if w not in GENERIC
        )
        if words:
            asked.append(words)
    return asked


def same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    shared = min(len(a), len(b)) if shared is None else shared
    return shared >= MIN_SHARED and shared >= max(len(a), len(b)) - MAX_ENDING


def _covers(asked: Sequence[str], have: Sequence[str]) -> bool:
    """True when `have` contains (nearly) every word of `asked`."""
    found = sum(1 for word in asked if any(same_word(word, h) for h in have))
    return bool(asked) and found / len(asked) >= COVERED


def names_condition(asked: tuple[str, ...], names: Iterable[str]) -> bool:
    """True when one of `names` contains (nearly) every word of the asked condition."""
    return any(_covers(asked, _WORD.findall(fold(name))) for name in names)


@functools.cache
def _common_names() -> dict[str, tuple[str, ...]]:
    from smarthealth.ingest.catalogs import load_catalog_files

    return {c.icd_code: (c.label, *c.aliases) for c in load_catalog_files().conditions}


def diagnosis_names(icd_code: str, description: str) -> tuple[str, ...]:
    return (icd_code, description, *_common_names().get(icd_code, ()))


@functools.cache
def _catalog_names() -> tuple[tuple[str, ...], ...]:
    """Every common name and alias of the catalog, as its words."""
    names = {name for names in _common_names().values() for name in names}
    return tuple(sorted(tuple(_WORD.findall(fold(name))) for name in names))


def names_catalog_condition(question: str) -> bool:
    """True when the question names a known condition in full ("¿Tiene rinitis alérgica?"),
    so the words of that name ("alérgica") say nothing about what else is asked."""
    return any(
        _covers(asked, name) and _covers(name, asked)
        for asked in asked_conditions(question)
        for name in _catalog_names()
    )


def question_names_diagnosis(question: str, icd_code: str, description: str) -> bool:
    names = diagnosis_names(icd_code, description)
    return any(names_condition(asked, names) for asked in asked_conditions(question))


@functools.cache
def _drug_names() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(ingredient as recorded, the words that name it): the ingredient's first component
    ("amoxicilina" for "amoxicilina + ácido clavulánico") and each brand."""
    from smarthealth.ingest.catalogs import load_catalog_files

    names: set[tuple[str, tuple[str, ...]]] = set()
    for row in load_catalog_files().medications:
        ingredient = row.active_ingredient
        for text in (ingredient.split("+")[0], row.commercial_name):
            words = tuple(
                w for w in _WORD.findall(fold(text)) if len(w) >= 4 and w not in _BRAND_QUALIFIERS
            )
            if words:
                names.add((ingredient, words))
    return tuple(sorted(names))


def asked_drugs(question: str) -> tuple[str, ...]:
    """The catalog ingredients a question names by ingredient or brand, in catalog spelling."""
    have = _WORD.findall(fold(question))
    found = {
        ingredient
        for ingredient, words in _drug_names()
        if all(any(same_word(w, h) for h in have) for w in words)
    }
    return tuple(sorted(found))
