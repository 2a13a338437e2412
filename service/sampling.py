"""The sampling contract: noise and labels as pure functions of (seed, image index).

Image *i* of a request depends on (model, seed, i, label) alone, whatever else shares its batch and
whichever process draws it. The derivation uses only integer arithmetic on uint64 plus Box-Muller, so it is
independent of numpy's random-generator implementations and stable across releases (changing it is a
breaking change):

    key      = mix(seed)
    base_i   = mix(key XOR i)
    h(i, j)  = mix(base_i + j · γ)                  γ = 0x9E3779B97F4A7C15
    u(i, j)  = (h(i, j) >> 11) · 2⁻⁵³               uniform in [0, 1)
    z[i, 2k], z[i, 2k+1] = r·cos θ, r·sin θ        r = √(−2 ln(1 − u(i, 2k+1))), θ = 2π·u(i, 2k+2)
    label_i  = h(i, 0) mod num_classes              (only when the request gives no label)

``mix`` is the SplitMix64 output function (Steele et al. 2014): x += γ, then two xor-shift-multiply rounds.
z is computed in float64 and rounded to float32.
"""

from __future__ import annotations

import numpy as np

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
MAX_SEED = 2**63 - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 output function on a uint64 array (wrapping arithmetic)."""
    z = x + GAMMA
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _bases(seed: int, indices: np.ndarray) -> np.ndarray:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0 … {MAX_SEED}, got {seed}")
    key = _mix(np.array([seed], dtype=np.uint64))
    return _mix(key ^ np.asarray(indices, dtype=np.uint64))


def image_indices(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.uint64)


def latent(seed: int, indices: np.ndarray, latent_dim: int) -> np.ndarray:
    """z float32 [len(indices), latent_dim], row i a function of (seed, indices[i]) alone."""
    base = _bases(seed, indices)
    pairs = (latent_dim + 1) // 2
    j = np.arange(1, 2 * pairs + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(base[:, None] + j[None, :] * GAMMA)
    u = (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
    r = np.sqrt(-2.0 * np.log1p(-u[:, 0::2]))
    theta = (2.0 * np.pi) * u[:, 1::2]
    z = np.empty((len(base), 2 * pairs), dtype=np.float64)
    z[:, 0::2] = r * np.cos(theta)
    z[:, 1::2] = r * np.sin(theta)
    return z[:, :latent_dim].astype(np.float32)


def drawn_labels(seed: int, indices: np.ndarray, num_classes: int) -> np.ndarray:
    """Class index per image for requests that give no label: int64 [len(indices)]."""
    base = _bases(seed, indices)
    return (_mix(base) % np.uint64(num_classes)).astype(np.int64)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


class LabelError(ValueError):
    """A label that does not fit the model; the message names the limit."""


def resolve_label(
    label: int | str | list[float] | None, num_classes: int, class_names: list[str]
) -> np.ndarray | None:
    """A request's label → one float32 row [num_classes] (None: draw each image's label from the seed).

    Accepts a class index, a class name, or a one-hot (or soft) list of num_classes numbers.
    """
    if label is None:
        return None
    if num_classes == 0:
        raise LabelError("label: this model is unconditional and takes no label")
    if isinstance(label, bool):
        raise LabelError("label: must be a class index, a class name or a list of numbers, not a boolean")
    if isinstance(label, int):
        if not 0 <= label < num_classes:
            raise LabelError(f"label: class index must be in 0 … {num_classes - 1}, got {label}")
        return one_hot(np.array([label]), num_classes)[0]
    if isinstance(label, str):
        if label in class_names:
            return one_hot(np.array([class_names.index(label)]), num_classes)[0]
        raise LabelError(f"label: unknown class name {label!r}; known: {', '.join(class_names)}")
    row = np.asarray(label, dtype=np.float64)
    if row.ndim != 1 or len(row) != num_classes:
        raise LabelError(f"label: a one-hot list must have exactly {num_classes} numbers, got {len(label)}")
    if not np.all(np.isfinite(row)) or row.min() < 0 or not abs(row.sum() - 1.0) <= 1e-3:
        raise LabelError("label: a one-hot list must hold non-negative numbers that sum to 1")
    return row.astype(np.float32)


def inputs_for(
    seed: int, indices: np.ndarray, latent_dim: int, num_classes: int, label: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Model inputs for images ``indices``: (z, one-hot label matrix or None, class index per image or None).

    The class index is the argmax of the label row (for a soft mixture, its strongest class).
    """
    z = latent(seed, indices, latent_dim)
    if num_classes == 0:
        return z, None, None
    if label is None:
        classes = drawn_labels(seed, indices, num_classes)
        return z, one_hot(classes, num_classes), classes
    rows = np.broadcast_to(label, (len(indices), num_classes)).copy()
    return z, rows, np.full(len(indices), int(np.argmax(label)), dtype=np.int64)
