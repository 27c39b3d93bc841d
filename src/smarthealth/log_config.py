"""Structured logs (structlog) with the request id; secrets are redacted by key name.

JSON lines on stderr are the default for services; when stderr is a terminal (a person is
watching, as with `make run`), the same events print as coloured console lines. `LOG_FORMAT`
(`auto`, `json`, `console`) overrides the choice.

Rule for callers: log identifiers and counts, never names, document numbers or record text.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal, TextIO

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


LogFormat = Literal["auto", "json", "console"]


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def wants_json(log_format: LogFormat, stream: TextIO | None = None) -> bool:
    """JSON unless asked for the console, or `auto` and the stream is a terminal."""
    if log_format != "auto":
        return log_format == "json"
    return not _is_terminal(stream or sys.stderr)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so a worker process can tell whether logging is set up already."""


def is_configured() -> bool:
    return any(isinstance(h, _Handler) for h in logging.getLogger().handlers)


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    """Route structlog and stdlib logging (uvicorn, alembic) through one renderer: JSON lines,
    or (`json=False`) console lines, coloured when stderr is a terminal. `json=None` decides
    by stderr: JSON unless it is a terminal."""
    stream = sys.stderr
    if json is None:
        json = wants_json("auto", stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=_is_terminal(stream))
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = _Handler(stream)
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
