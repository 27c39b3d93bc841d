"""Which retrieval legs find what: recall@8 of each leg alone and combined, on the gold set.

    .venv/bin/python bench/leg_comparison.py [--patients 300] [--seed 2026] [--today 2026-11-26]

Fresh temporary embedded database, the evaluation's population and gold set
(`smarthealth.evaluation.gold`, development phrasings only); only first turns of sessions are
used (follow-ups depend on the previous answer). Each configuration retrieves the top 8 with
`retrieve(..., legs_used=…)`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
from pathlib import Path

import asyncpg

from smarthealth.config import to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.evaluation import metrics
from smarthealth.evaluation.gold import build_gold_set
from smarthealth.evaluation.runner import index_database
from smarthealth.ingest.seed import seed_database
from smarthealth.log_config import configure_logging
from smarthealth.rag.embeddings import LocalE5Embedder
from smarthealth.rag.planner import Context, plan_question
from smarthealth.rag.retrieval import retrieve

CONFIGS = {
    "lexical (BM25-like full text)": ("lexical",),
    "vector (multilingual-e5-small)": ("vector",),
    "intent": ("intent",),
    "vector + lexical": ("vector", "lexical"),
    "vector + lexical + intent (default)": ("vector", "lexical", "intent"),
}


async def compare(url: str, today: dt.date, patients: int) -> dict[str, object]:
    embedder = LocalE5Embedder()
    await index_database(url, embedder)
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        gold = await build_gold_set(
            conn, embedder.model_name, patients=patients, today=today, halves=("dev",)
        )
    finally:
        await conn.close()
    questions = [
        q for q in gold.questions if q.turn == 1 and q.answerable and any(g for g in q.relevant)
    ]
    engine = create_engine(url, pool_size=2)
    hits = dict.fromkeys(CONFIGS, 0)
    by_intent: dict[str, dict[str, list[int]]] = {}
    try:
        async with create_sessionmaker(engine)() as session:
            for q in questions:
                analysis = plan_question(q.text, Context(gold.today))
                vector = await embedder.embed_query(q.text)
                for name, legs in CONFIGS.items():
                    result = await retrieve(
                        session,
                        q.patient_id,
                        analysis,
                        q.text,
                        vector,
                        embedder.model_name,
                        k=metrics.RECALL_K,
                        legs_used=legs,
                    )
                    hit, _ = metrics.retrieval_hit(
                        [g for g in q.relevant if g], [c.chunk_id for c in result.candidates]
                    )
                    hits[name] += hit
                    by_intent.setdefault(q.category, {}).setdefault(name, []).append(int(hit))
    finally:
        await engine.dispose()
    return {
        "questions": len(questions),
        "recall_at_8": {name: round(n / len(questions), 3) for name, n in hits.items()},
        "recall_at_8_per_category": {
            intent: {name: round(sum(v) / len(v), 3) for name, v in configs.items()}
            for intent, configs in sorted(by_intent.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--eval-patients", type=int, default=16)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    args = parser.parse_args()
    configure_logging("WARNING", json=False)
    with tempfile.TemporaryDirectory(prefix="sh-legs-") as folder:
        server = EmbeddedPostgres(Path(folder) / "pgdata").start()
        try:
            url = to_asyncpg_url(server.url())
            migrate.upgrade(url)
            asyncio.run(seed_database(url, args.patients, args.seed, today=args.today))
            result = asyncio.run(compare(url, args.today, args.eval_patients))
        finally:
            server.stop()
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
