"""Physiologically plausible vital signs: an age/sex baseline plus each active condition's shift."""

from __future__ import annotations

import random
from dataclasses import dataclass

from smarthealth.ingest.catalogs import Condition

# Ranges kept inside the database's check constraints and inside what a clinician would believe.
LIMITS = {
    "systolic": (70, 210),
    "diastolic": (40, 125),
    "heart_rate": (45, 180),
    "respiratory_rate": (10, 60),
    "temperature": (35.5, 40.5),
    "spo2": (82, 100),
}


def expected_height_cm(age_years: float, sex: str) -> float:
    """Rough WHO growth medians; adults get a fixed per-patient height."""
    if age_years < 1:
        return 50 + 25 * age_years
    if age_years < 2:
        return 75 + 11 * (age_years - 1)
    if age_years < 13:
        return 86 + 6.2 * (age_years - 2)
    adult = 170.0 if sex == "M" else 158.0
    return min(adult, 154 + (adult - 154) * (age_years - 13) / 5)


def expected_weight_kg(age_years: float) -> float:
    if age_years < 1:
        return 3.3 + 6.5 * age_years
    if age_years < 2:
        return 9.8 + 2.2 * (age_years - 1)
    if age_years < 13:
        return 12 + 2.6 * (age_years - 2)
    return 40 + 4 * (min(age_years, 18) - 13)


@dataclass(frozen=True)
class Baseline:
    """Per-patient constants: adult height and body-mass index, resting blood pressure offset."""

    height_factor: float
    bmi: float
    bp_offset: float
    hr_offset: float


def make_baseline(rng: random.Random) -> Baseline:
    return Baseline(
        height_factor=rng.gauss(1.0, 0.04),
        bmi=min(max(rng.gauss(26.0, 4.0), 17.5), 42.0),
        bp_offset=rng.gauss(0, 7),
        hr_offset=rng.gauss(0, 6),
    )


@dataclass(frozen=True)
class VitalSigns:
    systolic: int
    diastolic: int
    heart_rate: int
    respiratory_rate: int
    temperature: float
    spo2: int
    weight_kg: float
    height_cm: float


def _clamp(name: str, value: float) -> float:
    low, high = LIMITS[name]
    return min(max(value, low), high)


def measure(
    rng: random.Random,
    baseline: Baseline,
    age_years: float,
    sex: str,
    conditions: list[tuple[Condition, float]],
) -> VitalSigns:
    """Vitals at one visit. `conditions` pairs each active condition with how strongly it shows
    (1.0 untreated or acute, less once treatment controls it)."""
    height = expected_height_cm(age_years, sex) * baseline.height_factor
    if age_years >= 18:
        weight = baseline.bmi * (height / 100) ** 2
    else:
        weight = expected_weight_kg(age_years) * (baseline.bmi / 26) ** 0.5
    if age_years < 1:
        sbp, hr, rr = 85.0, 130.0, 36.0
    elif age_years < 6:
        sbp, hr, rr = 95.0, 108.0, 26.0
    elif age_years < 13:
        sbp, hr, rr = 102.0, 88.0, 20.0
    else:
        sbp, hr, rr = 108 + 0.45 * max(age_years - 18, 0), 72.0, 16.0
    sbp += baseline.bp_offset + rng.gauss(0, 5)
    dbp = 0.63 * sbp + rng.gauss(0, 4)
    hr += baseline.hr_offset + rng.gauss(0, 4)
    rr += rng.gauss(0, 1.2)
    temp = 36.6 + rng.gauss(0, 0.25)
    spo2 = 97 + rng.gauss(0, 1.0)
    for condition, strength in conditions:
        shift = condition.vitals
        sbp += shift.systolic * strength
        dbp += shift.diastolic * strength
        hr += shift.heart_rate * strength
        rr += shift.respiratory_rate * strength
        temp += shift.temperature * strength
        spo2 += shift.spo2 * strength
        weight += shift.weight_kg * strength
    sbp = _clamp("systolic", sbp)
    dbp = min(_clamp("diastolic", dbp), sbp - 20)
    weight = max(weight + rng.gauss(0, 0.6 if age_years >= 18 else 0.2), 2.0)
    return VitalSigns(
        systolic=round(sbp),
        diastolic=round(dbp),
        heart_rate=round(_clamp("heart_rate", hr)),
        respiratory_rate=round(_clamp("respiratory_rate", rr)),
        temperature=round(_clamp("temperature", temp), 1),
        spo2=round(min(_clamp("spo2", spo2), 100)),
        weight_kg=round(weight, 1),
        height_cm=round(height, 1),
    )
