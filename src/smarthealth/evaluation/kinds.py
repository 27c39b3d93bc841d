"""The kinds of question the gold set asks, grouped in categories.

A *kind* is one clinical question with one truth (computed by SQL in `gold.py`) and many
phrasings (in `phrasings_dev.json`, `phrasings_heldout.json`, `phrasings_probe.json` and
`phrasings_tuned.json`). Its
*category* is the row it is reported in. `robustness` is not a kind: it is the questions of every
category whose phrasing carries a typo, has lost its accents, uses a clinical abbreviation or says
"el/la paciente".

Placeholders a phrasing may use (filled in per patient by `phrasings.render`):
    {drug} {drug_f}            a drug by its spoken name (base name, no salt); _f: without accents
    {condicion} {condicion_f}  a condition by its common name (catalog label or alias)
    {clase} {clase_n}          a drug class with / without article ("las cefalosporinas")
    {anio}                     the previous calendar year (the year "el año pasado" means)
    {lab} {lab_f}              a laboratory test by its common Spanish name ("creatinina", "TSH")
    {vacuna} {vacuna_f}        a vaccine by the disease it protects against ("influenza")
    {alergeno} {alergeno_f}    an allergen that is not a medicine ("maní", "látex")
    {pac} {Pac}                "el paciente" / "la paciente" by the patient's sex
    {o}                        a gendered ending: "o" / "a" ("alérgic{o}", "hospitalizad{o}")
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = (
    "medications",
    "dose",
    "allergies",
    "diagnoses",
    "first_occurrence",
    "vitals",
    "series",
    "labs",
    "immunizations",
    "procedures",
    "counts",
    "appointments",
    "encounter_types",
    "doctors",
    "specialties",
    "demographics",
    "notes",
    "summary",
    "out_of_record",
    "follow_up",
)
ROBUSTNESS = "robustness"  # derived: questions whose phrasing has a ROBUST_TAGS tag
HALVES = ("dev", "heldout")  # what a default run asks (`--half both`) and CI measures
# A third, independent set written from the kind descriptions alone: tuned against once dev is
# overfitted, so that the held-out half stays untouched. Only asked when named (`--half probe`).
PROBE = "probe"
# Probe sets that have been tuned on: no longer independent, kept so that a change of the planner
# that breaks one of their wordings shows (`--half tuned`). Never part of the default run.
TUNED = "tuned"
ALL_HALVES = (*HALVES, PROBE, TUNED)

# Tags of a phrasing. "paciente" is added automatically when the text says "paciente" or {pac}.
ROBUST_TAGS = frozenset({"typo", "sin_tildes", "abrev", "paciente"})
TAGS = ROBUST_TAGS | {"coloquial"}

# Chunk types a citation may point to when its sentence has nothing checkable (see metrics).
_RECORD = ("vitals", "note", "diagnosis", "prescription", "appointment")


@dataclass(frozen=True)
class Kind:
    name: str
    category: str
    truth: str  # what the answer must state, in words (the SQL lives in gold.py)
    types: tuple[str, ...]  # chunk types that support a citation with nothing checkable
    needs: tuple[str, ...] = ()  # placeholders every (first-turn) phrasing must contain
    list_answer: bool = False  # a list was asked: excluded from the answer-length figures
    pair: bool = False  # two turns in one chat session; the second is the one scored


def _k(
    name: str,
    category: str,
    truth: str,
    types: tuple[str, ...],
    needs: tuple[str, ...] = (),
    list_answer: bool = False,
    pair: bool = False,
) -> Kind:
    return Kind(name, category, truth, types, needs, list_answer, pair)


_RX = ("prescription",)
_DRUG = ("drug",)
_COND = ("condicion",)
_CLASS = ("clase",)
_LAB = ("lab",)
_OBS = ("observation",)
_VACCINE = ("immunization",)
_PROCEDURE = ("procedure",)

KINDS: tuple[Kind, ...] = (
    # medications
    _k(
        "med_current",
        "medications",
        "drugs in force today, else those of the latest prescribing visit",
        _RX,
        (),
        True,
    ),
    _k("med_yes", "medications", "'Sí' + the drug (one in force today)", _RX, _DRUG),
    _k("med_no", "medications", "'No' (a drug never prescribed nor mentioned)", _RX, _DRUG),
    _k("med_salt", "medications", "'Sí' + the drug named without its salt", _RX, _DRUG),
    _k("med_year", "medications", "every drug prescribed in the previous year", _RX, (), True),
    # dose
    _k(
        "dose_follow",
        "dose",
        "dosage + frequency of the drug of turn 1 only",
        _RX,
        _DRUG,
        False,
        True,
    ),
    _k("dose_direct", "dose", "dosage + frequency of the named drug only", _RX, _DRUG),
    # allergies
    _k(
        "allergy_list",
        "allergies",
        "every allergy ('No…', no sources, when none)",
        ("allergy",),
        (),
        True,
    ),
    _k(
        "allergy_yes",
        "allergies",
        "'Sí' + the drug the patient is allergic to",
        ("allergy",),
        _DRUG,
    ),
    _k(
        "allergy_no",
        "allergies",
        "'No' (a drug the patient is not allergic to)",
        ("allergy",),
        _DRUG,
    ),
    _k(
        "allergy_class_yes",
        "allergies",
        "'Sí' + the allergen of that ATC class",
        ("allergy",),
        _CLASS,
    ),
    _k(
        "allergy_class_no",
        "allergies",
        "'No' (no allergen of that ATC class)",
        ("allergy",),
        _CLASS,
    ),
    _k(
        "allergy_nondrug",
        "allergies",
        "the allergies that are not to a medicine (food, latex, pollen, insects…), or 'No'",
        ("allergy",),
        (),
        True,
    ),
    _k(
        "allergy_substance_yes",
        "allergies",
        "'Sí' + the named non-drug allergen (one the record has)",
        ("allergy",),
        ("alergeno",),
    ),
    # diagnoses
    _k("dx_list", "diagnoses", "the diagnoses of the latest visit", ("diagnosis",), (), True),
    _k(
        "dx_yes",
        "diagnoses",
        "'Sí' + the condition (recorded at some visit)",
        ("diagnosis",),
        _COND,
    ),
    _k(
        "dx_no",
        "diagnoses",
        "'No' (a condition never recorded nor mentioned)",
        ("diagnosis",),
        _COND,
    ),
    # first occurrence
    _k(
        "first_dx",
        "first_occurrence",
        "date of the first record of the condition",
        ("diagnosis",),
        _COND,
    ),
    _k("first_drug", "first_occurrence", "date of the first prescription of the drug", _RX, _DRUG),
    # vitals: the latest visit with vital signs
    _k("vital_bp", "vitals", "latest blood pressure S/D", ("vitals",)),
    _k("vital_hr", "vitals", "latest heart rate", ("vitals",)),
    _k("vital_rr", "vitals", "latest respiratory rate", ("vitals",)),
    _k("vital_spo2", "vitals", "latest oxygen saturation", ("vitals",)),
    _k("vital_temp", "vitals", "latest temperature", ("vitals",)),
    _k("vital_weight", "vitals", "latest weight", ("vitals",)),
    _k("vital_height", "vitals", "latest height", ("vitals",)),
    _k("vital_bmi", "vitals", "latest body-mass index", ("vitals",)),
    # series over a window ending now
    _k(
        "series_bp_12m",
        "series",
        "every blood pressure of the last 12 months",
        ("vitals",),
        (),
        True,
    ),
    _k(
        "series_bp_6m", "series", "every blood pressure of the last 6 months", ("vitals",), (), True
    ),
    _k("series_weight_12m", "series", "every weight of the last 12 months", ("vitals",), (), True),
    # laboratory results (observations)
    _k("lab_latest", "labs", "latest value + unit + date of the named lab", _OBS, _LAB),
    _k(
        "lab_series",
        "labs",
        "every value of the named lab in the last 12 months, each dated",
        _OBS,
        _LAB,
        True,
    ),
    _k(
        "lab_abnormal",
        "labs",
        "the latest results outside their reference range (high/low), or 'No' when none is",
        _OBS,
        (),
        True,
    ),
    # immunizations
    _k(
        "vaccine_list",
        "immunizations",
        "every vaccine recorded, with its date ('No…' when none)",
        _VACCINE,
        (),
        True,
    ),
    _k(
        "vaccine_yes",
        "immunizations",
        "'Sí' + the date of the named vaccine (one the record has)",
        _VACCINE,
        ("vacuna",),
    ),
    _k(
        "vaccine_no",
        "immunizations",
        "'No' (the named vaccine is not recorded)",
        _VACCINE,
        ("vacuna",),
    ),
    # procedures and surgeries
    _k(
        "procedure_list",
        "procedures",
        "every procedure / surgery recorded, with its date",
        _PROCEDURE,
        (),
        True,
    ),
    _k("procedure_last", "procedures", "the latest procedure / surgery and its date", _PROCEDURE),
    # counts (digits)
    _k("count_er", "counts", "number of emergency visits", _RECORD),
    _k("count_visits_year", "counts", "number of visits this calendar year", _RECORD),
    _k("count_cancelled", "counts", "number of cancelled appointments", ("appointment",)),
    _k("count_noshow", "counts", "number of missed (NoShow) appointments", ("appointment",)),
    # appointments
    _k("appt_next", "appointments", "date + specialty of the next appointment", ("appointment",)),
    _k(
        "appt_last_attended",
        "appointments",
        "date + specialty of the last attended one",
        ("appointment",),
    ),
    _k(
        "appt_cancelled",
        "appointments",
        "date of the latest cancelled appointment",
        ("appointment",),
    ),
    _k(
        "appt_missed",
        "appointments",
        "date of the latest missed (NoShow) appointment",
        ("appointment",),
    ),
    # encounter types (medical_records.record_type)
    _k("enc_er_last", "encounter_types", "date of the latest emergency visit", _RECORD),
    _k(
        "enc_hosp", "encounter_types", "'Sí' + date of the latest hospitalisation, or 'No'", _RECORD
    ),
    _k("enc_tele", "encounter_types", "date of the latest telemedicine visit", _RECORD),
    # doctors
    _k("doc_last", "doctors", "last name of the doctor of the latest visit", _RECORD),
    _k("doc_next", "doctors", "last name of the doctor of the next appointment", ("appointment",)),
    # specialties
    _k("spec_list", "specialties", "every specialty that attended the patient", _RECORD, (), True),
    _k("spec_next", "specialties", "specialty of the next appointment", ("appointment",)),
    # demographics
    _k("demo_age", "demographics", "age in years on the evaluation day", ("demographics",)),
    _k("demo_blood", "demographics", "blood type", ("demographics",)),
    _k("demo_birth", "demographics", "birth date", ("demographics",)),
    _k("demo_city", "demographics", "city", ("demographics",)),
    _k("demo_document", "demographics", "document number", ("demographics",)),
    # notes of the latest visit
    _k("note_reason", "notes", "MOTIVO DE CONSULTA of the latest visit", ("note",)),
    _k("note_plan", "notes", "first sentence of ANÁLISIS Y PLAN of the latest visit", ("note",)),
    _k("note_exam", "notes", "finding of EXAMEN FÍSICO of the latest visit", ("note",)),
    # summary
    _k(
        "summary",
        "summary",
        "name, latest principal diagnosis, a current drug, allergies",
        ("demographics", "diagnosis", "prescription", "allergy", "appointment", "vitals"),
        (),
        True,
    ),
    # topics a record cannot hold: "No encuentro …", no sources
    _k("oor_habits", "out_of_record", "abstain (habits: alcohol, tobacco, sleep, diet…)", ()),
    _k("oor_social", "out_of_record", "abstain (children, work, insurance, travel…)", ()),
    # asked only of patients whose record holds nothing on the topic (OUT_OF_RECORD_PROBES in
    # gold.py): vaccines, surgeries and labs may be recorded now (issue 11)
    _k(
        "oor_history",
        "out_of_record",
        "abstain (family history, transfusions…; vaccines or surgeries where none is recorded)",
        (),
    ),
    _k("oor_labs", "out_of_record", "abstain (a lab value, imaging or ECG the record lacks)", ()),
    # follow-ups that must keep the subject of turn 1
    _k(
        "fu_dx_treatment",
        "follow_up",
        "drugs prescribed for the condition of turn 1",
        _RX,
        _COND,
        True,
        True,
    ),
    _k(
        "fu_drug_dose",
        "follow_up",
        "dosage + frequency of the drug of turn 1 only",
        _RX,
        _DRUG,
        False,
        True,
    ),
    _k(
        "fu_attended_specialty",
        "follow_up",
        "specialty of the last attended appointment",
        ("appointment",),
        (),
        False,
        True,
    ),
    _k(
        "fu_bp_before",
        "follow_up",
        "blood pressure of the visit before the latest",
        ("vitals",),
        (),
        False,
        True,
    ),
)
KIND_BY_NAME = {k.name: k for k in KINDS}
assert {k.category for k in KINDS} == set(CATEGORIES)
