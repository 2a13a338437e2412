"""Atomic file writes: a final name only ever holds complete contents.

Every writer in the project (exports, checkpoints, caches, offline units and manifests) goes through here,
so a process killed mid-write leaves either the previous file or none at the final name, never a torn one.
Atomic against process kills (the rename is atomic on POSIX file systems); no fsync, so not against power
loss. Torch-free: training imports it as well as the service.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def tmp_path(path: Path, unique: bool = False) -> Path:
    """The temporary name of ``path``: hidden, in the same folder (so the rename stays on one file system).

    With ``unique`` the name carries the process id, for files that several processes may write at once.
    """
    path = Path(path)
    suffix = f".{os.getpid()}.tmp" if unique else ".tmp"
    return path.with_name(f".{path.name}{suffix}")


def is_tmp(name: str) -> bool:
    """Whether a file name is one of :func:`tmp_path`'s (left behind by a killed writer)."""
    return name.startswith(".") and name.endswith(".tmp")


@contextlib.contextmanager
def atomic_path(path: Path, mode: int | None = None, unique: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on an exception it is removed.

    ``mode`` sets the final file's permissions (temporary files may be created private).
    """
    path = Path(path)
    tmp = tmp_path(path, unique)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_atomic(path: Path, data: bytes, mode: int | None = None, unique: bool = False) -> None:
    """Write ``data`` to ``path`` so that the final name only ever holds complete contents."""
    with atomic_path(path, mode, unique) as tmp:
        tmp.write_bytes(data)
