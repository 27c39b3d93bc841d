"""`smarthealth serve --workers 2`: the command gives its workers a fresh metrics folder, their
counts add up in every scrape, and the folder is gone when the command ends."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx

from smarthealth.config import to_libpq_url
from tests.metrics.test_gunicorn_metrics import ROOT, _hit_root, _per_worker
from tests.metrics.test_metrics_endpoint import samples
from tests.system.test_serve import serve

TOKEN = "serve-scrape-" + "t" * 32


def _folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("smarthealth-metrics-serve-*"))


def test_serve_workers_share_their_metrics(tmp_path: Path, db_url: str) -> None:
    env = {
        "DATABASE_URL": to_libpq_url(db_url),
        "SMARTHEALTH_DATA_DIR": str(tmp_path / "none"),
        "SECRET_KEY": "serve-workers-" + "s" * 40,
        "SMARTHEALTH_METRICS_TOKEN": TOKEN,
    }
    existing = _folders()
    with serve(env, tmp_path, "--workers", "2") as (base, log_path):
        created = _folders() - existing
        assert len(created) == 1, created
        folder = created.pop()
        sent = 0
        for _ in range(10):
            _hit_root(base, 24)
            sent += 24
            if len([n for n in _per_worker(folder).values() if n > 0]) == 2:
                break
        workers = _per_worker(folder)
        assert len([n for n in workers.values() if n > 0]) == 2, workers
        for _ in range(3):
            scrape = httpx.get(
                f"{base}/metrics",
                headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
            )
            assert scrape.status_code == 200, scrape.text
            assert samples(scrape.text)[ROOT] == sent == sum(workers.values())
    deadline = time.monotonic() + 10
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not folder.exists(), "serve removes the folder it made"
    # the workers' logs are JSON lines too (stderr is not a terminal here)
    lines = [line for line in log_path.read_text().splitlines() if '"event": "request"' in line]
    assert len(lines) >= sent
