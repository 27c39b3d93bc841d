"""Metric definitions of `smarthealth eval` (pure functions, no database).

The primary figure is per-question **correctness**, reported per category (`kinds.CATEGORIES`,
plus `robustness`) and per half of the phrasings (dev / heldout / probe). A question is correct when
- every expected fact is in the answer (a fact has accepted surface forms, compared case- and
  accent-folded with no letter or digit glued to either end; a form starting with "^" must open
  the answer, so yes/no answers start with "Sí" / "No"),
- no forbidden fact is in it (after "¿y la dosis?", another drug of the same visit),
- the evidence rule holds: `required` → at least one source cited; `none` → nothing cited (then
  the answer says "No …" / "No encuentro …", which its expected facts check); `any` → either,
- every citation is supported (below), there is no cross-patient leakage and no error.
Only scored questions count (the first turn of a two-turn kind sets the subject up and is
reported, not scored).

recall@8
    Over questions that must cite and have relevant chunks. A question's relevant chunks come in
    *groups*, one per expected fact (the chunks stating it; leading "Sí"/"No" and counts have
    none). A question is a hit when **every** non-empty group has a chunk among the top 8
    retrieval candidates the pipeline ranks for the turn (replayed, see `runner`).

answer fact recall
    Over questions with expected facts: the share of the question's facts found in the answer,
    averaged over questions (macro).

citation precision
    Over every citation `[n]` written in the answers (micro average). The *segment* of a
    citation is the answer text after the previous citation group (or from the start of the
    answer) up to the citation. Its *checkable tokens* are dates (dd/mm/yyyy or yyyy-mm-dd),
    clock times (hh:mm), ICD-10 codes, blood-pressure pairs (s/d) and numbers followed by a
    clinical unit (mg, mcg, g, ml, UI, mmHg, lpm, rpm, °C, %, kg, cm, días, horas, años).
    The citation is supported when the cited chunk belongs to the asked patient and
    - the segment has checkable tokens and every one of them occurs in the chunk's content
      (dates compared as ISO dates, numbers as numbers; an age "N años" is also accepted when
      it is the age, on the evaluation day, of the birth date the chunk states), or
    - the segment has no checkable token and the chunk's type is one the kind asks for.
    A citation number with no matching source is unsupported.

abstention accuracy
    Over questions whose evidence rule is `required` or `none`: answered with sources when the
    record holds the answer, nothing cited when it does not (`evidence_ok`).

out-of-record abstention
    Over `out_of_record` questions: "No encuentro …" with no source cited.

cross-patient leakage
    A count (target 0): retrieved (top 8 of the replay) or cited chunks whose patient is not
    the asked patient, plus answers containing another evaluated patient's full name or
    document number.

answer length
    Characters of the answer text (citations included), median and 90th percentile by nearest
    rank, over scored questions of kinds that do not ask for a list (`Kind.list_answer`).

latency
    Wall time of `QuestionPipeline.run` for the question, from the call to the `complete`
    event; p50 and p95 by nearest rank.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from smarthealth.rag.text import fold

RECALL_K = 8
ABSTENTION = "no encuentro"
REQUIRED, NONE, ANY = "required", "none", "any"

# The acceptance, checked on the held-out half (else probe, else dev: see runner).
TARGETS: dict[str, float] = {
    "heldout_accuracy": 0.95,  # overall
    "category_accuracy": 0.90,  # every category, robustness included
    "out_of_record_abstention": 0.95,
}
MAX_DEV_HELDOUT_GAP = 0.03
MAX_LEAKAGE = 0
MAX_MEDIAN_LENGTH = 200
MAX_P90_LENGTH = 450

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_DMY = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_ICD = re.compile(r"\b([A-TV-Z][0-9]{2}(?:\.[0-9A-Z]{1,2})?)\b")
_PAIR = re.compile(r"\b(\d{2,3})/(\d{2,3})\b")
_UNITS = r"(mg/dl|mg|mcg|ml|ui|mmhg|lpm|rpm|°c|%|kg|cm|g|dias|horas|anos)"
_MEASURE = re.compile(r"(?<![\d.,/])(\d+(?:[.,]\d+)?)\s*" + _UNITS + r"(?![a-z])")
_AGE = re.compile(r"(?<![\d.,])(\d{1,3})\s*anos\b")
_BIRTH = re.compile(r"nacid[oa] el (\d{4}-\d{2}-\d{2})")


# -- facts --------------------------------------------------------------------------------------


def contains_form(folded_text: str, form: str) -> bool:
    """`form` (folded) occurs in `folded_text` with no letter or digit glued to either end; a
    form "^x" must open the text (leading punctuation such as "¿¡*" ignored)."""
    if form.startswith("^"):
        needle = fold(form[1:])
        opening = folded_text.lstrip(" \t\n¿¡*_-\"'«(")
        return (
            bool(needle)
            and opening.startswith(needle)
            and not (len(opening) > len(needle) and opening[len(needle)].isalnum())
        )
    needle = fold(form)
    if not needle:
        return False
    start = 0
    while True:
        at = folded_text.find(needle, start)
        if at < 0:
            return False
        before = folded_text[at - 1] if at > 0 else " "
        end = at + len(needle)
        after = folded_text[end] if end < len(folded_text) else " "
        glued_before = needle[0].isalnum() and before.isalnum()
        glued_after = needle[-1].isalnum() and after.isalnum()
        if not glued_before and not glued_after:
            return True
        start = at + 1


def fact_hits(
    facts: Sequence[tuple[str, tuple[str, ...]]], answer: str
) -> tuple[list[str], list[str]]:
    """(found labels, missing labels) for facts given as (label, accepted forms)."""
    folded = fold(answer)
    found: list[str] = []
    missing: list[str] = []
    for label, forms in facts:
        (found if any(contains_form(folded, f) for f in forms) else missing).append(label)
    return found, missing


# -- retrieval ----------------------------------------------------------------------------------


def retrieval_hit(
    groups: Sequence[Sequence[int]], retrieved: Sequence[int], k: int = RECALL_K
) -> tuple[bool, list[list[int]]]:
    """(hit, groups with no chunk in the top k): a hit needs every group represented."""
    top = set(retrieved[:k])
    missing = [list(g) for g in groups if not top.intersection(g)]
    return not missing, missing


# -- citations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Citation:
    number: int
    segment: str


def citations(answer: str) -> list[Citation]:
    """Every citation number with the text it vouches for (see the module docstring)."""
    found: list[Citation] = []
    previous_end = 0
    for match in _CITATION.finditer(answer):
        between = answer[previous_end : match.start()]
        if between.strip() == "" and found:
            segment = found[-1].segment  # "[1][2]": both cite the same text
        else:
            segment = between
        for number in match.group(1).split(","):
            found.append(Citation(int(number.strip()), segment))
        previous_end = match.end()
    return found


def _measures(text: str) -> set[tuple[float, str]]:
    return {(float(n.replace(",", ".")), unit) for n, unit in _MEASURE.findall(text)}


def _age_on(birth: dt.date, today: dt.date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


@dataclass
class SegmentCheck:
    tokens: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def check_segment(segment: str, content: str, today: dt.date) -> SegmentCheck:
    """Checkable tokens of `segment` and those of them absent from `content`."""
    body = fold(content)
    check = SegmentCheck()
    body_dates = {m.group(0) for m in _ISO.finditer(body)}
    body_measures = _measures(body)
    births = [dt.date.fromisoformat(b) for b in _BIRTH.findall(body)]

    def need(token: str, ok: bool) -> None:
        check.tokens.append(token)
        if not ok:
            check.missing.append(token)

    for m in _ICD.finditer(segment):  # codes are upper case: look at the unfolded text
        need(m.group(1), m.group(1).lower() in body)
    rest = fold(_ICD.sub(" ", segment))
    for m in _DMY.finditer(rest):
        need(m.group(0), f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}" in body_dates)
    rest = _DMY.sub(" ", rest)
    for m in _ISO.finditer(rest):
        need(m.group(0), m.group(0) in body_dates)
    rest = _ISO.sub(" ", rest)
    for m in _TIME.finditer(rest):
        need(m.group(0), f"{int(m.group(1)):02d}:{m.group(2)}" in body)
    rest = _TIME.sub(" ", rest)
    for m in _PAIR.finditer(rest):
        need(m.group(0), m.group(0) in body)
    rest = _PAIR.sub(" ", rest)
    for m in _AGE.finditer(rest):
        age = int(m.group(1))
        need(
            m.group(0),
            (float(age), "anos") in body_measures or any(_age_on(b, today) == age for b in births),
        )
    rest = _AGE.sub(" ", rest)
    for m in _MEASURE.finditer(rest):
        need(m.group(0), (float(m.group(1).replace(",", ".")), m.group(2)) in body_measures)
    return check


def citation_supported(
    segment: str,
    content: str,
    chunk_type: str,
    expected_types: Iterable[str],
    same_patient: bool,
    today: dt.date,
) -> tuple[bool, SegmentCheck]:
    """The support rule of the module docstring."""
    check = check_segment(segment, content, today)
    if not same_patient:
        return False, check
    if check.tokens:
        return not check.missing, check
    return chunk_type in set(expected_types), check


# -- abstention, leakage, latency ---------------------------------------------------------------


def evidence_ok(evidence: str, cited: int) -> bool:
    """The evidence rule of a question (see the module docstring)."""
    if evidence == REQUIRED:
        return cited > 0
    if evidence == NONE:
        return cited == 0
    return True


def abstains(answer: str, cited: int) -> bool:
    """An out-of-record abstention: "No encuentro …" and no source."""
    return cited == 0 and ABSTENTION in fold(answer)


def names_leaked(answer: str, others: Iterable[tuple[str, str]]) -> list[str]:
    """Other evaluated patients' full names or document numbers found in the answer."""
    folded = fold(answer)
    leaked: list[str] = []
    for full_name, document in others:
        if contains_form(folded, full_name):
            leaked.append(full_name)
        if re.search(rf"(?<![0-9]){re.escape(document.lower())}(?![0-9])", folded):
            leaked.append(document)
    return leaked


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None
