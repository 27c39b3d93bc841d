"""Where acute care happens: how often a condition is seen in the emergency room, how often that
visit ends in a hospitalisation, for how long, and which chronic conditions decompensate.

Figures are rough clinical orders of magnitude for a Colombian outpatient clinic's population
(a sprained ankle goes to urgencias; a hip fracture in an 80-year-old is admitted; a cold is not),
tuned so that over the five-year history about a third of patients visit the emergency room at
least once and 5–10 % of adults are hospitalised at least once (`bench/encounter_rates.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

INTERNAL_MEDICINE = "MED_INTERNA"
PEDIATRICS = "PEDIATRIA"


@dataclass(frozen=True)
class AcuteCare:
    emergency: float  # probability that a visit for this condition is an emergency visit
    admission: float = 0.0  # probability that such an emergency visit ends in admission
    stay: tuple[int, int] = (2, 5)  # length of stay in days (inclusive range, before age)
    ward: str | None = None  # admitting specialty; None: internal medicine, pediatrics for kids


# Acute conditions of `conditions.json` by ICD-10 code. Absent: seen in the clinic only.
ACUTE_CARE: dict[str, AcuteCare] = {
    "J06.9": AcuteCare(0.08),
    "J03.0": AcuteCare(0.1),
    "A08.4": AcuteCare(0.3, 0.03, (1, 2)),
    "A90": AcuteCare(0.4, 0.1, (2, 4)),
    "A91": AcuteCare(1.0, 0.9, (3, 7)),
    "J18.9": AcuteCare(0.6, 0.35, (3, 8)),
    "L03.1": AcuteCare(0.35, 0.15, (3, 7)),
    "B02.9": AcuteCare(0.1),
    "S93.4": AcuteCare(0.5),
    "N23": AcuteCare(0.7, 0.08, (1, 3), "UROLOGIA"),
    "M54.5": AcuteCare(0.15),
    "N39.0": AcuteCare(0.15, 0.03, (2, 4)),
    "G44.2": AcuteCare(0.1),
    "J44.1": AcuteCare(0.8, 0.35, (3, 8)),
    "B51.9": AcuteCare(0.5, 0.2, (3, 5), "INFECTOLOGIA"),
    "B50.9": AcuteCare(0.7, 0.5, (3, 7), "INFECTOLOGIA"),
    "A15.0": AcuteCare(0.3, 0.35, (5, 10), "INFECTOLOGIA"),
    "N94.6": AcuteCare(0.15),
    "O13": AcuteCare(0.4, 0.35, (2, 5), "GINECOLOGIA_OBSTETRICIA"),
    "O23.4": AcuteCare(0.3, 0.15, (2, 4), "GINECOLOGIA_OBSTETRICIA"),
    "A09": AcuteCare(0.3, 0.08, (1, 3)),
    "H66.9": AcuteCare(0.12),
    "J00": AcuteCare(0.06),
    "J21.9": AcuteCare(0.45, 0.25, (2, 5)),
    "J18.0": AcuteCare(0.7, 0.45, (3, 7)),
    "L01.0": AcuteCare(0.05),
    "B01.9": AcuteCare(0.1),
    "J05.0": AcuteCare(0.7, 0.1, (1, 2)),
    "D50.9": AcuteCare(0.05),
    "P59.9": AcuteCare(0.3, 0.3, (1, 3)),
    "T14.1": AcuteCare(0.8, 0.02, (1, 2), "CIRUGIA_GENERAL"),
    "T63.0": AcuteCare(1.0, 0.9, (3, 7)),
    "S72.0": AcuteCare(1.0, 0.95, (5, 10), "ORTOPEDIA_TRAUMATOLOGIA"),
    "H81.1": AcuteCare(0.3, 0.03, (1, 2)),
    "K59.0": AcuteCare(0.05),
    "L50.9": AcuteCare(0.25),
    "N30.0": AcuteCare(0.15),
    "N10": AcuteCare(0.6, 0.3, (2, 5)),
    "H10.3": AcuteCare(0.05),
    # Decompensations of chronic conditions (see DECOMPENSATIONS): never sampled at random.
    "I50.1": AcuteCare(1.0, 0.5, (3, 8)),
    "E11.5": AcuteCare(0.6, 0.5, (4, 10)),
    "E16.2": AcuteCare(0.9, 0.1, (1, 2)),
}

# Chronic condition → (acute decompensation, yearly probability for a patient who has it).
DECOMPENSATIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "I50.0": (("I50.1", 0.12),),
    "J44.9": (("J44.1", 0.12),),
    "E11.9": (("E11.5", 0.015), ("E16.2", 0.025)),
}
DECOMPENSATION_CODES = frozenset(code for pairs in DECOMPENSATIONS.values() for code, _ in pairs)

# Emergency arrivals by hour of the day (Bogotá): a night trough, a late-morning and an evening
# peak. Relative weights.
ARRIVALS_BY_HOUR = (
    2.0, 1.5, 1.2, 1.0, 1.0, 1.2, 2.0, 3.0, 4.5, 5.5, 6.0, 6.0,
    5.5, 5.5, 5.5, 5.5, 5.5, 6.0, 6.5, 6.5, 6.0, 5.0, 4.0, 3.0,
)  # fmt: skip


def admission_factor(age_years: float, chronic_conditions: int) -> float:
    """How much likelier than an adult without comorbidities a patient is to be admitted."""
    if age_years < 2:
        factor = 1.5
    elif age_years < 65:
        factor = 1.0
    elif age_years < 80:
        factor = 1.6
    else:
        factor = 2.2
    return factor * (1 + 0.15 * chronic_conditions)


def extra_stay_days(age_years: float) -> int:
    """Older patients stay longer."""
    return 2 if age_years >= 80 else 1 if age_years >= 65 else 0
