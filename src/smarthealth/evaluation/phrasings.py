"""The Spanish phrasings of every kind of question, in halves that never share a phrasing.

`phrasings_dev.json` is the development half: tune on it. `phrasings_heldout.json` is the
held-out half: it measures whether what was tuned generalises, so nobody tuning the engine
opens it. `phrasings_probe.json` is a third set, written independently of both from the kind
descriptions alone by someone who never saw the engine: once the engine overfits dev, measure on
it first (its first, untuned score is an independent estimate), then tune against it (it is
readable) and leave the held-out half untouched; it is asked only when named (`smarthealth eval
--half probe`), never by the default run. A probe set that has been tuned on moves to
`phrasings_tuned.json` (without the phrasings that overlap a held-out one), where it guards what
was tuned (`--half tuned`), and a fresh one takes its place. All have the same shape:

    {"half": "dev", "about": "…", "kinds": {"med_yes": [entry, …], …}}

In the held-out file (`"encoding": "base64"`) every entry is the base64 of its JSON, so that a
grep over the sources or the diff of a merge does not show a held-out phrasing by accident.

An entry is one phrasing: `{"text": "¿Está tomando {drug}?", "tags": ["sin_tildes"]}`, or for a
two-turn kind `{"turns": ["¿Está tomando {drug}?", "¿y la dosis?"]}` (the second turn is the
one scored), plus `"topic"` for out-of-record questions (which probe words would betray that the
record does talk about it: `OUT_OF_RECORD_PROBES` in gold.py). Tags: `typo`, `sin_tildes`,
`abrev`, `coloquial`; `paciente` is added here when the phrasing says "paciente" or {pac}.
Placeholders are listed in `kinds.py`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from smarthealth.evaluation.kinds import ALL_HALVES, KIND_BY_NAME, ROBUST_TAGS, TAGS

FILES = {
    "dev": "phrasings_dev.json",
    "heldout": "phrasings_heldout.json",
    "probe": "phrasings_probe.json",
    "tuned": "phrasings_tuned.json",
}
PLACEHOLDERS = frozenset(
    {
        "drug",
        "drug_f",
        "condicion",
        "condicion_f",
        "clase",
        "clase_n",
        "anio",
        "lab",
        "lab_f",
        "vacuna",
        "vacuna_f",
        "alergeno",
        "alergeno_f",
        "pac",
        "Pac",
        "al_pac",
        "o",
        "lo",
        "Lo",
    }
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
_PACIENTE = re.compile(r"\bpaciente\b|\{(pac|Pac|al_pac)\}", re.IGNORECASE)


@dataclass(frozen=True)
class Phrasing:
    pid: str  # "dev:med_yes:3"
    kind: str
    half: str
    turns: tuple[str, ...]  # one text, or the two turns of a follow-up kind
    tags: frozenset[str]
    topic: str | None = None

    @property
    def scored(self) -> str:
        return self.turns[-1]

    @property
    def robust(self) -> bool:
        """Typo, no accents, abbreviation or "el/la paciente": counted in `robustness` too."""
        return bool(self.tags & ROBUST_TAGS)

    def placeholders(self, turn: int = 0) -> set[str]:
        return set(_PLACEHOLDER.findall(self.turns[turn]))


def _entry(half: str, kind: str, index: int, raw: dict[str, Any]) -> Phrasing:
    turns = tuple(raw["turns"]) if "turns" in raw else (raw["text"],)
    tags = set(raw.get("tags", ()))
    if any(_PACIENTE.search(t) for t in turns):
        tags.add("paciente")
    return Phrasing(f"{half}:{kind}:{index}", kind, half, turns, frozenset(tags), raw.get("topic"))


@cache
def load(half: str) -> dict[str, tuple[Phrasing, ...]]:
    """Kind → phrasings of one half, from the packaged JSON file."""
    if half not in ALL_HALVES:
        raise ValueError(f"unknown half {half!r}")
    text = resources.files("smarthealth.evaluation").joinpath(FILES[half]).read_text("utf-8")
    data = json.loads(text)
    encoded = data.get("encoding") == "base64"

    def raw(entry: Any) -> dict[str, Any]:
        return json.loads(base64.b64decode(entry)) if encoded else dict(entry)

    return {
        kind: tuple(_entry(half, kind, i, raw(e)) for i, e in enumerate(entries))
        for kind, entries in data["kinds"].items()
    }


def problems(half: str) -> list[str]:
    """What is wrong with a half's file (empty when it is well formed)."""
    found: list[str] = []
    kinds = load(half)
    for name in sorted(set(KIND_BY_NAME) - set(kinds)):
        found.append(f"{half}: kind {name} has no phrasings")
    for name, phrasings in kinds.items():
        kind = KIND_BY_NAME.get(name)
        if kind is None:
            found.append(f"{half}: unknown kind {name}")
            continue
        for p in phrasings:
            if len(p.turns) != (2 if kind.pair else 1):
                found.append(f"{p.pid}: {len(p.turns)} turn(s)")
                continue
            if unknown := p.tags - TAGS:
                found.append(f"{p.pid}: unknown tags {sorted(unknown)}")
            for turn in range(len(p.turns)):
                if strange := p.placeholders(turn) - PLACEHOLDERS:
                    found.append(f"{p.pid}: unknown placeholders {sorted(strange)}")
            first = p.placeholders(0)
            for need in kind.needs:
                if not first & {need, f"{need}_f", f"{need}_n"}:
                    found.append(f"{p.pid}: needs {{{need}}}")
            if kind.pair and p.placeholders(1) & {"drug", "drug_f", "condicion", "condicion_f"}:
                found.append(f"{p.pid}: the follow-up names its subject")
            if name.startswith("oor_") and not p.topic:
                found.append(f"{p.pid}: out-of-record phrasing without a topic")
    return found


def render(text: str, values: dict[str, str]) -> str:
    """Fill the placeholders of one turn (KeyError when one has no value)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
