"""Where the worker processes' metric files live (prometheus_client's multiprocess mode).

- `PROMETHEUS_MULTIPROC_DIR` set: that folder (the operator clears it before starting).
- Under gunicorn without it: a private folder per gunicorn master, named after the master's
  pid and start time, under the system's temporary folder — so workers of one master add up,
  a restarted master starts from zero, and folders of masters that are gone are removed.
- `smarthealth serve --workers N` creates a fresh folder and sets the variable for its workers.
- Otherwise (one process: `smarthealth serve`, the tests): no folder; metrics live in memory.

Nothing here imports `prometheus_client` at module level: the variable must be set first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import psutil

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "smarthealth-metrics-"


def prepare_directory() -> Path | None:
    """The multiprocess folder in use (setting `PROMETHEUS_MULTIPROC_DIR` when this process
    is a gunicorn worker), or None for a single process."""
    configured = os.environ.get(ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
    else:
        master = _gunicorn_master()
        if master is None:
            return None
        path = Path(tempfile.gettempdir()) / _folder_name(master)
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ[ENV] = str(path)
        _remove_stale_folders(path.parent)
    forget_dead_workers(path)
    return path


def fresh_directory() -> Path:
    """A new, empty folder for the workers `smarthealth serve --workers` is about to start."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}serve-{os.getpid()}-"))
    os.environ[ENV] = str(path)
    return path


def forget_dead_workers(path: Path) -> None:
    """Drop the live gauges (connections in use) of worker processes that are gone; their
    counters stay, so totals never go down when gunicorn replaces a worker."""
    from prometheus_client import multiprocess

    for file in path.glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            multiprocess.mark_process_dead(int(pid), str(path))  # type: ignore[no-untyped-call]


def _folder_name(master: psutil.Process) -> str:
    return f"{PREFIX}{master.pid}-{int(master.create_time() * 1000)}"


def _gunicorn_master() -> psutil.Process | None:
    """The gunicorn master of this process: its parent (a worker), or itself (the master
    imports the app before forking with `--preload`); None outside gunicorn."""
    if not os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return None
    me = psutil.Process()
    with contextlib.suppress(psutil.Error):
        parent = me.parent()
        if parent is not None and _is_gunicorn(parent):
            return parent
    return me


def _is_gunicorn(process: psutil.Process) -> bool:
    return any("gunicorn" in Path(part).name for part in process.cmdline()[:2])


def _remove_stale_folders(parent: Path) -> None:
    """Folders of gunicorn masters that are no longer running (or whose pid was reused)."""
    for folder in parent.glob(f"{PREFIX}*-*"):
        pid, _, started = folder.name.removeprefix(PREFIX).partition("-")
        if not (pid.isdigit() and started.isdigit()):
            continue  # a `serve` folder: its command removes it
        try:
            alive = _folder_name(psutil.Process(int(pid))) == folder.name
        except psutil.Error:
            alive = False
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)
