"""The minimum necessary for an external model: the record without who the patient is.

`model_view(context, send_identifiers)` is everything the OpenAI-compatible engine puts in a
prompt about the patient. Unless identifiers are allowed (`LLM_SEND_IDENTIFIERS=true`, for a
provider under a data-processing agreement):

- the patient is "la paciente" / "el paciente" ("el/la paciente" when the sex is not F or M),
  described by sex and age (years; months under two) — never name, document or birth date;
- the demographics chunk is rewritten from its facts: sex, age and blood group (no name,
  document, birth date or city);
- doctors appear as their specialty: "Dra. Ana Pérez (Cardiología)" → "médico de Cardiología";
- every text sent — sources, the question, earlier questions and answers — is scrubbed of the
  patient's name (each part), document number, birth date (ISO, dd/mm/yyyy, d/m/yyyy,
  dd-mm-yyyy, "14 de marzo de 1971"), phone, e-mail, address and city, and of anything shaped
  like an e-mail address or a Colombian mobile number.

The stored chunks are not changed: only the text that leaves is. Clinical dates and values stay
(the answer needs them), so the prompt is pseudonymised, not anonymous. Not caught: a doctor or
relative named in a note's free text without a title ("valorado por Ana Pérez"), and identifiers
of other people.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from smarthealth.rag.engines.base import AnswerContext, PatientIdentity, PriorTurn, SourceFact

SEX = {"F": "femenino", "M": "masculino", "O": "otro"}
NOUN = {"F": "la paciente", "M": "el paciente"}
OWNER = {"F": "de la paciente", "M": "del paciente"}
MONTHS = (
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
).split()

PATIENT_MARK = "[paciente]"
DOCUMENT_MARK = "[documento]"
BIRTH_MARK = "[fecha de nacimiento]"
PHONE_MARK = "[teléfono]"
EMAIL_MARK = "[correo]"
ADDRESS_MARK = "[dirección]"
CITY_MARK = "[ciudad]"
SOME_DOCTOR = "un médico"

_UPPER = "A-ZÁÉÍÓÚÑÜ"
_NAME_WORD = rf"(?:[{_UPPER}]\.|[{_UPPER}][{_UPPER}a-záéíóúñü'’-]+)"
_PARTICLE = r"(?:de|del|la|las|los|y|da|do|dos|van|von)"
_NAME = rf"{_NAME_WORD}(?:\s+(?:{_PARTICLE}\s+)*{_NAME_WORD})*"
_TITLE = r"\b(?:Dra?\.?|Doctora?)"
# How chunks name a doctor (chunking.py): "con Dra. Ana Pérez (Cardiología)", "(Control, Dra. Ana
# Pérez, Cardiología)", "de Cardiología con Dra. Ana Pérez."; and a titled name in free text.
_DOCTOR_THEN_PARENS = re.compile(rf"{_TITLE}\s+{_NAME}\s*\(([^()\n]+)\)")
_DOCTOR_THEN_COMMA = re.compile(rf"{_TITLE}\s+{_NAME},\s*([^,()\n]+)(?=\))")
_DOCTOR = re.compile(rf"{_TITLE}\s+{_NAME}")
_ANY_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ANY_MOBILE = re.compile(r"(?:\+57[\s-]?)?(?<!\d)3\d{2}[\s.-]?\d{3}[\s.-]?\d{4}(?!\d)")
_NO_SPECIALTY = {"", "none", "sin especialidad"}


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


@dataclass(frozen=True)
class ModelView:
    """What the prompt says about the patient, and the texts it carries."""

    patient: str  # how the model is told to call the patient ("la paciente", or the name)
    description: str  # "la paciente (sexo femenino, 54 años)"
    owner: str  # "de la paciente": the end of the abstention sentence
    sources: tuple[str, ...]  # each source's text, in citation order
    question: str
    history: tuple[PriorTurn, ...]
    redacted: bool


def age_phrase(birth: dt.date, today: dt.date) -> str:
    """ "54 años", "1 año"; under two, "18 meses" / "1 mes"; "0 meses" for a newborn."""
    months = (today.year - birth.year) * 12 + today.month - birth.month - (today.day < birth.day)
    months = max(months, 0)
    if months < 24:
        return f"{months} {'mes' if months == 1 else 'meses'}"
    years = months // 12
    return f"{years} {'año' if years == 1 else 'años'}"


def patient_identity(context: AnswerContext) -> PatientIdentity:
    """The context's identity, else what its demographics chunk says, else the name alone."""
    if context.patient is not None:
        return context.patient
    for source in context.sources:
        f = source.facts
        if source.source_type == "demographics" and f.get("full_name"):
            birth = f.get("birth_date")
            return PatientIdentity(
                full_name=str(f["full_name"]),
                names=tuple(str(f["full_name"]).split()),
                document_number=str(f.get("document_number") or ""),
                birth_date=dt.date.fromisoformat(str(birth)) if birth else None,
                sex=f.get("gender"),
                city=f.get("city"),
            )
    name = context.patient_name
    return PatientIdentity(name, tuple(name.split()), "", None, None)


def describe(identity: PatientIdentity, today: dt.date) -> str:
    """ "sexo femenino, 54 años" (what is known of it)."""
    parts = []
    if identity.sex in SEX:
        parts.append(f"sexo {SEX[identity.sex or '']}")
    if identity.birth_date is not None:
        parts.append(age_phrase(identity.birth_date, today))
    return ", ".join(parts)


def _digits_pattern(digits: str) -> str:
    """Those digits, each optionally followed by a separator ("1.012.345.678", "310 555 1234")."""
    return r"[\s.-]?".join(digits)


def _variants(word: str) -> set[str]:
    return {word, word.upper(), _strip_accents(word), _strip_accents(word).upper()}


def _words_pattern(words: Iterable[str]) -> str:
    """One or more of `words` in a row ("Rojas de la Hoz" is one), whole words, as written or in
    capitals, with or without accents."""
    variants = sorted({v for w in words for v in _variants(w)}, key=len, reverse=True)
    one = "|".join(re.escape(v) for v in variants)
    return rf"(?<![\w])(?:{one})(?:\s+(?:{_PARTICLE}\s+)*(?:{one}))*(?![\w])"


def _date_patterns(day: dt.date) -> list[str]:
    d, m, y = day.day, day.month, day.year
    return [
        rf"{y:04d}-{m:02d}-{d:02d}",
        rf"0?{d}/0?{m}/{y:04d}",
        rf"0?{d}-0?{m}-{y:04d}",
        rf"0?{d}\.0?{m}\.{y:04d}",
        rf"{y:04d}/{m:02d}/{d:02d}",
        rf"0?{d}\s+de\s+{MONTHS[m - 1]}\s+(?:de|del)\s+{y:04d}",
    ]


Rule = tuple[re.Pattern[str], str]


class Scrubber:
    """Removes one patient's identifiers, and doctors' names, from any text.

    Names and the city match as written, capitalised or in capitals (a surname such as "Rojas"
    or "Luz" is also an ordinary word in lower case); typed text (`loose=True`: the question,
    earlier questions) matches them in any case, with or without accents.
    """

    def __init__(self, identity: PatientIdentity, sources: Iterable[SourceFact] = ()) -> None:
        doctors = {
            str(s.facts["doctor"]).split(" ", 1)[-1]
            for s in sources
            if isinstance(s.facts.get("doctor"), str) and " " in s.facts["doctor"]
        }
        names = [
            part
            for name in identity.names
            for part in name.split()
            if len(part) >= 2 and not re.fullmatch(_PARTICLE, part.lower())
        ]
        city = (identity.city or "").strip()
        # (pattern, replacement, whether it matches in any case when the text is typed)
        worded: list[tuple[str, str]] = []
        if doctors:  # a doctor's name the chunks' facts know, wherever it is left
            worded.append((_words_pattern(doctors), SOME_DOCTOR))
        if names:
            worded.append((_words_pattern(names), PATIENT_MARK))
        if city:
            worded.append((_words_pattern([city]), CITY_MARK))
        self._strict = [(re.compile(p), r) for p, r in worded]
        self._loose = [(re.compile(p, re.IGNORECASE), r) for p, r in worded]

        rules: list[Rule] = []
        document = identity.document_number.strip()
        if document:
            pattern = _digits_pattern(document) if document.isdigit() else re.escape(document)
            rules.append((re.compile(rf"(?<![\w]){pattern}(?![\w])", re.IGNORECASE), DOCUMENT_MARK))
        if identity.birth_date is not None:
            dates = "|".join(_date_patterns(identity.birth_date))
            rules.append((re.compile(rf"(?<![\w])(?:{dates})(?![\w])", re.IGNORECASE), BIRTH_MARK))
        if identity.email and identity.email.strip():
            rules.append((re.compile(re.escape(identity.email.strip()), re.IGNORECASE), EMAIL_MARK))
        rules.append((_ANY_EMAIL, EMAIL_MARK))
        phone = re.sub(r"\D", "", identity.phone or "")
        if len(phone) >= 7:
            local = _digits_pattern(phone[-10:])
            rules.append((re.compile(rf"(?:\+?57[\s-]?)?(?<!\d){local}(?!\d)"), PHONE_MARK))
        rules.append((_ANY_MOBILE, PHONE_MARK))
        if identity.address and identity.address.strip():
            words = [re.escape(w) for w in identity.address.split()]
            rules.append((re.compile(r"\s+".join(words), re.IGNORECASE), ADDRESS_MARK))
        self._rules = rules

    def __call__(self, text: str, specialty: str | None = None, loose: bool = False) -> str:
        """`text` without identifiers. `specialty`: what a titled doctor's name standing alone
        becomes ("médico de Cardiología") when the source says it."""
        text = _DOCTOR_THEN_PARENS.sub(lambda m: _as_specialty(m.group(1)), text)
        text = _DOCTOR_THEN_COMMA.sub(lambda m: _as_specialty(m.group(1)), text)
        text = _DOCTOR.sub(_as_specialty(specialty), text)
        for pattern, replacement in [*(self._loose if loose else self._strict), *self._rules]:
            text = pattern.sub(replacement, text)
        return text


def _as_specialty(specialty: str | None) -> str:
    name = (specialty or "").strip()
    return SOME_DOCTOR if name.lower() in _NO_SPECIALTY else f"médico de {name}"


def _demographics_text(source: SourceFact, identity: PatientIdentity, today: dt.date) -> str:
    f = source.facts
    known = describe(identity, today)
    blood = f.get("blood_type") or "no registrado"
    return f"Paciente: {known + ', ' if known else ''}grupo sanguíneo {blood}."


def redacted_sources(context: AnswerContext) -> tuple[str, ...]:
    """Each source's text as an external model may see it (same order as the sources)."""
    identity = patient_identity(context)
    scrub = Scrubber(identity, context.sources)
    return tuple(_redacted(source, identity, scrub, context.today) for source in context.sources)


def _redacted(
    source: SourceFact, identity: PatientIdentity, scrub: Scrubber, today: dt.date
) -> str:
    if source.source_type == "demographics":
        return _demographics_text(source, identity, today)
    specialty = source.facts.get("specialty")
    return scrub(source.content, specialty if isinstance(specialty, str) else None)


def model_view(context: AnswerContext, send_identifiers: bool) -> ModelView:
    identity = patient_identity(context)
    known = describe(identity, context.today)
    if send_identifiers:
        name = identity.full_name or context.patient_name
        return ModelView(
            patient=name,
            description=f"{name} ({known})" if known else name,
            owner=f"de {name}",
            sources=tuple(s.content for s in context.sources),
            question=context.question,
            history=context.history,
            redacted=False,
        )
    scrub = Scrubber(identity, context.sources)
    noun = NOUN.get(identity.sex or "", "el/la paciente")
    return ModelView(
        patient=noun,
        description=f"{noun} ({known})" if known else noun,
        owner=OWNER.get(identity.sex or "", "del/de la paciente"),
        sources=redacted_sources(context),
        question=scrub(context.question, loose=True),
        history=tuple(
            PriorTurn(scrub(t.question, loose=True), scrub(t.answer), t.intent)
            for t in context.history
        ),
        redacted=True,
    )


IDENTIFYING_FIELDS = frozenset({"name", "document", "birth_date", "city"})


def asks_for_identifier(context: AnswerContext) -> bool:
    """The question is about who the patient is (name, document, birth date, city, or the
    whole identification card): the server answers it, the model is never sent it."""
    plan = context.plan
    if plan is None or plan.subject != "demographics":
        return False
    return plan.demographic is None or plan.demographic in IDENTIFYING_FIELDS
