"""Response bodies of the image routes: ``.npy`` bytes and the JSON form (labels, names, base64 PNGs)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from gancore.generator import ModelInfo
from gancore.imaging import encode_pngs


def npy_bytes(images: np.ndarray) -> bytes:
    """uint8 images as a ``.npy`` file: the header, then the array's own buffer (no extra copy)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(images))
    return b"".join((buf.getvalue(), memoryview(np.ascontiguousarray(images)).cast("B")))


async def images_json(images: np.ndarray, classes: np.ndarray | None, info: ModelInfo) -> dict[str, Any]:
    """The per-image part of a JSON answer: labels, their names, the image shape and base64 PNGs."""
    pngs = await encode_pngs(images)
    return {
        "labels": None if classes is None else classes.tolist(),
        "label_names": None if classes is None else [info.class_names[c] for c in classes],
        "image_shape": [info.image_shape[1], info.image_shape[2], info.image_shape[0]],
        "images": [base64.b64encode(p).decode("ascii") for p in pngs],
    }
