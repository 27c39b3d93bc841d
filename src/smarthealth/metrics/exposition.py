"""One scrape: every worker's metrics (multiprocess mode) or this process's, plus the
database snapshot, in Prometheus' text format."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from smarthealth.metrics.multiprocess import ENV
from smarthealth.metrics.snapshot import Snapshot, SnapshotCollector


class _ThisProcess(Collector):
    """The default registry (this process's metrics, plus process and GC figures)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def render(snapshot: Snapshot) -> bytes:
    registry = CollectorRegistry()
    folder = os.environ.get(ENV)
    if folder:
        MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)
