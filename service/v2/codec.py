"""The Open Inference Protocol's infer request and response bodies: JSON, and the binary tensor extension.

A request is JSON, optionally followed by the raw bytes of its binary inputs (``Inference-Header-Content-
Length`` gives the JSON's length); each such input's ``parameters.binary_data_size`` says how many of those
bytes are its, in input order, little-endian, unpadded. A response is JSON, followed by the bytes of the
outputs asked for in binary (``parameters.binary_data`` per output, or ``binary_data_output`` for all).

Everything a client can get wrong raises ``ProtocolError`` with a message that names the input (or the
part of the body) and the limit; nothing here allocates more than the body's own size before checking it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HEADER_LENGTH = "inference-header-content-length"

# Protocol datatype → little-endian numpy dtype (BYTES, variable-length strings, has no use here).
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "?",
        "UINT8": "u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
        "INT8": "i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "FP16": "<f2",
        "FP32": "<f4",
        "FP64": "<f8",
    }.items()
}
INTEGER_TYPES = frozenset(n for n, d in DTYPES.items() if d.kind in "iu")
FLOAT_TYPES = frozenset(n for n, d in DTYPES.items() if d.kind == "f")
MAX_DIMS = 8


class ProtocolError(ValueError):
    """A request the protocol or this model cannot take: the HTTP status and a message naming the part."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Tensor:
    """One named input tensor of a request, decoded."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray  # of shape ``shape`` and the datatype's dtype


@dataclass(frozen=True)
class InferRequest:
    """A decoded infer request: its id, inputs by name, and which outputs to send (and how)."""

    id: str | None
    inputs: dict[str, Tensor]
    outputs: dict[str, bool] | None  # name → binary; None: every output
    binary_output: bool  # the default for outputs not listed with their own choice
    parameters: dict[str, Any] = field(default_factory=dict)


def decode_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse an infer request body (JSON, or JSON plus binary tensor data)."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise ProtocolError(
                f"Inference-Header-Content-Length: must be a byte count within the body's {len(body)} "
                f"bytes, got {header_length[:40]!r}"
            )
        json_part, binary = body[: int(header_length)], body[int(header_length) :]
    try:
        doc = json.loads(json_part or b"null")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"body: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ProtocolError("body: must be a JSON object with an 'inputs' list")
    # Other top-level fields are ignored, as other servers do (the kserve client adds model_name).
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("id: must be a string")
    params = _object(doc.get("parameters"), "parameters")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ProtocolError("inputs: must be a non-empty list of tensors")
    inputs: dict[str, Tensor] = {}
    offset = 0
    for position, item in enumerate(raw_inputs):
        tensor, offset = _decode_input(item, position, binary, offset)
        if tensor.name in inputs:
            raise ProtocolError(f"{tensor.name}: input given more than once")
        inputs[tensor.name] = tensor
    if offset != len(binary):
        raise ProtocolError(
            f"body: {len(binary) - offset} bytes after the JSON belong to no input (each binary input "
            "declares its parameters.binary_data_size)"
        )
    binary_output = params.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise ProtocolError("parameters.binary_data_output: must be true or false")
    outputs = None
    if doc.get("outputs") is not None:
        if not isinstance(doc["outputs"], list):
            raise ProtocolError("outputs: must be a list of {name, parameters?}")
        outputs = {}
        for item in doc["outputs"]:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ProtocolError("outputs: every entry must be an object with a string name")
            out_params = _object(item.get("parameters"), f"outputs.{item['name'][:40]}.parameters")
            binary_choice = out_params.get("binary_data", binary_output)
            if not isinstance(binary_choice, bool):
                raise ProtocolError(f"{item['name'][:40]}: parameters.binary_data must be true or false")
            outputs[item["name"]] = binary_choice
    return InferRequest(request_id, inputs, outputs, binary_output, params)


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: must be a JSON object")
    return value


def _decode_input(item: Any, position: int, binary: bytes, offset: int) -> tuple[Tensor, int]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        raise ProtocolError(f"inputs[{position}]: must be an object with a name, shape, datatype and data")
    name = item["name"][:64]
    datatype = item.get("datatype")
    if datatype not in DTYPES:
        raise ProtocolError(
            f"{name}: datatype must be one of {', '.join(DTYPES)}, got {str(datatype)[:20]!r}"
        )
    shape = item.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ProtocolError(f"{name}: shape must be a list of at most {MAX_DIMS} non-negative integers")
    dtype = DTYPES[datatype]
    count = math.prod(shape)
    params = _object(item.get("parameters"), f"{name}.parameters")
    size = params.get("binary_data_size")
    if size is not None:
        if "data" in item:
            raise ProtocolError(f"{name}: give data or parameters.binary_data_size, not both")
        if not isinstance(size, int) or isinstance(size, bool) or size != count * dtype.itemsize:
            raise ProtocolError(
                f"{name}: binary_data_size must be {count} elements × {dtype.itemsize} bytes = "
                f"{count * dtype.itemsize} for shape {shape} and {datatype}, got {str(size)[:20]}"
            )
        if offset + size > len(binary):
            raise ProtocolError(
                f"{name}: its {size} binary bytes run past the end of the body ({len(binary) - offset} left)"
            )
        data = np.frombuffer(binary, dtype=dtype, count=count, offset=offset).reshape(shape)
        return Tensor(item["name"], datatype, tuple(shape), data), offset + size
    if "data" not in item:
        raise ProtocolError(f"{name}: no data (and no parameters.binary_data_size)")
    return Tensor(
        item["name"], datatype, tuple(shape), _json_data(item["data"], name, datatype, shape)
    ), offset


def _json_data(data: Any, name: str, datatype: str, shape: list[int]) -> np.ndarray:
    """JSON ``data`` (flat or nested, row-major) as an array of ``shape``; values of a wrong kind fail."""
    try:
        values = np.asarray(data)
    except ValueError:  # ragged nesting
        raise ProtocolError(f"{name}: data must be a flat or regularly nested list of numbers") from None
    if values.ndim == 0:
        values = values.reshape(1)
    kinds = {"BOOL": "b", **dict.fromkeys(INTEGER_TYPES, "iu"), **dict.fromkeys(FLOAT_TYPES, "iuf")}[datatype]
    if values.size and values.dtype.kind not in kinds:
        what = {"b": "true/false", "iu": "integers", "iuf": "numbers"}[kinds]
        raise ProtocolError(f"{name}: {datatype} data must be {what}")
    if values.size != math.prod(shape):
        raise ProtocolError(
            f"{name}: data holds {values.size} values, shape {shape} needs {math.prod(shape)}"
        )
    dtype = DTYPES[datatype]
    if dtype.kind in "iu" and values.size:
        info = np.iinfo(dtype)
        if int(values.min()) < info.min or int(values.max()) > info.max:
            raise ProtocolError(f"{name}: values out of the {datatype} range {info.min} … {info.max}")
    return values.astype(dtype).reshape(shape)


@dataclass(frozen=True)
class Output:
    """One output tensor of a response."""

    name: str
    datatype: str
    data: np.ndarray


def encode_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: list[Output],
    binary: dict[str, bool],
) -> tuple[bytes, dict[str, str]]:
    """The response body and its content headers; ``binary[name]`` picks the binary extension per output."""
    entries, blobs = [], []
    for out in outputs:
        entry: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": list(out.data.shape)}
        array = np.ascontiguousarray(out.data, dtype=DTYPES[out.datatype])
        if binary.get(out.name, False):
            blobs.append(memoryview(array).cast("B"))
            entry["parameters"] = {"binary_data_size": array.nbytes}
        else:
            entry["data"] = array.ravel().tolist()
        entries.append(entry)
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": entries}
    if request_id is not None:
        doc["id"] = request_id
    head = json.dumps(doc, separators=(",", ":")).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
    return b"".join((head, *blobs)), headers
