"""The demo page: plain HTML/CSS/JS from service/ui/, served as an ASGI app the service mounts at ``/ui``.

The page holds no secret, so it is served without the API key; its calls to the API carry the key the
user types (``Authorization: Bearer ...``), under the same rules as any other client.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

UI_DIR = Path(__file__).with_name("ui")
# The page only talks to its own origin and shows images as data: URLs; nothing else may load or run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: a new release's page must not mix with an old cached script
}


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def ui_app(directory: Path = UI_DIR) -> Starlette:
    """An ASGI app serving ``directory`` (index.html at its root) with the security headers above."""
    return Starlette(
        routes=[Mount("/", StaticFiles(directory=directory, html=True))],
        middleware=[Middleware(_SecurityHeaders)],
    )
