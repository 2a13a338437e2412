"""Command-line arguments → a validated :class:`Job`: each limit checked, each error naming its flag."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from gancore.contract import MAX_SEED, resolve_label
from gancore.generator import MODEL_NAME, GeneratorModel, ModelLoadError, model_paths
from service.offline.errors import OfflineError

LAYOUT_VERSION = 1


@dataclass(frozen=True)
class Job:
    """What an output folder holds; two commands with equal Jobs write identical files."""

    model: str
    model_sha256: str
    image_shape: list[int]
    seed: int
    label: list[float] | None  # the resolved one-hot (or soft) row; None: drawn per image from the seed
    start: int
    count: int
    format: str
    shard_size: int
    shard_count: int
    layout: int = LAYOUT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def find_model(models_dir: str | Path, name: str) -> Path:
    """The ``.onnx`` file of model ``name`` in ``models_dir``, by the service's own lookup
    (:func:`gancore.generator.model_paths`), so the name itself never reaches the filesystem."""
    if not MODEL_NAME.match(name):
        raise OfflineError(f"--model: {name!r} is not a model name (must match {MODEL_NAME.pattern})")
    try:
        found = model_paths(models_dir)
    except ModelLoadError as exc:
        raise OfflineError(f"--models-dir: {models_dir} does not exist or is not a folder") from exc
    if name not in found:
        known = ", ".join(found) or "none"
        raise OfflineError(f"--model: no model {name!r} in {models_dir} (models there: {known})")
    return found[name]


def parse_label(text: str | None) -> int | str | list[float] | None:
    """CLI label text → what resolve_label takes: a JSON list, a class index, or else a class name."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise OfflineError(f"--label: not a JSON list of numbers ({exc})") from exc
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise OfflineError("--label: a one-hot list must hold numbers only")
        return value
    return int(stripped) if stripped.isdigit() else text


def shard_from_env(shard_index: int | None, environ: dict[str, str] | None = None) -> int:
    """``--shard-index`` when given, else Kubernetes' JOB_COMPLETION_INDEX, else 0."""
    if shard_index is not None:
        return shard_index
    raw = (os.environ if environ is None else environ).get("JOB_COMPLETION_INDEX", "")
    if not raw:
        return 0
    if not raw.isdigit():
        raise OfflineError(f"JOB_COMPLETION_INDEX: must be a non-negative integer, got {raw!r}")
    return int(raw)


def make_job(
    model: GeneratorModel,
    *,
    seed: int,
    count: int,
    start: int = 0,
    label: int | str | list[float] | None = None,
    fmt: str = "npz",
    shard_size: int | None = None,
    shard_count: int = 1,
) -> Job:
    """Validate the arguments against their limits and the model, and pin them as a Job."""
    from service.offline.formats import get_format

    info = model.info
    unit_format = get_format(fmt)
    if not 0 <= seed <= MAX_SEED:
        raise OfflineError(f"--seed: must be in 0 … {MAX_SEED}, got {seed}")
    if count < 1:
        raise OfflineError(f"--count: must be at least 1, got {count}")
    if start < 0:
        raise OfflineError(f"--start: must be at least 0, got {start}")
    if start + count > 2**64:
        raise OfflineError(f"--start + --count: image indices must stay below 2**64, got {start + count}")
    size = unit_format.default_shard_size if shard_size is None else shard_size
    if not 1 <= size <= unit_format.max_shard_size:
        limit = unit_format.max_shard_size
        raise OfflineError(f"--shard-size: must be in 1 … {limit} for {fmt}, got {size}")
    if shard_count < 1:
        raise OfflineError(f"--shard-count: must be at least 1, got {shard_count}")
    try:
        row = resolve_label(label, info.num_classes, info.class_names)
    except ValueError as exc:
        raise OfflineError(f"--{exc}") from exc
    return Job(
        model=info.name,
        model_sha256=info.sha256,
        image_shape=list(info.image_shape),
        seed=seed,
        label=None if row is None else [float(v) for v in row],
        start=start,
        count=count,
        format=fmt,
        shard_size=size,
        shard_count=shard_count,
    )
