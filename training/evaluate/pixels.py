"""A second feature space for the label-free figures, learned from nothing but the real pixels' spread.

The evaluator's features are learned from the data set (to tell its classes apart, or to reconstruct it), and
a generator trained on the same data can score well in them while looking wrong to a person: one instrument
should not be the only judge of the models it is used to tune. This space is plain: each image is
alpha-premultiplied (a transparent pixel is black whatever its stored colour), block-averaged down to
``SIDE``×``SIDE``, flattened, and projected on the first ``COMPONENTS`` principal components of the real
images (PCA fitted on the real data only; no labels, no training). Distances there compare layout and colour
at a coarse scale — what a glance at a grid judges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

SIDE = 16
COMPONENTS = 64
SPACE = "pixel PCA"  # the feature-space name cards and tables show


def pixels(images: np.ndarray, side: int = SIDE) -> np.ndarray:
    """uint8 [N, H, W, C] → float32 [N, side·side·C] in [0, 1]: premultiplied, block-averaged."""
    x = images.astype(np.float32) / 255.0
    if x.shape[-1] == 4:
        x = np.concatenate([x[..., :3] * x[..., 3:], x[..., 3:]], axis=-1)
    n, h, w, c = x.shape
    f = max(1, h // side)
    x = x[:, : (h // f) * f, : (w // f) * f].reshape(n, h // f, f, w // f, f, c).mean(axis=(2, 4))
    return x.reshape(n, -1)


@dataclass
class PixelSpace:
    """The PCA of the real images' pixels; ``features`` projects any images into it."""

    pca: PCA

    @classmethod
    def fit(cls, real_images: np.ndarray, components: int = COMPONENTS, seed: int = 0) -> PixelSpace:
        flat = pixels(real_images)
        k = min(components, flat.shape[1], len(flat) - 1)
        return cls(PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(flat))

    def features(self, images: np.ndarray, batch: int = 5000) -> np.ndarray:
        parts = [self.pca.transform(pixels(images[i : i + batch])) for i in range(0, len(images), batch)]
        return np.concatenate(parts).astype(np.float64)
