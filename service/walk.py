"""Latent walks: model inputs for N frames moving from one seed's noise (and label) to another's.

The noise is interpolated spherically (slerp), because Gaussian latents of a few dozen dimensions sit on a
thin shell: a straight line between two of them passes through low-norm points the generator rarely saw in
training, which shows up as washed-out middle frames. Labels are interpolated linearly as soft one-hot rows,
which is what a conditional generator's label input accepts.

The endpoints are exactly the seeds' own images: frame 0 is image ``index`` of ``seed_a`` with ``label_a``
(as ``POST /generate`` draws it), the last frame the same for ``seed_b``. An omitted label is the one
``POST /generate`` would draw for that seed and index, so the promise holds for omitted labels too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from gancore.contract import MAX_SEED, drawn_labels, latent, one_hot

MAX_STEPS = 64
_PARALLEL = 1e-6  # below this angle (radians) slerp's division is unstable and lerp is the same curve


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between vectors ``a`` and ``b`` [D] at fractions ``t`` [N] → float64 [N, D].

    Follows the great circle through the directions of ``a`` and ``b`` while the norm changes linearly
    (for equal norms the path keeps that norm). t = 0 gives ``a`` and t = 1 gives ``b`` exactly.
    Nearly parallel vectors fall back to linear interpolation; exactly opposite ones have no unique great
    circle, so one is chosen through the first axis not parallel to them.
    """
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[:, None]
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0.0 or nb == 0.0:
        out = (1.0 - t) * a64 + t * b64
    else:
        ua, ub = a64 / na, b64 / nb
        omega = float(np.arccos(np.clip(ua @ ub, -1.0, 1.0)))
        if omega < _PARALLEL:
            out = (1.0 - t) * a64 + t * b64
        else:
            if np.pi - omega < _PARALLEL:  # antipodal: route through a direction orthogonal to ua
                axis = np.zeros_like(ua)
                axis[int(np.argmin(np.abs(ua)))] = 1.0
                ub = axis - (axis @ ua) * ua
                ub /= np.linalg.norm(ub)
                theta = t * np.pi  # through the orthogonal direction at t = 0.5 on to -ua
            else:
                ub = (ub - np.cos(omega) * ua) / np.sin(omega)  # unit vector orthogonal to ua in the plane
                theta = t * omega
            direction = np.cos(theta) * ua + np.sin(theta) * ub
            out = direction * ((1.0 - t) * na + t * nb)
    out[t[:, 0] == 0.0] = a64
    out[t[:, 0] == 1.0] = b64
    return out


@dataclass(frozen=True)
class WalkInputs:
    """Model inputs of a walk's frames, with what a client is told about each frame."""

    z: np.ndarray  # float32 [steps, latent_dim]
    label: np.ndarray | None  # float32 [steps, num_classes] soft one-hot rows; None for unconditional
    classes: np.ndarray | None  # int64 [steps]: each frame's strongest class
    t: np.ndarray  # float64 [steps]: 0 … 1


def walk_inputs(
    seed_a: int,
    seed_b: int,
    steps: int,
    latent_dim: int,
    num_classes: int,
    label_a: np.ndarray | None = None,
    label_b: np.ndarray | None = None,
    index: int = 0,
) -> WalkInputs:
    """Inputs for ``steps`` frames from image ``index`` of (seed_a, label_a) to that of (seed_b, label_b).

    ``label_a``/``label_b`` are one float32 row [num_classes] each (see gancore.contract.resolve_label);
    None means the label that seed draws for that index. Unconditional models (num_classes 0) take no labels.
    """
    if not 2 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be in 2 … {MAX_STEPS}, got {steps}")
    if num_classes == 0 and (label_a is not None or label_b is not None):
        raise ValueError("labels given for an unconditional model")
    t = np.linspace(0.0, 1.0, steps)
    at = np.array([index], dtype=np.uint64)
    z = slerp(latent(seed_a, at, latent_dim)[0], latent(seed_b, at, latent_dim)[0], t).astype(np.float32)
    if num_classes == 0:
        return WalkInputs(z, None, None, t)
    if label_a is None:
        label_a = one_hot(drawn_labels(seed_a, at, num_classes), num_classes)[0]
    if label_b is None:
        label_b = one_hot(drawn_labels(seed_b, at, num_classes), num_classes)[0]
    rows = ((1.0 - t)[:, None] * label_a.astype(np.float64) + t[:, None] * label_b.astype(np.float64)).astype(
        np.float32
    )
    rows[0], rows[-1] = label_a, label_b  # exact endpoints, not a float round trip
    return WalkInputs(z, rows, np.argmax(rows, axis=1).astype(np.int64), t)


class WalkRequest(BaseModel):
    """Body of ``POST /walk``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=128, description="Model name (see POST /models)")
    seed_a: int = Field(ge=0, le=MAX_SEED, description="Seed of the first frame")
    seed_b: int = Field(ge=0, le=MAX_SEED, description="Seed of the last frame")
    steps: int = Field(8, ge=2, le=MAX_STEPS, description="Frames, both ends included")
    index: int = Field(0, ge=0, le=2**62, description="Which image index of each seed gives the noise")
    label_a: StrictInt | StrictStr | list[float] | None = Field(
        None,
        description="Label of the first frame (conditional models only): class index, class name or one-hot "
        "list; omitted: the label seed_a draws for this index",
    )
    label_b: StrictInt | StrictStr | list[float] | None = Field(
        None, description="Label of the last frame, as label_a (omitted: the label seed_b draws)"
    )
    format: Literal["png", "grid"] = Field(
        "png", description="png: JSON with base64 PNG frames; grid: one image/png, the frames in a row"
    )
