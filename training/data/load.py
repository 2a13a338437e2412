"""One entry point from a data set spec (``digits``, ``stacked-digits``, ``mnist``, ``fashion-mnist``,
``emoji``, ``folder:PATH``) to an :class:`ImageDataset` at the training size."""

from __future__ import annotations

from pathlib import Path

from training import SUPPORTED_CHANNELS, SUPPORTED_IMAGE_SIZES
from training.data import emoji
from training.data.builtin import IDX_SOURCES, builtin
from training.data.cache import decode_cached
from training.data.dataset import DatasetError, ImageDataset, default_data_dir
from training.data.folders import load_folder
from training.data.images import DecodeSpec, parse_colour

SPECS = "digits, stacked-digits, mnist, fashion-mnist, emoji or folder:PATH"


def load_dataset(
    spec: str,
    image_size: int,
    channels: int | None = None,
    data_dir: str | Path | None = None,
    *,
    pad: str = "black",
    skip_bad_images: bool = False,
    skin_tones: bool = False,
    workers: int = 0,
) -> ImageDataset:
    """Load a data set by spec, at ``image_size`` with ``channels`` channels (default: the set's own).

    Folders and emoji are decoded once into the cache under ``GANSERVE_DATA_DIR`` and memory-mapped from it
    afterwards. Raises DatasetError with a message naming the problem before any training starts.
    """
    if image_size not in SUPPORTED_IMAGE_SIZES:
        sizes = ", ".join(map(str, SUPPORTED_IMAGE_SIZES))
        raise DatasetError(f"image size {image_size} is not supported; choose one of {sizes}")
    if channels is not None and channels not in SUPPORTED_CHANNELS:
        raise DatasetError(
            f"channels {channels} is not supported; choose one of {', '.join(map(str, SUPPORTED_CHANNELS))}"
        )
    try:
        rgb = parse_colour(pad)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    root = default_data_dir()
    folder = Path(data_dir) if data_dir else None
    decoded_cache = root / "decoded"
    if spec in ("digits", "stacked-digits") or spec in IDX_SOURCES:
        return builtin(spec, image_size, channels, folder, root)
    if spec == "emoji":
        package = emoji.locate(folder, root)
        files, labels, names = emoji.catalogue(package, skin_tones)
        out = decode_cached(
            files,
            labels,
            DecodeSpec(image_size, channels or 4, rgb),
            decoded_cache,
            skip_bad_images,
            workers,
            describe=f"{emoji.PACKAGE}@{emoji.VERSION}",
        )
        return ImageDataset(out.images, out.labels, names, "emoji")
    if spec.startswith("folder:"):
        path = Path(spec.removeprefix("folder:")).expanduser()
        spec_ = DecodeSpec(image_size, channels or 3, rgb)
        return load_folder(path, spec_, decoded_cache, skip_bad_images, workers)
    raise DatasetError(f"unknown dataset {spec!r}; use {SPECS}")
