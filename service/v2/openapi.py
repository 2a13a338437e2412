"""The V2 routes' part of the service's OpenAPI document (BentoML cannot see routes a middleware answers)."""

from __future__ import annotations

from typing import Any

from gancore.contract import IMAGE
from service.v2 import routes
from service.v2.codec import DTYPES
from service.v2.rows import INPUTS

_DATATYPES = list(DTYPES)
_TENSOR_META = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
}
_INPUT = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string", "enum": list(INPUTS)},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 8},
        "datatype": {"type": "string", "enum": _DATATYPES},
        "parameters": {
            "type": "object",
            "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
        },
        "data": {"description": "Row-major values, flat or nested (absent for a binary input)"},
    },
}
INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
        "inputs": {"type": "array", "minItems": 1, "items": _INPUT},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "enum": [IMAGE, "label"]},
                    "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}},
                },
            },
        },
    },
}
INFER_RESPONSE = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {"type": "array", "items": {**_TENSOR_META, "properties": {**_TENSOR_META["properties"],
                                                                              "data": {"type": "array"}}}},
    },
}  # fmt: skip
MODEL_METADATA = {
    "type": "object",
    "required": ["name", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": _TENSOR_META},
        "outputs": {"type": "array", "items": _TENSOR_META},
    },
}
SERVER_METADATA = {
    "type": "object",
    "required": ["name", "version", "extensions"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "extensions": {"type": "array", "items": {"type": "string"}},
    },
}
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def paths(model_names: list[str], error_schema: dict[str, Any]) -> dict[str, Any]:
    """The path items of every V2 route, the ``/versions/{version}`` forms included."""
    error = {"application/json": {"schema": error_schema}}

    def errors(*codes: str) -> dict[str, Any]:
        text = {
            "400": "A bad input, output or body (named in the error)",
            "401": "Missing or wrong API key (only when one is configured)",
            "404": "Unknown model or version",
            "405": "Method not allowed on this route",
            "413": "Request body larger than GANSERVE_MAX_BODY_BYTES",
            "415": "Request body neither JSON nor application/octet-stream",
            "429": "More requests in flight than GANSERVE_MAX_CONCURRENCY",
            "500": "A model run failed; the X-Request-ID is in the server log",
            "503": "Starting or stopping, or the model's queue is full (Retry-After)",
            "504": "Not answered within GANSERVE_TIMEOUT seconds",
        }
        return {c: {"description": text[c], "content": error} for c in codes}

    name_schema: dict[str, Any] = {"type": "string"}
    if model_names:
        name_schema["enum"] = sorted(model_names)
    name_param = {"name": "name", "in": "path", "required": True, "schema": name_schema}
    version_param = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    tags = ["Open Inference Protocol (V2)"]

    def get(summary: str, schema: dict[str, Any] | None, params: list, codes: tuple[str, ...]) -> dict:
        ok: dict[str, Any] = {"description": "OK"}
        if schema is not None:
            ok["content"] = {"application/json": {"schema": schema}}
        return {"get": {"summary": summary, "tags": tags, "parameters": params,
                        "responses": {"200": ok, **errors(*codes)}}}  # fmt: skip

    model_codes = ("401", "404", "405", "429", "503", "504")
    infer_codes = ("400", "401", "404", "405", "413", "415", "429", "500", "503", "504")
    ready = {"type": "object", "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}}
    items: dict[str, Any] = {
        routes.SERVER: get("Server metadata", SERVER_METADATA, [], ("401", "405", "429", "504")),
        routes.LIVE: get("Liveness: 200 while the server runs", {"type": "object"}, [], ("405", "504")),
        routes.READY: get("Readiness: 200 once every model is loaded", {"type": "object"}, [],
                          ("405", "503", "504")),
    }  # fmt: skip
    for prefix, params in (
        (routes.MODEL, [name_param]),
        (routes.MODEL + "/versions/{version}", [name_param, version_param]),
    ):
        items[prefix] = get("Model metadata: inputs and outputs", MODEL_METADATA, params, model_codes)
        items[prefix + "/ready"] = get("Model readiness", ready, params, model_codes)
        items[prefix + "/infer"] = {
            "post": {
                "summary": "Images for per-row seeds, indices and labels (or z)",
                "description": "Row i is image index[i] of seed[i] with label[i]: the bytes POST /generate "
                "returns for them. JSON, or the binary tensor extension (application/octet-stream with "
                "Inference-Header-Content-Length) both ways.",
                "tags": tags,
                "parameters": [
                    *params,
                    {
                        "name": "Inference-Header-Content-Length",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],  # fmt: skip
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": INFER_REQUEST},
                        "application/octet-stream": _BINARY,
                    },
                },
                "responses": {
                    "200": {
                        "description": "The images (UINT8 [N, H, W, C]) and, for a conditional model, labels",
                        "content": {
                            "application/json": {"schema": INFER_RESPONSE},
                            "application/octet-stream": _BINARY,
                        },
                    },  # fmt: skip
                    **errors(*infer_codes),
                },
            }
        }
    return items
