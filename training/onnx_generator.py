"""An exported generator file opened for training's own use (evaluation, model cards), CPU only.

Training must not depend on the service's registry (data flows training → export → service), so this is
the small loader it needs: ONNX Runtime's session, the metadata and signature checked by the shared
contract (``gancore.contract``), and sampling through the contract's ``generate``, so evaluation and cards
see exactly the images the service would serve.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gancore.contract import (
    IMAGE,
    MetadataError,
    ModelMetadata,
    feeds,
    generate,
    session_metadata,
)


class GeneratorFileError(ValueError):
    """The file is not a usable generator of the contract; the message names the file and the problem."""


class GeneratorInfo(ModelMetadata):
    """The file's metadata plus its name (file stem) and the sha256 of its bytes."""

    name: str
    sha256: str


class OnnxGenerator:
    """One exported generator on ONNX Runtime's CPU provider (one thread: evaluation runs many in turn)."""

    def __init__(self, path: str | Path, intra_threads: int = 1):
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.log_severity_level = intra_threads, 3
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # OSError or ORT's own Fail/InvalidProtobuf types
            raise GeneratorFileError(
                f"{self.path}: not a loadable ONNX model ({str(exc).strip()[:300]})"
            ) from exc
        try:
            meta = session_metadata(self.session)
        except MetadataError as exc:
            raise GeneratorFileError(f"{self.path}: {exc}") from exc
        self.info = GeneratorInfo(
            **meta.model_dump(), name=self.path.stem, sha256=hashlib.sha256(data).hexdigest()
        )

    def run(self, z: np.ndarray, label: np.ndarray | None) -> np.ndarray:
        """Raw model call: float images [N, C, H, W] in [-1, 1]."""
        return self.session.run([IMAGE], feeds(z, label))[0]

    def generate(
        self, seed: int, indices: np.ndarray, label: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Images ``indices`` of (seed, label) as uint8 [N, H, W, C], with each image's class (or None)."""
        return generate(self.run, seed, indices, self.info.latent_dim, self.info.num_classes, label)
