"""Spanish text helpers: accent folding for search, query terms, stable hashes."""

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


STOPWORDS = frozenset(
    """a al algo algun alguna algunas alguno algunos ante antes aqui asi cada como con cual
    cuales cuando cuanto cuanta cuantos cuantas de del desde donde durante e el ella ellas ellos
    en entre era es esa ese eso esta estaba estan estas este esto estos fue fueron ha han hay la
    las le les lo los mas me mi mis muy no nos o para pero por que quien se sea segun ser si sin
    sobre su sus tambien tiene tienen tuvo un una unas uno unos y ya paciente pacientes senor
    senora usted favor dime decir dame cual hay alguna tiene tenia ha sido esta estan
    historia clinica registro registrado registrada necesito necesita quiero quisiera confirma
    confirme indique informe verifique periodo relacione relacionara relacionar confirmas rapido
    rapidito urgente""".split()
)
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9a-z]+)?")
_ICD = re.compile(r"^[a-z][0-9]{2}(\.[0-9a-z]{1,2})?$")


def lexical_query(question: str) -> str | None:
    """An OR tsquery of the question's content words (accent-folded, like the documents);
    ICD-10-like codes match by prefix."""
    terms: list[str] = []
    for token in _TOKEN.findall(fold(question)):
        if token in STOPWORDS or (len(token) < 3 and not token.isdigit()):
            continue
        term = f"{token.split('.')[0]}:*" if _ICD.match(token) else token.replace(".", "")
        if term not in terms:
            terms.append(term)
    return " | ".join(terms) if terms else None
