"""Integrity tests for the clinical catalog files used by the synthetic-data seeder.

Only the standard library is used: the files are read by path, the package is not imported.
"""

import csv
import json
import re
import string
from pathlib import Path

import pytest

DATA = Path(__file__).parents[2] / "src/smarthealth/ingest/data"

ATC_RE = re.compile(r"^[A-Z]\d{2}[A-Z]{2}\d{2}$")
ICD_RE = re.compile(r"^[A-Z]\d{2}(\.[0-9A-Z]{1,2})?$")
SLUG_RE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
MOJIBAKE = ("Ã", "Â", "\ufffd", "\u00ad")

MED_COLUMNS = [
    "atc_code",
    "commercial_name",
    "active_ingredient",
    "strength",
    "form",
    "presentation",
    "therapeutic_class",
    "route",
    "default_dose",
    "default_frequency",
    "default_duration_days",
]
ROUTES = {
    "oral",
    "sublingual",
    "inhalada",
    "nasal",
    "subcutánea",
    "intramuscular",
    "intravenosa",
    "tópica",
    "oftálmica",
    "ótica",
    "vaginal",
    "transdérmica",
    "subdérmica",
    "intrauterina",
}
CONDITION_KEYS = {
    "icd_code",
    "label",
    "chronic",
    "specialty",
    "min_age",
    "max_age",
    "sex",
    "weight",
    "treatments",
    "treats_label",
    "reasons",
    "history",
    "findings",
    "plan",
    "vitals",
}
VITAL_KEYS = {
    "systolic",
    "diastolic",
    "heart_rate",
    "respiratory_rate",
    "temperature",
    "spo2",
    "weight_kg",
}
# Forms a toddler can take (besides any non-oral route).
PEDIATRIC_FORMS = (
    "suspensión",
    "jarabe",
    "gotas",
    "solución oral",
    "granulado",
    "masticable",
    "desintegración oral",
)
# Drug classes (ATC prefixes) of which a single condition must not list two members: the seeder may
# prescribe several entries of `treatments` together.
EXCLUSIVE_CLASSES = {
    "renin-angiotensin system": ("C09",),
    "anticoagulants": ("B01AA", "B01AB", "B01AE", "B01AF"),
    "systemic NSAIDs": ("M01A",),
    "statins": ("C10AA",),
    "proton pump inhibitors": ("A02BC",),
    "SSRIs": ("N06AB",),
    "benzodiazepines": ("N05BA", "N03AE", "N05CD"),
    "oral iron": ("B03AA", "B03AB"),
    "antiretroviral regimens": ("J05AR",),
    "tuberculosis regimens": ("J04AM",),
}


def read_csv(name):
    path = DATA / name
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return reader.fieldnames, rows


@pytest.fixture(scope="module")
def specialties():
    header, rows = read_csv("specialties.csv")
    assert header == ["code", "name"]
    return rows


@pytest.fixture(scope="module")
def diagnoses():
    header, rows = read_csv("diagnoses.csv")
    assert header == ["icd_code", "description"]
    return rows


@pytest.fixture(scope="module")
def medications():
    header, rows = read_csv("medications.csv")
    assert header == MED_COLUMNS
    return rows


@pytest.fixture(scope="module")
def conditions():
    with (DATA / "conditions.json").open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, list)
    return data


def no_mojibake(text):
    return not any(bad in text for bad in MOJIBAKE)


# ---------------------------------------------------------------- specialties


def test_specialties_count_and_codes(specialties):
    assert len(specialties) >= 20
    codes = [r["code"] for r in specialties]
    assert len(codes) == len(set(codes)), "duplicate specialty code"
    for row in specialties:
        assert SLUG_RE.match(row["code"]), row["code"]
        assert row["name"].strip() == row["name"] and row["name"], row
        assert no_mojibake(row["name"]), row["name"]


def test_specialties_include_core_services(specialties):
    names = {r["name"] for r in specialties}
    for expected in (
        "Medicina general",
        "Medicina interna",
        "Pediatría",
        "Ginecología y obstetricia",
        "Cardiología",
        "Medicina de urgencias",
    ):
        assert expected in names


# ---------------------------------------------------------------- diagnoses


def test_diagnoses_count_format_and_uniqueness(diagnoses):
    assert len(diagnoses) >= 350
    codes = [r["icd_code"] for r in diagnoses]
    assert len(codes) == len(set(codes)), "duplicate icd_code"
    for code in codes:
        assert ICD_RE.match(code), code


def test_diagnoses_descriptions_clean(diagnoses):
    for row in diagnoses:
        desc = row["description"]
        assert desc and desc == desc.strip(), row
        assert "  " not in desc, row
        assert no_mojibake(desc), row


def test_diagnoses_cover_key_codes(diagnoses):
    codes = {r["icd_code"] for r in diagnoses}
    for code in (
        "I10",
        "E11.9",
        "J45.9",
        "A09",
        "A90",
        "A91",
        "B50.9",
        "B51.9",
        "B54",
        "B57.2",
        "Z00.0",
        "Z00.1",
        "Z01.4",
        "Z23",
        "Z34.9",
        "O24.4",
        "H66.9",
        "J21.9",
        "S93.4",
    ):
        assert code in codes, code


def test_diagnoses_spot_check_official_text(diagnoses):
    desc = {r["icd_code"]: r["description"] for r in diagnoses}
    assert desc["I10"] == "Hipertensión esencial (primaria)"
    assert desc["Z00.0"] == "Examen médico general"
    assert desc["A90"] == "Fiebre del dengue [dengue clásico]"


# ---------------------------------------------------------------- medications


def test_medications_count_and_atc_format(medications):
    assert len(medications) >= 170
    for row in medications:
        assert ATC_RE.match(row["atc_code"]), row["atc_code"]


def test_medications_unique_presentation(medications):
    keys = [(r["atc_code"], r["strength"], r["form"]) for r in medications]
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes, dupes


def test_medications_fields_complete_and_clean(medications):
    for row in medications:
        for col in MED_COLUMNS:
            value = row[col]
            assert value and value == value.strip(), (col, row)
            assert no_mojibake(value), (col, row)
        assert row["route"] in ROUTES, row


def test_medications_duration_positive_int(medications):
    for row in medications:
        raw = row["default_duration_days"]
        assert raw.isdigit(), row
        assert int(raw) > 0, row


def test_medications_include_core_drugs(medications):
    atcs = {r["atc_code"] for r in medications}
    core = {
        "A10BA02": "metformina",
        "C09CA01": "losartán",
        "C08CA01": "amlodipino",
        "C10AA05": "atorvastatina",
        "A02BC01": "omeprazol",
        "R03AC02": "salbutamol",
        "R03BA01": "beclometasona",
        "N02BE01": "acetaminofén",
        "J01CA04": "amoxicilina",
        "H03AA01": "levotiroxina",
        "C07AB07": "bisoprolol",
        "J01XE01": "nitrofurantoína",
    }
    by_atc = {}
    for r in medications:
        by_atc.setdefault(r["atc_code"], []).append(r["active_ingredient"])
    for atc, ingredient in core.items():
        assert atc in atcs, atc
        assert any(ingredient in name for name in by_atc[atc]), (atc, by_atc[atc])


def test_medications_have_pediatric_presentations(medications):
    pediatric = [
        r
        for r in medications
        if r["form"] in ("suspensión oral", "jarabe", "gotas orales")
        or r["form"].startswith("polvo para suspensión oral")
    ]
    assert len(pediatric) >= 15


# Column widths of the smart_health tables (migration 0001): a longer value would fail the load.
MED_WIDTHS = {
    "atc_code": 7,
    "commercial_name": 120,
    "active_ingredient": 160,
    "strength": 80,
    "form": 80,
    "presentation": 200,
    "therapeutic_class": 200,
    "route": 40,
    "default_dose": 160,
    "default_frequency": 160,
}


def test_values_fit_database_columns(specialties, diagnoses, medications):
    for row in medications:
        for col, width in MED_WIDTHS.items():
            assert len(row[col]) <= width, (col, row[col])
    for row in specialties:
        assert len(row["code"]) <= 40 and len(row["name"]) <= 100, row
    names = [r["name"] for r in specialties]
    assert len(names) == len(set(names)), "specialty names must be unique"
    for row in diagnoses:
        assert len(row["icd_code"]) <= 8, row


# ---------------------------------------------------------------- conditions


def test_conditions_count_and_keys(conditions):
    assert len(conditions) >= 45
    for cond in conditions:
        assert set(cond) - {"aliases"} == CONDITION_KEYS, cond.get("icd_code")


def test_condition_aliases_are_distinct_names(conditions):
    """Other names of a condition ("colesterol alto"): non-empty, trimmed, not repeated."""
    with_aliases = [c for c in conditions if "aliases" in c]
    assert len(with_aliases) >= 20
    for cond in with_aliases:
        aliases = cond["aliases"]
        assert aliases and all(isinstance(a, str) and a.strip() == a and a for a in aliases)
        assert len({a.lower() for a in aliases} | {cond["label"].lower()}) == len(aliases) + 1


def test_conditions_references_resolve(conditions, diagnoses, medications, specialties):
    icds = {r["icd_code"] for r in diagnoses}
    atcs = {r["atc_code"] for r in medications}
    specs = {r["code"] for r in specialties}
    for cond in conditions:
        assert cond["icd_code"] in icds, cond["icd_code"]
        assert cond["specialty"] in specs, (cond["icd_code"], cond["specialty"])
        assert isinstance(cond["treatments"], list)
        assert len(cond["treatments"]) == len(set(cond["treatments"])), cond["icd_code"]
        for atc in cond["treatments"]:
            assert atc in atcs, (cond["icd_code"], atc)


def test_conditions_scalar_fields(conditions):
    for cond in conditions:
        code = cond["icd_code"]
        assert (
            isinstance(cond["label"], str)
            and cond["label"].strip() == cond["label"]
            and cond["label"]
        ), code
        assert isinstance(cond["chronic"], bool), code
        assert cond["sex"] in (None, "F", "M"), code
        assert isinstance(cond["min_age"], int) and isinstance(cond["max_age"], int), code
        assert 0 <= cond["min_age"] <= cond["max_age"] <= 110, code
        assert isinstance(cond["weight"], (int, float)) and cond["weight"] > 0, code
        assert isinstance(cond["treats_label"], str), code
        if cond["treatments"]:
            assert cond["treats_label"].strip(), code


def test_conditions_text_lists(conditions):
    for cond in conditions:
        for key in ("reasons", "history", "findings", "plan"):
            items = cond[key]
            assert isinstance(items, list) and len(items) >= 3, (cond["icd_code"], key)
            assert len(set(items)) == len(items), (cond["icd_code"], key)
            for text in items:
                assert isinstance(text, str) and text.strip() == text and text, (
                    cond["icd_code"],
                    key,
                )
                assert no_mojibake(text), (cond["icd_code"], text)


def test_conditions_placeholders(conditions):
    formatter = string.Formatter()
    for cond in conditions:
        for key in ("reasons", "history", "findings", "plan"):
            for text in cond[key]:
                fields = {name for _, name, _, _ in formatter.parse(text) if name is not None}
                assert fields <= {"years"}, (cond["icd_code"], text)
                text.format(years=3)
                if "{years}" in text:
                    assert cond["chronic"], (cond["icd_code"], "{years} used in an acute condition")


def test_conditions_history_and_plan_mention_label(conditions):
    for cond in conditions:
        label = cond["label"].casefold()
        for key in ("history", "plan"):
            for text in cond[key]:
                assert label in text.casefold(), (cond["icd_code"], key, text)


def test_conditions_vitals(conditions):
    for cond in conditions:
        vitals = cond["vitals"]
        code = cond["icd_code"]
        assert set(vitals) == VITAL_KEYS, code
        for key, value in vitals.items():
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (code, key)
        assert isinstance(vitals["temperature"], float), code
        assert -3.0 <= vitals["temperature"] <= 3.0, code
        assert -15 <= vitals["spo2"] <= 0, code
        assert -40 <= vitals["systolic"] <= 50, code
        assert -30 <= vitals["diastolic"] <= 30, code
        assert -20 <= vitals["heart_rate"] <= 40, code
        assert -5 <= vitals["respiratory_rate"] <= 25, code
        assert -15 <= vitals["weight_kg"] <= 30, code


def test_conditions_physiology_spot_checks(conditions):
    by_code = {c["icd_code"]: c for c in conditions}
    assert by_code["I10"]["vitals"]["systolic"] >= 15
    assert by_code["A90"]["vitals"]["temperature"] >= 1.0
    assert by_code["J44.9"]["vitals"]["spo2"] <= -3
    assert by_code["J44.9"]["vitals"]["respiratory_rate"] >= 3
    assert by_code["J21.9"]["max_age"] <= 2


def test_conditions_expected_first_line(conditions):
    by_code = {c["icd_code"]: c for c in conditions}
    expected = {
        "E11.9": "A10BA02",
        "I10": "C09CA01",
        "E78.5": "C10AA05",
        "J45.9": "R03AC02",
        "E03.9": "H03AA01",
        "K21.9": "A02BC01",
        "N39.0": "J01XE01",
        "J06.9": "N02BE01",
        "A90": "N02BE01",
    }
    for code, atc in expected.items():
        assert by_code[code]["treatments"][0] == atc, code
    assert "R03BA01" in by_code["J45.9"]["treatments"]


def test_conditions_no_duplicate_exclusive_classes(conditions):
    for cond in conditions:
        for name, prefixes in EXCLUSIVE_CLASSES.items():
            members = [atc for atc in cond["treatments"] if atc.startswith(prefixes)]
            assert len(members) <= 1, (cond["icd_code"], name, members)


def test_conditions_young_children_have_suitable_forms(conditions, medications):
    rows_by_atc = {}
    for row in medications:
        rows_by_atc.setdefault(row["atc_code"], []).append(row)
    for cond in conditions:
        if cond["min_age"] >= 5:
            continue
        for atc in cond["treatments"]:
            rows = rows_by_atc[atc]
            assert any(
                r["route"] != "oral" or any(f in r["form"] for f in PEDIATRIC_FORMS) for r in rows
            ), (cond["icd_code"], atc)


def test_conditions_sex_specific_codes(conditions):
    for cond in conditions:
        if cond["icd_code"].startswith("O") or cond["icd_code"].startswith("Z34"):
            assert cond["sex"] == "F", cond["icd_code"]
        if cond["icd_code"] in ("N40", "C61"):
            assert cond["sex"] == "M", cond["icd_code"]


def test_conditions_coverage(conditions):
    codes = {c["icd_code"] for c in conditions}
    pediatric = [c for c in conditions if c["max_age"] <= 17]
    assert len(pediatric) >= 8
    assert any(c["min_age"] == 0 for c in conditions)
    assert any(c["chronic"] for c in conditions) and any(not c["chronic"] for c in conditions)
    assert any(not c["treatments"] for c in conditions)
    for code in ("I10", "E11.9", "A09", "A90", "Z34.9", "Z00.1", "J21.9", "H66.9"):
        assert code in codes, code
