"""Appointments in the offline engine: "última" is the past, "próxima" the future."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from smarthealth.rag.engines.base import AnswerContext, SourceFact
from smarthealth.rag.engines.extractive import compose
from smarthealth.rag.intent import analyse

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _context(question: str, *starts: dt.datetime) -> AnswerContext:
    sources = tuple(
        SourceFact(
            number=n,
            chunk_id=100 + n,
            source_type="appointment",
            occurred_at=start,
            content=f"Cita de Medicina general el {start:%d/%m/%Y}.",
            facts={
                "start": start.isoformat(),
                "specialty": "Medicina general",
                "doctor": "Dra. Milena Cardozo",
                "status": "Scheduled" if start > NOW else "Completed",
                "reason": "Control",
            },
        )
        for n, start in enumerate(starts, start=1)
    )
    analysis = analyse(question)
    return AnswerContext(
        question=question,
        patient_name="Carmen Ramírez",
        intents=analysis.intents,
        sources=sources,
        today=NOW.date(),
        focus=analysis.focus,
        now=NOW,
    )


def test_last_appointment_is_never_an_upcoming_one() -> None:
    upcoming = NOW + dt.timedelta(days=100)
    text, cited = compose(_context("¿Cuándo fue su última cita?", upcoming))
    assert (
        text == "No encuentro información sobre citas anteriores en la historia clínica de "
        "Carmen Ramírez."
    )
    assert cited == ()
    text, cited = compose(_context("¿Cuándo es su próxima cita?", upcoming))
    assert text.startswith(f"La próxima cita es el {upcoming:%d/%m/%Y}") and cited == (1,)


def test_last_appointment_is_the_most_recent_past_one() -> None:
    older, recent = NOW - dt.timedelta(days=300), NOW - dt.timedelta(days=20)
    upcoming = NOW + dt.timedelta(days=30)
    text, cited = compose(_context("¿Cuándo fue su última cita?", older, upcoming, recent))
    assert text.startswith(f"La última cita registrada fue el {recent:%d/%m/%Y}") and cited == (3,)


def test_before_that_never_answers_with_an_upcoming_appointment() -> None:
    upcoming = NOW + dt.timedelta(days=100)
    # as the pipeline resolves it after "¿Cuándo fue su última cita?": same intent, "before"
    follow_up = replace(
        _context("¿y antes de eso?", upcoming), intents=("appointments",), focus=("before",)
    )
    text, cited = compose(follow_up)
    assert text.startswith("No encuentro información sobre citas")
    assert cited == ()
