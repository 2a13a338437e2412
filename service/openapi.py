"""A truthful OpenAPI document for ``/docs.json``.

BentoML derives the document from the API methods' annotations, which cannot say what ``/generate`` really
answers: JSON, a PNG or a ``.npy`` body depending on ``format``, errors with a ``request_id``, and the
refusals of the guards (401, 413, 429) and of the timeout (504). It also flattens the ``label`` union to an
integer. ``fix_spec`` corrects those parts of BentoML's document; ``OpenApiMiddleware`` serves the result.
Fuzzing (tests/test_fuzz.py) checks every response against this document.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from service import image_urls
from service.guards import ASGIApp, Receive, Scope, Send
from service.v2 import openapi as v2_openapi

log = logging.getLogger("ganserve.openapi")

SPEC_PATH = "/docs.json"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What was wrong, naming the field or the limit"},
        "field": {"type": "string", "description": "The request field at fault"},
        "limit": {"type": "integer", "description": "The limit that was exceeded"},
        "detail": {"description": "Validation details (a list of pydantic errors) or a hint"},
        "request_id": {"type": "string", "description": "Repeated in the server log"},
    },
}

GENERATE_JSON: dict[str, Any] = {
    "type": "object",
    "required": ["model", "seed", "indices", "labels", "label_names", "image_shape", "images"],
    "properties": {
        "model": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0},
        "indices": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "labels": {"type": "array", "items": {"type": "integer", "minimum": 0}, "nullable": True},
        "label_names": {"type": "array", "items": {"type": "string"}, "nullable": True},
        "image_shape": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3},
        "images": {"type": "array", "items": {"type": "string", "format": "byte"}},
    },
}

MODELS_JSON: dict[str, Any] = {
    "type": "object",
    "required": ["models", "max_count", "contract_version"],
    "properties": {
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "conditional", "latent_dim", "num_classes", "image_shape", "provider"],
                "properties": {
                    "name": {"type": "string"},
                    "conditional": {"type": "boolean"},
                    "latent_dim": {"type": "integer"},
                    "num_classes": {"type": "integer"},
                    "class_names": {"type": "array", "items": {"type": "string"}},
                    "image_shape": {"type": "array", "items": {"type": "integer"}},
                    "provider": {"type": "string"},
                    "contract_version": {"type": "integer", "description": "the model's sampling contract"},
                },
            },
        },
        "max_count": {"type": "integer"},
        "contract_version": {
            "type": "integer",
            "description": "The sampling contract this service implements: same version, model file, seed, "
            "index and label → same image (docs/design/noise-contract.md)",
        },
    },
}

WALK_JSON: dict[str, Any] = {
    "type": "object",
    "required": ["model", "images"],
    "properties": {"model": {"type": "string"}, "images": {"type": "array", "items": {"type": "string"}}},
}

LABEL_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer"},
        {"type": "string"},
        {"type": "array", "items": {"type": "number"}},
    ],
    "nullable": True,
}

# What each API route answers with 200, by media type (a route missing here keeps BentoML's).
OK_CONTENT: dict[str, dict[str, Any]] = {
    "/generate": {
        "application/json": {"schema": GENERATE_JSON},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
    "/walk": {
        "application/json": {"schema": WALK_JSON},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    },
    "/models": {"application/json": {"schema": MODELS_JSON}},
}

ERRORS = {
    "400": "Invalid request: malformed JSON, or a field out of range (named in the body)",
    "401": "Missing or wrong API key (only when one is configured)",
    "404": "Unknown model",
    "413": "Request body larger than GANSERVE_MAX_BODY_BYTES",
    "415": "Request body not declared as application/json",
    "429": "More requests in flight than GANSERVE_MAX_CONCURRENCY",
    "500": "A model run failed; the request_id is in the server log",
    "503": "The model's queue already holds GANSERVE_MAX_QUEUE_ROWS rows; retry after Retry-After seconds",
    "504": "Not answered within GANSERVE_TIMEOUT seconds",
}

INFRA_CONTENT = {"text/plain": {"schema": {"type": "string"}}}


def fix_spec(spec: dict[str, Any], model_names: Iterable[str]) -> dict[str, Any]:
    """BentoML's OpenAPI document with the real responses and request fields of this service."""
    spec = json.loads(json.dumps(spec))  # a deep copy with the status codes as strings, as served
    error = {"application/json": {"schema": ERROR_SCHEMA}}
    names = sorted(model_names)
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            if method == "get" and path in ("/livez", "/healthz", "/readyz", "/metrics"):
                responses["200"]["content"] = INFRA_CONTENT
                continue
            if method != "post" or "requestBody" not in op:
                continue
            if path in OK_CONTENT:
                responses["200"]["content"] = copy.deepcopy(OK_CONTENT[path])
            for code, description in ERRORS.items():
                responses[code] = {"description": description, "content": error}
            body = op["requestBody"]["content"].get("application/json", {}).get("schema", {})
            props = body.get("properties", {})
            if "model" in props and names:
                props["model"]["enum"] = names  # the models this server loaded at start-up
            for key in ("label", "label_a", "label_b"):
                if key in props:
                    props[key] = {**LABEL_SCHEMA, "description": props[key].get("description", "")}
            for schema in props.values():
                if schema.get("default", 0) is None:  # optional fields also accept null
                    schema["nullable"] = True
    # A route mounted as an ASGI app, which BentoML's document cannot see.
    spec.setdefault("paths", {})[image_urls.PATH_TEMPLATE] = image_urls.openapi_path(names, ERROR_SCHEMA)
    spec["paths"].update(v2_openapi.paths(names, ERROR_SCHEMA))  # answered by a middleware, likewise
    return spec


class OpenApiMiddleware:
    """Serves ``fix_spec`` of the service's document at ``GET /docs.json`` (built once, on first use)."""

    def __init__(self, app: ASGIApp, spec: Callable[[], dict[str, Any]], model_names: list[str]) -> None:
        self.app = app
        self._spec, self._names = spec, model_names
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != SPEC_PATH or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        if self._body is None:
            try:
                self._body = json.dumps(fix_spec(self._spec(), self._names)).encode()
            except Exception:  # a BentoML upgrade may change its document: serve that one rather than none
                log.exception("cannot correct the OpenAPI document; serving BentoML's own")
                return await self.app(scope, receive, send)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self._body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else self._body})
