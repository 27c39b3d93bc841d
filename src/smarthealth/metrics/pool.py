"""Connections checked out of an engine's pool, kept in a gauge by pool events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from smarthealth.metrics import instruments


def watch_pool(engine: AsyncEngine) -> None:
    def _out(*_: Any) -> None:
        instruments.connection_checked_out()

    def _in(*_: Any) -> None:
        instruments.connection_checked_in()

    event.listen(engine.sync_engine, "checkout", _out)
    event.listen(engine.sync_engine, "checkin", _in)
