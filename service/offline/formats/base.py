"""The interface every output format implements, and the batch stream they all draw images from.

A format is one module: a :class:`UnitFormat` subclass naming its unit's final path and writing one unit.
Formats that write one file per unit subclass :class:`FileFormat` and only stream the file's contents to a
temporary path; renaming it into place, and the manifest record, are done here.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from gancore.files import atomic_path, stale_tmp_paths
from gancore.generator import GeneratorModel
from service.offline.folder import UnitRecord, record_of
from service.offline.layout import Unit
from service.offline.options import Options
from service.offline.validation import Job

# One model call's output: (indices uint64 [n], images uint8 [n, H, W, C], classes int64 [n] or None).
Batch = tuple[np.ndarray, np.ndarray, np.ndarray | None]


@dataclass
class UnitContext:
    """What writing a unit needs: the model, the job, the output folder, speed options, a progress sink."""

    model: GeneratorModel
    job: Job
    out: Path
    opts: Options
    progress: Callable[[int], None]

    def label_row(self) -> np.ndarray | None:
        return None if self.job.label is None else np.asarray(self.job.label, dtype=np.float32)

    def batches(self, indices: np.ndarray, encode: Callable[[Batch], Any] | None = None) -> Iterator[Any]:
        """``encode(batch)`` for each model call over ``indices``, in order, from GeneratorModel.generate
        (the service's code path). With ``opts.streams`` > 1 that many batches are generated *and encoded*
        at once on threads (ORT and numpy release the GIL), at most ``2 × streams`` in flight so
        memory stays bounded. Progress is reported as each batch is handed over."""
        job, model, label, size = self.job, self.model, self.label_row(), self.opts.batch_size

        def one(idx: np.ndarray) -> Any:
            batch = (idx, *model.generate(job.seed, idx, label))
            return batch if encode is None else encode(batch)

        chunks = (indices[i : i + size] for i in range(0, len(indices), size))
        if self.opts.streams <= 1:
            for idx in chunks:
                result = one(idx)
                self.progress(len(idx))
                yield result
            return
        with ThreadPoolExecutor(self.opts.streams) as pool:
            queue: deque[tuple[int, Future]] = deque()
            try:
                for idx in chunks:
                    queue.append((len(idx), pool.submit(one, idx)))
                    if len(queue) >= 2 * self.opts.streams:
                        n, future = queue.popleft()
                        result = future.result()
                        self.progress(n)
                        yield result
                while queue:
                    n, future = queue.popleft()
                    result = future.result()
                    self.progress(n)
                    yield result
            finally:
                for _, future in queue:
                    future.cancel()


class UnitFormat:
    """One output format. Subclasses set the class attributes and implement :meth:`unit_path` and
    :meth:`write`; everything else (units, resume, shards, manifests, workers) is shared."""

    name: ClassVar[str]
    default_shard_size: ClassVar[int]
    max_shard_size: ClassVar[int]
    # Default to one process per core (each writing whole units) rather than threads in one process:
    # for formats whose per-image work holds the GIL (creating one file per image).
    process_per_core: ClassVar[bool] = False
    checksums: ClassVar[str]  # what a manifest record's sha256 covers, in words

    def unit_path(self, unit: Unit) -> str:
        """Relative path of the file whose presence marks ``unit`` complete."""
        raise NotImplementedError

    def write(self, ctx: UnitContext, unit: Unit) -> UnitRecord:
        """Generate and write ``unit``, ending with its :meth:`unit_path` file; return its record."""
        raise NotImplementedError

    def clean(self, out: Path, unit: Unit) -> None:
        """Remove what a killed run left of an unfinished unit (before it is written again)."""
        for stale in stale_tmp_paths(out / self.unit_path(unit)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


class FileFormat(UnitFormat):
    """A format that writes one file per unit: ``NNNNNN.<suffix>``, or grouped in sub-folders of
    ``units_per_folder`` when set."""

    suffix: ClassVar[str]
    units_per_folder: ClassVar[int | None] = None
    checksums = "sha256 of each unit's file"

    def unit_path(self, unit: Unit) -> str:
        name = f"{unit.number:06d}.{self.suffix}"
        if self.units_per_folder is None:
            return name
        return f"{unit.number // self.units_per_folder:04d}/{name}"

    def write(self, ctx: UnitContext, unit: Unit) -> UnitRecord:
        rel = self.unit_path(unit)
        path = ctx.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            self.write_file(ctx, unit, tmp)
        return record_of(ctx.out, rel, unit.first, unit.count)

    def write_file(self, ctx: UnitContext, unit: Unit, path: Path) -> None:
        """Write the whole unit to ``path`` (a temporary name), streaming: memory is a few batches."""
        raise NotImplementedError
