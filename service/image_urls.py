"""``GET /images/{model}/{seed}/{index}.png``: one image at a stable, cacheable URL.

An image is a pure function of (model file, seed, index, label), so its URL can be cached like a static file:
the answer carries a strong ``ETag`` derived from the model file's SHA-256, the request and the PNG encoder,
and ``Cache-Control: public, max-age=31536000, immutable``; a request whose ``If-None-Match`` matches answers
``304`` without running the model. The pixels are those ``POST /generate`` returns for the same
(model, seed, index, label): the same noise derivation, the same batcher (so these requests merge with every
other request for the model), the same uint8 conversion and PNG encoder.

The label is a query parameter: ``?label=7`` (a class index: an optionally signed decimal integer),
``?label=seven`` (a class name), ``?label=0,0.5,0.5`` (a one-hot or soft list, comma-separated); omitted, the
image's label is drawn from the seed as ``POST /generate`` draws it.

Installed by the service as a middleware that takes every path under ``/images`` (``ImageRoutes``; a
mounted app would let paths its pattern cannot match, such as one holding a newline, fall through to a
plain-text 404), under the service's guards (API key, concurrency limit) and BentoML's timeout like every
other route. Each bad part of the path or query
answers 4xx with the JSON error body of the other routes, naming the part (``field``).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol
from urllib.parse import parse_qsl

import deflate
import numpy as np

from gancore.contract import MAX_SEED, SUPPORTED_CHANNELS, LabelError, inputs_for, resolve_label
from gancore.generator import MODEL_NAME, GeneratorModel
from gancore.imaging import encode_png
from service.guards import Receive, Scope, Send

MOUNT = "/images"
PATH_TEMPLATE = MOUNT + "/{model}/{seed}/{index}.png"
MAX_INDEX = 2**62  # as POST /generate's `start`
# A year, the longest value RFC 9111 caches are expected to honour; `immutable` spares browsers revalidation.
CACHE_CONTROL = "public, max-age=31536000, immutable"
QUERY_FIELDS = ("label",)
_DECIMAL = re.compile(r"^[0-9]{1,20}$")  # bounded before int(): no huge-number parsing from a URL
_SIGNED = re.compile(r"^[+-]?[0-9]{1,20}$")


class ServesModels(Protocol):
    """What the route needs from the service instance: its loaded models and their shared model run."""

    models: dict[str, GeneratorModel]

    async def run_model(self, name: str, z: np.ndarray, label: np.ndarray | None, request_id: str) -> Any:
        """uint8 images [N, H, W, C], or the error response (503 queue full, 500) every route answers."""


class RequestError(ValueError):
    """A bad part of an image URL: the HTTP status, the part (``field``) and a message naming the limit."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field = status, field


def parse_path(path: str) -> tuple[str, int, int]:
    """``{model}/{seed}/{index}.png`` (the path below the mount point) → (model, seed, index)."""
    parts = path.removeprefix("/").split("/")
    if len(parts) != 3:
        raise RequestError(404, "path", f"path: expected {PATH_TEMPLATE}, got {(MOUNT + path)[:200]!r}")
    model, seed_text, leaf = parts
    stem, dot, extension = leaf.rpartition(".")
    if not dot:
        raise RequestError(404, "format", f"format: the URL must end in .png, as in {PATH_TEMPLATE}")
    if extension != "png":
        raise RequestError(400, "format", f"format: only .png is served here, got .{extension[:16]}")
    if not MODEL_NAME.match(model):
        raise RequestError(
            400, "model", f"model: a model name matches {MODEL_NAME.pattern}, got {model[:140]!r}"
        )
    return model, _integer("seed", seed_text, MAX_SEED), _integer("index", stem, MAX_INDEX)


def _integer(field: str, text: str, maximum: int) -> int:
    if not _DECIMAL.match(text) or int(text) > maximum:
        raise RequestError(
            400, field, f"{field}: must be a decimal integer in 0 … {maximum}, got {text[:40]!r}"
        )
    return int(text)


def parse_label(query_string: bytes) -> int | str | list[float] | None:
    """The ``label`` query parameter as ``POST /generate`` takes it (int, class name or list), or None."""
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, "query", "query: not a valid URL-encoded UTF-8 query string") from None
    unknown = sorted({k for k, _ in pairs} - set(QUERY_FIELDS))
    if unknown:
        raise RequestError(
            400, unknown[0], f"{unknown[0][:40]}: unknown query parameter; the only one is 'label'"
        )
    values = [v for _, v in pairs]
    if len(values) > 1:
        raise RequestError(400, "label", "label: given more than once")
    if not values:
        return None
    text = values[0].strip()
    if not text:
        raise RequestError(400, "label", "label: empty; omit it to draw the label from the seed")
    if _SIGNED.match(text):
        return int(text)
    if "," in text:
        try:
            return [float(x) for x in text.split(",")]
        except ValueError:
            raise RequestError(
                400, "label", f"label: a one-hot list is comma-separated numbers, got {text[:80]!r}"
            ) from None
    return text


@cache
def encoder_fingerprint() -> str:
    """A digest of what ``encode_png`` makes of fixed images: it changes whenever the PNG bytes for the same
    pixels would (another encoder, compression level or libdeflate version), and with it every ETag, as a
    strong validator requires."""
    rng = np.random.default_rng(0)
    probes = (rng.integers(0, 256, size=(8, 8, c), dtype=np.uint8) for c in SUPPORTED_CHANNELS)
    probe = b"".join(encode_png(image, reproducible=True) for image in probes)
    return hashlib.sha256(probe + deflate.__version__.encode()).hexdigest()[:16]


def etag(model_sha256: str, seed: int, index: int, label: np.ndarray | None) -> str:
    """The strong entity tag of image ``index`` of (seed, label) from the model file with this SHA-256.

    The label enters as its resolved float32 row, so ``?label=7`` and the class name of class 7 share a tag
    (they are the same bytes).
    """
    h = hashlib.sha256()
    h.update(f"ganserve-image/1|{model_sha256}|{seed}|{index}|{encoder_fingerprint()}|".encode())
    h.update(b"drawn" if label is None else np.ascontiguousarray(label, dtype="<f4").tobytes())
    return f'"{h.hexdigest()[:40]}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag equal to ``tag`` under weak comparison."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    listed = (t.strip() for t in if_none_match.split(","))
    return any(t.removeprefix("W/") == tag for t in listed)


async def _send(
    send: Send, status: int, headers: dict[str, str], body: bytes = b"", head: bool = False
) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if status != 304:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head or status == 304 else body})


async def _error(
    send: Send, status: int, message: str, field: str | None, request_id: str, extra: dict | None = None
) -> None:
    body: dict[str, Any] = {"error": message, "request_id": request_id}
    if field:
        body["field"] = field
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id, **(extra or {})}
    await _send(send, status, headers, json.dumps(body).encode())


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]
    return ", ".join(values) if values else None  # repeated headers are one comma-separated list


class ImageApp:
    """The ASGI app mounted at ``/images``; ``service`` returns the running service instance."""

    def __init__(self, service: Callable[[], ServesModels]) -> None:
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = uuid.uuid4().hex[:16]
        if scope["method"] not in ("GET", "HEAD"):
            message = f"method: {scope['method']} is not allowed here; use GET (or HEAD)"
            return await _error(send, 405, message, "method", request_id, {"Allow": "GET, HEAD"})
        root, path = scope.get("root_path", ""), scope["path"]
        relative = path[len(root) :] if root and path.startswith(root) else path.removeprefix(MOUNT)
        try:
            name, seed, index = parse_path(relative)
            label_value = parse_label(scope.get("query_string", b""))
        except RequestError as exc:
            return await _error(send, exc.status, str(exc), exc.field, request_id)
        try:
            svc = self._service()
        except Exception:  # BentoML holds no instance while it starts or after it has stopped
            message = "the service is starting or stopping; retry shortly"
            return await _error(send, 503, message, None, request_id, {"Retry-After": "1"})
        model = svc.models.get(name)
        if model is None:
            known = ", ".join(sorted(svc.models))
            message = f"model: unknown model {name!r}; available: {known}"
            return await _error(send, 404, message, "model", request_id)
        info = model.info
        try:
            label = resolve_label(label_value, info.num_classes, info.class_names)
        except LabelError as exc:
            return await _error(send, 400, str(exc), "label", request_id)
        z, rows, classes = inputs_for(
            seed, np.array([index], dtype=np.uint64), info.latent_dim, info.num_classes, label
        )
        headers = {
            "ETag": etag(info.sha256, seed, index, label),
            "Cache-Control": CACHE_CONTROL,
            "X-Request-ID": request_id,
            "X-Model": name,
            "X-Seed": str(seed),
            "X-Index": str(index),
        }
        if classes is not None:
            headers["X-Label"] = str(int(classes[0]))
        if matches(_header(scope, b"if-none-match"), headers["ETag"]):
            return await _send(send, 304, headers)
        images = await svc.run_model(name, z, rows, request_id)
        if not isinstance(images, np.ndarray):  # the 503 (queue full) or 500 that every route answers
            return await images(scope, receive, send)
        # libdeflate, not ISA-L: a strong ETag promises the same bytes; ISA-L's can vary for the same pixels
        png = encode_png(images[0], reproducible=True)
        headers["Content-Type"] = "image/png"
        await _send(send, 200, headers, png, head=scope["method"] == "HEAD")


class ImageRoutes:
    """ASGI middleware: every path under ``/images`` goes to ``ImageApp``; everything else to ``app``."""

    def __init__(self, app: Any, service: Callable[[], ServesModels]) -> None:
        self.app, self.images = app, ImageApp(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == MOUNT or path.startswith(MOUNT + "/"):
            return await self.images(scope, receive, send)
        return await self.app(scope, receive, send)


def openapi_path(model_names: list[str], error_schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI path item of the route (``service.openapi.fix_spec`` adds it to the document)."""
    error = {"application/json": {"schema": error_schema}}
    cache_headers = {
        "ETag": {"description": "Strong validator of these bytes", "schema": {"type": "string"}},
        "Cache-Control": {"description": CACHE_CONTROL, "schema": {"type": "string"}},
    }
    model_schema: dict[str, Any] = {"type": "string"}
    if model_names:
        model_schema["enum"] = sorted(model_names)
    errors = {
        "400": "A bad seed, index, extension, label or query parameter (named in `field`)",
        "401": "Missing or wrong API key (only when one is configured)",
        "404": "Unknown model, or a path not of the form " + PATH_TEMPLATE,
        "405": "A method other than GET or HEAD",
        "429": "More requests in flight than GANSERVE_MAX_CONCURRENCY",
        "500": "A model run failed; the request_id is in the server log",
        "503": "Starting or stopping, or the model's queue is full (GANSERVE_MAX_QUEUE_ROWS; Retry-After)",
        "504": "Not answered within GANSERVE_TIMEOUT seconds",
    }
    return {
        "get": {
            "summary": "One image as PNG, at a cacheable URL",
            "description": "Image `index` of `seed` (and `label`) from `model`: the same pixels as POST "
            "/generate for that (model, seed, index, label). Strong ETag; If-None-Match → 304.",
            "operationId": "getImage",
            "tags": ["Service APIs"],
            "parameters": [
                {"name": "model", "in": "path", "required": True, "schema": model_schema},
                {
                    "name": "seed",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
                },
                {
                    "name": "index",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INDEX},
                },
                {
                    "name": "label",
                    "in": "query",
                    "required": False,
                    "description": "Conditional models: class index, class name, or comma-separated "
                    "one-hot numbers; omitted: drawn from the seed",
                    "schema": {"type": "string"},
                },
                {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "The image",
                    "headers": cache_headers,
                    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                },
                "304": {
                    "description": "Not modified: If-None-Match matched the ETag",
                    "headers": cache_headers,
                },
                **{code: {"description": text, "content": error} for code, text in errors.items()},
            },
        }
    }
