"""Merge concurrent requests for one model into one ONNX Runtime run.

While a run is in flight, new requests queue; when it finishes, everything queued (up to ``max_rows``
rows) goes into the next run. An idle model runs a lone request at once, so batching adds no wait at low
load and fills batches exactly when the model is the bottleneck. Every row is computed from its own inputs,
so a request's images do not depend on what shares its batch.

The queue is bounded (as Triton's queue policy is): past ``max_queue_rows`` rows waiting, a request is
refused at once with ``QueueFull`` (the service answers 503 with Retry-After) instead of waiting without
bound behind work the model cannot catch up with. A request always gets in when nothing is waiting, so a
lone request larger than the bound still runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np


class QueueFull(Exception):
    """Too many rows are already waiting for this model; the caller should retry later."""

    def __init__(self, queued: int, rows: int, limit: int):
        self.queued, self.rows, self.limit = queued, rows, limit
        super().__init__(f"{queued} rows waiting, {rows} more asked for; the limit is {limit} rows")


@dataclass
class BatchStats:
    """What one model run did, for metrics: its rows and requests, run time, each request's queue wait."""

    rows: int
    requests: int
    run_seconds: float
    queue_waits: list[float]


@dataclass
class _Pending:
    z: np.ndarray
    label: np.ndarray | None
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """Queue of pending requests for one model and the loop that runs them in merged batches."""

    def __init__(
        self,
        run: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
        executor: Executor,
        max_rows: int,
        on_run: Callable[[BatchStats], None] | None = None,
        max_queue_rows: int | None = None,
        on_queue: Callable[[int], None] | None = None,
    ):
        self._run, self._executor, self.max_rows = run, executor, max_rows
        self.max_queue_rows = max_queue_rows  # None: unbounded
        self._on_run = on_run  # called with each model run's BatchStats
        self._on_queue = on_queue  # called with the rows waiting whenever that number changes
        self._pending: list[_Pending] = []
        self.queued_rows = 0  # rows waiting for a run (not those in the run in flight)
        self._draining = False

    async def submit(self, z: np.ndarray, label: np.ndarray | None) -> np.ndarray:
        """Queue one request's inputs; resolves to its rows of the model's output.

        Raises ``QueueFull`` at once when the rows waiting plus these would pass ``max_queue_rows``.
        """
        limit = self.max_queue_rows
        if limit is not None and self.queued_rows and self.queued_rows + len(z) > limit:
            raise QueueFull(self.queued_rows, len(z), limit)
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(z, label, future))
        self._queue_changed(len(z))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _queue_changed(self, delta: int) -> None:
        self.queued_rows += delta
        if self._on_queue:
            self._on_queue(self.queued_rows)

    def _take(self) -> list[_Pending]:
        batch, rows, taken = [], 0, 0
        while self._pending and (not batch or rows + len(self._pending[0].z) <= self.max_rows):
            item = self._pending.pop(0)
            taken += len(item.z)
            if item.future.cancelled():  # the client went away; skip its work
                continue
            batch.append(item)
            rows += len(item.z)
        self._queue_changed(-taken)
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._take()
                if not batch:
                    continue
                z = np.concatenate([p.z for p in batch]) if len(batch) > 1 else batch[0].z
                labels = None
                if batch[0].label is not None:
                    labels = np.concatenate([p.label for p in batch]) if len(batch) > 1 else batch[0].label
                started = time.perf_counter()
                try:
                    out = await loop.run_in_executor(self._executor, self._run, z, labels)
                except Exception as exc:  # every request of the failed run gets the error
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(exc)
                    continue
                if self._on_run:
                    waits = [started - p.queued_at for p in batch]
                    self._on_run(BatchStats(len(z), len(batch), time.perf_counter() - started, waits))
                start = 0
                for p in batch:
                    n = len(p.z)
                    if not p.future.done():
                        p.future.set_result(out[start : start + n])
                    start += n
        finally:
            self._draining = False
