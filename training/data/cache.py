"""Decode a list of image files once into a ``.npy`` cache and memory-map it on later runs.

The cache key covers everything the decoded pixels depend on: each file's path, size and modification time,
the training size, channels and pad colour, and the decoder's version. Decoding streams rows straight into
the cache file, so memory stays bounded by one chunk of images whatever the set's size; a later run maps the
file and starts in seconds. Files are written through ``gancore.files.atomic_path`` (a killed run leaves no
torn cache).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import struct
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from gancore.files import atomic_path, tmp_path
from training.data.dataset import DatasetError
from training.data.images import DECODER_VERSION, DecodeSpec, decode_file

SHOWN_BAD = 5  # names printed when bad files are skipped


@dataclass(frozen=True)
class Decoded:
    images: np.ndarray  # uint8 [N, size, size, channels], memory-mapped
    labels: np.ndarray  # int64 [N]
    skipped: tuple[str, ...]  # files left out (with skip_bad)
    path: Path  # the cache file
    from_cache: bool  # True when an earlier run's decode was reused


def cache_key(files: Sequence[Path], labels: np.ndarray, spec: DecodeSpec, skip_bad: bool) -> str:
    """A digest of the file list (paths, sizes, mtimes), the labels and the decoding settings."""
    h = hashlib.sha256()
    h.update(json.dumps([DECODER_VERSION, spec.size, spec.channels, list(spec.pad), skip_bad]).encode())
    for path, label in zip(files, labels.tolist(), strict=True):
        st = os.stat(path)
        h.update(f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{label}\n".encode())
    return h.hexdigest()[:32]


def _npy_header(shape: tuple[int, ...], length: int) -> bytes:
    """A version-1.0 ``.npy`` header for uint8 ``shape``, padded with spaces to exactly ``length`` bytes.

    Fixed length so the row count can be rewritten in place once bad files have been left out.
    """
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (shape,)  # noqa: UP031
    body = length - 10
    if len(text) + 1 > body:
        raise ValueError("header too long")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + (text.ljust(body - 1) + "\n").encode("latin1")


def _header_length(shape: tuple[int, ...]) -> int:
    need = 10 + len("{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (shape,)) + 1  # noqa: UP031
    return -(-need // 64) * 64 + 64  # room for a shorter or longer count, aligned as numpy aligns


def _decode_one(path: Path, spec: DecodeSpec) -> tuple[np.ndarray | None, str]:
    try:
        return decode_file(path, spec), ""
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _decoded_rows(
    files: Sequence[Path], spec: DecodeSpec, workers: int
) -> Iterator[tuple[np.ndarray | None, str]]:
    """Decoded images in file order, by ``workers`` processes (0: in this one)."""
    fn = partial(_decode_one, spec=spec)
    if workers <= 0 or len(files) < 256:
        yield from map(fn, files)
        return
    # spawn, not fork: the parent may hold torch's threads, which a forked child would inherit broken.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(fn, files, chunksize=64)


def decode_cached(
    files: Sequence[Path],
    labels: np.ndarray,
    spec: DecodeSpec,
    cache_dir: Path,
    skip_bad: bool = False,
    workers: int = 0,
    describe: str = "",
) -> Decoded:
    """Decode ``files`` (with their ``labels``) to uint8 arrays, reusing the cache when it matches.

    A file Pillow cannot read raises DatasetError naming it, unless ``skip_bad``: then it is left out and
    the count with the first few names is printed to stderr.
    """
    key = cache_key(files, labels, spec, skip_bad)
    images_path = cache_dir / f"{key}.npy"
    meta_path = cache_dir / f"{key}.json"
    if images_path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            images = np.load(images_path, mmap_mode="r")
            kept = np.asarray(meta["kept"], dtype=np.int64)
            if images.shape == (len(kept), spec.size, spec.size, spec.channels):
                skipped = tuple(meta["skipped"])
                _report_skipped(skipped, describe)
                return Decoded(images, labels[kept], skipped, images_path, True)
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache is rebuilt below
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        probe = tmp_path(cache_dir / f"{key}.probe")  # unique: concurrent decoders probe at once
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise DatasetError(
            f"cannot write the decoded-image cache in {cache_dir} ({exc}); set GANSERVE_DATA_DIR to a "
            "writable folder"
        ) from exc
    n, row = len(files), spec.size * spec.size * spec.channels
    kept_list: list[int] = []
    bad: list[str] = []
    header_len = _header_length((n, spec.size, spec.size, spec.channels))
    print(f"decoding {n} images{' of ' + describe if describe else ''} into {images_path}", file=sys.stderr)
    with atomic_path(meta_path) as meta_tmp, atomic_path(images_path) as tmp:
        with open(tmp, "wb") as f:
            f.write(_npy_header((n, spec.size, spec.size, spec.channels), header_len))
            for i, (arr, error) in enumerate(_decoded_rows(files, spec, workers)):
                if arr is None:
                    if not skip_bad:
                        raise DatasetError(
                            f"cannot read image {files[i]}: {error} (pass --skip-bad-images to leave such "
                            "files out)"
                        )
                    bad.append(str(files[i]))
                    continue
                f.write(arr.tobytes())
                kept_list.append(i)
            if len(kept_list) < n:  # rewrite the row count in place; the header keeps its length
                f.seek(0)
                f.write(_npy_header((len(kept_list), spec.size, spec.size, spec.channels), header_len))
                f.truncate(header_len + len(kept_list) * row)
        if not kept_list:
            raise DatasetError(f"no readable images in {describe or 'the data set'} ({len(bad)} bad files)")
        meta_tmp.write_text(json.dumps({"kept": kept_list, "skipped": bad, "spec": str(spec)}))
    _report_skipped(tuple(bad), describe)
    kept = np.asarray(kept_list, dtype=np.int64)
    return Decoded(np.load(images_path, mmap_mode="r"), labels[kept], tuple(bad), images_path, False)


def _report_skipped(skipped: tuple[str, ...], describe: str) -> None:
    if skipped:
        names = ", ".join(skipped[:SHOWN_BAD]) + (", …" if len(skipped) > SHOWN_BAD else "")
        where = f" in {describe}" if describe else ""
        print(f"warning: skipped {len(skipped)} unreadable image(s){where}: {names}", file=sys.stderr)
