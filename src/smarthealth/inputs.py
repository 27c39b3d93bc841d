"""One input policy for every value that comes from outside (REST bodies, query strings, path
parameters, WebSocket frames, CLI arguments), applied where the value is parsed, so nothing that
PostgreSQL cannot store — or that a column cannot hold — ever reaches a query.

Text:
- lone surrogates (invalid Unicode; JSON `"\\ud800"` or undecodable CLI bytes) are refused;
- control characters (Unicode Cc: NUL, the other C0 codes, DEL, C1) are refused; free text (a
  question) keeps tab, newline and carriage return, single-line fields (names, e-mails, filters)
  accept none;
- bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) are refused in names and
  e-mails, where they can make one account look like another;
- what passes is normalised to NFC (passwords excepted: they are hashed as typed).

Refusal, never silent stripping: the caller gets 422 `INVALID_INPUT` naming the field, so what
is stored is exactly what was sent. Values recorded as evidence rather than accepted as input
(a refused question in the audit trail, a User-Agent header) go through `storable()` instead.

Numbers: identifiers are bounded to their column's range (`INT4_MAX`), timestamps to what the
driver can send (`Timestamp`), JSON to `MAX_JSON_DEPTH`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

INT2_MAX = 2**15 - 1
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # Cc but \t \n \r
_CONTROL_ANY = re.compile("[\x00-\x1f\x7f-\x9f]")
_BIDI_OVERRIDE = re.compile("[\u202a-\u202e\u2066-\u2069]")
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _check(value: str, control: re.Pattern[str], bidi: bool) -> None:
    if _SURROGATE.search(value):
        raise PydanticCustomError("text_invalid_unicode", "contiene caracteres Unicode no válidos")
    if control.search(value):
        raise PydanticCustomError(
            "text_control_character", "contiene caracteres de control no permitidos"
        )
    if bidi and _BIDI_OVERRIDE.search(value):
        raise PydanticCustomError(
            "text_bidi_override", "contiene caracteres de control de dirección no permitidos"
        )


def free_text(value: str) -> str:
    """Multi-line text (a question): tab, newline and carriage return allowed."""
    _check(value, _CONTROL_MULTILINE, bidi=False)
    return unicodedata.normalize("NFC", value)


def line_text(value: str) -> str:
    """One line (a filter, a code): no control character at all."""
    _check(value, _CONTROL_ANY, bidi=False)
    return unicodedata.normalize("NFC", value)


def identity_text(value: str) -> str:
    """A name or an e-mail: one line, and no bidi override that could disguise it."""
    _check(value, _CONTROL_ANY, bidi=True)
    return unicodedata.normalize("NFC", value)


def secret_text(value: str) -> str:
    """A password: same refusals as a line, but kept as typed (it is hashed, never shown)."""
    _check(value, _CONTROL_ANY, bidi=False)
    return value


FreeText = Annotated[str, AfterValidator(free_text)]
LineText = Annotated[str, AfterValidator(line_text)]
IdentityText = Annotated[str, AfterValidator(identity_text)]
SecretText = Annotated[str, AfterValidator(secret_text)]


# -- the same rules as JSON Schema, for the OpenAPI document (and the fuzzer reading it) -------
# Character classes spelt out rather than `\s`: Python, ECMAScript and Rust disagree on it.
CONTROL = r"\x00-\x1f\x7f-\x9f"  # Unicode Cc
CONTROL_MULTILINE = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # Cc but tab, LF, CR
BIDI = r"\u202a-\u202e\u2066-\u2069"
# What str.split()/strip() (and pydantic's strip) take as white space, controls aside.
WHITESPACE = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

LINE_PATTERN = f"^[^{CONTROL}]*$"
IDENTITY_PATTERN = f"^[^{CONTROL}{BIDI}]*$"


def text_schema(
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    **extra: Any,
) -> WithJsonSchema:
    """The JSON Schema a text field documents: what the validators accept (or a strict subset
    of it, where the rule cannot be written as a pattern), so a request valid under the
    document is never refused."""
    schema: dict[str, Any] = {"type": "string"}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if pattern is not None:
        schema["pattern"] = pattern
    schema.update(extra)
    return WithJsonSchema(schema)


def whole_number(value: Any) -> Any:
    """JSON Schema counts `2.0` as the integer 2; text ("2") and booleans stay refused (with
    `strict=True` on the field)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def storable(value: str) -> str:
    """For evidence, not input: control characters and lone surrogates become U+FFFD, so a
    refused value can still be recorded (PostgreSQL rejects NUL and invalid UTF-8)."""
    return unicodedata.normalize("NFC", _UNSTORABLE.sub("\ufffd", value))


def utc_representable(value: dt.datetime) -> dt.datetime:
    """A timestamp the driver can send: with its offset applied it must stay within years
    1-9999 (`9999-12-31T23:59:59-05:00` is past them in UTC and would fail in asyncpg)."""
    if value.tzinfo is not None:
        try:
            value.astimezone(dt.UTC)
        except OverflowError:
            raise PydanticCustomError("datetime_out_of_range", "fecha fuera de rango") from None
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_datetime_text(value: Any) -> Any:
    """Only ISO 8601 (`2026-01-09`, `2026-01-09T10:30:00-05:00`): pydantic alone would also
    read `0.5` or `1700000000` as seconds since 1970, which no one means by a date."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise PydanticCustomError(
            "datetime_format",
            "use una fecha ISO 8601 (AAAA-MM-DD o AAAA-MM-DDTHH:MM:SS±HH:MM)",
        )
    return value


# Years 0001 and 9999 are left out of the documented pattern: with an offset, their first or
# last day is outside what can be sent (422 above); every other ISO date-time is accepted.
_YEARS_THAT_FIT = (
    r"^(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
)

Timestamp = Annotated[
    dt.datetime,
    BeforeValidator(iso_datetime_text),
    AfterValidator(utc_representable),
    text_schema(_YEARS_THAT_FIT, format="date-time"),
]


class JSONTooDeepError(ValueError):
    """Nesting beyond `MAX_JSON_DEPTH` (a ValueError, like any other invalid JSON)."""


def parse_json(raw: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` that refuses nesting deeper than `max_depth` with a ValueError instead of
    recursing into a RecursionError (or handing a huge tree to the validators)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JSONTooDeepError from None
    brackets = (
        raw.count(b"[") + raw.count(b"{")
        if isinstance(raw, bytes)
        else raw.count("[") + raw.count("{")
    )
    if brackets <= max_depth:
        return value  # it cannot nest deeper than the brackets it has
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise JSONTooDeepError
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return value
