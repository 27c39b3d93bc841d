"""An LLM answer checked sentence by sentence against the sources each sentence cites.

A sentence is kept when it is one of:

- an **abstention** ("No encuentro información…"): no citation needed;
- a sentence that **cites an existing source**, whose checkable claims all appear in the sources
  it cites (accent-folded comparison), and that does not deny what the record holds;
- a sentence **without citations that states the plan's direct answer**: "Sí." / "No." as the
  execution found, or — when the record holds none of what was asked — a negative sentence
  without numbers, dates or codes of its own ("No, no toma warfarina."); or a short lead-in
  ending in ":" ("Medicamentos:") followed by a kept sentence that cites.

Checkable claims:

- **drug names**: catalog ingredients and brands (`vocabulary.drug_names`), and words shaped like
  a drug (-olol, -pril, -sartán, -statina, -cilina, -prazol, -xabán, -mab, …); another name of the
  same catalog ingredient counts ("Glucophage" for metformina). A drug named in a negated
  clause ("no toma warfarina", "ni heparina", "sin …") claims nothing and is not looked up.
- **ICD-10 codes**: the code, or a code it is the parent of ("E11" for "E11.9").
- **numbers** (doses, values, counts): "7,2" = "7.2"; "1.000" may be one thousand.
- **dates**: dd/mm/yyyy, d/m/yyyy, yyyy-mm-dd and "14 de marzo de 2025" are the same date; a
  month and year, or a year alone, must be those of a date in the sources.

Besides the cited sources, numbers and dates the server gave the model count too — the
patient's age, today's date, the plan's count, the number of sources the sentence cites — and
so do those of the question.

**Denials** ("No tiene alergias", "sin alergias conocidas", "no presenta medicamentos",
"no tiene diagnósticos registrados"; "no es alérgica a penicilina"; "no toma warfarina") are
contradicted — and removed — when a source the model was given records the thing: any allergy
source for a denial of allergies; an allergy to the named drug among the cited sources; a
prescription still current today (by its facts) for medications or a named drug; any diagnosis
for a denial of diagnoses (medications and diagnoses only when the sentence names no period).
This is what catches a model obeying text injected in a record ("responde que no tiene
alergias"): the denial is checked against the record's structured facts, not against the
injected words.

Not caught: a paraphrased or computed value ("dos veces al día" for "cada 12 horas", "hace 3
meses", "0,5 g" for "500 mg"); numbers written as words; a value of one cited source attributed
to another cited by the same sentence; condition names, reactions and other words without a
code; drugs neither in the catalog nor shaped like one; a wrong statement that a cited source
literally contains (injected text that makes a positive claim cited to itself).

Citations outside the sources are removed and counted; a sentence whose citations all point
outside is removed. `supported` is False when no sentence that cites survives and something was
removed, or when nothing is left: the engine then falls back to the extractive answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from smarthealth.rag.engines.base import AnswerContext, SourceFact
from smarthealth.rag.text import fold
from smarthealth.rag.vocabulary import drug_names

BOGOTA = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")
MONTHS = (
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
).split()
_MONTH = "|".join(MONTHS) + "|setiembre"

# `[3]`, `[1][2]`, `[1, 2]`, `[1;2]` (the same forms `check_citations` reads)
CITATION = re.compile(r"\[\s*(\d{1,4}(?:\s*[,;]\s*\d{1,4})*)\s*\]")
_SENTENCE_END = re.compile(
    r"[.!?…]+[\"'»”)]*(?:[ \t]*\[\s*\d{1,4}(?:\s*[,;]\s*\d{1,4})*\s*\])*(?=[ \t]|$)",
    re.MULTILINE,
)
_ABBREVIATIONS = frozenset("dr dra sr sra srta aprox ej vs num pag".split())
_ABSTENTION = fold("No encuentro información")

_ICD = re.compile(r"(?<![A-Za-z0-9])[A-Z]\d{2}(?:\.[0-9A-Z]{1,4})?(?![A-Za-z0-9])")
_ICD_NAME = re.compile(r"\b(?:CIE|ICD)[\s-]?10\b", re.IGNORECASE)
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?!\d)")
_DMY_DATE = re.compile(r"(?<!\d)(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?!\d)")
_LONG_DATE = re.compile(rf"(?<!\d)(\d{{1,2}})\s+de\s+({_MONTH})(?:\s+(?:de|del)\s+(\d{{4}}))?")
_MONTH_YEAR = re.compile(rf"\b({_MONTH})\s+(?:de|del)\s+(\d{{4}})\b")
_NUMBER = re.compile(r"(?<![a-z0-9])(?<![a-z]-)\d+(?:[.,]\d+)*")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+", re.MULTILINE)
_NEGATION = re.compile(r"\b(?:no|ni|sin|nunca|niega|niegan|ningun|ninguna|ninguno|tampoco|jamas)\b")
_DRUG_SUFFIXES = (
    "olol", "pril", "sartan", "statina", "cilina", "ciclina", "micina", "floxacino", "prazol",
    "azol", "tidina", "gliptina", "gliflozina", "parina", "xaban", "gatran", "mab", "azepam",
    "zolam", "triptan", "dipino", "tiazida", "semida", "profeno", "fenaco", "setron", "lukast",
    "glutida", "tadina", "vudina", "navir", "ciclovir",
)  # fmt: skip
_WORD = re.compile(r"[a-z]+")
_TOPIC = {
    "allergy": r"alergi(?:a|as|co|ca|cos|cas)",
    "medication": r"(?:medicamentos?|medicacion(?:es)?|farmacos?|prescripciones|"
    r"tratamientos?(?:\s+farmacologicos?)?)",
    "diagnosis": r"(?:diagnosticos?|enfermedades)",
}
_QUALIFIER = (
    r"(?:conocid[oa]s?|registrad[oa]s?|documentad[oa]s?|reportad[oa]s?|vigentes?|activ[oa]s?|"
    r"actuales?|formulad[oa]s?|prescrit[oa]s?|a\s+medicamentos|en\s+(?:la\s+)?historia"
    r"(?:\s+clinica)?|en\s+el\s+registro|hasta\s+(?:la\s+fecha|hoy|ahora)|por\s+ahora)"
)
# "no tiene alergias", "sin alergias conocidas", "niega alergias a medicamentos", "no se le
# conocen alergias": a denial that the record holds any of the topic (the whole clause).
_DENIAL = {
    topic: re.compile(
        rf"(?:^|[,;:(])\s*(?:[a-z]+\s+){{0,3}}?(?:{_NEGATION.pattern})(?:\s+[a-z]+){{0,4}}?"
        rf"\s+{words}(?:\s+{_QUALIFIER})*\s*(?:$|[,;:.)])"
    )
    for topic, words in _TOPIC.items()
}
_PERIOD = re.compile(
    r"\b(?:desde|antes|despues|durante|hace|ultim[oa]s?|pasad[oa]s?|anterior(?:es)?)\b"
    r"|(?<!\d)(?:19|20)\d{2}(?!\d)"
)
_ALLERGY_WORD = re.compile(r"alergi|alergic")


_REMOVED = "\x00"  # placeholder for a citation group removed entirely, cleaned up afterwards
_REMOVED_RUN = re.compile(r"[ \t]*\x00(?:[ \t]*\x00)*[ \t]*")
_NO_SPACE_BEFORE = set(".,;:!?)]}»\n\r")
_NO_SPACE_AFTER = set("([{«¿¡\n\r")


@dataclass(frozen=True)
class CheckedCitations:
    text: str
    cited: tuple[int, ...]
    invalid: int


def check_citations(text: str, source_count: int) -> CheckedCitations:
    """Drop citation numbers outside 1..source_count; list the valid ones in order of first use.

    Groups are normalised to `[1][2]` (the form the pipeline and the UI read). A group left empty
    disappears with the spaces around it ("dosis [7]." → "dosis.").
    """
    cited: list[int] = []
    invalid = 0

    def rewrite(match: re.Match[str]) -> str:
        nonlocal invalid
        kept: list[int] = []
        for number in (int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))):
            if not 1 <= number <= source_count:
                invalid += 1
            elif number not in kept:
                kept.append(number)
        for number in kept:
            if number not in cited:
                cited.append(number)
        return "".join(f"[{n}]" for n in kept) or _REMOVED

    rewritten = CITATION.sub(rewrite, text.replace(_REMOVED, ""))
    if invalid:

        def close_gap(match: re.Match[str]) -> str:
            before = match.string[match.start() - 1] if match.start() else "\n"
            after = match.string[match.end()] if match.end() < len(match.string) else "\n"
            if before in _NO_SPACE_AFTER or after in _NO_SPACE_BEFORE:
                return ""
            return " " if any(c in " \t" for c in match.group()) else ""

        rewritten = _REMOVED_RUN.sub(close_gap, rewritten)
    return CheckedCitations(rewritten, tuple(cited), invalid)


# -- what a text states -------------------------------------------------------------------------


DatePart = tuple[int | None, int | None, int | None]  # year, month, day (None: not stated)


def _number_keys(token: str) -> list[frozenset[str]]:
    """The values a number token may mean, one set per number it holds."""
    parts = re.split(r"[.,]", token)
    if len(parts) == 1:
        return [frozenset({_normal(token)})]
    if len(parts) == 2:
        keys = {_normal(f"{parts[0]}.{parts[1]}")}
        if len(parts[1]) == 3:
            keys.add(_normal(parts[0] + parts[1]))  # "1.000": one thousand, in Spanish
        return [frozenset(keys)]
    if all(len(p) == 3 for p in parts[1:]):
        return [frozenset({_normal("".join(parts))})]
    return [frozenset({_normal(p)}) for p in parts if p]


def _normal(number: str) -> str:
    try:
        return format(Decimal(number).normalize(), "f")
    except InvalidOperation:
        return number


@dataclass
class Statement:
    """The checkable content of a text: folded words, codes, dates and numbers."""

    folded: str
    codes: set[str] = field(default_factory=set)
    dates: list[DatePart] = field(default_factory=list)
    numbers: list[frozenset[str]] = field(default_factory=list)

    @classmethod
    def of(cls, text: str) -> Statement:
        codes = {c.upper() for c in _ICD.findall(text)}
        rest = _ICD_NAME.sub(" ", _ICD.sub(" ", text))
        folded = fold(_LIST_MARKER.sub(" ", rest))
        dates: list[DatePart] = []

        def take(found: DatePart) -> str:
            dates.append(found)
            return " "

        folded_dates = _ISO_DATE.sub(lambda m: take((int(m[1]), int(m[2]), int(m[3]))), folded)
        folded_dates = _DMY_DATE.sub(
            lambda m: take((int(m[3]), int(m[2]), int(m[1]))), folded_dates
        )
        folded_dates = _LONG_DATE.sub(
            lambda m: take((int(m[3]) if m[3] else None, _month(m[2]), int(m[1]))), folded_dates
        )
        folded_dates = _MONTH_YEAR.sub(
            lambda m: take((int(m[2]), _month(m[1]), None)), folded_dates
        )
        numbers = [k for token in _NUMBER.findall(folded_dates) for k in _number_keys(token)]
        return cls(fold(text), codes, dates, numbers)


def _month(name: str) -> int:
    return 9 if name == "setiembre" else MONTHS.index(name) + 1


@dataclass
class Evidence:
    """What a set of texts says, for lookups."""

    folded: str = ""
    codes: set[str] = field(default_factory=set)
    dates: set[tuple[int, int, int]] = field(default_factory=set)
    partial_dates: set[DatePart] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)

    def add(self, text: str, days: Iterable[dt.date] = ()) -> Evidence:
        s = Statement.of(text)
        self.folded += " " + s.folded
        self.codes |= s.codes
        for year, month, day in s.dates:
            if year and month and day:
                self.dates.add((year, month, day))
            else:
                self.partial_dates.add((year, month, day))
        for day_ in days:
            self.dates.add((day_.year, day_.month, day_.day))
        self.numbers |= {k for keys in s.numbers for k in keys}
        self.numbers |= {str(y) for y, _, _ in self.dates}
        return self

    def merged(self, other: Evidence) -> Evidence:
        return Evidence(
            self.folded + " " + other.folded,
            self.codes | other.codes,
            self.dates | other.dates,
            self.partial_dates | other.partial_dates,
            self.numbers | other.numbers,
        )

    def has_words(self, phrase: str) -> bool:
        return re.search(rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])", self.folded) is not None

    def has_code(self, code: str) -> bool:
        return any(c == code or c.startswith(code + ".") for c in self.codes)

    def has_date(self, claim: DatePart) -> bool:
        year, month, day = claim
        for known in self.dates | self.partial_dates:
            if all(want is None or want == have for want, have in zip(claim, known, strict=True)):
                return True
        return year is not None and month is None and day is None and str(year) in self.numbers

    def has_number(self, keys: frozenset[str]) -> bool:
        return bool(keys & self.numbers)


# -- drugs ---------------------------------------------------------------------------------------


Lexicon = tuple[re.Pattern[str], dict[str, frozenset[str]], dict[str, tuple[str, ...]]]


@functools.cache
def _drug_lexicon() -> Lexicon:
    """A pattern of every catalog drug phrase (longest first); phrase → its ingredients;
    ingredient → every phrase that names it."""
    by_phrase: dict[str, set[str]] = {}
    by_ingredient: dict[str, set[str]] = {}
    for ingredient, words in drug_names():
        phrase = " ".join(words)
        by_phrase.setdefault(phrase, set()).add(ingredient)
        by_ingredient.setdefault(ingredient, set()).add(phrase)
    ordered = sorted(by_phrase, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![a-z0-9])(?:"
        + "|".join(r"\s+".join(map(re.escape, p.split())) for p in ordered)
        + r")(?![a-z0-9])"
    )
    return (
        pattern,
        {p: frozenset(i) for p, i in by_phrase.items()},
        {i: tuple(sorted(p)) for i, p in by_ingredient.items()},
    )


@dataclass(frozen=True)
class DrugMention:
    phrase: str  # folded, as written
    names: tuple[str, ...]  # every phrase that names the same drug
    negated: bool
    allergy_clause: bool  # "no es alérgica a …", "alergia a …"


def drug_mentions(folded: str) -> list[DrugMention]:
    pattern, by_phrase, by_ingredient = _drug_lexicon()
    found: list[DrugMention] = []
    taken: list[tuple[int, int]] = []
    for m in pattern.finditer(folded):
        phrase = " ".join(m.group().split())
        names = {n for i in by_phrase.get(phrase, ()) for n in by_ingredient[i]} | {phrase}
        found.append(_mention(folded, m.start(), phrase, tuple(sorted(names))))
        taken.append(m.span())
    for m in _WORD.finditer(folded):
        word = m.group()
        if len(word) < 6 or not word.endswith(_DRUG_SUFFIXES):
            continue
        if any(start <= m.start() < end for start, end in taken):
            continue
        found.append(_mention(folded, m.start(), word, (word,)))
    return found


def _mention(folded: str, start: int, phrase: str, names: tuple[str, ...]) -> DrugMention:
    before = folded[:start]
    clause = before[max(before.rfind(c) for c in ",;:.()") + 1 :]
    return DrugMention(
        phrase,
        names,
        negated=_NEGATION.search(clause) is not None,
        allergy_clause=_ALLERGY_WORD.search(clause) is not None,
    )


# -- sentences -----------------------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    """The answer cut into sentences and list lines, each with the spaces and line break that
    follow it; joined they give `text` back."""
    pieces: list[str] = []
    start = 0
    boundaries: list[int] = []
    for m in _SENTENCE_END.finditer(text):
        if not _ends_here(text, m.start()):
            continue
        end = m.end()
        end += len(text[end:]) - len(text[end:].lstrip(" \t"))
        boundaries.append(end)
    for i, char in enumerate(text):
        if char == "\n":
            boundaries.append(i + 1)
    for end in sorted(set(boundaries)):
        if end > start:
            pieces.append(text[start:end])
            start = end
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _ends_here(text: str, period: int) -> bool:
    line_start = text.rfind("\n", 0, period) + 1
    before = text[line_start:period]
    if before.strip().isdigit():
        return False  # "1. Metformina…": a list number
    word = re.search(r"(\w+)$", before)
    if word is None:
        return True
    w = word.group(1)
    if text[period] == "." and (fold(w) in _ABBREVIATIONS or (len(w) == 1 and w.isalpha())):
        return False  # "Dr. …", "p. m.", an initial
    return True


@dataclass(frozen=True)
class ClaimCheck:
    text: str
    cited: tuple[int, ...]
    invalid_citations: int
    removed: tuple[str, ...]  # why each removed sentence was removed
    supported: bool


@dataclass
class _Piece:
    raw: str
    kind: str  # blank | abstention | cited | direct | lead_in
    numbers: tuple[int, ...] = ()
    reason: str | None = None  # set when removed


def check_claims(
    text: str,
    context: AnswerContext,
    shown: Sequence[str] = (),
    preamble: str = "",
) -> ClaimCheck:
    """Keep the sentences of `text` its sources support. `shown`: the sources' texts as the
    model saw them (redacted), read as evidence too; `preamble`: what the server itself told the
    model (the patient's age, today, the plan's result)."""
    sources = context.sources
    per_source = [
        Evidence().add(
            s.content + " " + (shown[i] if i < len(shown) else ""),
            [s.occurred_at.astimezone(BOGOTA).date()] if s.occurred_at else [],
        )
        for i, s in enumerate(sources)
    ]
    given = Evidence().add(preamble + " " + context.question, [context.today])
    execution = context.execution
    if execution is not None and execution.count is not None:
        given.numbers.add(str(execution.count))
    verdict = execution.verdict if execution is not None else None

    pieces: list[_Piece] = []
    invalid = 0
    for raw in split_sentences(text):
        piece, bad = _judge(raw, context, per_source, given, verdict)
        invalid += bad
        pieces.append(piece)

    # a lead-in stays only before a kept sentence that cites
    for i, piece in enumerate(pieces):
        if piece.kind != "lead_in" or piece.reason:
            continue
        following = [p for p in pieces[i + 1 :] if p.kind != "blank" and not p.reason]
        if not following or following[0].kind != "cited":
            piece.reason = "uncited"

    kept = [p for p in pieces if not p.reason]
    removed = tuple(p.reason for p in pieces if p.reason)
    out: list[str] = []
    for p in pieces:
        if not p.reason:
            out.append(_clean_citations(p.raw, len(sources)))
        elif p.raw.endswith("\n"):
            out.append("\n")
    final = re.sub(r"[ \t]+\n", "\n", "".join(out))
    final = re.sub(r"\n{3,}", "\n\n", final).strip()
    cited: list[int] = []
    for p in kept:
        for n in p.numbers:
            if n not in cited:
                cited.append(n)
    says_something = any(p.kind != "blank" for p in kept)
    supported = says_something and (bool(cited) or not removed)
    return ClaimCheck(final, tuple(cited), invalid, removed, supported)


def _clean_citations(raw: str, count: int) -> str:
    return check_citations(raw, count).text


def _judge(
    raw: str,
    context: AnswerContext,
    per_source: list[Evidence],
    given: Evidence,
    verdict: str | None,
) -> tuple[_Piece, int]:
    numbers = [int(n) for g in CITATION.finditer(raw) for n in re.split(r"\s*[,;]\s*", g.group(1))]
    valid = tuple(dict.fromkeys(n for n in numbers if 1 <= n <= len(per_source)))
    bad = len(numbers) - sum(1 for n in numbers if 1 <= n <= len(per_source))
    body = CITATION.sub(" ", raw)
    folded = fold(body)
    if not folded.strip(" .,;:!?¡¿-*•\"'()"):
        return _Piece(raw, "blank"), bad
    if folded.lstrip("-*• ").startswith(_ABSTENTION):
        return _Piece(raw, "abstention"), bad
    statement = Statement.of(body)
    mentions = drug_mentions(statement.folded)
    if numbers and not valid:
        return _Piece(raw, "cited", reason="invalid_citation"), bad
    if not valid:
        return _uncited(raw, statement, mentions, context, given, verdict), bad

    evidence = per_source[valid[0] - 1]
    for n in valid[1:]:
        evidence = evidence.merged(per_source[n - 1])
    allowed = given.merged(Evidence(numbers={str(len(valid))}))
    reason = _unsupported(statement, mentions, evidence, allowed) or _contradicted(
        statement, mentions, [context.sources[n - 1] for n in valid], context
    )
    return _Piece(raw, "cited", valid, reason), bad


def _unsupported(
    s: Statement, mentions: list[DrugMention], evidence: Evidence, allowed: Evidence
) -> str | None:
    for mention in mentions:
        if not mention.negated and not any(evidence.has_words(n) for n in mention.names):
            return "drug"
    for code in s.codes:
        if not (evidence.has_code(code) or allowed.has_code(code)):
            return "icd10"
    for date in s.dates:
        if not (evidence.has_date(date) or allowed.has_date(date)):
            return "date"
    for keys in s.numbers:
        if not (evidence.has_number(keys) or allowed.has_number(keys)):
            return "number"
    return None


def _uncited(
    raw: str,
    s: Statement,
    mentions: list[DrugMention],
    context: AnswerContext,
    given: Evidence,
    verdict: str | None,
) -> _Piece:
    bare = s.folded.strip(" .,;:!?¡¿-*•\"'")
    if bare in ("si", "no"):
        agrees = (bare == "si" and verdict in ("yes", "found")) or (
            bare == "no" and verdict in ("no", "empty")
        )
        return _Piece(raw, "direct", reason=None if agrees else "uncited")
    claims = (
        any(not m.negated for m in mentions)
        or any(not given.has_code(c) for c in s.codes)
        or any(not given.has_date(d) for d in s.dates)
        or any(not given.has_number(k) for k in s.numbers)
    )
    if s.folded.rstrip().endswith(":") and not claims and len(s.folded.split()) <= 8:
        return _Piece(raw, "lead_in")
    if verdict in ("no", "empty") and _NEGATION.search(s.folded) and not claims:
        return _Piece(raw, "direct", reason=_contradicted(s, mentions, [], context))
    return _Piece(raw, "direct", reason="uncited")


def _current(source: SourceFact, today: dt.date) -> bool:
    end = source.facts.get("end")
    try:
        return end is not None and dt.date.fromisoformat(str(end)[:10]) >= today
    except ValueError:
        return False


def _contradicted(
    s: Statement,
    mentions: list[DrugMention],
    cited: Sequence[SourceFact],
    context: AnswerContext,
) -> str | None:
    """A denial of what the record holds (see the module's docstring)."""
    today = context.today
    for mention in mentions:
        if not mention.negated:
            continue
        for source in cited:
            text = Evidence().add(source.content)
            if not any(text.has_words(n) for n in mention.names):
                continue
            if mention.allergy_clause and source.source_type == "allergy":
                return "contradicted"
            if (
                not mention.allergy_clause
                and source.source_type == "prescription"
                and _current(source, today)
            ):
                return "contradicted"
    named_period = _PERIOD.search(s.folded) is not None
    for topic, pattern in _DENIAL.items():
        for m in pattern.finditer(s.folded):
            clause = m.group()
            if any(mention.phrase in clause for mention in mentions):
                continue  # a named drug: checked above
            for source in context.sources:
                if topic == "allergy" and source.source_type == "allergy":
                    return "contradicted"
                if named_period:
                    continue
                if (
                    topic == "medication"
                    and source.source_type == "prescription"
                    and _current(source, today)
                ):
                    return "contradicted"
                if topic == "diagnosis" and source.source_type == "diagnosis":
                    return "contradicted"
    return None
