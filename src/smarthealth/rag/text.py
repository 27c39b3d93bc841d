"""Spanish text helpers: accent folding for search, stable hashes."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower-case and strip accents ("Hipertensión" → "hipertension"); ñ becomes n.

    PostgreSQL's `unaccent` is not in the embedded server, so documents and questions are folded
    the same way here before `to_tsvector('spanish', …)`.
    """
    decomposed = unicodedata.normalize("NFKD", text.lower())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", stripped).strip()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
