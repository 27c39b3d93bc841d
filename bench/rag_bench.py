"""Retrieval, end-to-end question and indexing benchmarks on a 10,000-patient database.

    .venv/bin/python bench/rag_bench.py --patients 10000 --seed 42 [--questions 300]

One run, in a fresh temporary data folder:
1. seed the population (COPY) — the triggers queue every patient;
2. raw model throughput: the local embedder on 512 of the distinct texts the indexer will embed;
3. indexing: `sync_queued` (chunks) then `embed_pending` (embeddings), timed separately;
4. retrieval in the database: `retrieve()` with precomputed query vectors (no model time);
5. `POST /query/` end to end over real HTTP against `smarthealth serve` (uvicorn), offline.
Prints one JSON document; `bench/README.md` records the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.ingest.seed import seed_database
from smarthealth.rag.embeddings import LocalE5Embedder
from smarthealth.rag.indexer import embed_pending, sync_queued
from smarthealth.rag.planner import Context, plan_question
from smarthealth.rag.retrieval import retrieve

QUESTIONS = (
    "¿Qué medicamentos tiene prescritos?",
    "¿Tiene alergias?",
    "¿Cuál fue la última presión arterial?",
    "¿Cuándo es su próxima cita?",
    "¿Qué diagnósticos tiene?",
    "¿Qué le mandaron tomar?",
    "Hazme un resumen de la historia clínica",
    "¿Qué le encontraron en el examen físico?",
)
SECRET = "bench-" + "s" * 40


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "mean": round(statistics.fmean(values), 2),
        "n": len(values),
    }


async def raw_throughput(dsn: str, embedder: LocalE5Embedder) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        texts = [
            r["text"]
            for r in await conn.fetch(
                "SELECT text FROM smart_health.embedding_texts ORDER BY text_hash LIMIT 512"
            )
        ]
    finally:
        await conn.close()
    await embedder.embed_passages(texts[:8])  # load the model outside the timing
    started = time.perf_counter()
    await embedder.embed_passages(texts)
    seconds = time.perf_counter() - started
    return {
        "texts": len(texts),
        "seconds": round(seconds, 2),
        "texts_per_second": round(len(texts) / seconds, 1),
    }


async def chunk(dsn: str) -> tuple[int, float]:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        synced = await sync_queued(conn)
        return synced.patients, time.perf_counter() - started
    finally:
        await conn.close()


async def index(
    dsn: str, embedder: LocalE5Embedder, patients: int, sync_seconds: float
) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        stats = await embed_pending(conn, embedder)
        embed_seconds = time.perf_counter() - started
        chunks = await conn.fetchval("SELECT count(*) FROM smart_health.clinical_chunks")
    finally:
        await conn.close()
    return {
        "patients": patients,
        "chunks": chunks,
        "sync_seconds": round(sync_seconds, 1),
        "embed_seconds": round(embed_seconds, 1),
        "model_seconds": round(stats.embed_seconds, 1),
        "texts_embedded": stats.texts_embedded,
        "texts_per_second": round(stats.texts_embedded / embed_seconds, 1),
    }


async def retrieval_latency(
    url: str, embedder: LocalE5Embedder, patient_ids: list[int], rounds: int
) -> dict[str, float]:
    vectors = {q: await embedder.embed_query(q) for q in QUESTIONS}
    engine = create_engine(url, pool_size=2)
    timings: list[float] = []
    try:
        async with create_sessionmaker(engine)() as session:
            for i in range(rounds):
                question = QUESTIONS[i % len(QUESTIONS)]
                patient = patient_ids[i % len(patient_ids)]
                started = time.perf_counter()
                await retrieve(
                    session,
                    patient,
                    plan_question(question, Context(dt.date.today())),
                    question,
                    vectors[question],
                    embedder.model_name,
                )
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    return summary(timings[10:])  # first queries warm the plan cache


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def end_to_end(
    url: str, patients: list[asyncpg.Record], user_id: int, rounds: int, folder: Path
) -> dict[str, float]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": to_libpq_url(url),
        "SECRET_KEY": SECRET,
        "SMARTHEALTH_DATA_DIR": str(folder / "serve"),
        "LOG_LEVEL": "WARNING",
    }
    log = (folder / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "smarthealth.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        token = issue_token(user_id, "clinician", SECRET, 120).token
        timings: list[float] = []
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            for i in range(rounds):
                patient = patients[i % len(patients)]
                body = {
                    "document_type_id": patient["document_type_id"],
                    "document_number": patient["document_number"],
                    "question": QUESTIONS[i % len(QUESTIONS)],
                }
                started = time.perf_counter()
                response = client.post("/query/", json=body)
                timings.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
        return summary(timings[10:])
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
        log.close()


async def main_async(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    server = EmbeddedPostgres(folder / "pgdata").start()
    try:
        url = to_asyncpg_url(server.url())
        dsn = to_libpq_url(url)
        await asyncio.to_thread(migrate.upgrade, url)
        started = time.perf_counter()
        await seed_database(url, args.patients, args.seed, today=dt.date.today())
        seed_seconds = round(time.perf_counter() - started, 1)
        embedder = LocalE5Embedder()  # both measurements use the same, all-cores model
        chunked, sync_seconds = await chunk(dsn)
        raw = await raw_throughput(dsn, embedder)
        indexing = await index(dsn, embedder, chunked, sync_seconds)
        conn = await asyncpg.connect(dsn)
        try:
            rng = random.Random(args.seed)
            patients = await conn.fetch(
                "SELECT patient_id, document_type_id, document_number FROM smart_health.patients"
            )
            sample = rng.sample(list(patients), 200)
            user_id = await conn.fetchval(
                "INSERT INTO smart_health.users (email, password_hash, full_name, role) VALUES "
                "('bench@hospital.test', 'x', 'Bench', 'clinician') RETURNING user_id"
            )
        finally:
            await conn.close()
        retrieval = await retrieval_latency(
            url, embedder, [p["patient_id"] for p in sample], args.questions
        )
        e2e = await asyncio.to_thread(end_to_end, url, sample, user_id, args.questions, folder)
    finally:
        server.stop()
    return {
        "patients": args.patients,
        "seed": args.seed,
        "seed_seconds": seed_seconds,
        "raw_model_throughput": raw,
        "indexing": indexing,
        "indexing_vs_raw": round(indexing["texts_per_second"] / raw["texts_per_second"], 2),
        "retrieval_ms": retrieval,
        "query_end_to_end_ms": e2e,
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 2**30)} GiB, Python "
        f"{platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--questions", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sh-rag-bench-") as folder:
        result = asyncio.run(main_async(args, Path(folder)))
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
