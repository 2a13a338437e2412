"""The 1000-mode benchmark's instrument: which of stacked-digits' 10³ modes a generator draws, and how evenly.

StackedMNIST's protocol (Metz et al. 2017; VEEGAN; PacGAN; R3GAN): classify each channel of a sample with a
digit classifier; the sample's mode is the triple of classes. Reported over 26,000 samples: the modes with at
least one sample, and KL(sample modes ‖ uniform over the 1000). Here the digits are scikit-learn's 8×8 ones,
classified by an SVC trained on all 1,797 of them after each channel is averaged back down to 8×8 — so the
figures compare with the papers' only in kind: report the real stacks' own figures beside a generator's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

MODES = 1000
SAMPLES = 26_000  # the protocol's sample count
DATASET = "stacked-digits"
# Published anchors (their own networks, on MNIST): (modes, KL).
ANCHORS = {
    "DCGAN (VEEGAN paper)": (99, 3.40),
    "VEEGAN": (150, 2.95),
    "PacDCGAN2 (PacGAN paper)": (1000, 0.06),
    "R3GAN": (1000, 0.078),
}
MODES_TARGET = 1000
KL_MAX = 0.1


@dataclass(frozen=True)
class ModeFigures:
    """Modes covered among ``samples`` images and KL(mode histogram ‖ uniform)."""

    samples: int
    modes: int
    kl: float


@functools.lru_cache(maxsize=1)
def digit_classifier() -> Any:
    """An SVC on scikit-learn's 8×8 digits (pixel values 0-16), trained on all of them; deterministic."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    bunch = load_digits()
    return SVC(C=10.0, gamma=0.001).fit(bunch.data, bunch.target)


def channel_digits(images: np.ndarray, batch: int = 20_000) -> np.ndarray:
    """uint8 [N, H, W, 3] (H, W multiples of 8) → each channel's digit class, int64 [N, 3]."""
    n, h, w, c = images.shape
    if c != 3 or h % 8 or w % 8:
        raise ValueError(f"stacked digits are [N, H, W, 3] with H and W multiples of 8, got {images.shape}")
    clf = digit_classifier()
    out = np.empty((n, 3), dtype=np.int64)
    for start in range(0, n, batch):
        part = images[start : start + batch].astype(np.float64)
        # Block averages to 8×8: the inverse of the data set's bilinear enlargement, up to blur.
        small = part.reshape(len(part), 8, h // 8, 8, w // 8, 3).mean(axis=(2, 4))  # [n, 8, 8, 3]
        flat = small.transpose(0, 3, 1, 2).reshape(-1, 64) * (16.0 / 255.0)
        out[start : start + batch] = clf.predict(flat).reshape(-1, 3)
    return out


def mode_histogram(images: np.ndarray) -> np.ndarray:
    """Counts per mode (R·100 + G·10 + B), int64 [1000]."""
    d = channel_digits(images)
    return np.bincount(d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2], minlength=MODES)


def count_modes(images: np.ndarray) -> ModeFigures:
    """The benchmark's figures for uint8 stacks [N, H, W, 3]."""
    hist = mode_histogram(images)
    p = hist / hist.sum()
    nz = p > 0
    kl = float((p[nz] * np.log(p[nz] * MODES)).sum())
    return ModeFigures(samples=int(hist.sum()), modes=int(nz.sum()), kl=round(kl, 4))


def real_stacks(images: np.ndarray, count: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """``count`` real stacks drawn without replacement (the real data's own figures use these)."""
    rng = np.random.default_rng(seed)
    return images[np.sort(rng.choice(len(images), size=min(count, len(images)), replace=False))]


def check_mode_targets(figures: ModeFigures) -> list[dict[str, Any]]:
    """The benchmark's target rows: every mode covered, KL ≤ 0.1."""
    return [
        {"name": "modes", "value": figures.modes, "limit": f">= {MODES_TARGET}",
         "ok": figures.modes >= MODES_TARGET},
        {"name": "modes_kl", "value": figures.kl, "limit": f"<= {KL_MAX}", "ok": figures.kl <= KL_MAX},
    ]  # fmt: skip
