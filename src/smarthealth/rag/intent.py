"""What a Spanish clinical question asks for: intents, time hints and finer focus.

Rules over accent-folded text, with synonyms and colloquial paraphrases ("¿qué le mandaron
tomar?", "¿cada cuánto se lo toma?"). Deterministic and cheap: it runs on every question and is
one of the three retrieval legs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smarthealth.rag.conditions import asked_conditions, names_catalog_condition
from smarthealth.rag.text import fold

INTENT_SOURCES: dict[str, tuple[str, ...]] = {
    "medications": ("prescription",),
    "allergies": ("allergy",),
    "diagnoses": ("diagnosis",),
    "appointments": ("appointment",),
    "vitals": ("vitals",),
    "notes": ("note",),
    "demographics": ("demographics",),
    "summary": ("demographics", "diagnosis", "prescription", "allergy", "appointment"),
}

_PATTERNS: dict[str, tuple[str, ...]] = {
    "medications": (
        r"medicament",
        r"medicin",
        r"farmac",
        r"remedio",
        r"pastilla",
        r"tableta",
        r"capsula",
        r"prescri",
        r"formul",
        r"receta",
        r"recet",
        r"tratamiento",
        r"\btoma(r|ndo|ba)?\b",
        r"\btome\b",
        r"mandaron",
        r"mando a tomar",
        r"le dieron",
        r"dosis",
        r"posologi",
        r"inhalador",
        r"inyecc",
        r"antibiotic",
        r"insulina",
        r"jarabe",
        r"cada cuanto",
        r"con que frecuencia se",
        r"que se aplica",
        r"droga",
    ),
    "allergies": (
        r"alergi",
        r"alergic",
        r"reaccion(es)? adversa",
        r"intoleran",
        r"hipersensib",
        r"le cae mal",
        r"\bsensible",
        r"\bsensibilidad",
        r"le hace dano",
        r"no (puede|debe) (tomar|recibir)",
        r"contraindic",
    ),
    "diagnoses": (
        r"diagnost",
        r"enfermedad",
        r"padece",
        r"patologi",
        r"condicion(es)? (medica|cronica)",
        r"problema(s)? de salud",
        r"\bcie\b",
        r"que tiene el paciente",
        r"que tiene la paciente",
        r"sufre",
        r"comorbil",
        r"cronic",
        r"\bdx\b",
        r"de que (esta|lo|la) (enfermo|tratan)",
    ),
    "appointments": (
        r"\bcita",
        r"agend",
        r"\bturno",
        r"cuando (vuelve|regresa|le toca)",
        r"consulta (programada|pendiente|agendada)",
        r"control (pendiente|programado)",
        r"proxima consulta",
        r"proximo control",
        r"\bvisita",
    ),
    "vitals": (
        r"\bpresion",
        r"\btension arterial",
        r"\bta\b",
        r"signos vitales",
        r"frecuencia cardi",
        r"\bpulso",
        r"temperatura",
        r"fiebre",
        r"saturacion",
        r"oxigen",
        r"\bpeso\b",
        r"cuanto pesa",
        r"\btalla\b",
        r"\bmide\b",
        r"\bkilos?\b",
        r"\bpesa\b",
        r"\blat(e|ido|idos)\b",
        r"corazon",
        r"estatura",
        r"\bimc\b",
        r"masa corporal",
        r"frecuencia respiratoria",
        r"\bvitales",
    ),
    "notes": (
        r"\bnota",
        r"evolucion",
        r"\bmotivo\b",
        r"examen fisico",
        r"\bplan\b",
        r"hallazg",
        r"\bhall(o|aron|ado)\b",
        r"\brevis(o|aron|arlo|arla)\b",
        r"\bexamin",
        r"sintoma",
        r"por que (consulto|vino|fue)",
        r"que (le )?encontr",
        r"que dijo el medico",
        r"que refiere",
        r"se queja",
        r"analisis",
    ),
    "demographics": (
        r"\bedad\b",
        r"cuantos anos",
        r"\bnacio\b",
        r"fecha de nacimiento",
        r"tipo de sangre",
        r"grupo sanguineo",
        r"\brh\b",
        r"donde vive",
        r"de donde es",
        r"procedencia",
        r"\breside",
        r"\bciudad\b",
        r"documento",
        r"como se llama",
        r"nombre del paciente",
    ),
    "summary": (
        r"resumen",
        r"resum",
        r"historia (clinica )?completa",
        r"panorama",
        r"en general",
        r"que sabemos",
        r"cuentame (del|de la|sobre)",
        r"estado general",
    ),
}
_COMPILED = {intent: [re.compile(p) for p in pats] for intent, pats in _PATTERNS.items()}

_FOCUS: dict[str, tuple[str, ...]] = {
    "latest": (
        r"ultim",
        r"mas reciente",
        r"\bactual",
        r"recient",
        r"\bhoy\b",
        r"vigente",
        r"\bahora\b",
        r"actualmente",
    ),
    "next": (
        r"proxim",
        r"siguiente",
        r"pendiente",
        r"futur",
        r"programad",
        r"cuando (vuelve|le toca)",
    ),
    "first": (r"primer", r"inicial", r"desde cuando"),
    "before": (
        r"antes de (eso|esa|ese|esto)",
        r"anterior a (eso|esa|ese)",
        r"\by (el|la) anterior\b",
        r"previo a (eso|esa|ese)",
    ),
    "dose": (
        r"dosis",
        r"cada cuanto",
        r"frecuencia (de|del) (medicamento|tratamiento)",
        r"cuantas (veces|tabletas|pastillas)",
        r"posologi",
        r"cuanto (debe )?tomar",
        r"por cuantos dias",
    ),
    "pressure": (r"\bpresion", r"\btension\b", r"\bta\b"),
    "weight": (r"\bpeso\b", r"\bpesa\b", r"\bkilos?\b", r"\bimc\b", r"masa corporal"),
    "temperature": (r"temperatura", r"fiebre"),
    "heart_rate": (r"frecuencia cardi", r"\bpulso", r"\blat(e|ido|idos)\b", r"corazon"),
    "spo2": (r"saturacion", r"oxigen"),
}
_FOCUS_COMPILED = {name: [re.compile(p) for p in pats] for name, pats in _FOCUS.items()}
_HAS_CONDITION = re.compile(
    r"^\W*(?:desde cuando\s+)?(tiene|padece|sufre|ha tenido|tuvo|le diagnosticaron)\b"
)
_YEAR = re.compile(r"\b(?:en|del|de|durante|el ano)\s+(?:el\s+)?(20\d{2}|19\d{2})\b")


# Which section of a note a question is about ("¿qué le encontraron al revisarlo?" → exam).
NOTE_SECTION_WORDS = (
    ("MOTIVO DE CONSULTA", ("motivo", "por que consulto", "por que vino", "consulto por")),
    ("EXAMEN FÍSICO", ("examen", "hallaz", "hallo", "hallaron", "revis", "encontr", "fisico")),
    ("ANÁLISIS Y PLAN", ("plan", "analisis", "conducta", "indicaron", "recomend")),
    ("ENFERMEDAD ACTUAL", ("enfermedad actual", "sintoma", "refiere", "se queja", "cuadro")),
    ("ANTECEDENTES", ("antecedente",)),
)


def note_section(folded_question: str) -> str | None:
    for section, words in NOTE_SECTION_WORDS:
        if any(w in folded_question for w in words):
            return section
    return None


@dataclass(frozen=True)
class QuestionAnalysis:
    folded: str
    intents: tuple[str, ...]
    focus: tuple[str, ...] = ()
    year: int | None = None
    scores: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def source_types(self) -> tuple[str, ...]:
        types: list[str] = []
        for intent in self.intents:
            for source in INTENT_SOURCES[intent]:
                if source not in types:
                    types.append(source)
        return tuple(types)


# Disease names that contain a vital-sign word: "fiebre amarilla" is not a temperature.
_NOT_VITALS = re.compile(r"fiebre (amarilla|tifoidea|reumatica|del heno)|dengue")


def analyse(question: str) -> QuestionAnalysis:
    folded = fold(question)
    matched = _NOT_VITALS.sub(" ", folded)
    scores = {
        intent: sum(1 for pattern in patterns if pattern.search(matched))
        for intent, patterns in _COMPILED.items()
    }
    focus = tuple(
        name
        for name, patterns in _FOCUS_COMPILED.items()
        if any(p.search(matched) for p in patterns)
    )
    if "dose" in focus:
        scores["medications"] = max(scores["medications"], 1)
    if any(f in focus for f in ("pressure", "weight", "temperature", "heart_rate", "spo2")):
        scores["vitals"] = max(scores["vitals"], 1)
    if _HAS_CONDITION.search(folded):
        if names_catalog_condition(folded):
            # "¿Tiene rinitis alérgica?" asks about a diagnosis, not about allergies
            scores["allergies"] = 0
            scores["diagnoses"] = max(scores.values()) + 1
            focus = (*focus, "yesno")
        elif not any(v for k, v in scores.items() if k != "diagnoses") and (
            not scores["diagnoses"] or asked_conditions(folded)
        ):  # "¿Tiene hipertensión?", "¿Padece de asma?", "¿Tiene diagnóstico de EPOC?"
            scores["diagnoses"] = max(scores["diagnoses"], 1)
            focus = (*focus, "yesno")
    if scores["allergies"] and scores["medications"] <= 1:
        scores["medications"] = 0  # "¿es alérgico a algún medicamento?" asks about allergies
    best = max(scores.values())
    intents: tuple[str, ...] = ()
    if best > 0:
        # Keep every intent that was clearly asked for ("¿medicamentos y alergias?").
        intents = tuple(i for i, s in sorted(scores.items(), key=lambda kv: -kv[1]) if s > 0)
        if "summary" in intents:
            intents = ("summary",)
        intents = intents[:3]
    year_match = _YEAR.search(folded)
    return QuestionAnalysis(
        folded=folded,
        intents=intents,
        focus=focus,
        year=int(year_match.group(1)) if year_match else None,
        scores=scores,
    )
