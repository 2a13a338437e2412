"""Losses of the two players for each objective, and the WGAN-GP gradient penalty."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def critic_loss(kind: str, real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(
            real_score, torch.ones_like(real_score)
        ) + F.binary_cross_entropy_with_logits(fake_score, torch.zeros_like(fake_score))
    if kind == "wasserstein":
        return fake_score.mean() - real_score.mean()
    raise ValueError(f"unknown objective {kind!r}")


def generator_loss(kind: str, fake_score: torch.Tensor) -> torch.Tensor:
    if kind == "bce":  # the non-saturating form of the paper
        return F.binary_cross_entropy_with_logits(fake_score, torch.ones_like(fake_score))
    if kind == "wasserstein":
        return -fake_score.mean()
    raise ValueError(f"unknown objective {kind!r}")


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator,
    group: int = 1,
    alpha: torch.Tensor | None = None,
) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] on per-sample interpolates x̂ = αx + (1 − α)x̃, one α per sample.

    The gradient is flattened per sample before the norm (a 4-D ``norm(dim=1)`` is a known bug); with a
    packing critic (``group`` images per score) the norm is taken per group, the critic's real input.
    ``alpha`` [N, 1, 1, 1]: the weights when the caller draws them (else drawn here from ``generator``).
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator, dtype=real.dtype, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.reshape(grad.shape[0] // group, -1).norm(2, dim=1) - 1) ** 2).mean()
