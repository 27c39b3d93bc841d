"""The points of a vital-sign series ("¿cómo ha evolucionado la presión arterial?"), for a chart.

The executor selects the readings (`operation == "series"`); this turns them into one chart per
vital sign, one line per measured value (blood pressure: systolic and diastolic), each point with
its local day, value, unit and the chunk it comes from (and the answer's source number for it).
A reference band is given only where one range holds: resting adults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smarthealth.rag.executor import VITAL_KEYS, Execution
from smarthealth.rag.plan import VITAL_NAMES, VITAL_UNITS

LINE_NAMES = {
    "systolic": "sistólica",
    "diastolic": "diastólica",
    "heart_rate": "frecuencia cardiaca",
    "respiratory_rate": "frecuencia respiratoria",
    "spo2": "saturación de oxígeno",
    "temperature": "temperatura",
    "weight_kg": "peso",
    "height_cm": "talla",
    "bmi": "IMC",
}
# Usual ranges for a resting adult (blood pressure: ACC/AHA 2017 "normal", below 120/80, and
# above hypotension, 90/60; BMI: WHO normal weight). Weight and height have none.
ADULT_RANGES: dict[str, tuple[float, float]] = {
    "systolic": (90, 120),
    "diastolic": (60, 80),
    "heart_rate": (60, 100),
    "respiratory_rate": (12, 20),
    "spo2": (95, 100),
    "temperature": (36.0, 37.5),
    "bmi": (18.5, 24.9),
}


def is_series(execution: Execution | None) -> bool:
    return (
        execution is not None
        and execution.plan.subject == "vital"
        and execution.plan.operation == "series"
        and bool(execution.rows)
    )


def vital_series(
    execution: Execution, numbers: Mapping[int, int], adult: bool
) -> list[dict[str, Any]]:
    """One chart per vital sign of the series (empty when the answer is not a series).

    `numbers`: chunk id → the answer's source number (`[n]`), so a point links to its source;
    `adult`: whether the adult reference band applies."""
    if not is_series(execution):
        return []
    window = execution.plan.to_json().get("window")
    charts = []
    for kind in execution.plan.series_vitals:
        lines = []
        for key in VITAL_KEYS[kind]:
            points = [
                {
                    "date": day.isoformat(),
                    "value": row.facts[key],
                    "unit": VITAL_UNITS[kind],
                    "chunk_id": row.chunk_id,
                    "source_id": numbers.get(row.chunk_id),
                }
                for row in execution.rows
                if row.facts.get(key) is not None and (day := row.day) is not None
            ]
            band = ADULT_RANGES.get(key) if adult else None
            lines.append(
                {
                    "key": key,
                    "name": LINE_NAMES[key],
                    "reference": None if band is None else {"low": band[0], "high": band[1]},
                    "points": points,
                }
            )
        charts.append(
            {
                "vital": kind,
                "title": VITAL_NAMES[kind],
                "unit": VITAL_UNITS[kind],
                "window": window,
                "lines": lines,
            }
        )
    return charts


def series_chunks(series: list[dict[str, Any]]) -> set[int]:
    """The chunk ids a chart shows."""
    return {p["chunk_id"] for chart in series for line in chart["lines"] for p in line["points"]}
