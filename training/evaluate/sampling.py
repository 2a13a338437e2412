"""Loading an exported generator with its data set and evaluator, and sampling it as the service does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.data import ImageDataset, load_dataset
from training.evaluate import modes
from training.evaluate.autoencoder import AutoencoderSettings
from training.evaluate.evaluator import Evaluator, EvaluatorSettings
from training.evaluate.quality import Quality, evaluator_for, measure


def sample_model(model: Any, count: int, seed: int, batch: int = 500) -> tuple[np.ndarray, np.ndarray | None]:
    """``count`` images of ``model`` (a ``gancore.generator.GeneratorModel``) for ``seed``, with labels.

    Conditional models draw each image's class from the seed (the service's contract: uniform classes).
    """
    images, labels = [], []
    for start in range(0, count, batch):
        idx = np.arange(start, min(count, start + batch), dtype=np.uint64)
        imgs, classes = model.generate(seed, idx, None)
        images.append(imgs)
        if classes is not None:
            labels.append(classes)
    return np.concatenate(images), (np.concatenate(labels) if labels else None)


def evaluate_model(
    path: Path,
    dataset: str | None = None,
    samples: int = 5000,
    seed: int = 0,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    settings: EvaluatorSettings | None = None,
    autoencoder_settings: AutoencoderSettings | None = None,
) -> tuple[Quality, Any]:
    """Evaluate the generator in ``path`` (ONNX) against its data set; return (figures, loaded model)."""
    model, real, evaluator = load_for_evaluation(path, dataset, data_dir, cache_dir, settings)
    stacked = real.name == modes.DATASET
    # The 1000-mode benchmark counts modes among 26,000 samples; the other figures use the first ``samples``.
    images, labels = sample_model(model, max(samples, modes.SAMPLES) if stacked else samples, seed)
    quality = measure(
        images[:samples],
        evaluator,
        real,
        None if labels is None else labels[:samples],
        seed,
        cache_dir=cache_dir,
        autoencoder_settings=autoencoder_settings,
    )
    if stacked:
        quality.set_modes(
            modes.count_modes(images[: modes.SAMPLES]), modes.count_modes(modes.real_stacks(real.images))
        )
    return quality, model


def load_for_evaluation(
    path: Path,
    dataset: str | None = None,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    settings: EvaluatorSettings | None = None,
) -> tuple[Any, ImageDataset, Evaluator | None]:
    """(the ONNX generator on the CPU, its real data set, the evaluator for that data set).

    The evaluator is None for a data set without classes (one folder of images): its figures are label-free.
    """
    from gancore.generator import GeneratorModel
    from gancore.providers import CPU

    # On the CPU with one thread: evaluation runs many models in turn, and its figures must not depend on
    # the machine's GPU or core count (an image's bytes never do: each is computed alone).
    model = GeneratorModel(Path(path), [CPU], threads=1)
    channels, size, _ = model.info.image_shape
    real = load_dataset(dataset or model.info.dataset, size, channels, data_dir)
    if model.info.conditional and model.info.num_classes != real.num_classes:
        raise ValueError(
            f"{path}: the model has {model.info.num_classes} classes but the data set {real.name} has "
            f"{real.num_classes}"
        )
    evaluator = evaluator_for(real, settings, cache_dir)
    return model, real, evaluator
