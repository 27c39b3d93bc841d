"""Vaccines, procedures and allergies to things other than medicines, for the synthetic
histories.

Each kind draws from its own random stream, derived from (seed, patient, kind), so adding or
changing them never moves a row of the visits, prescriptions or drug allergies a seed produced.
Vaccines are applied at vaccination points (no visit); procedures done during care belong to the
visit (an electrocardiogram at a hypertension control, a chest X-ray for pneumonia, a hip
replacement during the admission for a fracture); past surgeries done elsewhere have no visit.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

BOGOTA_TZ = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")
CVX = "CVX"
SNOMED = "SNOMED CT"


def stream(seed: int, patient_id: int, kind: str) -> random.Random:
    """The random stream of one kind of row of one patient."""
    return random.Random(f"{seed}:{patient_id}:{kind}")


@dataclass(frozen=True)
class Visit:
    record_id: int
    at: dt.datetime
    record_type: str
    codes: tuple[str, ...]  # ICD-10 codes diagnosed at the visit, principal first


@dataclass(frozen=True)
class Coded:
    code: str
    display: str


VACCINES = {
    "influenza": Coded("141", "Vacuna contra la influenza estacional"),
    "covid": Coded("208", "Vacuna contra COVID-19 (ARNm)"),
    "td": Coded("139", "Vacuna Td contra tétanos y difteria"),
    "hepb": Coded("43", "Vacuna contra la hepatitis B"),
    "neumococo": Coded("33", "Vacuna contra el neumococo polisacárida 23-valente"),
    "fiebre_amarilla": Coded("37", "Vacuna contra la fiebre amarilla"),
    "triple_viral": Coded("03", "Vacuna triple viral (sarampión, rubéola y paperas)"),
    "vph": Coded("165", "Vacuna contra el virus del papiloma humano (VPH)"),
}
PROCEDURES = {
    "ekg": Coded("29303009", "Electrocardiograma"),
    "eco_cardio": Coded("40701008", "Ecocardiograma"),
    "espirometria": Coded("127783003", "Espirometría"),
    "eco_abdomen": Coded("45036003", "Ecografía abdominal"),
    "rx_torax": Coded("399208008", "Radiografía de tórax"),
    "apendicectomia": Coded("80146002", "Apendicectomía"),
    "colecistectomia": Coded("45595009", "Colecistectomía laparoscópica"),
    "herniorrafia": Coded("44558001", "Herniorrafia inguinal"),
    "cesarea": Coded("11466000", "Cesárea"),
    "mamografia": Coded("71651007", "Mamografía"),
    "colonoscopia": Coded("73761001", "Colonoscopia"),
    "reemplazo_cadera": Coded("52734007", "Reemplazo total de cadera"),
}
# Procedures a visit for a condition may include: (procedure, probability per visit).
AT_VISIT: dict[str, tuple[tuple[str, float], ...]] = {
    "I10": (("ekg", 0.12),),
    "I25.1": (("ekg", 0.45), ("eco_cardio", 0.1)),
    "I48": (("ekg", 0.6),),
    "I50.0": (("ekg", 0.3), ("eco_cardio", 0.2)),
    "I50.1": (("ekg", 0.8), ("rx_torax", 0.6)),
    "J44.9": (("espirometria", 0.15),),
    "J45.9": (("espirometria", 0.1),),
    "J18.9": (("rx_torax", 0.8),),
    "J18.0": (("rx_torax", 0.7),),
    "K80.2": (("eco_abdomen", 0.3),),
    "N23": (("eco_abdomen", 0.4),),
    "S72.0": (("reemplazo_cadera", 0.7),),
}
# Allergens that are not medicines: (substance, SNOMED CT code, FHIR category, weight).
ALLERGENS = (
    ("maní", "256349002", "food", 3.0),
    ("mariscos", "300913006", "food", 3.0),
    ("huevo", "102263004", "food", 1.5),
    ("leche de vaca", "3718001", "food", 1.0),
    ("pescado", "417532002", "food", 1.0),
    ("ácaros del polvo", "260147004", "environment", 3.0),
    ("polen", "256259004", "environment", 2.0),
    ("caspa de animales", "264287008", "environment", 1.0),
    ("látex", "111088007", "environment", 1.5),
    ("picadura de abeja", "288328004", "environment", 1.5),
)
ALLERGY_REACTIONS = {
    "food": (("urticaria", "Moderada"), ("angioedema", "Severa"), ("anafilaxia", "Severa"),
             ("prurito oral", "Leve"), ("vómito y dolor abdominal", "Moderada")),
    "environment": (("rinitis", "Leve"), ("conjuntivitis alérgica", "Leve"),
                    ("broncoespasmo", "Severa"), ("urticaria de contacto", "Moderada")),
}  # fmt: skip


def _at(rng: random.Random, day: dt.date, first_hour: int = 7, last_hour: int = 16) -> dt.datetime:
    hour = rng.randint(first_hour, last_hour)
    return dt.datetime.combine(day, dt.time(hour, rng.randrange(0, 60)), BOGOTA_TZ)


def _day_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(0, max((end - start).days, 1)))


def immunizations(
    rng: random.Random,
    birth: dt.date,
    sex: str,
    chronic: bool,
    since: dt.date,
    today: dt.date,
) -> list[tuple[Coded, dt.datetime, int | None, str]]:
    """Vaccines applied from `since` to `today`: (vaccine, when, dose number, lot)."""
    out: list[tuple[Coded, dt.datetime, int | None, str]] = []

    def add(key: str, day: dt.date, dose: int | None) -> None:
        if since <= day < today:
            letters = "ABCDEFHKLMPTX"
            lot = f"{rng.choice(letters)}{rng.choice(letters)}{rng.randrange(1000, 99999)}"
            out.append((VACCINES[key], _at(rng, day, 8, 16), dose, lot))

    def age_on(day: dt.date) -> float:
        return (day - birth).days / 365.25

    # influenza: every year for the old, the chronically ill and small children, some others
    yearly = 0.65 if age_on(today) >= 60 else 0.5 if chronic else 0.15
    for year in range(since.year, today.year + 1):
        day = dt.date(year, 4, 1) + dt.timedelta(days=rng.randrange(0, 75))  # the April campaign
        if 0.5 <= age_on(day) < 5 or (age_on(day) >= 18 and rng.random() < yearly):
            add("influenza", day, None)
    adult_since = max(since, birth + dt.timedelta(days=int(18 * 365.25)))
    if age_on(today) >= 18 and rng.random() < 0.6:
        first = _day_between(rng, adult_since, min(today, adult_since + dt.timedelta(days=500)))
        add("covid", first, 3 if rng.random() < 0.5 else 1)  # a booster, or a late first dose
        if rng.random() < 0.4:
            add("covid", first + dt.timedelta(days=rng.randrange(180, 400)), None)
    if age_on(today) >= 12 and rng.random() < 0.25:
        add("td", _day_between(rng, since, today), rng.choice((1, 2, 3, None)))
    if age_on(today) >= 18 and rng.random() < 0.1:
        first = _day_between(rng, adult_since, today)
        for dose, days in ((1, 0), (2, 30), (3, 180)):
            add("hepb", first + dt.timedelta(days=days), dose)
    if age_on(today) >= 60 and rng.random() < 0.45:
        add("neumococo", _day_between(rng, since, today), 1)
    if 1 <= age_on(today) < 60 and rng.random() < 0.08:
        add("fiebre_amarilla", _day_between(rng, since, today), 1)
    for dose, years in ((1, 1.0), (2, 5.0)):  # the schedule's triple viral
        add("triple_viral", birth + dt.timedelta(days=int(years * 365.25) + 10), dose)
    if sex == "F" and 9 <= age_on(today) < 20 and rng.random() < 0.5:
        add("vph", max(since, birth + dt.timedelta(days=int(9.5 * 365.25))), 1)
    return sorted(out, key=lambda v: v[1])


def visit_procedures(
    rng: random.Random, visits: list[Visit]
) -> list[tuple[Coded, dt.datetime, int]]:
    """Procedures done during visits: (procedure, when, the visit's record id)."""
    out: list[tuple[Coded, dt.datetime, int]] = []
    for visit in visits:
        done: set[str] = set()
        for code in visit.codes[:1]:
            for key, probability in AT_VISIT.get(code, ()):
                if key in done or rng.random() >= probability:
                    continue
                if key == "reemplazo_cadera" and visit.record_type != "Hospitalización":
                    continue
                done.add(key)
                minutes = rng.randrange(10, 90) if key != "reemplazo_cadera" else 60 * 26
                out.append(
                    (PROCEDURES[key], visit.at + dt.timedelta(minutes=minutes), visit.record_id)
                )
    return out


def past_procedures(
    rng: random.Random, birth: dt.date, sex: str, since: dt.date, today: dt.date
) -> list[tuple[Coded, dt.datetime]]:
    """Surgeries and screenings done elsewhere during the window (no visit of ours)."""
    out: list[tuple[Coded, dt.datetime]] = []
    age = (today - birth).days / 365.25
    start = max(since, birth + dt.timedelta(days=365 * 5))
    if start >= today:
        return out
    roll = rng.random()
    surgery = None
    if roll < 0.025:
        surgery = "apendicectomia"
    elif roll < 0.045 and age >= 25:
        surgery = "colecistectomia"
    elif roll < 0.06 and age >= 20 and sex == "M":
        surgery = "herniorrafia"
    elif roll < 0.09 and sex == "F" and 20 <= age < 50:
        surgery = "cesarea"
    if surgery is not None:
        out.append((PROCEDURES[surgery], _at(rng, _day_between(rng, start, today))))
    if sex == "F" and age >= 50 and rng.random() < 0.35:
        out.append((PROCEDURES["mamografia"], _at(rng, _day_between(rng, start, today))))
    if age >= 50 and rng.random() < 0.08:
        out.append((PROCEDURES["colonoscopia"], _at(rng, _day_between(rng, start, today))))
    return sorted(out, key=lambda p: p[1])


def other_allergies(
    rng: random.Random, birth: dt.date, today: dt.date
) -> list[tuple[str, str, str, str, str, dt.date, str]]:
    """Allergies to foods, the environment, latex or insects of about one patient in ten:
    (substance, SNOMED CT code, category, reaction, severity, noted on, criticality)."""
    if rng.random() >= 0.1:
        return []
    weights = [a[3] for a in ALLERGENS]
    chosen = {rng.choices(ALLERGENS, weights)[0] for _ in range(1 if rng.random() < 0.8 else 2)}
    out = []
    for substance, code, category, _ in sorted(chosen):
        reaction, severity = rng.choice(ALLERGY_REACTIONS[category])
        noted = birth + dt.timedelta(days=rng.randrange(0, max((today - birth).days, 1)))
        criticality = "high" if severity == "Severa" else "low"
        out.append((substance, code, category, reaction, severity, noted, criticality))
    return out
