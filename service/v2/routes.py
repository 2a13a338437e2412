"""The Open Inference Protocol ("V2") REST routes, beside the service's own, as one ASGI middleware.

    GET  /v2                                        server metadata (lists the binary tensor extension)
    GET  /v2/health/live, /v2/health/ready          the status code is the answer
    GET  /v2/models/{name}[/versions/{v}]           model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer     JSON, or JSON plus binary tensor data, both ways

Installed innermost, like the lean path, so the API key, the body type and size limits, the concurrency
limit and BentoML's timeout hold here as on ``/generate``; the rows go through the model's own batcher
(``run_model``), so they merge with every other request for the model, count in the same metrics and meet
the same queue bound. A model's version is the first 12 hex digits of its file's SHA-256 (the full digest
is accepted too). Errors are ``{"error": "..."}`` with a 4xx status, naming the input and the limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from gancore.contract import IMAGE
from gancore.generator import GeneratorModel
from service.guards import ASGIApp, Receive, Scope, Send, header, new_request_id, read_body
from service.image_urls import ServesModels
from service.v2.codec import HEADER_LENGTH, Output, ProtocolError, decode_request, encode_response
from service.v2.rows import decode_rows, metadata, output_names

PREFIX = "/v2"
EXTENSIONS = ["binary_tensor_data"]
VERSION_DIGITS = 12
# Route templates, for metrics labels and the OpenAPI document (one label per route, not per model).
SERVER, LIVE, READY = "/v2", "/v2/health/live", "/v2/health/ready"
MODEL, MODEL_READY, INFER = "/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/infer"


def model_version(model: GeneratorModel) -> str:
    """The protocol's model version: the model file's SHA-256, shortened."""
    return model.info.sha256[:VERSION_DIGITS]


class V2Routes:
    """ASGI middleware answering every path under ``/v2``; everything else goes on to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        service: Callable[[], ServesModels],
        max_rows: Callable[[Any], int],
        server_version: str,
        on_answer: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.app, self._service, self.max_rows = app, service, max_rows  # per model (its ModelInfo)
        self.server = {"name": "ganserve", "version": server_version, "extensions": EXTENSIONS}
        self.on_answer = on_answer  # (route template, status, seconds): the request metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            return await self.app(scope, receive, send)
        started, request_id = time.perf_counter(), new_request_id()
        route, status, body, headers = await self._answer(scope, receive, path, request_id)
        headers = {"x-request-id": request_id, **headers}
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
        if self.on_answer:
            self.on_answer(route, status, time.perf_counter() - started)

    async def _answer(
        self, scope: Scope, receive: Receive, path: str, request_id: str
    ) -> tuple[str, int, bytes, dict[str, str]]:
        """(route template, status, body, headers) for one request under /v2."""
        parts = path[len(PREFIX) :].strip("/").split("/") if path != PREFIX else []
        method = scope["method"]
        route = _route(parts)
        if route is None:
            return PREFIX, *_error(404, f"path: no such route {path[:200]!r}; see GET /docs.json")
        wanted = "POST" if route == INFER else "GET"
        if method != wanted and not (wanted == "GET" and method == "HEAD"):
            status, body, headers = _error(405, f"method: {method} is not allowed here; use {wanted}")
            return route, status, body, {**headers, "allow": "POST" if wanted == "POST" else "GET, HEAD"}
        if route == SERVER:
            return route, *_json(200, self.server)
        if route == LIVE:
            return route, *_json(200, {"live": True})
        try:
            svc = self._service()
        except Exception:  # BentoML holds no instance while it starts or after it has stopped
            status, body, headers = _json(
                503, {"error": "the service is starting or stopping; retry shortly"}
            )
            return route, status, body, {**headers, "retry-after": "1"}
        if route == READY:
            return route, *_json(200, {"ready": True})
        model, problem = _find_model(svc, parts)
        if model is None:
            return route, *problem
        if route == MODEL:
            return route, *_json(200, metadata(model.info, model_version(model)))
        if route == MODEL_READY:
            return route, *_json(200, {"name": model.info.name, "ready": True})
        body, replay = await read_body(receive)
        if body is None:
            return route, *_error(400, "body: the client closed the request before sending it")
        return route, *await self._infer(svc, model, scope, body, request_id)

    async def _infer(
        self, svc: ServesModels, model: GeneratorModel, scope: Scope, body: bytes, request_id: str
    ) -> tuple[int, bytes, dict[str, str]]:
        info = model.info
        try:
            length = header(scope, HEADER_LENGTH.encode())
            request = decode_request(body, None if length is None else length.decode("latin-1"))
            rows = decode_rows(request.inputs, info, self.max_rows(info))
            names = output_names(info)
            wanted = request.outputs or dict.fromkeys(names, request.binary_output)
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise ProtocolError(
                    f"{unknown[0][:64]}: not an output of {info.name}; it has {', '.join(names)}"
                )
        except ProtocolError as exc:
            return _error(exc.status, str(exc))
        images = await svc.run_model(info.name, rows.z, rows.label, request_id)
        if not hasattr(images, "shape"):  # the 503 (queue full) or 500 every route answers
            return (
                images.status_code,
                bytes(images.body),
                {
                    k.decode("latin-1"): v.decode("latin-1")
                    for k, v in images.raw_headers
                    if k != b"content-length"
                },
            )
        outputs = [Output(IMAGE, "UINT8", images)]
        if rows.classes is not None:
            outputs.append(Output("label", "INT64", rows.classes))
        outputs = [o for o in outputs if o.name in wanted]
        body, headers = encode_response(info.name, model_version(model), request.id, outputs, wanted)
        return 200, body, {**headers, "x-model": info.name}


def _route(parts: list[str]) -> str | None:
    """The route template a path (split below /v2) matches, or None."""
    if not parts:
        return SERVER
    if parts == ["health", "live"]:
        return LIVE
    if parts == ["health", "ready"]:
        return READY
    if len(parts) < 2 or parts[0] != "models" or not parts[1]:
        return None
    rest = parts[2:]
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        rest = rest[2:]
    if not rest:
        return MODEL
    if rest == ["ready"]:
        return MODEL_READY
    if rest == ["infer"]:
        return INFER
    return None


def _find_model(svc: ServesModels, parts: list[str]) -> tuple[Any, tuple[int, bytes, dict[str, str]]]:
    """The model a ``models/{name}[/versions/{v}]`` path names, or None and the 404 to answer."""
    name = parts[1]
    model = svc.models.get(name)
    if model is None:
        known = ", ".join(sorted(svc.models))
        return None, _error(404, f"model: unknown model {name[:140]!r}; available: {known}")
    if len(parts) >= 4 and parts[2] == "versions":
        version = parts[3]
        if version not in (model_version(model), model.info.sha256):
            return None, _error(
                404, f"version: model {name} has version {model_version(model)} only, got {version[:70]!r}"
            )
    return model, (200, b"", {})


def _json(status: int, doc: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(doc).encode(), {"content-type": "application/json"}


def _error(status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
    return _json(status, {"error": message})
