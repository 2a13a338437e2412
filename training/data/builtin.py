"""Built-in data sets: ``digits`` (scikit-learn's bundled 8×8 digits, no download), ``stacked-digits``
(three of them as the R, G and B channels: StackedMNIST's 1000-mode protocol on scikit-learn's digits,
since MNIST cannot always be downloaded), ``mnist`` and ``fashion-mnist`` (IDX files: Debian's
``dataset-fashion-mnist`` package when installed, else a cache folder, downloaded with checksum
verification when missing)."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.dataset import DatasetError, ImageDataset

# Official file names and MD5 sums (the ones the data sets' own pages publish).
IDX_SOURCES: dict[str, dict] = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"],
        "files": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        },
        "classes": tuple(str(i) for i in range(10)),
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "files": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        },
        "classes": (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),  # fmt: skip
    },
}

DEBIAN_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}  # apt: dataset-fashion-mnist


def idx_folder(name: str, data_dir: Path | None, cache_root: Path) -> Path:
    """Where an IDX set is read from: ``--data-dir``, else Debian's package, else the cache folder."""
    if data_dir is not None:
        return data_dir
    debian = DEBIAN_DIRS.get(name)
    if debian is not None and all(
        (debian / f).exists() or (debian / f.removesuffix(".gz")).exists() for f in IDX_SOURCES[name]["files"]
    ):
        return debian
    return cache_root / name


def builtin(
    spec: str, image_size: int, channels: int | None, data_dir: Path | None, cache_root: Path
) -> ImageDataset:
    """digits, stacked-digits, mnist or fashion-mnist at ``image_size`` with ``channels`` (default 1; 3 for
    stacked-digits), held in RAM."""
    if spec == "stacked-digits":
        return stacked_digits(image_size, channels)
    ds = _digits() if spec == "digits" else _idx_dataset(spec, idx_folder(spec, data_dir, cache_root))
    return ImageDataset(
        images=_resize_gray(ds.images, image_size, channels or 1),
        labels=ds.labels,
        class_names=ds.class_names,
        name=spec,
    )


def _digits() -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(bunch.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)[..., None]
    return ImageDataset(images, bunch.target.astype(np.int64), tuple(str(i) for i in range(10)), "digits")


STACKS = 50_000  # stacked-digits' images (StackedMNIST papers use 25,600-128,000)
STACK_SEED = 0  # fixed: the data set is the same whatever the training seed


def stack_indices(n: int = STACKS, seed: int = STACK_SEED) -> np.ndarray:
    """Which digit image each of the ``n`` stacks holds in its R, G and B channels: int64 [n, 3]."""
    return np.random.default_rng(seed).integers(0, 1797, size=(n, 3))


def stacked_digits(image_size: int, channels: int | None) -> ImageDataset:
    """StackedMNIST's protocol on scikit-learn's digits: each image holds three random digits as its R, G and
    B channels, so the data has 10³ = 1000 modes (the triple of classes). Unlabelled: the modes are read back
    by :mod:`training.evaluate.modes`, not given to the generator."""
    if channels not in (None, 3):
        raise DatasetError(f"stacked-digits has 3 channels (one digit in each): got --channels {channels}")
    digits = _digits()
    gray = _resize_gray(digits.images, image_size, 1)[..., 0]  # [1797, size, size]
    idx = stack_indices()
    images = np.stack([gray[idx[:, c]] for c in range(3)], axis=3)
    return ImageDataset(images, np.zeros(len(images), dtype=np.int64), (), "stacked-digits")


def _resize_gray(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resize single-channel uint8 images [N, h, w, 1] to [N, size, size, channels]."""
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for i, img in enumerate(images[..., 0]):
        resized = Image.fromarray(img, mode="L").resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(resized)
    out = out[..., None]
    if channels == 4:  # opaque alpha
        return np.concatenate([np.repeat(out, 3, axis=3), np.full_like(out, 255)], axis=3)
    return np.repeat(out, channels, axis=3)


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzip-compressed) of unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(data) < 4:
        raise DatasetError(f"{path}: not an IDX file (too short)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: IDX header says {shape} but the file holds {body.size} values")
    return body.reshape(shape)


def _idx_dataset(name: str, folder: Path) -> ImageDataset:
    source = IDX_SOURCES[name]
    paths = {}
    for fname, md5 in source["files"].items():
        path = folder / fname
        raw = folder / fname.removesuffix(".gz")
        if raw.exists() and not path.exists():
            paths[fname] = raw  # already unpacked by the user
            continue
        if not path.exists():
            _download(source["mirrors"], fname, md5, path)
        paths[fname] = path
    images = read_idx(paths["train-images-idx3-ubyte.gz"])
    labels = read_idx(paths["train-labels-idx1-ubyte.gz"]).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    return ImageDataset(images[..., None], labels, source["classes"], name)


def _download(mirrors: list[str], fname: str, md5: str, dest: Path) -> None:
    """Download ``fname`` from the first mirror that answers, verify its MD5, then move it in place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in mirrors:
        url = mirror + fname
        try:
            with (
                urllib.request.urlopen(url, timeout=30) as resp,
                tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp,
            ):
                shutil.copyfileobj(resp, tmp)
        except OSError as exc:
            errors.append(f"{url}: {exc}")
            continue
        digest = hashlib.md5(Path(tmp.name).read_bytes()).hexdigest()
        if digest != md5:
            os.unlink(tmp.name)
            errors.append(f"{url}: checksum {digest} != expected {md5}")
            continue
        os.replace(tmp.name, dest)
        return
    raise DatasetError(f"cannot download {fname} into {dest.parent}: " + "; ".join(errors))
