"""The label-free figures on known cases of real digits: what the instrument tests check, as a table.

    python -m benchmarks.label_free_check --image-size 16 --evaluator-epochs 4

Splits digits (by a fixed seed) into a reference half, a held-out quarter (the yardstick) and a spare quarter,
and prints every label-free figure for: the held-out quarter, the spare quarter (should score alike), held-out
and spare images without the digit 0, five real images repeated, and reference (training) images returned as
samples — in the evaluator's features, the autoencoder's, and the pixel PCA (``training.evaluate.pixels``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from training.data import load_dataset
from training.evaluate import (
    AutoencoderSettings,
    EvaluatorSettings,
    LabelFreeSettings,
    compare,
    fit_reference,
    get_autoencoder,
    get_evaluator,
)
from training.evaluate.label_free import FIGURES
from training.evaluate.pixels import PixelSpace


def rows(feats: np.ndarray, labels: np.ndarray, seed: int) -> list[tuple[str, object]]:
    perm = np.random.default_rng(seed).permutation(len(feats))
    half, quarter = len(perm) // 2, len(perm) * 3 // 4
    ref_idx, held_idx, spare_idx = perm[:half], perm[half:quarter], perm[quarter:]
    both = np.concatenate([ref_idx, held_idx])
    mask = np.r_[np.zeros(len(ref_idx), bool), np.ones(len(held_idx), bool)]
    ref = fit_reference(feats[both], mask, LabelFreeSettings())
    rest = np.concatenate([held_idx, spare_idx])
    n = len(held_idx)
    return [
        ("held-out real (yardstick)", ref.real),
        ("spare real", compare(ref, feats[spare_idx]).samples),
        ("real without digit 0", compare(ref, feats[rest[labels[rest] != 0]]).samples),
        (
            "5 real images repeated",
            compare(ref, np.resize(feats[spare_idx[:5]], (n, feats.shape[1]))).samples,
        ),
        ("training images", compare(ref, feats[ref_idx[:n]]).samples),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.label_free_check", description=__doc__)
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--evaluator-epochs", type=int, default=None)
    p.add_argument("--autoencoder-steps", type=int, default=AutoencoderSettings().steps)
    p.add_argument("--seed", type=int, default=1, help="seed of the split")
    p.add_argument("--cache-dir", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    real = load_dataset("digits", args.image_size, 1)
    evaluator = get_evaluator(real, EvaluatorSettings(epochs=args.evaluator_epochs), args.cache_dir)
    ae = get_autoencoder(
        real.images, real.name, AutoencoderSettings(steps=args.autoencoder_steps), args.cache_dir
    )
    spaces = {
        "evaluator": evaluator.predict(real.images)[1],
        "autoencoder": ae.features(real.images),
        "pixel PCA": PixelSpace.fit(real.images).features(real.images),
    }
    print("| features | set | " + " | ".join(FIGURES) + " |")
    print("|---|---|" + "---|" * len(FIGURES))
    for name, feats in spaces.items():
        for label, fig in rows(feats, real.labels, args.seed):
            print(f"| {name} | {label} | " + " | ".join(f"{getattr(fig, k):.3f}" for k in FIGURES) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
