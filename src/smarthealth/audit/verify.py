"""Walk the audit chain and report the first row whose content or link does not match."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from smarthealth.config import to_libpq_url

_WALK = """
SELECT audit_log_id, prev_hash, row_hash,
       smart_health.audit_row_hash(a) AS recomputed,
       lag(row_hash) OVER (ORDER BY audit_log_id) AS previous
FROM smart_health.audit_logs a
ORDER BY audit_log_id
"""


@dataclass(frozen=True)
class ChainReport:
    rows_checked: int
    broken_row_id: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_row_id is None


async def verify_chain(url: str) -> ChainReport:
    conn = await asyncpg.connect(to_libpq_url(url))
    checked = 0
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            async for row in conn.cursor(_WALK, prefetch=1000):
                checked += 1
                if row["row_hash"] != row["recomputed"]:
                    return ChainReport(checked, row["audit_log_id"], "content changed")
                if row["prev_hash"] != row["previous"]:
                    return ChainReport(checked, row["audit_log_id"], "link broken")
    finally:
        await conn.close()
    return ChainReport(checked)
