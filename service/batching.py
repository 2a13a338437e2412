"""Merge concurrent requests for one model into one ONNX Runtime run.

While a run is in flight, new requests queue; when it finishes, everything queued (up to ``max_rows``
rows) goes into the next run. An idle model runs a lone request at once, so batching adds no wait at low
load and fills batches exactly when the model is the bottleneck. Every row is computed from its own inputs,
so a request's images do not depend on what shares its batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np


@dataclass
class _Pending:
    z: np.ndarray
    label: np.ndarray | None
    future: asyncio.Future


class Batcher:
    """Queue of pending requests for one model and the loop that runs them in merged batches."""

    def __init__(
        self,
        run: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
        executor: Executor,
        max_rows: int,
        on_run: Callable[[int, int], None] | None = None,
    ):
        self._run, self._executor, self.max_rows = run, executor, max_rows
        self._on_run = on_run  # called with (rows, requests) after each model run
        self._pending: list[_Pending] = []
        self._draining = False

    async def submit(self, z: np.ndarray, label: np.ndarray | None) -> np.ndarray:
        """Queue one request's inputs; resolves to its rows of the model's output."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(z, label, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _take(self) -> list[_Pending]:
        batch, rows = [], 0
        while self._pending and (not batch or rows + len(self._pending[0].z) <= self.max_rows):
            item = self._pending.pop(0)
            if item.future.cancelled():  # the client went away; skip its work
                continue
            batch.append(item)
            rows += len(item.z)
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
                try:
                    out = await loop.run_in_executor(self._executor, self._run, z, labels)
                except Exception as exc:  # every request of the failed run gets the error
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(exc)
                    continue
                if self._on_run:
                    self._on_run(len(z), len(batch))
                start = 0
                for p in batch:
                    n = len(p.z)
                    if not p.future.done():
                        p.future.set_result(out[start : start + n])
                    start += n
        finally:
            self._draining = False
