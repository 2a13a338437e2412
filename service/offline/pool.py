"""Worker processes: each loads the model once and writes whole units; they die with the main process."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import resource
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path

from gancore.generator import GeneratorModel
from service.offline.errors import OfflineError
from service.offline.folder import UnitRecord
from service.offline.formats import UnitContext, get_format
from service.offline.layout import Unit
from service.offline.options import Options
from service.offline.validation import Job

_worker: dict = {}


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _die_with_parent(parent_pid: int) -> None:
    """Linux: a worker gets SIGKILL as soon as the main process dies, so that no orphan goes on writing
    after a kill -9 (a rerun would then race it); exit at once if the main process died before this."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(1)


def _init_worker(model_path: str, sha256: str, threads: int, counter, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    # ONNX Runtime's own messages stay on: the one provider rule asks for CUDA only where a GPU is visible, so
    # an error it logs is news.
    model = GeneratorModel(Path(model_path), threads=threads)
    if model.info.sha256 != sha256:
        raise OfflineError(f"{model_path}: the model file changed while the job ran")
    _worker.update(model=model, counter=counter)


def _count(n: int) -> None:
    counter = _worker["counter"]
    with counter.get_lock():
        counter.value += n


def _run_unit(job: Job, unit: Unit, out: str, opts: Options) -> tuple[UnitRecord, float]:
    """In a worker: write one unit; return its record and the CPU seconds it took (for the summary)."""
    cpu = cpu_seconds()
    ctx = UnitContext(_worker["model"], job, Path(out), opts, _count)
    record = get_format(job.format).write(ctx, unit)
    return record, cpu_seconds() - cpu


def execute(
    model: GeneratorModel,
    job: Job,
    pending: list[Unit],
    out: Path,
    opts: Options,
    bar,
    worker_cpu: list[float],
) -> Iterator[UnitRecord]:
    """Yield each pending unit's record as it is finished, in order; in-process or over worker processes
    (whose CPU seconds are added to ``worker_cpu[0]``)."""
    unit_format = get_format(job.format)
    if opts.workers == 1 or len(pending) <= 1:
        ctx = UnitContext(model, job, out, opts, bar.update)
        for unit in pending:
            yield unit_format.write(ctx, unit)
        return
    # spawn: never fork a process whose ONNX Runtime threads may be running; and the workers must be this
    # process's own children so that they die with it (a forkserver would keep them alive after a kill -9).
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    seen = 0
    with ProcessPoolExecutor(
        max_workers=min(opts.workers, len(pending)),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(str(model.path), job.model_sha256, opts.threads, counter, os.getpid()),
    ) as pool:
        queue: deque[Future] = deque()
        todo = iter(pending)
        try:
            while True:
                # Bounded: at most two units per worker in flight, so memory does not grow with the job.
                while len(queue) < 2 * opts.workers and (unit := next(todo, None)) is not None:
                    queue.append(pool.submit(_run_unit, job, unit, str(out), opts))
                if not queue:
                    break
                while not queue[0].done():
                    wait_futures([queue[0]], timeout=0.5)
                    seen = _tick(bar, counter, seen)
                seen = _tick(bar, counter, seen)
                record, cpu = queue.popleft().result()
                worker_cpu[0] += cpu
                yield record
        finally:
            for f in queue:
                f.cancel()


def _tick(bar, counter, seen: int) -> int:
    now = counter.value
    if now > seen:
        bar.update(now - seen)
    return now
