"""Accelerator-only run settings: fixed batch-size buckets (the provider rule is ``gancore.providers``).

On a GPU, every new input shape costs a convolution-algorithm search (and would need its own CUDA graph),
so runs are padded up to a few fixed batch sizes ("buckets"), all warmed up at start-up. On the CPU
none of this applies: no padding, the plain session. Padding never changes a request's images: each row
of a generator is computed from its own inputs, and the padded rows are dropped.

Written for the GPU path but not measured on a GPU yet (no GPU machine was available); the CPU path is
what the tests cover.
"""

from __future__ import annotations

import numpy as np


def buckets(max_rows: int) -> tuple[int, ...]:
    """Powers of two up to ``max_rows`` (and ``max_rows`` itself): 1, 2, 4, …, max_rows."""
    sizes, n = [], 1
    while n < max_rows:
        sizes.append(n)
        n *= 2
    sizes.append(max_rows)
    return tuple(sizes)


def bucket_for(rows: int, sizes: tuple[int, ...]) -> int:
    """The smallest bucket holding ``rows`` (``rows`` itself past the largest bucket)."""
    for size in sizes:
        if size >= rows:
            return size
    return rows


def pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` with zero rows appended up to ``rows`` (the same array when it already has them)."""
    if len(array) >= rows:
        return array
    pad = np.zeros((rows - len(array), *array.shape[1:]), dtype=array.dtype)
    return np.concatenate([array, pad])


def padded_run(run, sizes: tuple[int, ...]):
    """Wrap ``run(z, label) -> out`` to run on bucket-sized batches and return only the real rows."""

    def bucketed(z: np.ndarray, label: np.ndarray | None) -> np.ndarray:
        n = len(z)
        size = bucket_for(n, sizes)
        if size == n:
            return run(z, label)
        out = run(pad_rows(z, size), None if label is None else pad_rows(label, size))
        return out[:n]

    return bucketed
