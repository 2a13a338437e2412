"""Where a training run executes: its device, its precision and its processes (torchrun).

``torchrun --nproc-per-node N -m training train ...`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; each
process then trains its share of the global batch and DistributedDataParallel averages the gradients (gloo on
the CPU, NCCL on CUDA). Without those variables a run is one process.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(ValueError):
    """The requested device cannot be used here; the message names ``--device``."""


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, samples and metrics."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def processes_from_env() -> Processes:
    """The process layout torchrun announces in the environment (one process when it is absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Processes()
    return Processes(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(spec: str, procs: Processes) -> torch.device:
    """The device of ``--device SPEC`` for this process; DeviceError when it does not exist here.

    Under torchrun ``cuda`` (or ``auto`` on a CUDA machine) gives each rank ``cuda:LOCAL_RANK``.
    """
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = (
            "this PyTorch has no CUDA support" if torch.version.cuda is None else "no CUDA device is visible"
        )
        raise DeviceError(f"--device {spec}: CUDA is not available ({why}); use --device cpu or auto")
    count = torch.cuda.device_count()
    if spec in ("auto", "cuda"):
        index = procs.local_rank if procs.distributed else torch.cuda.current_device()
    else:
        if procs.distributed:
            raise DeviceError(
                f"--device {spec} names one GPU; under torchrun use --device cuda "
                "(each rank takes cuda:LOCAL_RANK)"
            )
        index = int(spec.split(":", 1)[1])
    if index >= count:
        raise DeviceError(f"--device {spec}: cuda:{index} does not exist ({count} CUDA device(s) visible)")
    return torch.device("cuda", index)


def start_process_group(procs: Processes, device: torch.device) -> bool:
    """Join torchrun's process group (NCCL on CUDA, gloo on the CPU); True when this call created it."""
    if not procs.distributed or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device, timeout=datetime.timedelta(minutes=10))
    else:
        dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=10))
    return True


def stop_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def mean_across(values: torch.Tensor, procs: Processes) -> torch.Tensor:
    """The mean of ``values`` over the processes (itself in one process)."""
    if not procs.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / procs.world


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to the precision's dtype; fp32 is no context at all (today's exact arithmetic)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Float32 inside a mixed-precision region (the gradient penalty: a known source of NaNs in fp16)."""
    with torch.autocast(device.type, enabled=False):
        yield
