"""A lean path for the hot API routes: valid requests skip BentoML's per-request layer; nothing else does.

BentoML's request layer (routing, its IO-descriptor parsing, the traffic-metrics, tracing and access-log
middleware, per-request context objects) costs about 1 ms of CPU per request — several times the model's
own work for one small image. ``LeanRoutes`` is an ASGI middleware installed innermost, under the guards
(API key, body type and size, concurrency) and under BentoML's timeout, so every rule of those still
applies. For a registered route it reads the body, validates it with the route's own pydantic request
model (the very class BentoML validates with and documents in the OpenAPI document) and, when valid,
calls the same handler the BentoML API method calls.

Anything it does not fully understand — a body that does not validate, malformed JSON, a method or path
not registered, a route not registered yet (the service still starting) — is passed on untouched to
BentoML, which answers exactly as it always did. So there is one request schema, one validation, one set
of error bodies and one OpenAPI document, whichever path a request takes: the lean path only ever answers
what the shared handler answers.

Another route joins with one call from the service's ``__init__`` (``register``); the handler gets the
validated request model and returns a starlette ``Response``. A route whose request is not a JSON body (a
GET with a query string) passes its own ``parse(scope, body)``, which returns the validated model or None
(None: let the framework's own route answer).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from service.guards import Receive, Scope, Send, header, is_json, read_body

Handler = Callable[[Any], Awaitable[Response]]
Parser = Callable[[Scope, bytes], BaseModel | None]


@dataclass(frozen=True)
class LeanRoute:
    """A request model and the handler that answers a validated instance of it."""

    model: type[BaseModel]
    handler: Handler
    parse: Parser | None = None  # None: the body is the model as JSON


class LeanRoutes:
    """The registry of lean routes of one worker process, and the ASGI middleware that serves them."""

    def __init__(
        self, server_header: str, on_answer: Callable[[str, int, float], None] | None = None
    ) -> None:
        self.routes: dict[tuple[str, str], LeanRoute] = {}
        self.server_header = server_header.encode("latin-1")
        # Called with (path, status, seconds) per answer: stands in for BentoML's request metrics.
        self.on_answer = on_answer

    def register(
        self, method: str, path: str, model: type[BaseModel], handler: Handler, parse: Parser | None = None
    ) -> None:
        """Serve ``method path`` on the lean path: ``handler(model instance) -> Response``."""
        self.routes[(method.upper(), path)] = LeanRoute(model, handler, parse)

    def middleware(self, app: Any) -> Any:
        """The ASGI middleware around ``app`` (BentoML's stack below the guards)."""
        return _LeanMiddleware(app, self)


class _LeanMiddleware:
    def __init__(self, app: Any, routes: LeanRoutes) -> None:
        self.app, self.registry = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http":
            route = self.registry.routes.get((scope["method"], scope["path"]))
        if route is None or not is_json(header(scope, b"content-type")):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        body, replay = await read_body(receive)
        if body is None:  # the client went away before sending its body
            return
        request = route.parse(scope, body) if route.parse else _validate(route.model, body)
        if request is None:  # let BentoML answer the error, exactly as it always does
            return await self.app(scope, replay, send)
        response = await route.handler(request)
        response.raw_headers.append((b"server", self.registry.server_header))
        await response(scope, replay, send)
        if self.registry.on_answer:
            self.registry.on_answer(scope["path"], response.status_code, time.perf_counter() - started)


def _validate(model: type[BaseModel], body: bytes) -> BaseModel | None:
    """The validated request, or None when BentoML should answer (bad JSON, a field out of range).

    Parsed exactly as BentoML parses it (``model_validate_json`` of the body, ``{}`` when empty), so a body
    is valid here exactly when it is valid there.
    """
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError:
        return None
