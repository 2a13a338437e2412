"""Worker-process side of batch loading: gather rows of a memory-mapped ``.npy`` (numpy only, no torch)."""

from __future__ import annotations

import numpy as np

_images: np.ndarray | None = None


def open_images(path: str) -> None:
    """Pool initializer: map the decoded cache once per worker."""
    global _images
    _images = np.load(path, mmap_mode="r")


def take(images: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``images[index]`` as a contiguous array, reading the file in ascending order (kinder to disks)."""
    order = np.argsort(index, kind="stable")
    out = np.empty((len(index), *images.shape[1:]), dtype=images.dtype)
    out[order] = images[index[order]]
    return out


def take_mapped(index: np.ndarray) -> np.ndarray:
    assert _images is not None, "open_images was not run in this worker"
    return take(_images, index)
