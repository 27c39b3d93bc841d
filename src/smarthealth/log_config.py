"""Structured JSON logs (structlog) with the request id; secrets are redacted by key name.

Rule for callers: log identifiers and counts, never names, document numbers or record text.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

_SECRET_KEYS = ("password", "token", "secret", "authorization", "api_key", "hash")


_QUERY_STRING = re.compile(r"(/[^\s?\"]*)\?[^\s\"]*")


class QueryStringFilter(logging.Filter):
    """Drop query strings from third-party log lines: uvicorn logs each WebSocket handshake
    as `"WebSocket /ws/chat?token=…" [accepted]`, and the token must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            message = record.getMessage()
            if "?" in message:
                record.msg, record.args = _QUERY_STRING.sub(r"\1", message), None
        return True


def _redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key in list(event):
        if any(marker in key.lower() for marker in _SECRET_KEYS):
            event[key] = "[redacted]"
    return event


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Route structlog and stdlib logging (uvicorn, alembic) through one JSON renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    handler.addFilter(QueryStringFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The access log prints query strings (WebSocket tokens live there): ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
