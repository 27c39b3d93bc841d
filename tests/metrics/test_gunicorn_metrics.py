"""`/metrics` under gunicorn with two uvicorn workers, started the way the README and the
Dockerfile do (no metrics settings besides the token): whichever worker answers the scrape,
the counts are the sum over both workers."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_libpq_url
from tests.conftest import insert_user
from tests.live_server import GunicornServer, first_patient
from tests.metrics.test_metrics_endpoint import samples, value

SECRET = "gunicorn-metrics-" + "g" * 40
TOKEN = "scrape-" + "t" * 32
ROOT = ("smarthealth_http_requests_total", (("method", "GET"), ("route", "/"), ("status", "200")))


def _per_worker(folder: Path) -> dict[int, float]:
    """GET / as counted by each worker alone (its own counter file, read on its own)."""
    counts: dict[int, float] = {}
    for file in folder.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(file, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            found = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in registry.collect()
                for s in family.samples
            }
        counts[int(file.stem.removeprefix("counter_"))] = found.get(ROOT, 0.0)
    return counts


def _hit_root(base: str, times: int) -> None:
    def once(_: int) -> int:
        # a new connection each time, so the kernel hands them to either worker
        return httpx.get(f"{base}/", headers={"Connection": "close"}, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(once, range(times))) == {200}


def test_two_workers_counts_add_up(tmp_path: Path, db_url: str, password_hash: str) -> None:
    user = asyncio.run(insert_user(db_url, password_hash))
    patient = asyncio.run(first_patient(db_url))
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "DATABASE_URL": to_libpq_url(db_url),
        "SECRET_KEY": SECRET,
        "SMARTHEALTH_DATA_DIR": str(tmp_path),
        "SMARTHEALTH_METRICS_TOKEN": TOKEN,
    }
    folders: list[Path] = []
    try:
        with GunicornServer(env, tmp_path / "gunicorn.log") as server:
            # the app chose a folder of its own for this master's workers
            folders = list(Path(tempfile.gettempdir()).glob(f"smarthealth-metrics-{server.pid}-*"))
            assert len(folders) == 1, folders
            base = server.http
            sent = 0
            for _ in range(10):  # until both workers have served some (almost always the first)
                _hit_root(base, 24)
                sent += 24
                if len([n for n in _per_worker(folders[0]).values() if n > 0]) == 2:
                    break
            workers = _per_worker(folders[0])
            assert len([n for n in workers.values() if n > 0]) == 2, workers

            headers = {
                "Authorization": f"Bearer {issue_token(user, 'clinician', SECRET, 10).token}"
            }
            body = {
                "document_type_id": patient["document_type_id"],
                "document_number": patient["document_number"],
            }
            with httpx.Client(base_url=base, timeout=30) as client:
                for question in (
                    "¿Tiene alergias?",
                    "¿Cuál fue la última presión?",
                    "¿Tiene hijos?",
                ):
                    asked = client.post(
                        "/query/", json={**body, "question": question}, headers=headers
                    )
                    assert asked.status_code == 200, asked.text
                refused = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
                assert refused.status_code == 401
                scrapes = [
                    client.get(
                        "/metrics",
                        headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
                    )
                    for _ in range(4)
                ]
            for scrape in scrapes:
                assert scrape.status_code == 200, scrape.text
                seen = samples(scrape.text)
                assert seen[ROOT] == sent == sum(workers.values())
                assert (
                    value(seen, "smarthealth_question_duration_seconds_count", engine="extractive")
                    == 3
                )
                outcomes = sum(
                    value(seen, "smarthealth_answers_total", outcome=o)
                    for o in ("answered", "abstained", "fallback", "refused", "cancelled", "error")
                )
                assert outcomes == 3
                assert value(seen, "smarthealth_database_up") == 1
                # connections in use: summed over live workers, none held between requests
                assert value(seen, "smarthealth_db_pool_connections_in_use") == 0
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
