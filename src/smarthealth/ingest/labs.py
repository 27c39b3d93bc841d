"""Laboratory results of the synthetic histories: which tests a visit orders, given the
conditions diagnosed at it, and plausible values for them.

A result belongs to the visit that ordered it: the sample is taken one to seven mornings before
the visit and read there (a diabetic's control brings its HbA1c). Values come from the patient's
state (a diabetic's glucose runs high, a kidney patient's creatinine too) with noise, so some fall
outside the reference range and are flagged H or L; values inside it are flagged N.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

LOINC = "LOINC"


@dataclass(frozen=True)
class LabTest:
    code: str  # LOINC
    display: str  # Spanish, as a laboratory report says it
    unit: str
    low: float | None
    high: float | None
    decimals: int
    healthy: tuple[float, float]  # mean, standard deviation in someone without the condition


TESTS = {
    t.code: t
    for t in (
        LabTest("4548-4", "Hemoglobina glicosilada (HbA1c)", "%", 4.0, 5.6, 1, (5.2, 0.3)),
        LabTest("1558-6", "Glucosa en ayunas", "mg/dL", 70, 99, 0, (88, 8)),
        LabTest("2160-0", "Creatinina sérica", "mg/dL", 0.6, 1.2, 2, (0.9, 0.15)),
        LabTest(
            "33914-3",
            "Tasa de filtración glomerular estimada",
            "mL/min/1.73m2",
            60,
            None,
            0,
            (95, 12),
        ),
        LabTest("2823-3", "Potasio sérico", "mmol/L", 3.5, 5.1, 1, (4.2, 0.35)),
        LabTest("2093-3", "Colesterol total", "mg/dL", None, 199, 0, (185, 30)),
        LabTest("13457-7", "Colesterol LDL", "mg/dL", None, 129, 0, (110, 25)),
        LabTest("2085-9", "Colesterol HDL", "mg/dL", 40, None, 0, (50, 10)),
        LabTest("2571-8", "Triglicéridos", "mg/dL", None, 149, 0, (130, 45)),
        LabTest(
            "3016-3", "Hormona estimulante de la tiroides (TSH)", "mUI/L", 0.4, 4.0, 2, (2.0, 0.8)
        ),
        LabTest("718-7", "Hemoglobina", "g/dL", 12.0, 16.0, 1, (13.8, 1.0)),
        LabTest("14959-1", "Microalbuminuria", "mg/g", None, 30, 0, (12, 6)),
    )
}
LIPIDS = ("2093-3", "13457-7", "2085-9", "2571-8")
# How a condition moves a test: (mean, standard deviation) instead of the healthy ones.
SHIFTS: dict[str, dict[str, tuple[float, float]]] = {
    "E11.9": {"4548-4": (7.4, 1.1), "1558-6": (138, 32), "14959-1": (35, 25)},
    "E11.5": {"4548-4": (8.6, 1.2), "1558-6": (170, 40)},
    "O24.4": {"1558-6": (102, 12)},
    "E78.5": {"2093-3": (228, 32), "13457-7": (148, 30), "2571-8": (195, 60), "2085-9": (41, 8)},
    "E66.9": {"2571-8": (175, 55), "2085-9": (42, 8)},
    "E03.9": {"3016-3": (4.6, 2.4)},
    "E05.9": {"3016-3": (0.25, 0.2)},
    "N18.9": {"2160-0": (1.9, 0.5), "33914-3": (42, 11), "2823-3": (4.8, 0.45)},
    "D50.9": {"718-7": (10.1, 1.0)},
}
# What a visit for a condition orders: tests every time, and tests once a calendar year.
ORDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "E11.9": (("4548-4", "1558-6"), ("2160-0", "14959-1", *LIPIDS)),
    "E11.5": (("4548-4", "1558-6", "2160-0"), ()),
    "O24.4": (("1558-6",), ()),
    "I10": ((), ("2160-0", "2823-3", *LIPIDS)),
    "E78.5": ((), LIPIDS),
    "I25.1": ((), LIPIDS),
    "E03.9": (("3016-3",), ()),
    "E05.9": (("3016-3",), ()),
    "N18.9": (("2160-0", "33914-3", "2823-3"), ("718-7",)),
    "I50.0": ((), ("2160-0", "2823-3")),
    "I48": ((), ("2160-0", "3016-3")),
    "D50.9": (("718-7",), ()),
    "Z34.9": ((), ("718-7", "1558-6")),
    "Z00.0": (("1558-6", "718-7", "2160-0", *LIPIDS), ()),
}
# Drawn in the emergency room or on admission, most of the time.
ACUTE_PANEL = ("718-7", "2160-0", "2823-3", "1558-6")


@dataclass(frozen=True)
class Result:
    test: LabTest
    value: Decimal
    flag: str  # H, L or N
    at: dt.datetime


def _sex_range(test: LabTest, sex: str) -> tuple[float | None, float | None]:
    if test.code == "718-7":
        return (12.0, 16.0) if sex == "F" else (13.5, 17.5)
    if test.code == "2160-0":
        return (0.5, 1.1) if sex == "F" else (0.7, 1.3)
    return test.low, test.high


def reference(test: LabTest, sex: str) -> tuple[Decimal | None, Decimal | None]:
    low, high = _sex_range(test, sex)
    return (
        None if low is None else Decimal(str(low)),
        None if high is None else Decimal(str(high)),
    )


def measure(
    rng: random.Random, test: LabTest, sex: str, conditions: set[str], at: dt.datetime
) -> Result:
    """One value of `test` for a patient with `conditions` (ICD-10 codes diagnosed so far)."""
    mean, sd = test.healthy
    if test.code == "718-7" and sex == "M":
        mean += 1.5
    for code in sorted(conditions):
        mean, sd = SHIFTS.get(code, {}).get(test.code, (mean, sd))
    value = max(rng.gauss(mean, sd), mean / 4)
    shown = Decimal(f"{value:.{test.decimals}f}")
    low, high = reference(test, sex)
    flag = (
        "L"
        if low is not None and shown < low
        else "H"
        if high is not None and shown > high
        else "N"
    )
    return Result(test, shown, flag, at)


def orders(
    rng: random.Random,
    codes: tuple[str, ...],
    record_type: str,
    age: float,
    yearly_done: set[tuple[str, int]],
    year: int,
) -> list[str]:
    """The LOINC codes a visit with these diagnoses orders (principal first); `yearly_done`
    remembers (test, year) pairs already ordered, so yearly tests come once a year."""
    wanted: list[str] = []
    if record_type in ("Urgencias", "Hospitalización"):
        if age >= 14 and rng.random() < 0.75:
            wanted += ACUTE_PANEL
    else:
        for code in codes:
            every, yearly = ORDERS.get(code, ((), ()))
            wanted += every
            for test in yearly:
                if (test, year) not in yearly_done:
                    yearly_done.add((test, year))
                    wanted.append(test)
        if not wanted and age >= 18 and record_type == "Consulta externa" and rng.random() < 0.06:
            wanted.append("718-7")  # a blood count for something unspecific
    return list(dict.fromkeys(wanted))


def results(
    rng: random.Random,
    visits: list[tuple[int, dt.datetime, str, tuple[str, ...]]],
    birth: dt.date,
    sex: str,
    tz: dt.tzinfo,
) -> list[tuple[int, Result]]:
    """The results of a patient's visits (record id, result), in visit order. `visits` are
    (record id, when, record type, ICD-10 codes diagnosed there)."""
    out: list[tuple[int, Result]] = []
    yearly_done: set[tuple[str, int]] = set()
    diagnosed: set[str] = set()
    for record_id, at, record_type, codes in visits:
        diagnosed.update(codes)
        age = (at.date() - birth).days / 365.25
        tests = orders(rng, codes, record_type, age, yearly_done, at.year)
        if not tests:
            continue
        if record_type in ("Urgencias", "Hospitalización"):
            drawn = at + dt.timedelta(minutes=rng.randrange(20, 90))
        else:  # a fasting sample a few mornings before the visit
            day = at.date() - dt.timedelta(days=rng.randint(1, 7))
            drawn = dt.datetime.combine(day, dt.time(rng.randint(6, 8), rng.randrange(0, 60)), tz)
        out += [(record_id, measure(rng, TESTS[code], sex, diagnosed, drawn)) for code in tests]
    return out
