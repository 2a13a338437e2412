"""Folders of images: class sub-folders → labelled classes; a plain folder → one unlabeled set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.cache import decode_cached
from training.data.dataset import DatasetError, ImageDataset
from training.data.images import DecodeSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in found
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


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
