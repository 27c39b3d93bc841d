"""Counts HTTP requests by method, route template and status (never the raw path)."""

from __future__ import annotations

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smarthealth.metrics import instruments

UNMATCHED = "unmatched"  # no route: a 404 for a path nobody declared (its text is not kept)


def route_template(scope: Scope) -> str:
    """`/history/sessions/{session_id}`, `/chat/static/{path}`, or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            instruments.count_request(scope["method"], route_template(scope), status)
