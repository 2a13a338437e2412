"""Folders of images: class sub-folders → labelled classes; a plain folder → one unlabeled set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from training.data.cache import decode_cached
from training.data.dataset import DatasetError, ImageDataset
from training.data.images import DecodeSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    """Image files in ``folder`` (and below, when ``recursive``), sorted; hidden files and folders skipped.

    ``os.walk`` reads each directory once with its entries' types: no stat per file on a 100,000-file folder.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [] if not recursive else [d for d in dirnames if not d.startswith(".")]
        found += [
            Path(dirpath, name)
            for name in filenames
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
        ]
    return sorted(found)


def scan_folder(root: Path) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """(files, labels, class names) of a data set folder; no class names for a plain folder."""
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"dataset path {root} is not a folder")
    loose = _images_in(root, recursive=False)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        if not loose:
            raise DatasetError(f"dataset folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return loose, np.zeros(len(loose), dtype=np.int64), ()
    if loose:
        raise DatasetError(
            f"dataset folder {root} holds both class sub-folders and loose images (e.g. {loose[0].name}): "
            "put every image in a class folder, or use a folder without sub-folders for an unlabeled set"
        )
    files: list[Path] = []
    labels: list[int] = []
    for index, folder in enumerate(classes):
        found = _images_in(folder, recursive=True)
        if not found:
            raise DatasetError(f"class folder {folder} holds no images")
        files += found
        labels += [index] * len(found)
    return files, np.asarray(labels, dtype=np.int64), tuple(p.name for p in classes)


def load_folder(
    root: Path, spec: DecodeSpec, cache_dir: Path, skip_bad: bool = False, workers: int = 0
) -> ImageDataset:
    """Decode (or map from the cache) every image under ``root`` at ``spec``'s size and channels."""
    files, labels, class_names = scan_folder(root)
    decoded = decode_cached(files, labels, spec, cache_dir, skip_bad, workers, describe=str(root))
    return ImageDataset(decoded.images, decoded.labels, class_names, f"folder:{root}")
