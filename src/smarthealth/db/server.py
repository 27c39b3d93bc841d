"""Resolve which PostgreSQL to use: the configured server, or the embedded one."""

from __future__ import annotations

from dataclasses import dataclass

from smarthealth.config import Settings, to_asyncpg_url
from smarthealth.db.embedded import EmbeddedPostgres


@dataclass
class DatabaseServer:
    """The URL to connect to and, for the embedded server, the handle that can stop it."""

    url: str
    embedded: EmbeddedPostgres | None = None

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def open_database_server(settings: Settings) -> DatabaseServer:
    """Start (or reuse) the embedded server unless an external one is configured."""
    external = settings.external_database_url()
    if external is not None:
        return DatabaseServer(url=external)
    embedded = EmbeddedPostgres(settings.pgdata_dir).start()
    return DatabaseServer(url=to_asyncpg_url(embedded.url()), embedded=embedded)
