"""Where the networks the evaluation trains on the real data (classifier ensemble, autoencoder) are cached.

A cached network is a pure function of (data set, image shape, settings, version), so the key holds all four;
files are written atomically (concurrent evaluations never read a half-written file).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from gancore.files import atomic_path


def default_cache_dir() -> Path:
    """``$GANSERVE_CACHE_DIR/evaluators`` (default ``~/.cache/ganserve/evaluators``)."""
    return Path(os.environ.get("GANSERVE_CACHE_DIR", Path.home() / ".cache" / "ganserve")) / "evaluators"


def cache_path(
    folder: Path | None, kind: str, dataset: str, shape: tuple[int, int, int], settings: Any, version: int
) -> Path:
    """The file of network ``kind`` ("" for the classifier, whose key predates the others)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", dataset)[:40]
    digest = hashlib.sha256(json.dumps([dataset, shape, asdict(settings)]).encode()).hexdigest()[:12]
    prefix = f"{kind}-" if kind else ""
    name = f"{prefix}{slug}-{shape[0]}x{shape[1]}x{shape[2]}-v{version}-{digest}.pt"
    return (Path(folder) if folder else default_cache_dir()) / name


def save_blob(path: Path, blob: dict[str, Any]) -> None:
    """``torch.save`` through a unique temporary file, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_blob(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)
