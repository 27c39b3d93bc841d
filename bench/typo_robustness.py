"""How often one typing mistake changes the planner's reading of a question.

    .venv/bin/python bench/typo_robustness.py --seeds 5 6 7

Label-free: every single-turn phrasing of the dev, tuned and probe halves (never the held-out
one), with fixed placeholder values, is planned as written and with one random typing mistake
in one word of four letters or more (a letter left out, swapped, replaced or doubled). The plan
of the mistyped question should be the plan of the clean one (subject, operation, attribute,
vital signs, first drug and condition, encounter type, status, specialty, demographic field,
note section). Prints the share that stay equal per seed and the words whose mistakes changed
plans most often.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import random

from smarthealth.evaluation import phrasings as ph
from smarthealth.rag.plan import QuestionPlan
from smarthealth.rag.planner import Context, plan_question

VALUES = {
    "drug": "losartán", "drug_f": "losartan", "condicion": "hipertensión",
    "condicion_f": "hipertension", "clase": "los AINE", "clase_n": "AINE", "anio": "2025",
    "pac": "el paciente", "Pac": "El paciente", "al_pac": "al paciente", "o": "o", "lo": "lo",
    "Lo": "Lo", "lab": "creatinina", "lab_f": "creatinina", "vacuna": "influenza",
    "vacuna_f": "influenza", "alergeno": "maní", "alergeno_f": "mani",
}  # fmt: skip
PUNCTUATION = "¿?¡!.,:;()"


def questions() -> list[str]:
    found: set[str] = set()
    for half in ("dev", "tuned", "probe"):
        for phrasings in ph.load(half).values():
            found.update(ph.render(p.turns[0], VALUES) for p in phrasings if len(p.turns) == 1)
    return sorted(found)


def mistype(question: str, rng: random.Random) -> tuple[str, str] | None:
    """The question with one typing mistake in one longer word, and that word."""
    words = question.split()
    longer = [i for i, w in enumerate(words) if len(w.strip(PUNCTUATION)) >= 4]
    if not longer:
        return None
    i = rng.choice(longer)
    word = words[i]
    core = word.strip(PUNCTUATION)
    head = word[: word.index(core)]
    tail = word[len(head) + len(core) :]
    k = rng.randrange(1, len(core) - 1)
    mistake = rng.choice(("leave out", "swap", "replace", "double"))
    if mistake == "leave out":
        typed = core[:k] + core[k + 1 :]
    elif mistake == "swap":
        typed = core[: k - 1] + core[k] + core[k - 1] + core[k + 1 :]
    elif mistake == "replace":
        typed = core[:k] + rng.choice("aeiosnrtlcmd") + core[k + 1 :]
    else:
        typed = core[:k] + core[k] + core[k:]
    words[i] = head + typed + tail
    return " ".join(words), core


def reading(plan: QuestionPlan) -> tuple[object, ...]:
    return (
        plan.subject, plan.operation, plan.attribute, plan.vitals, plan.drugs[:1],
        plan.conditions[:1], plan.encounter_type, plan.status, plan.specialty, plan.demographic,
        plan.note_section,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7])
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date(2026, 12, 5))
    args = parser.parse_args()
    context = Context(args.today)
    clean = {q: reading(plan_question(q, context)) for q in questions()}
    changed_by_word: collections.Counter[str] = collections.Counter()
    for seed in args.seeds:
        rng = random.Random(seed)
        asked = equal = 0
        for question, plan in clean.items():
            typed = mistype(question, rng)
            if typed is None:
                continue
            asked += 1
            if reading(plan_question(typed[0], context)) == plan:
                equal += 1
            else:
                changed_by_word[typed[1].lower()] += 1
        print(f"seed {seed}: {equal}/{asked} plans unchanged by one typo = {equal / asked:.3f}")
    print("words whose typos changed plans most:", changed_by_word.most_common(12))


if __name__ == "__main__":
    main()
