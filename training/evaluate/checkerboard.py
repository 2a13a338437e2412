"""How strongly a set of images shows the periodic pattern of strided up-sampling (the "checkerboard").

A transposed convolution of stride 2 whose kernel is not a multiple of its stride paints some output pixels
more often than their neighbours (Odena et al. 2016), and a stack of them leaves a lattice of dots and stripes
whose periods divide the image side: 2, 4, 8, 16 … pixels. In the spectrum that is power concentrated at
the frequencies of that lattice, above the smooth fall-off of natural images. The score: the images'
mean power spectrum (luminance of the alpha-premultiplied pixels, each image's mean removed), and at each
lattice frequency (u, v) — multiples of side/``PERIOD`` on both axes, the zero frequency excluded — the
ratio of its power to the median power of its eight neighbours; the score is the mean of log2 of those ratios.
A smooth spectrum scores ≈ 0; a lattice of dots adds whole octaves. Nothing here is learned from data.
"""

from __future__ import annotations

import numpy as np

PERIOD = 16  # the longest period checked, in pixels: four strided up-sampling stages make periods of ≤ 16
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def luminance(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, C] → float64 [N, H, W] in [0, 1], alpha-premultiplied (transparent is black)."""
    x = images.astype(np.float64) / 255.0
    if x.shape[-1] == 1:
        return x[..., 0]
    y = x[..., :3] @ LUMA
    return y * x[..., 3] if x.shape[-1] == 4 else y


def mean_spectrum(images: np.ndarray, batch: int = 500) -> np.ndarray:
    """The mean power spectrum [H, W] of the images' luminance, each image's mean removed."""
    total = None
    for start in range(0, len(images), batch):
        y = luminance(images[start : start + batch])
        y = y - y.mean(axis=(1, 2), keepdims=True)
        power = (np.abs(np.fft.fft2(y)) ** 2).sum(axis=0)
        total = power if total is None else total + power
    return total / len(images)


def checkerboard_score(images: np.ndarray, period: int = PERIOD) -> float:
    """The mean log2 excess power at the up-sampling lattice's frequencies (≈ 0: no periodic pattern)."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images [N, H, W, C], got {images.dtype} {images.shape}")
    h, w = images.shape[1:3]
    # at least four frequencies between lattice points, so each has neighbours off the lattice
    period = min(period, h // 4, w // 4)
    p = mean_spectrum(images)
    ratios = []
    for u in range(0, h, h // period):
        for v in range(0, w, w // period):
            if u == 0 and v == 0:
                continue
            neighbours = [p[(u + du) % h, (v + dv) % w] for du in (-1, 0, 1) for dv in (-1, 0, 1)]
            neighbours.pop(4)  # the point itself
            ratios.append(np.log2(max(p[u, v], 1e-30) / max(float(np.median(neighbours)), 1e-30)))
    return float(np.mean(ratios))
