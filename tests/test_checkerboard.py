"""The checkerboard score, validated on known cases: smooth images score ≈ 0, a faint lattice of dots raises
it with its strength, and random untrained up-samplers show the pattern for transposed convolutions only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.evaluate.checkerboard import checkerboard_score


def smooth_images(n: int = 200, side: int = 64, channels: int = 4, seed: int = 0) -> np.ndarray:
    """Blurred noise: a spectrum that falls off smoothly, with no lattice."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, side // 8, side // 8, channels))
    x = np.repeat(np.repeat(x, 8, axis=1), 8, axis=2)  # blocks, then a blur to round their edges
    for axis in (1, 2):
        x = (np.roll(x, 1, axis) + 2 * x + np.roll(x, -1, axis)) / 4
        x = (np.roll(x, 2, axis) + 2 * x + np.roll(x, -2, axis)) / 4
    return np.clip(128 + 40 * x, 0, 255).astype(np.uint8)


def with_dots(images: np.ndarray, period: int, amplitude: int) -> np.ndarray:
    yy, xx = np.mgrid[: images.shape[1], : images.shape[2]]
    dots = ((yy % period == 0) & (xx % period == 0)) * amplitude
    x = images.astype(np.int16)
    x[..., :3] -= dots[..., None].astype(np.int16)
    return np.clip(x, 0, 255).astype(np.uint8)


def test_smooth_images_score_near_zero_and_dots_raise_it_with_their_strength():
    clean = smooth_images()
    base = checkerboard_score(clean)
    assert abs(base) < 0.3
    scores = [checkerboard_score(with_dots(clean, 4, a)) for a in (4, 16, 64)]
    assert base < scores[0] < scores[1] < scores[2]
    assert scores[1] - base > 0.3
    # a period of 16 px is on the lattice too; the score reads any channel count
    assert checkerboard_score(with_dots(clean, 16, 16)) - base > 0.3
    grey = clean[..., :1]
    assert checkerboard_score(with_dots(grey, 4, 16)) - checkerboard_score(grey) > 0.3


def upsampler(kind: str) -> torch.nn.Sequential:
    """Four random, untrained doubling stages 4×4 → 64×64, as a DCGAN generator has them."""
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for _ in range(4):
        if kind == "transposed":
            layers.append(torch.nn.ConvTranspose2d(8, 8, 4, 2, 1))
        else:
            layers += [torch.nn.Upsample(scale_factor=2, mode="nearest"), torch.nn.Conv2d(8, 8, 3, 1, 1)]
        layers.append(torch.nn.ReLU())
    layers += [torch.nn.Conv2d(8, 3, 3, 1, 1), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("kind, patterned", [("transposed", True), ("nearest", False)])
def test_untrained_transposed_convolutions_show_the_pattern_and_resizing_does_not(kind, patterned):
    with torch.no_grad():
        x = upsampler(kind)(torch.randn(200, 8, 4, 4, generator=torch.Generator().manual_seed(1)))
    images = ((x.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    score = checkerboard_score(images)
    assert (score > 1.0) if patterned else (score < 0.5), score


def test_rejects_what_is_not_uint8_images():
    with pytest.raises(ValueError, match="uint8"):
        checkerboard_score(np.zeros((2, 64, 64, 3), dtype=np.float32))
