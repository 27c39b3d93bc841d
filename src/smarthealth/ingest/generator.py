"""Deterministic synthetic clinical histories.

Everything comes from one `random.Random(seed)` consumed in a fixed order, and ids are assigned
sequentially, so the same (patients, seed, today) always yields the same rows and ids.

Clinical coherence rules:
- chronic conditions start before or during the five-year window and are controlled until today,
  with the treatment regimen renewed (and sometimes escalated) at each control;
- prescriptions come from the principal diagnosis' treatments and skip every active ingredient the
  patient is allergic to;
- vital signs are the patient's baseline plus the shifts of the conditions active at that visit;
- the note names every diagnosis recorded for the visit (description and ICD-10 code);
- acute conditions are seen in the emergency room as often as `encounters.ACUTE_CARE` says, at
  the hours emergency rooms are busy; chronic heart failure, COPD and diabetes decompensate a few
  times a decade; an emergency visit may end in admission (likelier for the old and the
  multimorbid), recorded as a separate 'Hospitalización' record a few hours later with its
  discharge 1–10 days on (NULL while the patient is still in hospital). No other visit happens
  during a stay.
"""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from itertools import accumulate
from typing import Any

from smarthealth.ingest import labs, people, record_kinds
from smarthealth.ingest.catalogs import (
    CatalogIds,
    Catalogs,
    Condition,
    DiagnosisRow,
    MedicationRow,
)
from smarthealth.ingest.encounters import (
    ACUTE_CARE,
    ARRIVALS_BY_HOUR,
    DECOMPENSATION_CODES,
    DECOMPENSATIONS,
    INTERNAL_MEDICINE,
    admission_factor,
    extra_stay_days,
)
from smarthealth.ingest.notes import PrescribedLine, VisitNote, compose
from smarthealth.ingest.record_kinds import Visit, stream
from smarthealth.ingest.vitals import Baseline, VitalSigns, make_baseline, measure

BOGOTA = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")
HISTORY_YEARS = 5
GENERAL = "MED_GENERAL"
PEDIATRICS = "PEDIATRIA"
EMERGENCY = "MED_URGENCIAS"

# Share of patients in each age band (a clinic population, older than the census).
AGE_BANDS = (
    (0, 4, 6.0),
    (5, 17, 12.0),
    (18, 39, 27.0),
    (40, 59, 28.0),
    (60, 79, 22.0),
    (80, 96, 5.0),
)
COMMON_ALLERGENS = (
    "amoxicilina",
    "penicilina",
    "ampicilina",
    "ibuprofeno",
    "naproxeno",
    "diclofenaco",
    "ácido acetilsalicílico",
    "dipirona",
    "metamizol",
    "trimetoprim",
    "sulfametoxazol",
    "cefalexina",
    "ciprofloxacino",
    "codeína",
    "tramadol",
    "azitromicina",
    "clindamicina",
    "carbamazepina",
)
REACTIONS = (
    ("urticaria generalizada", "Moderada"),
    ("exantema maculopapular", "Leve"),
    ("prurito y eritema", "Leve"),
    ("angioedema", "Severa"),
    ("broncoespasmo", "Severa"),
    ("anafilaxia", "Severa"),
    ("intolerancia gástrica", "Leve"),
)
PEDIATRIC_FORMS = ("suspensión", "jarabe", "gotas", "solución oral", "granulado", "masticable")

PATIENT_COLUMNS = [
    "patient_id",
    "document_type_id",
    "document_number",
    "first_name",
    "middle_name",
    "first_surname",
    "second_surname",
    "birth_date",
    "gender",
    "blood_type",
    "email",
    "phone",
    "address",
    "city",
    "active",
    "created_at",
]
DOCTOR_COLUMNS = [
    "doctor_id",
    "first_name",
    "last_name",
    "gender",
    "medical_license",
    "email",
    "phone",
    "active",
]
DOCTOR_SPECIALTY_COLUMNS = ["doctor_id", "specialty_id", "is_primary"]
ALLERGY_COLUMNS = [
    "allergy_id",
    "patient_id",
    "medication_id",
    "reaction",
    "severity",
    "noted_on",
    "substance",
    "substance_code",
    "substance_system",
    "category",
    "criticality",
]
APPOINTMENT_COLUMNS = [
    "appointment_id",
    "patient_id",
    "doctor_id",
    "specialty_id",
    "start_time",
    "end_time",
    "status",
    "reason",
]
RECORD_COLUMNS = [
    "medical_record_id",
    "patient_id",
    "doctor_id",
    "appointment_id",
    "record_type",
    "registration_datetime",
    "summary_text",
    "systolic_pressure",
    "diastolic_pressure",
    "heart_rate",
    "respiratory_rate",
    "temperature_c",
    "oxygen_saturation",
    "weight_kg",
    "height_cm",
    "discharge_datetime",
]
RECORD_DIAGNOSIS_COLUMNS = [
    "record_diagnosis_id",
    "medical_record_id",
    "patient_id",
    "diagnosis_id",
    "diagnosis_type",
]
PRESCRIPTION_COLUMNS = [
    "prescription_id",
    "medical_record_id",
    "patient_id",
    "medication_id",
    "diagnosis_id",
    "dosage",
    "frequency",
    "duration_days",
    "instruction",
    "prescription_date",
]

OBSERVATION_COLUMNS = [
    "observation_id",
    "patient_id",
    "medical_record_id",
    "category",
    "code_system",
    "code",
    "display",
    "value_numeric",
    "value_unit",
    "reference_low",
    "reference_high",
    "interpretation",
    "status",
    "effective_at",
]
IMMUNIZATION_COLUMNS = [
    "immunization_id",
    "patient_id",
    "medical_record_id",
    "code_system",
    "code",
    "display",
    "occurred_at",
    "dose_number",
    "lot_number",
    "status",
]
PROCEDURE_COLUMNS = [
    "procedure_id",
    "patient_id",
    "medical_record_id",
    "code_system",
    "code",
    "display",
    "performed_at",
    "status",
]

TABLE_COLUMNS: dict[str, list[str]] = {
    "doctors": DOCTOR_COLUMNS,
    "doctor_specialties": DOCTOR_SPECIALTY_COLUMNS,
    "patients": PATIENT_COLUMNS,
    "patient_allergies": ALLERGY_COLUMNS,
    "appointments": APPOINTMENT_COLUMNS,
    "medical_records": RECORD_COLUMNS,
    "record_diagnoses": RECORD_DIAGNOSIS_COLUMNS,
    "prescriptions": PRESCRIPTION_COLUMNS,
    "observations": OBSERVATION_COLUMNS,
    "immunizations": IMMUNIZATION_COLUMNS,
    "procedures": PROCEDURE_COLUMNS,
}
ID_COLUMNS = {
    table: columns[0] for table, columns in TABLE_COLUMNS.items() if table != "doctor_specialties"
}

Row = tuple[Any, ...]


@dataclass
class Batch:
    """Rows per table, in COPY column order."""

    rows: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in TABLE_COLUMNS})


@dataclass
class _Counters:
    allergy: int = 0
    appointment: int = 0
    record: int = 0
    record_diagnosis: int = 0
    prescription: int = 0
    observation: int = 0
    immunization: int = 0
    procedure: int = 0


@dataclass
class _ActiveCondition:
    condition: Condition
    onset: dt.date
    regimen: list[str]  # ATC codes currently prescribed
    treatment_started: dt.date | None = None


def _instruction(medication: MedicationRow, rng: random.Random) -> str:
    route = medication.route.lower()
    if "inhal" in route:
        return "Agitar antes de usar; enjuagar la boca después de cada uso."
    if "subcut" in route:
        return "Aplicar en abdomen o muslo rotando el sitio de inyección."
    if "tópic" in route or "topic" in route:
        return "Aplicar una capa delgada sobre la zona afectada."
    if "oftálm" in route:
        return "Aplicar en el ojo afectado sin tocar la punta del frasco."
    return rng.choice(
        (
            "Tomar con un vaso de agua.",
            "Tomar después de las comidas.",
            "No suspender sin indicación médica.",
            "Tomar a la misma hora cada día.",
        )
    )


class HistoryGenerator:
    """Produces doctors, then patients one by one with their whole history."""

    def __init__(self, catalogs: Catalogs, ids: CatalogIds, seed: int, today: dt.date) -> None:
        self.catalogs = catalogs
        self.ids = ids
        self.today = today
        self.rng = random.Random(seed)
        self.seed = seed
        self._seen: list[Visit] = []  # the current patient's visits, for labs and procedures
        # Allergies to foods, latex, pollen…: numbered after every drug allergy (`deferred`),
        # so that the drug allergies keep the ids they had before these existed.
        self._other_allergies: list[tuple[Any, ...]] = []
        self.window_start = today.replace(year=today.year - HISTORY_YEARS)
        self.counters = _Counters()
        self.used_documents: set[tuple[int, str]] = set()
        self.doctors_by_specialty: dict[str, list[int]] = {}
        self.primary_doctors: dict[str, list[int]] = {}  # by their primary specialty
        self.diagnosis_by_code = catalogs.diagnosis_by_code
        self._meds_by_atc: dict[str, list[MedicationRow]] = {}
        for m in catalogs.medications:
            self._meds_by_atc.setdefault(m.atc_code, []).append(m)
        self._allergen_meds = [
            m
            for m in catalogs.medications
            if any(a in m.active_ingredient.lower() for a in COMMON_ALLERGENS)
        ] or list(catalogs.medications)
        self._age_bands = [band[:2] for band in AGE_BANDS]
        self._age_weights = list(accumulate(band[2] for band in AGE_BANDS))
        self._condition_by_code = {c.icd_code: c for c in catalogs.conditions}
        self._specialty_name = {s.code: s.name for s in catalogs.specialties}
        self._arrival_weights = list(accumulate(ARRIVALS_BY_HOUR))

    # -- doctors --------------------------------------------------------------------------------

    def doctors(self, count: int) -> Batch:
        """`count` doctors; every specialty a condition needs has at least one."""
        rng = self.rng
        batch = Batch()
        needed = sorted(
            {c.specialty for c in self.catalogs.conditions} | {GENERAL, PEDIATRICS, EMERGENCY}
        )
        needed = [code for code in needed if code in self.ids.specialty]
        all_codes = [s.code for s in self.catalogs.specialties]
        licenses: set[str] = set()
        for doctor_id in range(1, count + 1):
            gender = "F" if rng.random() < 0.52 else "M"
            identity = people.make_identity(rng, gender)
            if doctor_id <= len(needed):
                primary = needed[doctor_id - 1]
            elif rng.random() < 0.35:
                primary = GENERAL
            else:
                primary = rng.choice(all_codes)
            license_number = f"{rng.randrange(10_000, 9_999_999)}"
            while license_number in licenses:
                license_number = f"{rng.randrange(10_000, 9_999_999)}"
            licenses.add(license_number)
            batch.rows["doctors"].append(
                (
                    doctor_id,
                    identity.first_name,
                    identity.first_surname,
                    gender,
                    license_number,
                    people.ascii_fold(f"{identity.first_name}.{identity.first_surname}{doctor_id}")
                    .lower()
                    .replace(" ", "")
                    + "@smarthealth-ips.co",
                    people.phone(rng),
                    True,
                )
            )
            specialties = [primary]
            if primary != GENERAL and rng.random() < 0.15:
                second = rng.choice(all_codes)
                if second != primary:
                    specialties.append(second)
            for position, code in enumerate(specialties):
                batch.rows["doctor_specialties"].append(
                    (doctor_id, self.ids.specialty[code], position == 0)
                )
                self.doctors_by_specialty.setdefault(code, []).append(doctor_id)
            self.primary_doctors.setdefault(primary, []).append(doctor_id)
        return batch

    # -- patients -------------------------------------------------------------------------------

    def patients(self, first_id: int, count: int) -> Batch:
        batch = Batch()
        for patient_id in range(first_id, first_id + count):
            self._patient(patient_id, batch)
        return batch

    def _birth_date(self) -> tuple[dt.date, int]:
        low, high = self._age_bands[
            bisect_right(self._age_weights, self.rng.random() * self._age_weights[-1])
        ]
        age = self.rng.randint(low, high)
        days = self.rng.randrange(0, 365)
        birth = self.today - dt.timedelta(days=int(age * 365.25) + days)
        return birth, age

    def _patient(self, patient_id: int, batch: Batch) -> None:
        rng = self.rng
        birth, age = self._birth_date()
        roll = rng.random()
        gender = "F" if roll < 0.52 else "M" if roll < 0.995 else "O"
        identity = people.make_identity(rng, gender)
        doc_type = people.document_type_for_age(rng, age)
        number = people.document_number(rng, doc_type, birth)
        while (doc_type, number) in self.used_documents:
            number = people.document_number(rng, doc_type, birth)
        self.used_documents.add((doc_type, number))
        first_seen = max(birth, self.window_start)
        batch.rows["patients"].append(
            (
                patient_id,
                doc_type,
                number,
                identity.first_name,
                identity.middle_name,
                identity.first_surname,
                identity.second_surname,
                birth,
                gender,
                people.BLOOD_TYPES.pick(rng),
                people.email(rng, identity) if age >= 16 and rng.random() < 0.8 else None,
                people.phone(rng),
                people.address(rng),
                people.CITIES.pick(rng),
                True,
                dt.datetime.combine(first_seen, dt.time(8, 0), BOGOTA),
            )
        )
        allergies = self._allergies(patient_id, birth, batch)
        self._seen = []
        if rng.random() < 0.06:
            # No clinical history yet (new patient): maybe a first appointment ahead.
            if rng.random() < 0.5:
                self._future_appointment(patient_id, None, batch)
        else:
            self._history(patient_id, birth, gender, allergies, make_baseline(rng), batch)
        self._record_kinds(patient_id, birth, gender, first_seen, batch)

    def _allergies(
        self, patient_id: int, birth: dt.date, batch: Batch
    ) -> list[tuple[MedicationRow, str]]:
        rng = self.rng
        if rng.random() >= 0.22:
            return []
        chosen: dict[str, tuple[MedicationRow, str]] = {}
        for _ in range(1 if rng.random() < 0.8 else 2):
            medication = rng.choice(self._allergen_meds)
            reaction, severity = rng.choice(REACTIONS)
            if medication.active_ingredient in chosen:
                continue
            chosen[medication.active_ingredient] = (medication, reaction)
            self.counters.allergy += 1
            noted = birth + dt.timedelta(days=rng.randrange(0, max((self.today - birth).days, 1)))
            batch.rows["patient_allergies"].append(
                (
                    self.counters.allergy,
                    patient_id,
                    self._medication_id(medication),
                    reaction,
                    severity,
                    noted,
                    None,
                    None,
                    None,
                    "medication",
                    None,
                )
            )
        return list(chosen.values())

    def _medication_id(self, medication: MedicationRow) -> int:
        return self.ids.medication[(medication.atc_code, medication.strength, medication.form)]

    # -- the clinical story ---------------------------------------------------------------------

    @cache  # noqa: B019 - one generator per seeding run; the cache dies with it
    def _eligible(
        self, age: int, sex: str, chronic: bool
    ) -> tuple[tuple[Condition, ...], tuple[float, ...]]:
        pool = tuple(
            c
            for c in self.catalogs.conditions
            if c.chronic == chronic
            and c.icd_code not in DECOMPENSATION_CODES  # only patients with the disease
            and c.min_age <= age <= c.max_age
            and (c.sex is None or c.sex == sex)
        )
        return pool, tuple(accumulate(c.weight for c in pool))

    def _sample(self, age: int, sex: str, chronic: bool, k: int) -> list[Condition]:
        pool, cum = self._eligible(age, sex, chronic)
        chosen: list[Condition] = []
        for _ in range(k * 3):
            if len(chosen) == k or not pool:
                break
            pick = self.rng.choices(pool, cum_weights=cum)[0]
            if pick not in chosen:
                chosen.append(pick)
        return chosen

    def _history(
        self,
        patient_id: int,
        birth: dt.date,
        sex: str,
        allergies: list[tuple[MedicationRow, str]],
        baseline: Baseline,
        batch: Batch,
    ) -> None:
        rng = self.rng
        age_now = (self.today - birth).days // 365
        start = max(birth + dt.timedelta(days=14), self.window_start)
        span = (self.today - start).days
        if span < 20:
            return
        mean_chronic = (
            0.15 if age_now < 18 else 0.6 if age_now < 40 else 1.4 if age_now < 60 else 2.2
        )
        n_chronic = min(sum(1 for _ in range(6) if rng.random() < mean_chronic / 6 * 1.0), 4)
        active: list[_ActiveCondition] = []
        for condition in self._sample(age_now, sex, True, n_chronic):
            if rng.random() < 0.6:
                onset = start - dt.timedelta(days=rng.randrange(60, 365 * 8))
                onset = max(onset, birth + dt.timedelta(days=30))
            else:
                onset = start + dt.timedelta(days=rng.randrange(0, max(span - 30, 1)))
            active.append(_ActiveCondition(condition, onset, []))

        visits: list[tuple[dt.date, Condition, bool]] = []  # (date, principal, is_follow_up)
        for item in active:
            day = max(item.onset, start)
            first = item.onset >= start
            while day <= self.today:
                visits.append((day, item.condition, not first))
                first = False
                day += dt.timedelta(days=rng.randrange(90, 200))
            visits += self._decompensations(item, max(item.onset, start), age_now)
        n_acute = rng.choice((0, 1, 1, 2, 2, 3, 4)) + (2 if age_now < 6 else 0)
        for _ in range(n_acute):
            day = start + dt.timedelta(days=rng.randrange(0, span))
            age_then = (day - birth).days // 365
            picked = self._sample(age_then, sex, False, 1)
            if picked:
                visits.append((day, picked[0], False))
        visits.sort(key=lambda v: (v[0], v[1].icd_code))
        allergic = {m.active_ingredient.lower() for m, _ in allergies}
        by_condition = {item.condition.icd_code: item for item in active}
        in_hospital_until: dt.date | None = None
        for day, condition, follow_up in visits:
            if in_hospital_until is not None and day <= in_hospital_until:
                continue  # no clinic visit during a stay
            in_hospital_until = (
                self._visit(
                    patient_id,
                    birth,
                    sex,
                    baseline,
                    day,
                    condition,
                    follow_up,
                    active,
                    by_condition,
                    allergies,
                    allergic,
                    batch,
                )
                or in_hospital_until
            )
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            self._missed_appointment(patient_id, start, span, active, batch)
        if active or rng.random() < 0.2:
            principal = active[0].condition if active else None
            self._future_appointment(patient_id, principal, batch)

    def _decompensations(
        self, item: _ActiveCondition, first_day: dt.date, age_now: int
    ) -> list[tuple[dt.date, Condition, bool]]:
        """Acute decompensations of a chronic condition, at most one per year of the window."""
        events: list[tuple[dt.date, Condition, bool]] = []
        pairs = DECOMPENSATIONS.get(item.condition.icd_code, ())
        boost = 1.5 if age_now >= 75 else 1.2 if age_now >= 65 else 1.0
        day = first_day
        while pairs and day <= self.today:
            span = min(365, (self.today - day).days + 1)  # the last year is cut short by today
            for code, yearly in pairs:
                if (
                    self.rng.random() < yearly * boost * span / 365
                    and code in self._condition_by_code
                ):
                    when = day + dt.timedelta(days=self.rng.randrange(0, span))
                    events.append((when, self._condition_by_code[code], False))
            day += dt.timedelta(days=365)
        return events

    def _doctor(self, specialty: str, primary: bool = False) -> tuple[int, int]:
        """A doctor of `specialty`; `primary`: one whose main specialty it is (emergency and ward
        records have no appointment to name the service, so the doctor's specialty does)."""
        pool = self.primary_doctors if primary else self.doctors_by_specialty
        code = specialty if specialty in pool else GENERAL
        return self.rng.choice(pool[code]), self.ids.specialty[code]

    def _slot(self, day: dt.date, forward: bool = False) -> dt.datetime:
        """A 20-minute slot between 07:00 and 17:40; no clinic on Sundays."""
        if day.weekday() == 6:
            day += dt.timedelta(days=1 if forward else -1)
        minutes = 7 * 60 + 20 * self.rng.randrange(0, 32)
        return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), BOGOTA)

    def _arrival(self, day: dt.date) -> dt.datetime:
        """When a patient walks into the emergency room: any hour, busiest by day and evening."""
        hour = bisect_right(self._arrival_weights, self.rng.random() * self._arrival_weights[-1])
        return dt.datetime.combine(day, dt.time(hour, self.rng.randrange(0, 60)), BOGOTA)

    def _visit(
        self,
        patient_id: int,
        birth: dt.date,
        sex: str,
        baseline: Baseline,
        day: dt.date,
        condition: Condition,
        follow_up: bool,
        active: list[_ActiveCondition],
        by_condition: dict[str, _ActiveCondition],
        allergies: list[tuple[MedicationRow, str]],
        allergic: set[str],
        batch: Batch,
    ) -> dt.date | None:
        """One visit (and the hospitalisation it may lead to). Returns the last day in hospital
        (today while still admitted), or None when the patient went home."""
        rng = self.rng
        age_years = (day - birth).days / 365.25
        current = [a for a in active if a.onset <= day]
        tracked = by_condition.get(condition.icd_code)
        care = ACUTE_CARE.get(condition.icd_code)
        if condition.chronic:
            record_type = (
                "Telemedicina"
                if follow_up and rng.random() < 0.1
                else ("Control" if follow_up else "Consulta externa")
            )
            specialty = condition.specialty if rng.random() < 0.6 else GENERAL
        else:
            likelihood = care.emergency if care else 0.0
            likelihood *= 1.3 if age_years >= 65 else 1.1 if age_years < 5 else 1.0
            record_type = "Urgencias" if rng.random() < likelihood else "Consulta externa"
            specialty = (
                EMERGENCY
                if record_type == "Urgencias"
                else (PEDIATRICS if age_years < 14 else GENERAL)
            )
        doctor_id, specialty_id = self._doctor(specialty, primary=record_type == "Urgencias")
        start = self._arrival(day) if record_type == "Urgencias" else self._slot(day)
        appointment_id = None
        if record_type != "Urgencias":
            self.counters.appointment += 1
            appointment_id = self.counters.appointment
            batch.rows["appointments"].append(
                (
                    appointment_id,
                    patient_id,
                    doctor_id,
                    specialty_id,
                    start,
                    start + dt.timedelta(minutes=20 if record_type != "Consulta externa" else 30),
                    "Attended",
                    f"{'Control' if follow_up else 'Consulta'}: {condition.label}",
                )
            )
        registered = start + dt.timedelta(minutes=rng.randrange(5, 25))
        admitted = (
            record_type == "Urgencias"
            and care is not None
            and care.admission > 0
            and rng.random() < min(care.admission * admission_factor(age_years, len(current)), 0.95)
        )

        # Treatment: chronic regimens persist and sometimes escalate; acute ones are one-off.
        prescribed: list[PrescribedLine] = []
        avoided: list[str] = []
        if tracked is not None:
            if not tracked.regimen or (
                rng.random() < 0.12 and len(tracked.regimen) < len(condition.treatments)
            ):
                for atc in condition.treatments:
                    if atc not in tracked.regimen and self._allowed(atc, allergic, avoided):
                        tracked.regimen.append(atc)
                        break
            if tracked.regimen and tracked.treatment_started is None:
                tracked.treatment_started = day
            atcs = list(tracked.regimen)
        else:
            atcs = []
            for atc in condition.treatments:
                if len(atcs) == (2 if rng.random() < 0.35 else 1):
                    break
                if self._allowed(atc, allergic, avoided):
                    atcs.append(atc)
        for atc in atcs:
            medication = self._pick_medication(atc, age_years)
            if medication is not None:
                prescribed.append(
                    PrescribedLine(
                        medication,
                        medication.default_dose,
                        medication.default_frequency,
                        medication.default_duration_days,
                    )
                )

        # Conditions active at this visit, and how strongly they show in the vitals.
        showing: list[tuple[Condition, float]] = []
        for item in current:
            treated = item.treatment_started is not None and item.treatment_started < day
            showing.append((item.condition, 0.45 if treated else 1.0))
        if tracked is None:
            showing.append((condition, 1.0))
        vitals = measure(rng, baseline, age_years, sex, showing)

        diagnoses = [(self.diagnosis_by_code[condition.icd_code], "Principal")]
        background = [a.condition for a in current if a.condition is not condition]
        for other in background[:2]:
            diagnoses.append((self.diagnosis_by_code[other.icd_code], "Secondary"))
        if not condition.chronic and rng.random() < 0.12:
            alternatives = [
                c
                for c in self._eligible(int(age_years), sex, False)[0]
                if c.icd_code[0] == condition.icd_code[0] and c is not condition
            ]
            if alternatives:
                diagnoses.append(
                    (self.diagnosis_by_code[rng.choice(alternatives).icd_code], "Differential")
                )
        ward = None
        if admitted:
            assert care is not None
            ward = care.ward or (PEDIATRICS if age_years < 14 else INTERNAL_MEDICINE)
        note = VisitNote(
            age_years=int(age_years),
            sex=sex,
            record_type=record_type,
            principal=condition,
            years_since_diagnosis=(day - tracked.onset).days // 365 if tracked else 0,
            is_follow_up=follow_up,
            background=background,
            allergies=allergies,
            vitals=vitals,
            diagnoses=diagnoses,
            # An admitted patient is treated on the ward: the prescriptions go with that record.
            prescriptions=[] if admitted else prescribed,
            avoided_for_allergy=[] if admitted else avoided,
            disposition=(
                f"Se decide hospitalización en {self._specialty_name[ward].lower()}"
                if ward
                else None
            ),
            admitted=ward is not None,
        )
        self._record(
            patient_id,
            doctor_id,
            appointment_id,
            record_type,
            registered,
            compose(rng, note),
            vitals,
            diagnoses,
            condition,
            [] if admitted else prescribed,
            None,
            batch,
        )
        if ward is None:
            return None

        # The hospitalisation: admitted from the emergency room a few hours later.
        assert care is not None
        ward_doctor, _ = self._doctor(ward, primary=True)
        admission = registered + dt.timedelta(minutes=rng.randrange(60, 360))
        stay = min(rng.randint(*care.stay) + extra_stay_days(age_years), 10)
        last_day = admission.date() + dt.timedelta(days=stay)
        discharge = None
        if last_day < self.today:
            discharge = dt.datetime.combine(
                last_day, dt.time(rng.randrange(9, 17), rng.randrange(0, 60)), BOGOTA
            )
        ward_vitals = measure(rng, baseline, age_years, sex, showing)
        ward_diagnoses = [d for d in diagnoses if d[1] != "Differential"]
        ward_note = VisitNote(
            age_years=int(age_years),
            sex=sex,
            record_type="Hospitalización",
            principal=condition,
            years_since_diagnosis=0,
            is_follow_up=False,
            background=background,
            allergies=allergies,
            vitals=ward_vitals,
            diagnoses=ward_diagnoses,
            prescriptions=prescribed,
            avoided_for_allergy=avoided,
            disposition=(
                "Egreso en buenas condiciones con control por consulta externa"
                if discharge
                else "Continúa en hospitalización"
            ),
            admitted=True,
        )
        self._record(
            patient_id,
            ward_doctor,
            None,
            "Hospitalización",
            admission,
            compose(rng, ward_note),
            ward_vitals,
            ward_diagnoses,
            condition,
            prescribed,
            discharge,
            batch,
        )
        return last_day if discharge else self.today

    def _record(
        self,
        patient_id: int,
        doctor_id: int,
        appointment_id: int | None,
        record_type: str,
        registered: dt.datetime,
        note: str,
        vitals: VitalSigns,
        diagnoses: list[tuple[DiagnosisRow, str]],
        principal: Condition,
        prescribed: list[PrescribedLine],
        discharge: dt.datetime | None,
        batch: Batch,
    ) -> int:
        """One medical record with its diagnoses and prescriptions."""
        self.counters.record += 1
        record_id = self.counters.record
        self._seen.append(
            Visit(
                record_id,
                registered,
                record_type,
                tuple(d.icd_code for d, kind in diagnoses if kind != "Differential"),
            )
        )
        batch.rows["medical_records"].append(
            (
                record_id,
                patient_id,
                doctor_id,
                appointment_id,
                record_type,
                registered,
                note,
                vitals.systolic,
                vitals.diastolic,
                vitals.heart_rate,
                vitals.respiratory_rate,
                Decimal(f"{vitals.temperature:.1f}"),
                vitals.spo2,
                Decimal(f"{vitals.weight_kg:.1f}"),
                Decimal(f"{vitals.height_cm:.1f}"),
                discharge,
            )
        )
        for diagnosis, kind in diagnoses:
            self.counters.record_diagnosis += 1
            batch.rows["record_diagnoses"].append(
                (
                    self.counters.record_diagnosis,
                    record_id,
                    patient_id,
                    self.ids.diagnosis[diagnosis.icd_code],
                    kind,
                )
            )
        principal_id = self.ids.diagnosis[principal.icd_code]
        for line in prescribed:
            self.counters.prescription += 1
            batch.rows["prescriptions"].append(
                (
                    self.counters.prescription,
                    record_id,
                    patient_id,
                    self._medication_id(line.medication),
                    principal_id,
                    line.dosage,
                    line.frequency,
                    line.duration_days,
                    _instruction(line.medication, self.rng),
                    registered.date(),
                )
            )
        return record_id

    # -- record kinds besides visits (each from its own random stream) ---------------------------

    def _record_kinds(
        self, patient_id: int, birth: dt.date, sex: str, since: dt.date, batch: Batch
    ) -> None:
        visits = [(v.record_id, v.at, v.record_type, v.codes) for v in self._seen]
        rows = batch.rows["observations"]
        for record_id, r in labs.results(
            stream(self.seed, patient_id, "labs"), visits, birth, sex, BOGOTA
        ):
            if r.at.date() > self.today:
                continue
            low, high = labs.reference(r.test, sex)
            self.counters.observation += 1
            rows.append(
                (self.counters.observation, patient_id, record_id, "laboratory", labs.LOINC,
                 r.test.code, r.test.display, r.value, r.test.unit, low, high, r.flag, "final",
                 r.at)
            )  # fmt: skip
        chronic = any(
            c in self._condition_by_code and self._condition_by_code[c].chronic
            for v in self._seen
            for c in v.codes
        )
        vaccines = record_kinds.immunizations(
            stream(self.seed, patient_id, "immunizations"), birth, sex, chronic, since, self.today
        )
        for vaccine, when, dose, lot in vaccines:
            self.counters.immunization += 1
            batch.rows["immunizations"].append(
                (self.counters.immunization, patient_id, None, record_kinds.CVX, vaccine.code,
                 vaccine.display, when, dose, lot, "completed")
            )  # fmt: skip
        rng = stream(self.seed, patient_id, "procedures")
        done: list[tuple[record_kinds.Coded, dt.datetime, int | None]] = [
            *record_kinds.visit_procedures(rng, self._seen),
            *((p, when, None) for p, when in record_kinds.past_procedures(
                rng, birth, sex, since, self.today)),
        ]  # fmt: skip
        for procedure, when, visit_id in sorted(done, key=lambda p: p[1]):
            if when.date() >= self.today:
                continue
            self.counters.procedure += 1
            batch.rows["procedures"].append(
                (self.counters.procedure, patient_id, visit_id, record_kinds.SNOMED,
                 procedure.code, procedure.display, when, "completed")
            )  # fmt: skip
        for allergy in record_kinds.other_allergies(
            stream(self.seed, patient_id, "allergies"), birth, self.today
        ):
            substance, code, category, reaction, severity, noted, criticality = allergy
            self._other_allergies.append(
                (patient_id, None, reaction, severity, noted, substance, code,
                 record_kinds.SNOMED, category, criticality)
            )  # fmt: skip

    def deferred(self) -> Batch:
        """The rows numbered after every patient's: allergies to things other than medicines."""
        batch = Batch()
        for row in self._other_allergies:
            self.counters.allergy += 1
            batch.rows["patient_allergies"].append((self.counters.allergy, *row))
        self._other_allergies = []
        return batch

    def _allowed(self, atc: str, allergic: set[str], avoided: list[str]) -> bool:
        meds = self._meds_by_atc.get(atc, [])
        if not meds:
            return False
        ingredient = meds[0].active_ingredient.lower()
        if any(a in ingredient or ingredient in a for a in allergic):
            if meds[0].active_ingredient not in avoided:
                avoided.append(meds[0].active_ingredient)
            return False
        return True

    def _pick_medication(self, atc: str, age_years: float) -> MedicationRow | None:
        options = self._meds_by_atc.get(atc, [])
        if not options:
            return None
        pediatric = [
            m
            for m in options
            if m.route == "oral" and any(f in m.form.lower() for f in PEDIATRIC_FORMS)
        ]
        adult = [m for m in options if m not in pediatric]
        if age_years < 12 and pediatric:
            return pediatric[0]
        return (adult or options)[0]

    def _missed_appointment(
        self,
        patient_id: int,
        start: dt.date,
        span: int,
        active: list[_ActiveCondition],
        batch: Batch,
    ) -> None:
        rng = self.rng
        day = start + dt.timedelta(days=rng.randrange(0, span))
        condition = active[0].condition if active else None
        specialty = condition.specialty if condition else GENERAL
        doctor_id, specialty_id = self._doctor(specialty)
        begin = self._slot(day)
        self.counters.appointment += 1
        batch.rows["appointments"].append(
            (
                self.counters.appointment,
                patient_id,
                doctor_id,
                specialty_id,
                begin,
                begin + dt.timedelta(minutes=20),
                "Cancelled" if rng.random() < 0.6 else "NoShow",
                f"Control: {condition.label}" if condition else "Consulta de medicina general",
            )
        )

    def _future_appointment(
        self, patient_id: int, condition: Condition | None, batch: Batch
    ) -> None:
        rng = self.rng
        day = self.today + dt.timedelta(days=rng.randrange(1, 120))
        specialty = condition.specialty if condition else GENERAL
        doctor_id, specialty_id = self._doctor(specialty)
        begin = self._slot(day, forward=True)
        self.counters.appointment += 1
        batch.rows["appointments"].append(
            (
                self.counters.appointment,
                patient_id,
                doctor_id,
                specialty_id,
                begin,
                begin + dt.timedelta(minutes=20),
                "Confirmed" if (day - self.today).days <= 10 or rng.random() < 0.3 else "Scheduled",
                f"Control: {condition.label}" if condition else "Consulta de primera vez",
            )
        )
