"""Resolving references between the resources of one import: `urn:uuid:…` full URLs,
relative `Type/id`, absolute URLs ending in `Type/id`, conditional `Type?identifier=system|value`
(Synthea's references to practitioners and organizations), and contained `#id`."""

from __future__ import annotations

from typing import Any

from smarthealth.fhir.parse import Entry

# Where each patient-scoped resource names its patient.
PATIENT_FIELDS = {
    "Encounter": "subject",
    "Condition": "subject",
    "Observation": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "Procedure": "subject",
    "DocumentReference": "subject",
    "AllergyIntolerance": "patient",
    "Immunization": "patient",
}


def reference_of(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def _relative(url: str) -> str | None:
    """ "https://server/fhir/Patient/123/_history/2" → "Patient/123"."""
    parts = url.split("?")[0].rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return f"{parts[-2]}/{parts[-1]}"
    return None


class ReferenceIndex:
    def __init__(self, entries: list[Entry]) -> None:
        self.by_url: dict[str, Entry] = {}
        self.by_identifier: dict[tuple[str, str, str], Entry] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: Entry) -> None:
        kind = entry.resource_type
        if entry.full_url:
            self.by_url[entry.full_url] = entry
            relative = _relative(entry.full_url)
            if relative and relative.startswith(kind + "/"):
                self.by_url.setdefault(relative, entry)
        if entry.id:
            self.by_url.setdefault(f"{kind}/{entry.id}", entry)
        for identifier in entry.resource.get("identifier") or []:
            if isinstance(identifier, dict) and identifier.get("value"):
                system = str(identifier.get("system") or "")
                key = (kind, system, str(identifier["value"]))
                self.by_identifier.setdefault(key, entry)

    def resolve(self, reference: str | None, holder: Entry | None = None) -> Entry | None:
        if not reference:
            return None
        if reference.startswith("#") and holder is not None:
            for contained in holder.resource.get("contained") or []:
                if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                    return Entry(holder.file, holder.index, None, contained)
            return None
        if "?identifier=" in reference:
            kind, _, query = reference.partition("?identifier=")
            system, bar, value = query.partition("|")
            if not bar:
                system, value = "", query
            return self.by_identifier.get((kind, system, value))
        found = self.by_url.get(reference)
        if found is None and "/" in reference:
            relative = _relative(reference)
            found = self.by_url.get(relative) if relative else None
        return found

    def patient_reference(self, entry: Entry) -> str | None:
        """The reference an entry gives for its patient (Appointment: its Patient participant)."""
        if entry.resource_type == "Appointment":
            for participant in entry.resource.get("participant") or []:
                ref = reference_of((participant or {}).get("actor"))
                if ref and (ref.startswith("Patient") or "Patient/" in ref):
                    return ref
                target = self.resolve(ref)
                if target is not None and target.resource_type == "Patient":
                    return ref
            return None
        field = PATIENT_FIELDS.get(entry.resource_type)
        return reference_of(entry.resource.get(field)) if field else None


def external_id(entry: Entry) -> str:
    """The key of an imported resource in `fhir_external_ids`: its id, else its full URL."""
    if entry.id:
        return entry.id[:300]
    if entry.full_url:
        return entry.full_url[:300]
    raise ValueError("resource without id or fullUrl")
