"""Accelerator-only run settings: CUDA provider options and fixed batch-size buckets.

On a GPU, every new input shape costs a convolution-algorithm search (and would need its own CUDA graph),
so runs are padded up to a few fixed batch sizes ("buckets"), all warmed up at start-up. On the CPU
none of this applies: no padding, the plain session. Padding never changes a request's images: each row
of a generator is computed from its own inputs, and the padded rows are dropped.

Written for the GPU path but not measured on a GPU yet (no GPU machine was available); the CPU path is
what the tests cover.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# Heuristic convolution-algorithm choice instead of an exhaustive benchmark per new shape; copies on the
# default stream so host↔device transfers and kernels stay ordered without extra synchronisation.
CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC", "do_copy_in_default_stream": "1"}


def provider_list(providers: list[str]) -> list[str | tuple[str, dict[str, str]]]:
    """ONNX Runtime providers with CUDA's options attached (others as they are)."""
    return [(p, dict(CUDA_OPTIONS)) if p == CUDA else p for p in providers]


@dataclass(frozen=True)
class ProviderChoice:
    """The ONNX Runtime providers to ask for, and why (logged once at start-up)."""

    providers: list[str]
    reason: str

    def log_line(self) -> str:
        return f"ONNX Runtime providers: {', '.join(self.providers)} ({self.reason})"


def gpu_visible(dev: Path = Path("/dev"), env: dict[str, str] | None = None) -> str | None:
    """Why no NVIDIA GPU is visible to this process, or None when one is.

    A driver exposes ``/dev/nvidia0`` … on the host and in containers given a GPU; CUDA_VISIBLE_DEVICES set
    to nothing (or -1) hides every device from CUDA, and so from ONNX Runtime.
    """
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    if not any(dev.glob("nvidia[0-9]*")):
        return f"no NVIDIA GPU visible (no {dev}/nvidia* device: no driver or no GPU)"
    return None


def choose_providers(
    forced: Sequence[str] | None,
    available: Sequence[str],
    dev: Path = Path("/dev"),
    env: dict[str, str] | None = None,
) -> ProviderChoice:
    """CUDA (then CPU) when this onnxruntime build offers it and a GPU is visible; else the CPU alone.

    Asking for CUDA without a GPU makes onnxruntime-gpu log errors about missing CUDA libraries and then
    fall back to the CPU anyway, so it is only asked for when it can work. ``forced`` (GANSERVE_PROVIDERS)
    is used as given.
    """
    if forced:
        return ProviderChoice(list(forced), "forced by GANSERVE_PROVIDERS")
    if CUDA not in available:
        return ProviderChoice([CPU], "this onnxruntime build has no CUDA provider")
    hidden = gpu_visible(dev, env)
    if hidden:
        return ProviderChoice([CPU], hidden)
    return ProviderChoice([CUDA, CPU], "an NVIDIA GPU is visible and onnxruntime offers CUDA")


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
