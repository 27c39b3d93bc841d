"""The offline engine: a deterministic Spanish answer composed from the retrieved facts.

Every sentence ends with the citation of the chunk it states; when nothing relevant was
retrieved it says so plainly and cites nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncGenerator, Callable, Iterable

from smarthealth.rag.conditions import asked_drugs, question_names_diagnosis
from smarthealth.rag.engines.base import AnswerContext, DraftAnswer, SourceFact
from smarthealth.rag.intent import note_section
from smarthealth.rag.text import fold, lexical_query

MODEL_NAME = "extractive-v1"
# Below this cosine similarity a vector hit alone is not evidence (multilingual-e5 scores are
# high for any clinical sentence); lexical or intent evidence always counts.
VECTOR_EVIDENCE = 0.88
MAX_ITEMS = 6

STATUS = {
    "Scheduled": "programada",
    "Confirmed": "confirmada",
    "Attended": "atendida",
    "Cancelled": "cancelada",
    "NoShow": "no asistida",
}
SEVERITY = {"Leve": "leve", "Moderada": "moderada", "Severa": "severa"}
KIND = {"Principal": "principal", "Secondary": "secundario", "Differential": "diferencial"}
TOPIC = {
    "medications": "medicamentos prescritos",
    "allergies": "alergias registradas",
    "diagnoses": "diagnósticos",
    "appointments": "citas",
    "vitals": "signos vitales",
    "notes": "notas clínicas",
    "demographics": "datos del paciente",
    "summary": "información",
}
_TOKENS = re.compile(r"\S+\s*")

Sentence = tuple[str, tuple[int, ...]]  # text without final period, citation numbers


def _terms(text: str) -> set[str]:
    """The question's content words, folded and cut to a crude stem (first 5 letters)."""
    query = lexical_query(text) or ""
    return {t.rstrip(":*")[:5] for t in query.split(" | ") if t}


def _coverage(question: str, source: SourceFact) -> float:
    """Share of the question's content words that the source mentions."""
    wanted = _terms(question)
    if not wanted:
        return 0.0
    words = fold(source.content).replace(".", " ").replace(",", " ").replace("(", " ").split()
    present = {w[:5] for w in words}
    return sum(1 for t in wanted if t in present) / len(wanted)


def _date(value: str | None) -> str:
    if not value:
        return "fecha no registrada"
    day = dt.date.fromisoformat(value[:10])
    return day.strftime("%d/%m/%Y")


def _day(source: SourceFact) -> dt.date | None:
    return source.occurred_at.date() if source.occurred_at else None


def _of(ctx: AnswerContext, source_type: str) -> list[SourceFact]:
    return [s for s in ctx.sources if s.source_type == source_type]


def _newest_first(sources: Iterable[SourceFact]) -> list[SourceFact]:
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(sources, key=lambda s: (s.occurred_at or epoch, s.chunk_id), reverse=True)


def _latest_per(
    sources: Iterable[SourceFact], key: Callable[[SourceFact], str]
) -> list[SourceFact]:
    seen: dict[str, SourceFact] = {}
    for source in _newest_first(sources):
        seen.setdefault(key(source), source)
    return list(seen.values())


def _medications(ctx: AnswerContext) -> list[Sentence]:
    prescriptions = _of(ctx, "prescription")
    if named := asked_drugs(ctx.question):  # "¿Toma losartán?": that drug only
        prescriptions = [s for s in prescriptions if s.facts.get("ingredient") in named]
    latest = _latest_per(prescriptions, lambda s: str(s.facts.get("ingredient")))
    if not latest:
        return []
    dose_first = "dose" in ctx.focus
    active = [s for s in latest if dt.date.fromisoformat(s.facts["end"]) >= ctx.today]
    ended = [s for s in latest if s not in active]
    sentences: list[Sentence] = []
    for group, label in ((active, "vigente"), (ended, "finalizada")):
        for s in group[:MAX_ITEMS]:
            f = s.facts
            name = f"{f['ingredient']} ({f['commercial_name']}) {f['strength']} {f['form']}"
            dose = f"{f['dosage']} {f['frequency']} por {f['duration_days']} días"
            period = f"formulado el {_date(f['start'])}, " + (
                f"vigente hasta el {_date(f['end'])}"
                if label == "vigente"
                else f"terminó el {_date(f['end'])}"
            )
            reason = f", para {f['diagnosis'].lower()}" if f.get("diagnosis") else ""
            if dose_first:
                text = f"La dosis de {name} es {dose} ({period}{reason})"
            else:
                text = f"{name[:1].upper()}{name[1:]}: {dose}; {period}{reason}"
            sentences.append((text, (s.number,)))
    if active and ended and not dose_first:
        sentences.insert(len(active[:MAX_ITEMS]), ("Prescripciones anteriores ya finalizadas", ()))
    if active and not dose_first:
        sentences.insert(0, (f"Tiene {len(active[:MAX_ITEMS])} medicamento(s) vigente(s)", ()))
    elif ended and not dose_first:
        sentences.insert(0, ("No hay prescripciones vigentes; las más recientes fueron", ()))
    return sentences


def _allergies(ctx: AnswerContext) -> list[Sentence]:
    allergies = _latest_per(_of(ctx, "allergy"), lambda s: str(s.facts.get("ingredient")))
    return [
        (
            f"Alergia a {s.facts['ingredient']}: {s.facts['reaction']}, severidad "
            f"{SEVERITY.get(s.facts['severity'], s.facts['severity'])} (registrada el "
            f"{_date(s.facts.get('date'))})",
            (s.number,),
        )
        for s in allergies
    ]


def _diagnoses(ctx: AnswerContext) -> list[Sentence]:
    sources = _of(ctx, "diagnosis")
    if "yesno" in ctx.focus:  # "¿Tiene hipertensión?": only diagnoses that name it
        sources = [
            s
            for s in sources
            if question_names_diagnosis(
                ctx.question, str(s.facts.get("icd_code", "")), str(s.facts.get("description", ""))
            )
        ]
    latest = _latest_per(sources, lambda s: str(s.facts.get("icd_code")))
    if not latest:
        return []
    if "latest" in ctx.focus:  # everything recorded at the most recent visit
        newest = latest[0].facts.get("date")
        same_day = [s for s in latest if s.facts.get("date") == newest]
        return [
            (
                f"En la consulta más reciente ({_date(newest)}) se registró: "
                f"{s.facts['description']} (CIE-10 {s.facts['icd_code']}), "
                f"{KIND.get(s.facts.get('kind', ''), 'registrado')}",
                (s.number,),
            )
            for s in same_day
        ]
    if "first" in ctx.focus:  # "¿desde cuándo?": the earliest record of each diagnosis
        earliest: dict[str, SourceFact] = {}
        for s in reversed(_newest_first(sources)):
            earliest.setdefault(str(s.facts.get("icd_code")), s)
        return [
            (
                f"{s.facts['description']} (CIE-10 {s.facts['icd_code']}) está registrado "
                f"desde el {_date(s.facts.get('date'))}",
                (s.number,),
            )
            for s in list(earliest.values())[:MAX_ITEMS]
        ]
    opening = "Sí, tiene registrado" if "yesno" in ctx.focus else "Diagnósticos registrados"
    sentences: list[Sentence] = [(opening, ())]
    for s in latest[:MAX_ITEMS]:
        sentences.append(
            (
                f"{s.facts['description']} (CIE-10 {s.facts['icd_code']}), "
                f"{KIND.get(s.facts.get('kind', ''), 'registrado')}, última vez el "
                f"{_date(s.facts.get('date'))}",
                (s.number,),
            )
        )
    return sentences


def _appointments(ctx: AnswerContext) -> list[Sentence]:
    sources = _of(ctx, "appointment")
    now = ctx.now or dt.datetime.combine(ctx.today, dt.time(0, 0), dt.UTC)
    upcoming = sorted(
        (
            s
            for s in sources
            if s.occurred_at
            and s.occurred_at >= now
            and s.facts.get("status") in ("Scheduled", "Confirmed")
        ),
        key=lambda s: s.occurred_at or now,
    )
    past = _newest_first(s for s in sources if s.occurred_at and s.occurred_at < now)

    def describe(s: SourceFact) -> str:
        f = s.facts
        when = dt.datetime.fromisoformat(f["start"])
        return (
            f"el {when:%d/%m/%Y} a las {when:%H:%M}, {f['specialty']} con {f['doctor']} "
            f"({STATUS.get(f['status'], f['status'])}); "
            f"motivo: {f.get('reason') or 'no registrado'}"
        )

    if "before" in ctx.focus:  # "¿y antes de eso?" looks back, never forward
        upcoming = []
    if "latest" in ctx.focus and "next" not in ctx.focus:
        if not past:
            return []  # "¿cuándo fue su última cita?" is not answered by an upcoming one
        return [(f"La última cita registrada fue {describe(past[0])}", (past[0].number,))]
    if upcoming:
        sentences: list[Sentence] = [
            (f"La próxima cita es {describe(upcoming[0])}", (upcoming[0].number,))
        ]
        for s in upcoming[1:3]:
            sentences.append((f"Después tiene otra cita {describe(s)}", (s.number,)))
        return sentences
    if "next" in ctx.focus:
        return []  # nothing upcoming: say so (abstain) rather than list the past
    return [(f"Cita {describe(s)}", (s.number,)) for s in past[:MAX_ITEMS]]


_VITAL_FOCUS: dict[str, Callable[[dict[str, object]], str]] = {
    "pressure": lambda f: f"la presión arterial fue {f['systolic']}/{f['diastolic']} mmHg",
    "weight": lambda f: (
        f"el peso fue {f['weight_kg']} kg (talla {f['height_cm']} cm, IMC {f['bmi']})"
    ),
    "temperature": lambda f: f"la temperatura fue {f['temperature']} °C",
    "heart_rate": lambda f: f"la frecuencia cardiaca fue {f['heart_rate']} lpm",
    "spo2": lambda f: f"la saturación de oxígeno fue {f['spo2']} %",
}


def _vitals(ctx: AnswerContext) -> list[Sentence]:
    sources = _newest_first(_of(ctx, "vitals"))
    if not sources:
        return []
    focus = [name for name in _VITAL_FOCUS if name in ctx.focus]
    latest = sources[0]
    if focus:
        parts = [_VITAL_FOCUS[name](latest.facts) for name in focus]
        sentences: list[Sentence] = [
            (
                f"En la toma más reciente ({_date(latest.facts.get('date'))}) " + " y ".join(parts),
                (latest.number,),
            )
        ]
        if "latest" not in ctx.focus:
            for s in sources[1:4]:
                sentences.append(
                    (
                        f"El {_date(s.facts.get('date'))} "
                        + " y ".join(_VITAL_FOCUS[n](s.facts) for n in focus),
                        (s.number,),
                    )
                )
        return sentences
    f = latest.facts
    return [
        (
            f"Últimos signos vitales ({_date(f.get('date'))}): presión arterial {f['systolic']}/"
            f"{f['diastolic']} mmHg, frecuencia cardiaca {f['heart_rate']} lpm, frecuencia "
            f"respiratoria {f['respiratory_rate']} rpm, temperatura {f['temperature']} °C, "
            f"saturación {f['spo2']} %, peso {f['weight_kg']} kg, talla {f['height_cm']} cm",
            (latest.number,),
        )
    ]


def _strip_prefix(content: str) -> str:
    return content.split(" — ", 1)[-1] if " — " in content else content.split(" · ", 1)[-1]


def _notes(ctx: AnswerContext) -> list[Sentence]:
    notes = _of(ctx, "note")
    section = note_section(fold(ctx.question))
    if section is not None:  # one section asked for: the most recent ones first
        notes = _newest_first(s for s in notes if s.facts.get("section") == section) or notes
    if "latest" in ctx.focus:
        notes = _newest_first(notes)[:1]
    return [
        (
            f"El {_date(s.facts.get('date'))} ({s.facts.get('record_type', 'nota')}): "
            f"{_strip_prefix(s.content).rstrip('.')}",
            (s.number,),
        )
        for s in notes[:3]
    ]


def _demographics(ctx: AnswerContext) -> list[Sentence]:
    cards = _of(ctx, "demographics")
    if not cards:
        return []
    f = cards[0].facts
    birth = dt.date.fromisoformat(f["birth_date"])
    age = (
        ctx.today.year - birth.year - ((ctx.today.month, ctx.today.day) < (birth.month, birth.day))
    )
    gender = {"F": "femenino", "M": "masculino"}.get(f.get("gender", ""), "otro")
    return [
        (
            f"{f['full_name']}, {f['document_code']} {f['document_number']}, {age} años (nació el "
            f"{_date(f['birth_date'])}), sexo {gender}, grupo sanguíneo "
            f"{f.get('blood_type') or 'no registrado'}, ciudad {f.get('city') or 'no registrada'}",
            (cards[0].number,),
        )
    ]


def _summary(ctx: AnswerContext) -> list[Sentence]:
    sentences = _demographics(ctx)
    diagnoses = _latest_per(_of(ctx, "diagnosis"), lambda s: str(s.facts.get("icd_code")))[:4]
    if diagnoses:
        sentences.append(
            (
                "Diagnósticos: "
                + "; ".join(
                    f"{s.facts['description']} ({s.facts['icd_code']}) [{s.number}]"
                    for s in diagnoses
                ),
                (),
            )
        )
    meds = _latest_per(_of(ctx, "prescription"), lambda s: str(s.facts.get("ingredient")))[:4]
    if meds:
        sentences.append(
            (
                "Medicamentos más recientes: "
                + "; ".join(
                    f"{s.facts['ingredient']} {s.facts['strength']}, {s.facts['dosage']} "
                    f"{s.facts['frequency']} [{s.number}]"
                    for s in meds
                ),
                (),
            )
        )
    allergies = _allergies(ctx)
    sentences += allergies if allergies else [("Sin alergias registradas", ())]
    nxt = _appointments(
        AnswerContext(
            ctx.question,
            ctx.patient_name,
            ("appointments",),
            ctx.sources,
            ctx.today,
            focus=("next",),
            now=ctx.now,
        )
    )
    sentences += nxt[:1]
    return sentences


def _general(ctx: AnswerContext) -> list[Sentence]:
    """No recognised intent: answer only from sources that say what was asked — most of the
    question's content words, or a very close meaning — and otherwise abstain."""
    evidence = [
        s
        for s in ctx.sources
        if _coverage(ctx.question, s) >= 0.5 or s.scores.get("vector", 0.0) >= VECTOR_EVIDENCE
    ][:3]
    return [
        (
            f"Según el registro del {_date(s.occurred_at.isoformat() if s.occurred_at else None)}"
            f": {_strip_prefix(s.content).rstrip('.')}",
            (s.number,),
        )
        for s in evidence
    ]


BUILDERS: dict[str, Callable[[AnswerContext], list[Sentence]]] = {
    "medications": _medications,
    "allergies": _allergies,
    "diagnoses": _diagnoses,
    "appointments": _appointments,
    "vitals": _vitals,
    "notes": _notes,
    "demographics": _demographics,
    "summary": _summary,
}


def _drug_label(ingredients: Iterable[str]) -> str:
    """ "losartán" for losartán potásico and losartán + hidroclorotiazida."""
    kept: list[str] = []
    for name in sorted({i.split(" + ")[0] for i in ingredients}, key=len):
        if not any(name.startswith(k) for k in kept):
            kept.append(name)
    return " ni ".join(kept)


def _abstention(ctx: AnswerContext) -> str:
    topics = [TOPIC[i] for i in ctx.intents if i in TOPIC]
    what = " ni ".join(topics) if topics else "eso"
    if "next" in ctx.focus and "appointments" in ctx.intents:
        what = "citas próximas"
    elif "latest" in ctx.focus and ctx.intents == ("appointments",):
        what = "citas anteriores"
    if ctx.intents == ("allergies",):
        return f"No encuentro alergias registradas en la historia clínica de {ctx.patient_name}."
    if ctx.intents[:1] == ("medications",) and (named := asked_drugs(ctx.question)):
        return f"No encuentro {_drug_label(named)} entre las prescripciones de {ctx.patient_name}."
    if ctx.intents == ("diagnoses",) and "yesno" in ctx.focus:
        return f"No encuentro ese diagnóstico en la historia clínica de {ctx.patient_name}."
    return f"No encuentro información sobre {what} en la historia clínica de {ctx.patient_name}."


def compose(ctx: AnswerContext) -> tuple[str, tuple[int, ...]]:
    """The answer text and the citation numbers it uses (empty when it abstains)."""
    sentences: list[Sentence] = []
    for intent in ctx.intents[:2] or ():
        part = BUILDERS[intent](ctx)
        if part:
            sentences += part
    if not ctx.intents:
        sentences = _general(ctx)
    if not any(cites for _, cites in sentences) and not any("[" in t for t, _ in sentences):
        return _abstention(ctx), ()
    lines = []
    cited: list[int] = []
    for text, cites in sentences:
        marks = "".join(f"[{n}]" for n in cites)
        if cites:
            lines.append(f"{text} {marks}.")
        elif "[" in text:  # citations written inline (summary lists)
            lines.append(f"{text}.")
        else:  # a heading for the sentences that follow
            lines.append(f"{text}:")
        for n in cites:
            if n not in cited:
                cited.append(n)
    for n in (int(m) for m in re.findall(r"\[(\d+)\]", " ".join(lines))):
        if n not in cited:
            cited.append(n)
    prefix = "Antes de eso: " if "before" in ctx.focus else ""
    return prefix + " ".join(lines).replace(":.", ".").strip(), tuple(cited)


class ExtractiveEngine:
    name = "extractive"

    async def generate(self, context: AnswerContext) -> AsyncGenerator[str | DraftAnswer, None]:
        text, cited = compose(context)
        for token in _TOKENS.findall(text):
            yield token
        yield DraftAnswer(text=text, cited=cited, abstained=not cited, model_used=MODEL_NAME)
