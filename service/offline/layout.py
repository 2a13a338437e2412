"""Which images go where: units aligned to absolute indices, and each worker's contiguous slice of them.

The index range [start, start + count) is cut into *units* (unit n holds images n·S … n·S + S − 1, clipped
to the range). With ``shard_count`` M, worker K takes a contiguous slice of the units, so M workers write
exactly the files one worker would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gancore.contract import image_indices
from service.offline.errors import OfflineError
from service.offline.validation import Job


@dataclass(frozen=True)
class Unit:
    """One file (npz, tar, parquet) or one png folder: images first … first + count − 1."""

    number: int
    first: int
    count: int

    def indices(self) -> np.ndarray:
        return image_indices(self.first, self.count)


def _unit_range(job: Job, shard_index: int) -> tuple[int, int]:
    """Unit numbers [lo, hi) of worker ``shard_index``: a contiguous slice, as even as integers allow."""
    if not 0 <= shard_index < job.shard_count:
        raise OfflineError(f"--shard-index: must be in 0 … {job.shard_count - 1}, got {shard_index}")
    s = job.shard_size
    first_unit, last_unit = job.start // s, (job.start + job.count - 1) // s
    total = last_unit - first_unit + 1
    lo = first_unit + shard_index * total // job.shard_count
    return lo, first_unit + (shard_index + 1) * total // job.shard_count


def my_units(job: Job, shard_index: int) -> Iterator[Unit]:
    """The units worker ``shard_index`` of ``job.shard_count`` writes, clipped to the job's index range."""
    lo, hi = _unit_range(job, shard_index)
    s, end = job.shard_size, job.start + job.count
    for n in range(lo, hi):
        a, b = max(n * s, job.start), min((n + 1) * s, end)
        yield Unit(n, a, b - a)


def shard_images(job: Job, shard_index: int) -> int:
    """How many images worker ``shard_index`` writes."""
    lo, hi = _unit_range(job, shard_index)
    s = job.shard_size
    return 0 if hi == lo else min(hi * s, job.start + job.count) - max(lo * s, job.start)


def sample_key(index: int) -> str:
    """An image's name inside a unit: its zero-padded index (no dots, so WebDataset keeps it whole)."""
    return f"{index:09d}"


def manifest_name(job: Job, shard_index: int) -> str:
    if job.shard_count == 1:
        return "manifest.json"
    return f"manifest-{shard_index:04d}-of-{job.shard_count:04d}.json"
