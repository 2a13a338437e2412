"""uint8 image arrays → grids and PNG bytes (shared by the service, offline generation and training)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

PNG_COMPRESS_LEVEL = 1  # fast; tiny images gain almost nothing from harder compression


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output float [N, C, H, W] in [-1, 1] → uint8 [N, H, W, C] (round half to even)."""
    scaled = np.clip((images + 1.0) * 127.5, 0.0, 255.0)
    return np.rint(scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def tile(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile uint8 images [N, H, W, C] into one [H', W', C] grid, row-major, ``columns`` wide."""
    n, h, w, c = images.shape
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        grid[y : y + h, x : x + w] = img
    return grid


def encode_png(image: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """One uint8 image [H, W, C] (C = 1, 3 or 4) → PNG bytes."""
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[image.shape[2]]
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if mode == "L" else image, mode=mode).save(
        buf, format="PNG", compress_level=compress_level
    )
    return buf.getvalue()
