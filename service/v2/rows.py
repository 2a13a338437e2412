"""An infer request's inputs → the generator's rows: each row its own seed, image index and label, or its z.

The inputs a model takes (``seed``, ``index``, ``label``, or ``z`` instead of seed and index) and the
outputs it gives (``image``, and ``label`` for a conditional model) are described once here, for the model
metadata and for decoding. Row i of ``seed``/``index``/``label`` is image ``index[i]`` of ``seed[i]`` with
``label[i]`` — the bytes ``POST /generate`` returns for that (model, seed, index, label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gancore.contract import IMAGE, MAX_SEED, Z, drawn_labels_rows, latent_rows, one_hot
from gancore.generator import ModelInfo
from service.v2.codec import FLOAT_TYPES, INTEGER_TYPES, ProtocolError, Tensor

MAX_INDEX = 2**62  # as POST /generate's `start`
# The protocol's tensors share the graph's names for the noise and the images (gancore.contract).
INPUTS = ("seed", "index", "label", Z)


@dataclass(frozen=True)
class Rows:
    """The model inputs of a request and each row's class (None for an unconditional model)."""

    z: np.ndarray  # float32 [N, latent_dim]
    label: np.ndarray | None  # float32 [N, num_classes]
    classes: np.ndarray | None  # int64 [N]


def metadata(info: ModelInfo, version: str) -> dict[str, Any]:
    """``GET /v2/models/{name}``: the inputs and outputs as the protocol describes them."""
    c, h, w = info.image_shape
    inputs = [
        {"name": "seed", "datatype": "INT64", "shape": [-1]},
        {"name": "index", "datatype": "INT64", "shape": [-1]},
    ]
    outputs = [{"name": IMAGE, "datatype": "UINT8", "shape": [-1, h, w, c]}]
    if info.num_classes:
        inputs.append({"name": "label", "datatype": "INT64", "shape": [-1]})
        outputs.append({"name": "label", "datatype": "INT64", "shape": [-1]})
    return {
        "name": info.name,
        "versions": [version],
        "platform": "onnxruntime_onnx",
        "inputs": inputs,
        "outputs": outputs,
        # Beyond the protocol's fields (clients ignore them): what the listed inputs cannot say.
        "parameters": {
            "latent_dim": info.latent_dim,
            "num_classes": info.num_classes,
            "class_names": info.class_names,
            "alternatives": "z FP32 [-1, latent_dim] instead of seed and index; label FP32 "
            "[-1, num_classes] (one-hot or soft rows) instead of class indices",
        },
    }


def output_names(info: ModelInfo) -> tuple[str, ...]:
    return (IMAGE, "label") if info.num_classes else (IMAGE,)


def decode_rows(inputs: dict[str, Tensor], info: ModelInfo, max_rows: int) -> Rows:
    """The model's rows for these inputs; a ProtocolError names the input and the limit."""
    unknown = sorted(set(inputs) - set(INPUTS))
    if unknown or (not info.num_classes and "label" in inputs):
        name = unknown[0] if unknown else "label"
        takes = "seed, index and label" if info.num_classes else "seed and index (unconditional: no label)"
        raise ProtocolError(f"{name[:64]}: not an input of model {info.name}; it takes {takes}, or z")
    if Z in inputs:
        both = [n for n in ("seed", "index") if n in inputs]
        if both:
            raise ProtocolError(f"{both[0]}: give z or seed and index, not both")
        z = _z(inputs[Z], info.latent_dim, max_rows)
        n, seeds, indices = len(z), None, None
    elif "seed" in inputs:
        seeds = _integers(inputs["seed"], 0, MAX_SEED, max_rows)
        n = len(seeds)
        indices = np.zeros(n, dtype=np.uint64)  # omitted: image 0 of each seed
        if "index" in inputs:
            indices = _integers(inputs["index"], 0, MAX_INDEX, max_rows, rows=n).astype(np.uint64)
        z = latent_rows(seeds, indices, info.latent_dim)
    else:
        raise ProtocolError("seed: required (INT64 [N]), or z (FP32 [N, latent_dim]) instead")
    if not info.num_classes:
        return Rows(z, None, None)
    k = info.num_classes
    if "label" in inputs:
        return Rows(z, *_labels(inputs["label"], n, k))
    if seeds is None:
        raise ProtocolError(
            f"label: required with z for conditional model {info.name} (INT64 [N] in 0 … {k - 1})"
        )
    classes = drawn_labels_rows(seeds, indices, k)  # as POST /generate draws them when no label is given
    return Rows(z, one_hot(classes, k), classes)


def _rows_of(t: Tensor, max_rows: int, rows: int | None, width: int | None = None) -> None:
    """Check a per-row tensor's shape: [N] (or [N, 1]) for ``width`` None, else [N, width]."""
    shape = t.shape
    if width is None:
        ok = len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
        expected = "[N]"
    else:
        ok = len(shape) == 2 and shape[1] == width
        expected = f"[N, {width}]"
    if not ok:
        raise ProtocolError(f"{t.name}: shape must be {expected}, got {list(shape)}")
    n = shape[0]
    if rows is not None and n != rows:
        raise ProtocolError(f"{t.name}: {n} rows, but the other inputs have {rows} rows")
    if not 1 <= n <= max_rows:
        raise ProtocolError(
            f"{t.name}: {n} rows; a request takes 1 … {max_rows} rows of this model "
            "(GANSERVE_MAX_COUNT, GANSERVE_MAX_REQUEST_BYTES)"
        )


def _integers(t: Tensor, low: int, high: int, max_rows: int, rows: int | None = None) -> np.ndarray:
    if t.datatype not in INTEGER_TYPES:
        raise ProtocolError(f"{t.name}: datatype must be an integer type (INT64), got {t.datatype}")
    _rows_of(t, max_rows, rows)
    values = t.data.reshape(-1)
    if int(values.min()) < low or int(values.max()) > high:
        raise ProtocolError(f"{t.name}: every value must be in {low} … {high}")
    return values.astype(np.int64)  # within 0 … 2⁶³ − 1 now, whatever integer type it came in


def _z(t: Tensor, latent_dim: int, max_rows: int) -> np.ndarray:
    if t.datatype not in FLOAT_TYPES:
        raise ProtocolError(f"z: datatype must be FP32, got {t.datatype}")
    _rows_of(t, max_rows, None, width=latent_dim)
    z = t.data.astype(np.float32)
    if not np.isfinite(z).all():
        raise ProtocolError("z: every value must be finite")
    return z


def _labels(t: Tensor, rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(float32 label rows [N, k], class per row [N]) from class indices or one-hot/soft rows."""
    if t.datatype in INTEGER_TYPES:
        _rows_of(t, rows, rows)
        classes = t.data.reshape(-1)
        if int(classes.min()) < 0 or int(classes.max()) >= k:
            raise ProtocolError(f"label: every class index must be in 0 … {k - 1}")
        classes = classes.astype(np.int64)
        return one_hot(classes, k), classes
    if t.datatype not in FLOAT_TYPES:
        raise ProtocolError(
            f"label: datatype must be INT64 (class index) or FP32 (one-hot rows), got {t.datatype}"
        )
    _rows_of(t, rows, rows, width=k)
    soft = t.data.astype(np.float64)
    if not np.isfinite(soft).all() or soft.min() < 0 or not np.all(np.abs(soft.sum(axis=1) - 1.0) <= 1e-3):
        raise ProtocolError("label: every one-hot row must hold non-negative numbers that sum to 1")
    rows32 = soft.astype(np.float32)
    return rows32, rows32.argmax(axis=1).astype(np.int64)  # as POST /generate: argmax of the float32 row
