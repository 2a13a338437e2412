"""Batches for the training loop: uint8 rows gathered, converted to float [-1, 1] on the training device.

The batch order belongs to the caller (``index_fn(cursor)``, a pure function of seed and epoch), so which
images a step sees never depends on the number of workers or on timing. With ``workers`` > 0 and a
memory-mapped set, worker processes gather the next few batches ahead from the cache file; on CUDA the uint8
batch is pinned and copied asynchronously, and only then converted to float on the device.
"""

from __future__ import annotations

import multiprocessing
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np
import torch

from training.data.gather import open_images, take, take_mapped


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, C] → float32 [B, C, H, W] in [-1, 1] (the generator's output range).

    The same float32 operations as ``ImageDataset.as_float`` in the same order, so the values are
    bit-identical to converting the whole set up front (as training did before).
    """
    n, h, w, c = batch.shape
    # The strides matter too: they are the ones the old whole-set conversion produced (NHWC memory for
    # colour, plain NCHW for one channel), so convolutions pick the same kernels and give the same bits.
    nchw = batch.view(n, 1, h, w) if c == 1 else batch.permute(0, 3, 1, 2)
    return nchw.float() / 127.5 - 1.0


class BatchLoader:
    """``get(cursor)`` → (float images on ``device``, their indices), optionally prefetched by workers."""

    def __init__(
        self,
        images: np.ndarray,
        index_fn: Callable[[int], torch.Tensor],
        device: torch.device | str = "cpu",
        workers: int = 0,
        prefetch: int = 0,
    ):
        self.images, self.index_fn = images, index_fn
        self.device = torch.device(device)
        self._pin = self.device.type == "cuda"
        self._pool: ProcessPoolExecutor | None = None
        self._ahead: dict[int, Future] = {}
        filename = getattr(images, "filename", None)
        # Workers only pay off for a mapped file (they read it themselves); an in-RAM set would be pickled.
        if workers > 0 and filename is not None:
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=open_images,
                initargs=(str(filename),),
            )
            weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)
        self.prefetch = prefetch or 2 * workers

    def _rows(self, cursor: int, index: np.ndarray) -> np.ndarray:
        if self._pool is None:
            return take(self.images, index)
        for c in list(self._ahead):
            if c < cursor:  # a resume or rewind: batches fetched for another position are dropped
                self._ahead.pop(c).cancel()
        future = self._ahead.pop(cursor, None) or self._pool.submit(take_mapped, index)
        for c in range(cursor + 1, cursor + 1 + self.prefetch):
            if c not in self._ahead:
                self._ahead[c] = self._pool.submit(take_mapped, self.index_fn(c).numpy())
        return future.result()

    def get(self, cursor: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch at ``cursor``: (float32 [B, C, H, W] on the device, int64 indices [B])."""
        index = self.index_fn(cursor)
        batch = torch.from_numpy(self._rows(cursor, index.numpy()))
        if self._pin:
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        elif batch.device != self.device:
            batch = batch.to(self.device)
        return to_float(batch), index

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
