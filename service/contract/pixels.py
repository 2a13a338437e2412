"""Generator output → pixels: the float → uint8 step of the contract."""

from __future__ import annotations

import numpy as np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output float [N, C, H, W] in [-1, 1] → uint8 [N, H, W, C].

    v ↦ round_half_even(clip((v + 1) · 127.5, 0, 255)), computed in the output's own float type (float32).
    """
    scaled = np.clip((images + 1.0) * 127.5, 0.0, 255.0)
    return np.rint(scaled).astype(np.uint8).transpose(0, 2, 3, 1)
