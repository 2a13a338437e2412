"""Distribution figures on feature sets: the Fréchet distance and within-set diversity."""

from __future__ import annotations

import numpy as np

DIVERSITY_PAIRS_MAX = 300  # samples per class used for the pairwise distances (cost is quadratic)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N, F] and b [M, F].

    ‖μa − μb‖² + tr Σa + tr Σb − 2 tr √(√Σa Σb √Σa), the matrix square roots by symmetric eigendecomposition.
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root_a @ cov_b @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def mean_pairwise_distance(features: np.ndarray, rng: np.random.Generator) -> float:
    """Mean Euclidean distance over distinct pairs (a random subset of at most DIVERSITY_PAIRS_MAX rows)."""
    if len(features) < 2:
        return 0.0
    if len(features) > DIVERSITY_PAIRS_MAX:
        features = features[rng.choice(len(features), DIVERSITY_PAIRS_MAX, replace=False)]
    sq = (features**2).sum(1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2 * features @ features.T, 0, None)
    n = len(features)
    return float(np.sqrt(d2)[np.triu_indices(n, 1)].mean())
