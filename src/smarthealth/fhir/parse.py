"""Reading FHIR R4 input: Bundles (transaction, batch, collection, searchset), NDJSON bulk
files (one resource per line), single resources, or folders of them; and validating each
resource with `fhir.resources` (R4B, R4 with its technical corrections).

Every resource keeps where it came from (file, entry index) so an error can be located.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

BUNDLE_TYPES = ("transaction", "batch", "collection", "searchset")
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Entry:
    file: str
    index: int  # entry index in a Bundle, line number (from 1) in NDJSON, 0 for one resource
    full_url: str | None
    resource: dict[str, Any]

    @property
    def resource_type(self) -> str:
        return str(self.resource.get("resourceType", ""))

    @property
    def id(self) -> str | None:
        value = self.resource.get("id")
        return str(value) if value is not None else None


@dataclass(frozen=True)
class Issue:
    """A located problem: stable English `code`, Spanish `message`, never exception text."""

    code: str
    message: str
    file: str
    index: int | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class InputFileError(ValueError):
    """The file itself cannot be read as FHIR (not JSON, not a Bundle of a supported type)."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.code)
        self.issue = issue


def _depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _bad(name: str, code: str, message: str, index: int | None = None) -> InputFileError:
    return InputFileError(Issue(code, message, name, index))


def _load_json(name: str, text: str, index: int | None = None) -> Any:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise _bad(name, "INVALID_JSON", "El archivo no es JSON válido.", index) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise _bad(name, "INVALID_JSON", "El JSON está anidado demasiado profundo.", index)
    return value


def entries_of(name: str, data: bytes) -> Iterator[Entry]:
    """The resources of one file: NDJSON when the name says so (or the text has one object per
    line), else a Bundle or a single resource."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad(name, "INVALID_ENCODING", "El archivo no está codificado en UTF-8.") from None
    if name.endswith(".ndjson") or name.endswith(".ndjson.txt"):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                resource = _load_json(name, line, number)
                if not isinstance(resource, dict):
                    raise _bad(name, "NOT_A_RESOURCE", "Cada línea debe ser un recurso FHIR.")
                yield Entry(name, number, None, resource)
        return
    document = _load_json(name, text)
    if not isinstance(document, dict) or "resourceType" not in document:
        raise _bad(name, "NOT_A_RESOURCE", "El archivo no contiene un recurso FHIR.")
    if document["resourceType"] != "Bundle":
        yield Entry(name, 0, None, document)
        return
    kind = document.get("type")
    if kind not in BUNDLE_TYPES:
        raise _bad(
            name,
            "UNSUPPORTED_BUNDLE",
            "Tipo de Bundle no admitido: use transaction, batch, collection o searchset.",
        )
    for index, entry in enumerate(document.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue  # a transaction's DELETE, or an empty entry: nothing to import
        full_url = entry.get("fullUrl")
        yield Entry(name, index, full_url if isinstance(full_url, str) else None, resource)


def files_under(paths: list[Path]) -> list[Path]:
    """Files to read, in a stable order: the paths given, folders searched recursively for
    .json and .ndjson files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in (".json", ".ndjson")
            )
        else:
            found.append(path)
    return found


@dataclass
class _Models:
    classes: dict[str, Any]


_MODELS = _Models({})


def _model(resource_type: str) -> Any:
    cls = _MODELS.classes.get(resource_type)
    if cls is None:
        from fhir.resources.R4B import get_fhir_model_class

        cls = get_fhir_model_class(resource_type)
        _MODELS.classes[resource_type] = cls
    return cls


def is_resource_type(name: str) -> bool:
    """A resource type R4 defines ("Patient"), not any other string."""
    if not name or not name.isalpha() or not name[:1].isupper():
        return False
    try:
        _model(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return False
    return True


def validate(entry: Entry) -> Issue | None:
    """None when the resource is valid R4 (as `fhir.resources` R4B checks it), else the first
    problem, located by field path (never the library's message, which may quote values)."""
    try:
        _model(entry.resource_type).model_validate(entry.resource)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else None
        return Issue(
            "INVALID_RESOURCE",
            "El recurso no es FHIR R4 válido.",
            entry.file,
            entry.index,
            entry.resource_type,
            entry.id,
            where,
        )
    except (KeyError, ValueError, TypeError):
        return Issue(
            "INVALID_RESOURCE",
            "El recurso no es FHIR R4 válido.",
            entry.file,
            entry.index,
            entry.resource_type,
            entry.id,
        )
    return None
