"""`smarthealth eval review`: the 👎 turns of a period appended to a JSON-lines file (question,
answer, sources, reason, comment) for whoever curates the gold set. Appending again skips the
turns the file already holds, so a period can be exported twice without duplicates."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smarthealth.audit.service import CLI
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.feedback.schemas import FeedbackItem
from smarthealth.feedback.service import FeedbackFilter, record_read, stream_feedback

SOURCE_FIELDS = ("source_id", "chunk_id", "type", "date", "text")


@dataclass(frozen=True)
class ReviewExport:
    added: int
    already_there: int


def review_record(item: FeedbackItem, response: dict[str, Any] | None) -> dict[str, Any]:
    body = response or {}
    return {
        "session_id": str(item.session_id),
        "sequence_chat_id": item.sequence_chat_id,
        "rated_at": item.updated_at.isoformat(),
        "reason": item.reason,
        "comment": item.comment,
        "patient": {"document_type": item.document_type, "document_number": item.document_number},
        "question": item.question,
        "answer": item.answer,
        "model_used": item.model_used,
        "plan": (body.get("metadata") or {}).get("plan"),
        "sources": [
            {k: s.get(k) for k in SOURCE_FIELDS}
            for s in body.get("sources") or []
            if isinstance(s, dict)
        ],
    }


def _keys_in(path: Path) -> set[tuple[str, int]]:
    keys: set[tuple[str, int]] = set()
    if not path.exists():
        return keys
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            keys.add((str(record["session_id"]), int(record["sequence_chat_id"])))
        except (ValueError, KeyError, TypeError):
            continue  # a line the curator wrote by hand
    return keys


async def export_review(
    url: str, since: dt.datetime, until: dt.datetime, out: Path
) -> ReviewExport:
    """Append the turns rated 👎 with since ≤ last change < until; audited (channel cli)."""
    where = FeedbackFilter(since=since, until=until, rating="down")
    known = _keys_in(out)
    engine = create_engine(url, pool_size=1)
    added = skipped = 0
    try:
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            records = [
                review_record(item, response)
                async for item, response in stream_feedback(session, where)
            ]
        fresh = [r for r in records if (r["session_id"], r["sequence_chat_id"]) not in known]
        skipped = len(records) - len(fresh)
        async with sessions() as session:
            await record_read(session, None, CLI, where, len(fresh), "review")
        with out.open("a", encoding="utf-8") as file:
            for record in fresh:
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
        added = len(fresh)
    finally:
        await engine.dispose()
    return ReviewExport(added, skipped)
