"""The full evaluation: a fresh embedded database, a fixed population, the whole gold set.

    .venv/bin/python bench/eval_full.py                  # 300 patients, seed 2026, 16 evaluated
    .venv/bin/python bench/eval_full.py --today 2026-12-05 --json bench/results/eval_full.json
    .venv/bin/python bench/eval_full.py --half dev       # only the development phrasings
    .venv/bin/python bench/eval_full.py --half probe     # only the probe phrasings (JSON to
                                                         # results/eval_probe.json by default)

Offline defaults (extractive engine, local multilingual-e5 embeddings), whatever `.env` says.
Prints the per-category table (dev and held-out side by side) and writes the JSON report
(figures, per-question results and failures; held-out question texts only with
--show-heldout). Exit code 1 when an acceptance criterion of the issue is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from rich.console import Console

from smarthealth.evaluation.kinds import HALVES
from smarthealth.evaluation.runner import dump_report, render_table, report_json, run_fresh
from smarthealth.log_config import configure_logging
from smarthealth.rag.embeddings import LocalE5Embedder
from smarthealth.rag.engines.extractive import ExtractiveEngine

RESULTS = Path(__file__).with_name("results") / "eval_full.json"
PROBE_RESULTS = RESULTS.with_name("eval_probe.json")  # a probe run leaves eval_full.json alone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=300, help="population seeded")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--today", type=dt.date.fromisoformat, default=None, help="history anchor (YYYY-MM-DD)"
    )
    parser.add_argument("--eval-patients", type=int, default=16, help="patients asked about")
    parser.add_argument("--limit", type=int, default=None, help="at most N questions")
    parser.add_argument("--json", type=Path, default=None, help=f"default: {RESULTS}")
    parser.add_argument("--half", choices=("dev", "heldout", "probe", "both"), default="both")
    parser.add_argument(
        "--show-heldout", action="store_true", help="held-out question texts in the JSON"
    )
    args = parser.parse_args()
    if args.json is None:
        args.json = PROBE_RESULTS if args.half == "probe" else RESULTS
    configure_logging("WARNING", json=False)
    console = Console()
    report = run_fresh(
        args.patients,
        args.seed,
        args.today,
        eval_patients=args.eval_patients,
        limit=args.limit,
        embedder=LocalE5Embedder(),
        engine=ExtractiveEngine(),
        console=console,
        halves=HALVES if args.half == "both" else (args.half,),
    )
    render_table(report, console)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    data = report_json(report, show_heldout=args.show_heldout)
    args.json.write_text(dump_report(data), encoding="utf-8")
    console.print(f"JSON: {args.json}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
