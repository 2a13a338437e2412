"""The one rule for ONNX Runtime's execution providers, used by the service, the offline job and training.

CUDA (then the CPU) when this onnxruntime build offers it and an NVIDIA GPU is visible; else the CPU alone.
Asking for CUDA without a GPU makes onnxruntime-gpu log errors about missing CUDA libraries and then fall
back to the CPU anyway, so it is only asked for when it can work.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
