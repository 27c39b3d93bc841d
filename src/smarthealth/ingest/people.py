"""Colombian identities: names (Faker es_CO lists), documents consistent with age, contacts."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass
from itertools import accumulate

from faker.providers.person.es_CO import Provider as PersonProvider


@dataclass(frozen=True)
class Weighted:
    """A population with cumulative weights, sampled in O(log n) by `random.choices`."""

    items: tuple[str, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, mapping: dict[str, float]) -> Weighted:
        return cls(tuple(mapping), tuple(accumulate(mapping.values())))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.items, cum_weights=self.cum_weights)[0]


FEMALE_NAMES = Weighted.of(dict(PersonProvider.first_names_female))
MALE_NAMES = Weighted.of(dict(PersonProvider.first_names_male))
SURNAMES = Weighted.of(dict(PersonProvider.last_names))
STREETS = Weighted.of(
    {"Calle": 0.45, "Carrera": 0.4, "Diagonal": 0.07, "Transversal": 0.05, "Avenida": 0.03}
)
CITIES = Weighted.of(
    {
        "Bogotá D.C.": 30,
        "Medellín": 12,
        "Cali": 10,
        "Barranquilla": 6,
        "Cartagena": 4,
        "Bucaramanga": 4,
        "Cúcuta": 3.5,
        "Pereira": 2.5,
        "Ibagué": 2.5,
        "Santa Marta": 2.5,
        "Villavicencio": 2.5,
        "Manizales": 2,
        "Pasto": 2,
        "Montería": 2,
        "Neiva": 2,
        "Armenia": 1.5,
        "Popayán": 1.5,
        "Valledupar": 1.5,
        "Sincelejo": 1.2,
        "Tunja": 1.2,
        "Soacha": 2,
        "Bello": 2,
        "Soledad": 1.5,
        "Envigado": 1,
    }
)
BLOOD_TYPES = Weighted.of(
    {"O+": 61, "A+": 26, "B+": 7, "O-": 3, "AB+": 1.5, "A-": 1, "B-": 0.3, "AB-": 0.2}
)
EMAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.com")


def ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@dataclass(frozen=True)
class Identity:
    first_name: str
    middle_name: str | None
    first_surname: str
    second_surname: str | None


def make_identity(rng: random.Random, gender: str) -> Identity:
    names = FEMALE_NAMES if gender == "F" or (gender == "O" and rng.random() < 0.5) else MALE_NAMES
    first = names.pick(rng)
    middle = names.pick(rng) if rng.random() < 0.55 else None
    if middle == first:
        middle = None
    return Identity(
        first, middle, SURNAMES.pick(rng), SURNAMES.pick(rng) if rng.random() < 0.96 else None
    )


# document_type_id values (see the migration): 1 CC, 2 CE, 3 TI, 4 PA, 5 RC, 6 MS, 7 AS, 8 CD
def document_type_for_age(rng: random.Random, age: int) -> int:
    """Registro civil under 7, tarjeta de identidad 7–17, cédula for adults; some foreigners."""
    if age < 7:
        return 6 if rng.random() < 0.01 else 5
    if age < 18:
        return 3
    roll = rng.random()
    if roll < 0.06:
        return 2  # cédula de extranjería (mostly Venezuelan migrants in this population)
    if roll < 0.075:
        return 4
    if roll < 0.078:
        return 7
    return 1


def document_number(rng: random.Random, document_type_id: int, birth: dt.date) -> str:
    if document_type_id == 1:
        # Cédulas issued since ~2003 have 10 digits starting with 10; older ones 7–8 digits.
        if birth.year >= 1985:
            return f"10{rng.randrange(10**7, 10**8)}"
        return str(rng.randrange(10**6 * 3, 10**8 - 1))
    if document_type_id in (3, 5):
        return f"1{rng.randrange(10**8, 10**9)}{rng.randrange(10)}"
    if document_type_id == 2:
        return str(rng.randrange(100_000, 9_999_999))
    if document_type_id == 4:
        letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
        return f"{letters}{rng.randrange(100_000, 9_999_999)}"
    return f"{'MS' if document_type_id == 6 else 'AS'}-{rng.randrange(10**6, 10**7)}"


def phone(rng: random.Random) -> str:
    return (
        f"+57 3{rng.randrange(0, 25):02d} {rng.randrange(100, 1000)} {rng.randrange(1000, 10000)}"
    )


def email(rng: random.Random, identity: Identity) -> str:
    local = ascii_fold(f"{identity.first_name}.{identity.first_surname}").lower().replace(" ", "")
    return f"{local}{rng.randrange(1, 999)}@{rng.choice(EMAIL_DOMAINS)}"


def address(rng: random.Random) -> str:
    return (
        f"{STREETS.pick(rng)} {rng.randrange(1, 180)} # {rng.randrange(1, 120)}-"
        f"{rng.randrange(1, 99):02d}"
    )
