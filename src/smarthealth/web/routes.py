"""`GET /chat` (the chat page) and `/chat/static/…` (its script and style sheet).

The page is public: it logs in by itself and keeps the token in memory and `sessionStorage`.
Everything is local (no CDN), so a strict Content-Security-Policy can forbid inline code.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _StaticAssets(StaticFiles):
    """Starlette's StaticFiles, plus `nosniff` and `no-referrer` on every asset."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


router = APIRouter(tags=["web"])


@router.get("/chat", include_in_schema=False)
async def chat_page() -> FileResponse:
    # no-store: the page is tiny, and a stale copy could pair old JS with a newer API.
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
    )


router.mount("/chat/static", _StaticAssets(directory=STATIC_DIR), name="chat-static")
