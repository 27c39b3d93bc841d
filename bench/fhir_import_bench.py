"""FHIR R4 NDJSON import throughput: N Synthea-shaped patients (the test suite's fixture shapes,
~20 resources each) as bulk-export files, imported into a fresh embedded database; then the
same files again (idempotent: 0 rows changed). Chunking and embedding are not included.

    .venv/bin/python bench/fhir_import_bench.py --patients 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil

from smarthealth.config import to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.fhir.importer import import_fhir
from smarthealth.ingest.catalogs import load_catalogs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fhir.synthea_like import write_ndjson


async def _run(url: str, paths: list[Path]) -> dict[str, object]:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await load_catalogs(conn)
        inputs = [(p.name, p.read_bytes()) for p in paths]
        started = time.perf_counter()
        first = await import_fhir(conn, inputs)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        second = await import_fhir(conn, inputs)
        second_s = time.perf_counter() - started
        return {
            "resources": sum(first.resources.values()),
            "imported": first.patients_imported,
            "failed": first.patients_failed,
            "rows_changed": first.changed,
            "seconds": round(first_s, 2),
            "patients_per_s": round(first.patients_imported / first_s, 1),
            "reimport_seconds": round(second_s, 2),
            "reimport_rows_changed": second.changed,
        }
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_ndjson(Path(tmp) / "ndjson", range(args.patients))
        pg = EmbeddedPostgres(Path(tmp) / "pgdata").start()
        try:
            pg.psql('CREATE DATABASE "bench"', database="postgres")
            url = to_asyncpg_url(pg.url("bench"))
            migrate.upgrade(url)
            result = asyncio.run(_run(url, paths))
        finally:
            pg.stop()
    result["machine"] = (
        f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB, Python {platform.python_version()}"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
