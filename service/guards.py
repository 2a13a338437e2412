"""ASGI middleware guarding the service: API key, request body type and size, requests in flight.

BentoML's own traffic middleware (timeout → 504) wraps these; these wrap the API handlers. Health and
metrics stay open and uncounted, so probes and scrapes work whatever the load or the key.
Every refusal is a JSON body ``{"error", "limit"?, "request_id"}`` with an ``X-Request-ID`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("ganserve.guards")

# Probes and scrapes: open to anyone, any method, never counted against the concurrency limit.
OPEN_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})
# The Open Inference Protocol's binary tensor extension sends its body as application/octet-stream.
BINARY_PREFIX = "/v2/"
# Pages that hold no secret (API docs, the demo page): open for GET/HEAD; their API calls are not.
PAGE_PATHS = frozenset({"/", "/docs.json", "/schema.json", "/ui"})
PAGE_PREFIXES = ("/static_content/", "/assets/", "/ui/")


def needs_key(method: str, path: str) -> bool:
    """Whether a request must carry the API key: everything but health, metrics and read-only pages."""
    if path in OPEN_PATHS or method == "OPTIONS":  # OPTIONS: CORS preflights carry no credentials
        return False
    page = path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)
    return not (method in ("GET", "HEAD") and page)


def new_request_id() -> str:
    """16 random hex digits naming one request in its answer and in the log (as uuid4's first 16 were:
    the same format, without building a UUID object on every request)."""
    return os.urandom(8).hex()


async def refuse(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    """Answer with a JSON error body (and close the connection when the request body was not read)."""
    request_id = new_request_id()
    payload = json.dumps({**body, "request_id": request_id}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


class ApiKeyMiddleware:
    """Requires ``Authorization: Bearer <key>`` where ``needs_key`` says so; 401 otherwise.

    The presented token and the key are both hashed to SHA-256 and compared with ``hmac.compare_digest``,
    so the comparison takes the same time whatever the token's length or how much of it is right.
    """

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self._digest = hashlib.sha256(api_key.encode()).digest() if api_key else None

    def authorized(self, header: bytes | None) -> bool:
        if self._digest is None:
            return True
        scheme, _, token = (header or b"").decode("latin-1").strip().partition(" ")
        presented = hashlib.sha256(token.strip().encode("latin-1")).digest()
        # Always compare, even for a wrong scheme, so timing says nothing about which check failed.
        return hmac.compare_digest(presented, self._digest) & (scheme.lower() == "bearer")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._digest is None
            or scope["type"] != "http"
            or not needs_key(scope["method"], scope["path"])
            or self.authorized(header(scope, b"authorization"))
        ):
            return await self.app(scope, receive, send)
        given = header(scope, b"authorization") is not None
        await refuse(
            send,
            401,
            {
                "error": "invalid API key" if given else "missing API key",
                "detail": "send the key set by GANSERVE_API_KEY or GANSERVE_API_KEY_FILE as "
                "'Authorization: Bearer <key>'",
            },
            {"WWW-Authenticate": 'Bearer realm="ganserve"' + (', error="invalid_token"' if given else "")},
        )


class BodyLimitMiddleware:
    """Answers 413 when a request body is larger than ``max_bytes``.

    A declared Content-Length over the limit is refused before reading anything; otherwise (chunked uploads,
    or a Content-Length that lies) the bytes are counted as they arrive and the body is handed on only
    once it is complete and within the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send: Send, what: str) -> None:
        await refuse(
            send,
            413,
            {
                "error": f"request body too large: {what}; the limit is {self.max_bytes} bytes "
                "(GANSERVE_MAX_BODY_BYTES)",
                "limit": self.max_bytes,
            },
            {"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send, f"Content-Length is {int(declared)} bytes")
        body, replay = await read_body(receive, self.max_bytes)
        if body is None:  # the client went away
            return
        if len(body) > self.max_bytes:
            return await self._too_large(send, f"more than {self.max_bytes} bytes were sent")
        await self.app(scope, replay, send)


async def read_body(receive: Receive, limit: int | None = None) -> tuple[bytes | None, Receive]:
    """The whole request body, and a ``receive`` that hands it on again (then waits for the disconnect).

    None when the client went away first. With ``limit``, reading stops once more than ``limit`` bytes
    have arrived (the body returned is then longer than the limit, and incomplete). The one body reader of
    the server: the size guard reads a body once, and every later reader gets it from the replay.
    """
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            break
        if not message.get("more_body", False):
            break
    body, replayed = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return body, replay


def is_json(content_type: bytes | None) -> bool:
    """Absent, ``application/json`` or ``application/*+json`` (parameters such as charset allowed)."""
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _is_octet_stream(content_type: bytes | None) -> bool:
    return (
        content_type is not None
        and content_type.split(b";", 1)[0].strip().lower() == b"application/octet-stream"
    )


class JsonOnlyMiddleware:
    """Answers 415 to a request body that is not declared as JSON.

    Every API takes JSON (the V2 routes also take the binary tensor extension's octet-stream). BentoML
    would otherwise parse forms (a multipart body without a boundary made it answer 500) and read
    text/plain as JSON; refusing those also stops cross-site form posts, which
    browsers send without a CORS preflight.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or scope["path"] in OPEN_PATHS
            or is_json(header(scope, b"content-type"))
            or (scope["path"].startswith(BINARY_PREFIX) and _is_octet_stream(header(scope, b"content-type")))
        ):
            return await self.app(scope, receive, send)
        given = (header(scope, b"content-type") or b"").decode("latin-1")[:100]
        await refuse(
            send,
            415,
            {"error": f"Content-Type must be application/json, got {given!r}", "field": "Content-Type"},
            {"Connection": "close"},
        )


class ConcurrencyMiddleware:
    """Answers 429 when ``limit`` requests are already in flight in this worker (health and metrics aside).

    Used instead of BentoML's ``traffic.max_concurrency`` so that the refusal names the limit and suggests
    when to retry.
    """

    def __init__(self, app: ASGIApp, max_concurrency: int, workers: int = 1) -> None:
        self.app = app
        self.total = max_concurrency
        self.limit = max(1, math.ceil(max_concurrency / workers))  # each worker process counts its own
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            return await refuse(
                send,
                429,
                {
                    "error": f"too many requests in flight: this server takes at most {self.total} at a "
                    f"time (GANSERVE_MAX_CONCURRENCY; {self.limit} per worker); retry shortly",
                    "limit": self.total,
                },
                {"Retry-After": "1"},
            )
        self.in_flight += 1  # one event loop per worker: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def install(
    service: Any, *, api_key: str | None, max_body_bytes: int, max_concurrency: int, workers: int
) -> None:
    """Register the guards on a BentoML service, outermost first: key, body type, body size, concurrency.

    Unauthenticated requests are refused before their body is read or a concurrency slot is taken.
    """
    service.add_asgi_middleware(ApiKeyMiddleware, api_key=api_key)
    service.add_asgi_middleware(JsonOnlyMiddleware)
    service.add_asgi_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    service.add_asgi_middleware(ConcurrencyMiddleware, max_concurrency=max_concurrency, workers=workers)
