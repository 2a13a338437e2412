"""Atomic file writes: a final name only ever holds complete contents.

Every writer in the project (exports, checkpoints, caches, offline units and manifests) goes through here,
so a process killed mid-write leaves either the previous file or none at the final name, never a torn one.
Atomic against process kills (the rename is atomic on POSIX file systems); no fsync, so not against power
loss. Every temporary name is unique to its writer, so concurrent writers of one file cannot collide.
Torch-free: training imports it as well as the service.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def tmp_path(path: Path) -> Path:
    """A fresh temporary name for writing ``path``: hidden, in the same folder (so the rename stays on one
    file system), and unique to this call — process id and a random token — so that two writers of one file
    (two trainings decoding the same new folder, two ranks, two threads) never rename each other's file away.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def is_tmp(name: str) -> bool:
    """Whether a file name is one of :func:`tmp_path`'s (left behind by a killed writer)."""
    return name.startswith(".") and name.endswith(".tmp")


def stale_tmp_paths(path: Path) -> list[Path]:
    """Temporary files that writers of ``path`` left behind (a kill mid-write), for cleaning up."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return [path.with_name(n) for n in names if n.startswith(prefix) and is_tmp(n)]


@contextlib.contextmanager
def atomic_path(path: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on an exception it is removed.

    ``mode`` sets the final file's permissions (temporary files may be created private).
    """
    path = Path(path)
    tmp = tmp_path(path)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that the final name only ever holds complete contents; with several
    writers at once the last rename wins, and each rename moves a complete file."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)
