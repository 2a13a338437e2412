"""The in-memory (or memory-mapped) form every data set takes, and the error all loaders raise."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A data set cannot be used; the message says which file or setting and why."""


@dataclass(frozen=True)
class ImageDataset:
    """uint8 images held once (in RAM, or memory-mapped from the decoded cache) with integer labels.

    ``class_names`` is empty for an unlabeled set (a plain folder of images): every label is 0 and the set
    cannot train a conditional model.
    """

    images: np.ndarray  # uint8 [N, H, W, C]; an np.memmap for decoded folders
    labels: np.ndarray  # int64 [N]
    class_names: tuple[str, ...]
    name: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labeled(self) -> bool:
        return bool(self.class_names)

    def as_float(self) -> np.ndarray:
        """All images as float32 [N, C, H, W] in [-1, 1] (4× the uint8 size: for small sets and tests;
        training converts per batch through :class:`training.data.loader.BatchLoader`)."""
        return (self.images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5) - 1.0


def default_data_dir() -> Path:
    """Root of downloaded and decoded data (``GANSERVE_DATA_DIR``, else ``~/.cache/ganserve/datasets``)."""
    return Path(os.environ.get("GANSERVE_DATA_DIR", Path.home() / ".cache" / "ganserve" / "datasets"))
