"""How to run a job (processes, threads, batch size, progress): nothing here changes the files written."""

from __future__ import annotations

import os
from dataclasses import dataclass

from service.offline.errors import OfflineError

MAX_BATCH = 4096


@dataclass(frozen=True)
class Options:
    """How to run a job; none of these change the files written."""

    batch_size: int = 256
    workers: int = 1  # processes, each writing whole units (png: spreads the encoding over the cores)
    streams: int = 1  # concurrent model calls per process (threads; ORT and numpy release the GIL)
    threads: int = 1  # threads per model call (row blocks of single-threaded ORT runs)
    progress: bool = True
    manifest_every_s: float = 5.0


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_options(
    fmt: str,
    batch_size: int = 256,
    workers: int | None = None,
    streams: int | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> Options:
    """Fill in what is not given so the cores are used once. Formats that write one file per unit (npz,
    webdataset, parquet) run one process with one single-threaded model call per core in flight (threads:
    one call's noise, uint8 and PNG work overlap another's convolutions, and no process has to start);
    png runs one process per core, each writing its own folders (file creation holds the GIL)."""
    from service.offline.formats import get_format

    per_process = get_format(fmt).process_per_core
    cores = available_cores()
    workers = workers or (cores if per_process else 1)
    streams = streams or (1 if per_process else max(1, cores // workers))
    threads = threads or max(1, cores // (workers * streams))
    for name, value in (("--workers", workers), ("--streams", streams), ("--threads", threads)):
        if value < 1:
            raise OfflineError(f"{name}: must be at least 1, got {value}")
    if not 1 <= batch_size <= MAX_BATCH:
        raise OfflineError(f"--batch-size: must be in 1 … {MAX_BATCH}, got {batch_size}")
    return Options(batch_size, workers, streams, threads, progress)
