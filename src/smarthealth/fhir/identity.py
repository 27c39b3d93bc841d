"""Who an imported Patient is: a Colombian document (type + number) from its identifiers, and
a Spanish name (given names; first and second surname).

An identifier gives the document type by, in order:
1. its type code being one of the 8 Colombian codes (CC, CE, TI, PA, RC, MS, AS, CD) in any
   system but HL7's v2-0203 (where "CC" means something else);
2. its system, through the configurable map (`FHIR_IDENTIFIER_SYSTEMS`, JSON
   `{"system URI": "CC"}`);
3. its v2-0203 type code, with Synthea's defaults: SS (social security number) → CC,
   PPN (passport) → PA, MR (medical record number) → AS for adults, MS for minors.
The first identifier whose value fits the document column (3–20 letters, digits or hyphens)
wins; none → the patient is reported and skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from smarthealth.fhir.codes import (
    DOCUMENT_SYSTEM,
    EXT_FATHERS_FAMILY,
    EXT_MOTHERS_FAMILY,
    V2_0203,
)

DOCUMENT_TYPES = {"CC": 1, "CE": 2, "TI": 3, "PA": 4, "RC": 5, "MS": 6, "AS": 7, "CD": 8}
DOCUMENT_NUMBER = re.compile(r"^[A-Za-z0-9-]{3,20}$")
V2_DEFAULTS = {"SS": "CC", "PPN": "PA"}
PARTICLES = {"de", "del", "la", "las", "los", "y", "san", "da", "van", "von"}


@dataclass(frozen=True)
class Document:
    type_code: str
    number: str

    @property
    def type_id(self) -> int:
        return DOCUMENT_TYPES[self.type_code]


def _codes(identifier: dict[str, Any]) -> list[tuple[str | None, str]]:
    codings = (identifier.get("type") or {}).get("coding") or []
    return [(c.get("system"), str(c.get("code", ""))) for c in codings if c.get("code")]


def _minor(birth_date: str | None, today: dt.date) -> bool:
    try:
        born = dt.date.fromisoformat(str(birth_date)[:10])
    except ValueError:
        return False
    return (today - born).days < 18 * 365.25


def _candidate(
    identifier: dict[str, Any], systems: dict[str, str], minor: bool
) -> tuple[int, str] | None:
    """(priority, document type code) of one identifier, or None."""
    for system, code in _codes(identifier):
        if code.upper() in DOCUMENT_TYPES and system != V2_0203:
            return 0, code.upper()
    system = identifier.get("system")
    if isinstance(system, str):
        if system.startswith(DOCUMENT_SYSTEM + "/"):
            code = system.rsplit("/", 1)[1].upper()
            if code in DOCUMENT_TYPES:
                return 0, code
        if system in systems and systems[system].upper() in DOCUMENT_TYPES:
            return 1, systems[system].upper()
    for system, code in _codes(identifier):
        if system == V2_0203 and code in V2_DEFAULTS:
            return 2 + list(V2_DEFAULTS).index(code), V2_DEFAULTS[code]
        if system == V2_0203 and code == "MR":
            return 9, "MS" if minor else "AS"
    return None


def document_of(
    patient: dict[str, Any], systems: dict[str, str], today: dt.date | None = None
) -> Document | None:
    minor = _minor(patient.get("birthDate"), today or dt.date.today())
    best: tuple[int, int, Document] | None = None
    for position, identifier in enumerate(patient.get("identifier") or []):
        if not isinstance(identifier, dict):
            continue
        value = str(identifier.get("value") or "").strip()
        if not DOCUMENT_NUMBER.match(value):
            continue
        found = _candidate(identifier, systems, minor)
        if found is None:
            continue
        key = (found[0], position, Document(found[1], value.upper()))
        if best is None or key[:2] < best[:2]:
            best = key
    return best[2] if best else None


@dataclass(frozen=True)
class SpanishName:
    first_name: str
    middle_name: str | None
    first_surname: str
    second_surname: str | None


def _extension(name: dict[str, Any], url: str) -> str | None:
    for holder in (name.get("_family") or {}, name):
        for ext in holder.get("extension") or []:
            if ext.get("url") == url and ext.get("valueString"):
                return str(ext["valueString"]).strip()
    return None


def split_surnames(family: str) -> tuple[str, str | None]:
    """ "García López" → ("García", "López"); "de la Torre Ruiz" → ("de la Torre", "Ruiz");
    particles stay with the surname they introduce."""
    words = family.split()
    groups: list[str] = []
    pending: list[str] = []
    for word in words:
        pending.append(word)
        if word.lower() not in PARTICLES:
            groups.append(" ".join(pending))
            pending = []
    if pending:  # trailing particles: keep them with what came before
        if groups:
            groups[-1] += " " + " ".join(pending)
        else:
            groups.append(" ".join(pending))
    if not groups:
        return family.strip(), None
    if len(groups) == 1:
        return groups[0], None
    return groups[0], " ".join(groups[1:])


def _official(names: list[dict[str, Any]]) -> dict[str, Any] | None:
    usable = [n for n in names if isinstance(n, dict)]
    for use in ("official", "usual", None):
        for name in usable:
            if use is None or name.get("use") == use:
                return name
    return None


def spanish_name(resource: dict[str, Any]) -> SpanishName | None:
    name = _official(resource.get("name") or [])
    if name is None:
        return None
    given = [str(g).strip() for g in name.get("given") or [] if str(g).strip()]
    fathers = _extension(name, EXT_FATHERS_FAMILY)
    mothers = _extension(name, EXT_MOTHERS_FAMILY)
    family = str(name.get("family") or "").strip()
    if fathers:
        first, second = fathers, mothers
    elif family:
        first, second = split_surnames(family)
    elif name.get("text"):
        words = str(name["text"]).split()
        given = given or words[:1]
        first, second = (words[-1], None) if len(words) > 1 else (words[0], None)
    else:
        return None
    if not given:
        return None
    middle = " ".join(given[1:]) or None
    return SpanishName(
        given[0][:80], middle[:80] if middle else None, first[:80], second[:80] if second else None
    )
