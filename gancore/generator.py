"""The one loader of exported generators: ONNX Runtime sessions, validated, warmed up and described.

The service, the offline job, export checks and training's evaluation and cards all open a model file here.

Only ``*.onnx`` files are read, by ONNX Runtime's own parser (no pickle on the serving path). A file that
is not a valid generator of the contract raises ModelLoadError naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pydantic import Field

from gancore.contract import (
    IMAGE,
    MetadataError,
    ModelMetadata,
    feeds,
    generate,
    session_metadata,
)
from gancore.providers import CPU, choose_providers, provider_list

log = logging.getLogger("ganserve.generator")

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelLoadError(RuntimeError):
    """A models folder or file cannot be served; the message names the file and the problem."""


class ModelInfo(ModelMetadata):
    """A generator file's metadata, its name (the file stem), the SHA-256 of its bytes, the provider really
    in use and its card's quality figures; ``public()`` is what ``POST /models`` shows."""

    name: str
    sha256: str
    provider: str = ""
    quality: dict[str, Any] = Field(default_factory=dict)


def default_providers() -> list[str]:
    """The service's rule (``accel.choose_providers``): CUDA then CPU when the build offers CUDA and a GPU is
    visible, else the CPU alone — so a CPU machine never probes CUDA and logs its missing libraries."""
    return choose_providers(None, ort.get_available_providers()).providers


def model_threads(threads: int | None = None) -> int:
    """Threads one model call may use: ``threads`` (the service passes GANSERVE_THREADS), else every core."""
    return threads or (os.cpu_count() or 1)


def session_options() -> ort.SessionOptions:
    """One intra-op thread, always: a call's parallelism comes from splitting its rows (``run``).

    ONNX Runtime's own intra-op threading splits an operator's work by the thread count, and the floats it
    returns change with that count (measured on every shipped model: 1, 2 and 4 threads agree, 3 and 5–8 do
    not, and after rounding a few uint8 pixels of the 64×64×4 models differ). A single-threaded call per
    row block makes an image's bytes independent of how many threads or cores the process has.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


@cache
def _row_pool(workers: int) -> ThreadPoolExecutor:
    """The process's threads for the extra row blocks of CPU calls (the calling thread runs the first)."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ort-rows")


class GeneratorModel:
    """One loaded generator: validated metadata plus an ONNX Runtime session."""

    def __init__(self, path: Path, providers: list[str] | None = None, threads: int | None = None):
        self.path = Path(path)
        name = self.path.stem
        if not MODEL_NAME.match(name):
            raise ModelLoadError(f"{self.path}: model name {name!r} must match {MODEL_NAME.pattern}")
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"{self.path}: cannot read the file ({exc.strerror or exc})") from exc
        if not data:
            raise ModelLoadError(f"{self.path}: the file is empty")
        try:
            self.session = ort.InferenceSession(
                data,
                sess_options=session_options(),
                providers=provider_list(providers or default_providers()),
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types
            raise ModelLoadError(
                f"{self.path}: not a loadable ONNX model ({str(exc).strip()[:300]})"
            ) from exc
        self.provider = self.session.get_providers()[0]  # what is really used, not what was asked for
        # CPU calls of several rows run as up to ``threads`` row blocks at once; a GPU takes the whole batch.
        self.threads = model_threads(threads) if self.provider == CPU else 1
        self.info = self._validate(name, hashlib.sha256(data).hexdigest())

    def _validate(self, name: str, sha256: str) -> ModelInfo:
        try:
            meta = session_metadata(self.session)
        except MetadataError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from exc
        self.meta = meta
        quality_file = self.path.with_suffix(".json")
        quality = {}
        if quality_file.exists():
            try:
                quality = json.loads(quality_file.read_text()).get("quality", {})
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"{quality_file}: unreadable model card data ({exc})") from exc
        return ModelInfo(
            **meta.model_dump(), name=name, sha256=sha256, provider=self.provider, quality=quality
        )

    def run(self, z: np.ndarray, label: np.ndarray | None) -> np.ndarray:
        """Raw model call: float images [N, C, H, W] in [-1, 1].

        On the CPU the rows are split into up to ``threads`` near-equal blocks, run at once as
        single-threaded calls of this session (ONNX Runtime allows concurrent ``run`` calls; numpy and ORT
        release the GIL). Every image is computed alone whatever its block (tested), so the split changes
        speed, never bytes.
        """
        parts = min(self.threads, len(z))
        if parts <= 1:
            return self._run(z, label)
        edges = [len(z) * k // parts for k in range(parts + 1)]
        blocks = [
            (z[a:b], None if label is None else label[a:b]) for a, b in zip(edges, edges[1:], strict=False)
        ]
        pool = _row_pool(self.threads - 1)
        rest = [pool.submit(self._run, zb, lb) for zb, lb in blocks[1:]]
        first = self._run(*blocks[0])
        return np.concatenate([first, *(f.result() for f in rest)])

    def _run(self, z: np.ndarray, label: np.ndarray | None) -> np.ndarray:
        return self.session.run([IMAGE], feeds(z, label))[0]

    def generate(
        self, seed: int, indices: np.ndarray, label: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Images ``indices`` of (seed, label) as uint8 [N, H, W, C], with each image's class (or None)."""
        return generate(self.run, seed, indices, self.info.latent_dim, self.info.num_classes, label)

    def warm_up(self, batch_sizes: tuple[int, ...] = (1, 16)) -> None:
        for n in batch_sizes:
            self.generate(0, np.arange(n, dtype=np.uint64), None)


def model_paths(folder: str | Path) -> dict[str, Path]:
    """The models of ``folder`` by name: each visible ``*.onnx`` file, named by its stem, in name order.

    The one lookup of the service and the offline CLI, so both see the same models under the same names
    (a name never reaches the filesystem: it is looked up among the folder's files).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"models folder {folder} does not exist or is not a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix == ".onnx" and not p.name.startswith("."))
    return {p.stem: p for p in paths}


def check_models(folder: str | Path) -> list[ModelInfo]:
    """Validate every model of ``folder`` on the CPU without keeping it (fails fast before workers start)."""
    return [m.info for m in load_models(folder, ["CPUExecutionProvider"], threads=1).values()]


def load_models(
    folder: str | Path, providers: list[str] | None = None, threads: int | None = None
) -> dict[str, GeneratorModel]:
    """Every ``*.onnx`` in ``folder``, loaded and validated; raises ModelLoadError on the first bad one."""
    paths = model_paths(folder)
    if not paths:
        raise ModelLoadError(f"models folder {folder} holds no .onnx files")
    models = {}
    for path in paths.values():
        model = GeneratorModel(path, providers, threads)
        log.info("loaded %s from %s on %s", model.info.name, path, model.provider)
        models[model.info.name] = model
    return models
