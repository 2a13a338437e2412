"""A request's label and indices → the model's inputs, and the model's output → the request's images."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gancore.contract.noise import drawn_labels, latent
from gancore.contract.pixels import to_uint8


class LabelError(ValueError):
    """A label that does not fit the model; the message names the limit."""


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Class indices [N] → float32 one-hot rows [N, num_classes]."""
    return np.eye(num_classes, dtype=np.float32)[labels]


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


RunFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def generate(
    run: RunFn, seed: int, indices: np.ndarray, latent_dim: int, num_classes: int, label: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Images ``indices`` of (seed, label) as uint8 [N, H, W, C] with each image's class (or None).

    ``run(z, label_rows)`` is the generator (float images [N, C, H, W]); this is the whole contract in one
    expression, shared by the service and training's evaluation so both draw the same images.
    """
    z, rows, classes = inputs_for(seed, indices, latent_dim, num_classes, label)
    return to_uint8(run(z, rows)), classes
