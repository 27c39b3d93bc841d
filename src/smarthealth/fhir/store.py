"""Writing imported rows: insert, or update only what changed, through `fhir_external_ids`.

A resource whose digest matches the one imported before is not mapped again (0 rows changed);
a changed one updates its row unless it is older (`meta.lastUpdated`) than what was imported.

The mappings a patient's transaction makes are written together, in one statement, before it
commits (`flush`): one round trip instead of one per resource.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg

from smarthealth.fhir.parse import Entry
from smarthealth.fhir.refs import external_id

S = "smart_health"


@dataclass(frozen=True)
class Known:
    local_table: str
    local_id: int
    content_hash: str
    last_updated: dt.datetime | None


def digest(resource: dict[str, Any]) -> str:
    text = json.dumps(resource, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def last_updated(resource: dict[str, Any]) -> dt.datetime | None:
    value = (resource.get("meta") or {}).get("lastUpdated")
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _param(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


class RowStore:
    """One patient's (or the shared resources') writes, inside the caller's transaction."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        rows: Counter[tuple[str, str]],
        known: dict[tuple[str, str], Known] | None = None,
    ) -> None:
        self.conn = conn
        self.rows = rows
        # what earlier (committed) patients of this import already mapped: shared resources
        self.known: dict[tuple[str, str], Known] = dict(known or {})
        self.pending: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.digests: dict[int, str] = {}  # by id() of a resource this store's caller holds

    async def prefetch(self, entries: list[Entry]) -> None:
        keys = [(e.resource_type, external_id(e)) for e in entries if e.id or e.full_url]
        wanted = [k for k in keys if k not in self.known]
        if not wanted:
            return
        found = await self.conn.fetch(
            f"SELECT x.resource_type, x.external_id, x.local_table, x.local_id, "
            f"x.content_hash, x.last_updated FROM {S}.fhir_external_ids x "
            "JOIN unnest($1::text[], $2::text[]) AS k(rt, eid) "
            "ON (x.resource_type, x.external_id) = (k.rt, k.eid)",
            [k[0] for k in wanted],
            [k[1] for k in wanted],
        )
        for r in found:
            self.known[(r["resource_type"], r["external_id"])] = Known(
                r["local_table"], r["local_id"], r["content_hash"], r["last_updated"]
            )

    def lookup(self, entry: Entry) -> Known | None:
        return self.known.get((entry.resource_type, external_id(entry)))

    def digest_of(self, entry: Entry) -> str:
        found = self.digests.get(id(entry.resource))
        if found is None:
            found = self.digests[id(entry.resource)] = digest(entry.resource)
        return found

    def imported_before(self, entry: Entry) -> bool:
        """This exact resource (same digest) was imported before."""
        known = self.lookup(entry)
        return known is not None and known.content_hash == self.digest_of(entry)

    def unchanged(self, entry: Entry) -> int | None:
        """The local id when this exact resource (or a newer version) was imported before."""
        known = self.lookup(entry)
        if known is None:
            return None
        newer = last_updated(entry.resource)
        same = known.content_hash == self.digest_of(entry)
        older = newer is not None and known.last_updated is not None and newer < known.last_updated
        if same or older:
            self.rows[(known.local_table, "unchanged")] += 1
            return known.local_id
        return None

    def remember(self, entry: Entry, table: str, local_id: int, patient_id: int | None) -> None:
        """Map this resource to its row; written to `fhir_external_ids` by `flush`."""
        key = (entry.resource_type, external_id(entry))
        known = Known(table, local_id, self.digest_of(entry), last_updated(entry.resource))
        version = str((entry.resource.get("meta") or {}).get("versionId") or "")[:64] or None
        self.pending[key] = (
            *key,
            table,
            local_id,
            patient_id,
            known.content_hash,
            version,
            known.last_updated,
        )
        self.known[key] = known

    def set_patient(self, entry: Entry, patient_id: int) -> None:
        key = (entry.resource_type, external_id(entry))
        row = self.pending.get(key)
        if row is not None:
            self.pending[key] = (*row[:4], patient_id, *row[5:])

    async def flush(self) -> None:
        """Write the pending mappings (inside the caller's transaction), in one statement."""
        if not self.pending:
            return
        columns = list(zip(*self.pending.values(), strict=True))
        await self.conn.execute(
            f"INSERT INTO {S}.fhir_external_ids (resource_type, external_id, local_table, "
            "local_id, patient_id, content_hash, version_id, last_updated) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], "
            "$5::bigint[], $6::text[], $7::text[], $8::timestamptz[]) "
            "ON CONFLICT (resource_type, external_id) DO UPDATE SET "
            "local_table = EXCLUDED.local_table, local_id = EXCLUDED.local_id, "
            "patient_id = EXCLUDED.patient_id, content_hash = EXCLUDED.content_hash, "
            "version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated, "
            "imported_at = now()",
            *[list(c) for c in columns],
        )
        self.pending.clear()

    async def insert(self, table: str, id_column: str, values: dict[str, Any]) -> int:
        columns = list(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        local_id = await self.conn.fetchval(
            f"INSERT INTO {S}.{table} ({', '.join(columns)}) VALUES ({placeholders}) "
            f"RETURNING {id_column}",
            *[_param(v) for v in values.values()],
        )
        self.rows[(table, "inserted")] += 1
        return int(local_id)

    async def update(
        self, table: str, id_column: str, local_id: int, values: dict[str, Any]
    ) -> bool:
        """Set the values that differ; True when the row changed."""
        if not values:
            self.rows[(table, "unchanged")] += 1
            return False
        columns = list(values)
        casts = {c: "::jsonb" if isinstance(values[c], (list, dict)) else "" for c in columns}
        assignments = ", ".join(f"{c} = ${i}{casts[c]}" for i, c in enumerate(columns, start=2))
        current = ", ".join(columns)
        incoming = ", ".join(f"${i}{casts[c]}" for i, c in enumerate(columns, start=2))
        status = await self.conn.execute(
            f"UPDATE {S}.{table} SET {assignments} WHERE {id_column} = $1 "
            f"AND ({current}) IS DISTINCT FROM ({incoming})"
            if len(columns) > 1
            else f"UPDATE {S}.{table} SET {assignments} WHERE {id_column} = $1 "
            f"AND {current} IS DISTINCT FROM {incoming}",
            local_id,
            *[_param(v) for v in values.values()],
        )
        changed = str(status).endswith(" 1")
        self.rows[(table, "updated" if changed else "unchanged")] += 1
        return changed

    async def write(
        self,
        entry: Entry,
        table: str,
        id_column: str,
        values: dict[str, Any],
        patient_id: int | None,
        insert_only: dict[str, Any] | None = None,
        existing_id: int | None = None,
    ) -> int:
        """Insert the row for this resource, or update the row it became before (or
        `existing_id`, a row found by its natural key), then remember the mapping."""
        known = self.lookup(entry)
        local_id = known.local_id if known and known.local_table == table else existing_id
        if local_id is None:
            local_id = await self.insert(table, id_column, {**values, **(insert_only or {})})
        else:
            await self.update(table, id_column, local_id, values)
        self.remember(entry, table, local_id, patient_id)
        return local_id
