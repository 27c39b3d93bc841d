"""Rated turns as CSV (UTF-8 with a BOM, so spreadsheets read the accents), one row each."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from smarthealth.feedback.schemas import FeedbackItem

COLUMNS = (
    "updated_at",
    "created_at",
    "user_id",
    "user_email",
    "session_id",
    "sequence_chat_id",
    "patient_id",
    "document_type",
    "document_number",
    "rating",
    "reason",
    "comment",
    "question",
    "answer",
    "model_used",
)
BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A value as text; one a spreadsheet would run as a formula is prefixed with `'`."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def header() -> str:
    return BOM + line(COLUMNS)


def line(values: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


def row(item: FeedbackItem) -> str:
    data = item.model_dump()
    return line(data[column] for column in COLUMNS)
