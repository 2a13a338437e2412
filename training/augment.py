"""Augmentation of what the critic sees: mirror flips of real images and DiffAugment (Zhao et al. 2020).

DiffAugment applies the same kind of random transform T to real and fake images before every critic call,
in the critic's steps (T(real), T(G(z))) and in the generator's (T(G(z))); T is differentiable, so the
generator learns through it, and the critic cannot simply memorise a small training set. Policies, as the
paper defines them on images in [-1, 1]:

- ``color``: brightness + U(-0.5, 0.5); saturation × U(0, 2); contrast × U(0.5, 1.5) (per image). Only the
  colour channels change: alpha is shape, not colour, so it is left alone. Unlike the paper's code the
  result is clamped to [-1, 1], the range a tanh generator can produce: a critic input outside it would be a
  value no real or generated picture has.
- ``translation``: shift by up to ±1/8 of the image size, padded with 0 (transparent for RGBA).
- ``cutout``: one square of half the image size set to 0 (transparent for RGBA), centred anywhere.

Every draw comes from the run's seeded ``torch.Generator`` (checkpointed), so a resumed run stays exact;
with both options off nothing is drawn, so runs are bit-identical to those made before augmentation existed.
"""

from __future__ import annotations

import torch

from training.config import AugmentConfig, parse_policy


def _uniform(n: int, rng: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """[n, 1, 1, 1] draws from U(0, 1), made on the generator's device and moved to ``like``'s."""
    u = torch.rand(n, 1, 1, 1, generator=rng, device=rng.device)
    return u.to(device=like.device, dtype=like.dtype)


def _shifts(n: int, limit: int, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(-limit, limit + 1, (n,), generator=rng, device=rng.device).to(device)


def _fill(x: torch.Tensor) -> float:
    """What uncovered pixels become: 0 (mid grey) as in the paper; for RGBA transparent black (-1)."""
    return -1.0 if x.shape[1] == 4 else 0.0


def mirror(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Flip each image [B, C, H, W] left-right with probability 1/2."""
    flip = _uniform(len(x), rng, x) < 0.5
    return torch.where(flip, x.flip(3), x)


def color(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random brightness, saturation and contrast of the colour channels (alpha untouched)."""
    colour_channels = 1 if x.shape[1] == 1 else 3
    c, rest = x[:, :colour_channels], x[:, colour_channels:]
    n = len(x)
    c = c + (_uniform(n, rng, x) - 0.5)
    mean = c.mean(dim=1, keepdim=True)
    c = (c - mean) * (_uniform(n, rng, x) * 2) + mean
    mean = c.mean(dim=(1, 2, 3), keepdim=True)
    c = (c - mean) * (_uniform(n, rng, x) + 0.5) + mean
    return torch.cat([c.clamp(-1.0, 1.0), rest], dim=1)


def translation(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in both directions; uncovered pixels get the fill."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy, dx = _shifts(n, sy, rng, x.device), _shifts(n, sx, rng, x.device)
    padded = torch.nn.functional.pad(x, (sx, sx, sy, sy), value=_fill(x))  # [B, C, H+2sy, W+2sx]
    rows = torch.arange(h, device=x.device)[None, :, None] + sy - dy[:, None, None]  # [B, H, 1]
    cols = torch.arange(w, device=x.device)[None, None, :] + sx - dx[:, None, None]  # [B, 1, W]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # gather keeps the gradient


def cutout(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Set one square of ``ratio`` × the image size, centred at a random pixel, to the fill."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # Centres range over the image (one more place for even sizes, as in the paper); the square is clipped.
    cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=rng, device=rng.device).to(x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=rng, device=rng.device).to(x.device)
    top, left = (cy - ch // 2)[:, None, None], (cx - cw // 2)[:, None, None]
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)  # [B, H, W]
    return torch.where(hole[:, None], torch.full_like(x, _fill(x)), x)


POLICY_FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}


class Augmenter:
    """The run's augmentation: ``real(x)`` before the critic sees real images, ``critic_input(x)`` for
    every image (real or fake) the critic scores."""

    def __init__(self, cfg: AugmentConfig, rng: torch.Generator):
        self.mirror, self.rng = cfg.mirror, rng
        self.policy = parse_policy(cfg.diffaugment)

    def real(self, x: torch.Tensor) -> torch.Tensor:
        """Real images as drawn from the data set (mirror flips)."""
        return mirror(x, self.rng) if self.mirror else x

    def critic_input(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment's T(x), applied independently to each batch the critic is given."""
        for name in self.policy:
            x = POLICY_FUNCTIONS[name](x, self.rng)
        return x
