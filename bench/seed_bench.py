"""Seed N patients into a fresh embedded database and report time and rows per table.

    .venv/bin/python bench/seed_bench.py --patients 10000 --seed 42

Uses its own temporary data folder, so it never touches `.smarthealth/`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import tempfile
import time
from pathlib import Path

import psutil

from smarthealth.config import to_asyncpg_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.ingest.seed import seed_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sh-bench-") as folder:
        server = EmbeddedPostgres(Path(folder) / "pgdata").start()
        try:
            url = to_asyncpg_url(server.url())
            migrate.upgrade(url)
            started = time.perf_counter()
            report = asyncio.run(
                seed_database(url, args.patients, args.seed, today=dt.date.today())
            )
            elapsed = time.perf_counter() - started
            size = server.psql("SELECT pg_size_pretty(pg_database_size('smarthealth'))")
        finally:
            server.stop()
    print(
        json.dumps(
            {
                "patients": args.patients,
                "seed": args.seed,
                "seconds": round(elapsed, 1),
                "rows": report.rows,
                "database_size": size,
                "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
                f"{round(psutil.virtual_memory().total / 2**30)} GiB, Python "
                f"{platform.python_version()}",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
