"""The phrasing files of the gold set: well formed, big enough, and halves that share nothing.

These tests print counts and phrasing ids, never a held-out phrasing (whoever tunes the engine
reads CI output). The probe half's checks print probe phrasings only (that file is readable)."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from importlib import resources
from pathlib import Path

from smarthealth.evaluation import phrasings as ph
from smarthealth.evaluation.kinds import (
    ALL_HALVES,
    CATEGORIES,
    HALVES,
    KINDS,
    PROBE,
    ROBUST_TAGS,
    TUNED,
)
from smarthealth.rag.text import fold

MIN_PHRASINGS_PER_HALF = 8
TUNED_ON = ("dev", TUNED)  # the phrasings the engine was tuned on


def _folded(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9{}_° ]+", " ", fold(text)).split())


def test_every_kind_has_well_formed_phrasings_in_both_halves() -> None:
    for half in HALVES:
        assert ph.problems(half) == [], half
        kinds = ph.load(half)
        assert set(kinds) == {k.name for k in KINDS}, half
        for kind in KINDS:
            assert len(kinds[kind.name]) >= MIN_PHRASINGS_PER_HALF, (half, kind.name)


def test_no_phrasing_is_in_both_halves_even_folded() -> None:
    """Accents, case and punctuation do not make two phrasings different (the engine folds
    them away): a held-out phrasing never equals a development one."""

    def scored(half: str) -> dict[str, str]:
        return {_folded(p.scored): p.pid for phrasings in ph.load(half).values() for p in phrasings}

    heldout = scored("heldout")
    for half in TUNED_ON:
        shared = sorted(heldout[s] for s in set(scored(half)) & set(heldout))  # ids, not texts
        assert shared == [], half


def test_no_heldout_phrasing_is_part_of_a_dev_phrasing() -> None:
    """An engine tuned on "¿Qué medicamentos toma?" would get "medicamentos toma" for free: no
    held-out phrasing is a run of words of a development one."""
    dev = [f" {_folded(p.scored)} " for h in TUNED_ON for ps in ph.load(h).values() for p in ps]
    inside = sorted(
        p.pid
        for ps in ph.load("heldout").values()
        for p in ps
        if any(f" {_folded(p.scored)} " in d for d in dev)
    )
    assert inside == []


def test_no_heldout_phrasing_is_a_near_copy_of_a_dev_phrasing() -> None:
    """A held-out phrasing is not a dev phrasing with one letter changed (a typo of a tuned
    wording, or a tuned typo of it): folded similarity stays below 0.93."""
    dev = [_folded(p.scored) for h in TUNED_ON for ps in ph.load(h).values() for p in ps]
    close = []
    for phrasings in ph.load("heldout").values():
        for p in phrasings:
            text = _folded(p.scored)
            for d in dev:
                matcher = SequenceMatcher(None, text, d)
                if matcher.quick_ratio() >= 0.93 and matcher.ratio() >= 0.93:
                    close.append(p.pid)
                    break
    assert close == []


def test_phrasings_of_a_kind_differ_after_folding() -> None:
    for half in ALL_HALVES:
        for name, phrasings in ph.load(half).items():
            folded = [_folded(" || ".join(p.turns)) for p in phrasings]
            duplicated = len(folded) - len(set(folded))  # a count: no text printed
            assert duplicated == 0, (half, name)


def test_halves_have_comparable_difficulty() -> None:
    """Typos, missing accents, abbreviations and "el/la paciente" are spread over both halves."""
    for kind in KINDS:
        robust = {half: sum(p.robust for p in ph.load(half)[kind.name]) for half in HALVES}
        assert min(robust.values()) >= 2, (kind.name, robust)
        assert abs(robust["dev"] - robust["heldout"]) <= 2, (kind.name, robust)
    for tag in ROBUST_TAGS:
        counts = {
            half: sum(tag in p.tags for ps in ph.load(half).values() for p in ps) for half in HALVES
        }
        assert min(counts.values()) >= 0.7 * max(counts.values()), (tag, counts)


def test_kinds_cover_every_category() -> None:
    assert {k.category for k in KINDS} == set(CATEGORIES)
    for category in CATEGORIES:
        kinds = [k for k in KINDS if k.category == category]
        assert kinds, category


def test_heldout_file_does_not_show_its_phrasings() -> None:
    """Held-out entries are stored base64-encoded: a grep or a merge diff does not show them."""
    text = resources.files("smarthealth.evaluation").joinpath(ph.FILES["heldout"]).read_text()
    assert '"encoding": "base64"' in text
    some = next(iter(ph.load("heldout").values()))[0].scored
    shown = some in text  # a bool: the phrasing itself is never printed
    assert not shown


def test_phrasing_files_ship_with_the_package() -> None:
    package = resources.files("smarthealth.evaluation")
    for name in ph.FILES.values():
        assert package.joinpath(name).is_file(), name
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    assert '"evaluation/*.json"' in pyproject.read_text("utf-8")  # package data of a wheel


def test_render_fills_placeholders() -> None:
    values = {"drug": "losartán", "pac": "la paciente", "o": "a"}
    assert ph.render("¿Es alérgic{o} a {drug}, {pac}?", values) == (
        "¿Es alérgica a losartán, la paciente?"
    )


# -- the probe half: a third, independent set (readable; tuned against instead of held-out) -----


def _probe() -> list[ph.Phrasing]:
    return [p for ps in ph.load(PROBE).values() for p in ps]


def _shown(p: ph.Phrasing) -> str:
    """A probe phrasing for a failure message: its id and its own text, nothing of another half."""
    return f"{p.pid}: {p.scored!r}"


def test_probe_half_is_well_formed_and_covers_every_kind() -> None:
    assert PROBE not in HALVES  # the default run (dev + held-out) and CI do not ask it
    assert ph.problems(PROBE) == []
    kinds = ph.load(PROBE)
    assert set(kinds) == {k.name for k in KINDS}
    for kind in KINDS:
        assert len(kinds[kind.name]) >= MIN_PHRASINGS_PER_HALF, kind.name
        robust = sum(p.robust for p in kinds[kind.name])
        assert robust >= 2, (kind.name, robust)
    for tag in ROBUST_TAGS:
        assert sum(tag in p.tags for p in _probe()) >= 20, tag


def test_probe_file_is_plain_json() -> None:
    text = resources.files("smarthealth.evaluation").joinpath(ph.FILES[PROBE]).read_text()
    assert '"encoding"' not in text
    assert '"half": "probe"' in text


def test_no_probe_phrasing_equals_a_dev_or_heldout_one_even_folded() -> None:
    for half in (*HALVES, TUNED):
        other = {_folded(p.scored) for ps in ph.load(half).values() for p in ps}
        shared = [_shown(p) for p in _probe() if _folded(p.scored) in other]
        assert shared == [], half


def test_no_probe_phrasing_is_part_of_a_dev_or_heldout_one() -> None:
    """A probe phrasing that is a run of words of a dev phrasing is answered for free by an engine
    tuned on dev (the probe would flatter it); one that is a run of words of a held-out phrasing
    would hand part of the held-out half to whoever tunes on the probe."""
    for half in (*HALVES, TUNED):
        other = [f" {_folded(p.scored)} " for ps in ph.load(half).values() for p in ps]
        inside = [_shown(p) for p in _probe() if any(f" {_folded(p.scored)} " in o for o in other)]
        assert inside == [], half


def test_no_heldout_phrasing_is_part_of_a_probe_phrasing() -> None:
    """Tuning on a probe phrasing must not tune on a held-out one hidden inside it."""
    heldout = [f" {_folded(p.scored)} " for ps in ph.load("heldout").values() for p in ps]
    holding = [_shown(p) for p in _probe() if any(h in f" {_folded(p.scored)} " for h in heldout)]
    assert holding == []


def test_no_probe_phrasing_is_a_near_copy_of_a_dev_or_heldout_one() -> None:
    """Not a dev or held-out phrasing with one letter changed: folded similarity below 0.93."""
    for half in (*HALVES, TUNED):
        other = [_folded(p.scored) for ps in ph.load(half).values() for p in ps]
        close = []
        for p in _probe():
            text = _folded(p.scored)
            for o in other:
                matcher = SequenceMatcher(None, text, o)
                if matcher.quick_ratio() >= 0.93 and matcher.ratio() >= 0.93:
                    close.append(_shown(p))
                    break
        assert close == [], half


def test_tuned_half_is_well_formed_and_apart_from_the_default_run() -> None:
    """The probe sets already tuned on: every kind, well formed, never asked by default or CI."""
    assert TUNED not in HALVES
    assert ph.problems(TUNED) == []
    kinds = ph.load(TUNED)
    assert set(kinds) == {k.name for k in KINDS}
    assert all(len(kinds[k.name]) >= MIN_PHRASINGS_PER_HALF for k in KINDS)
