"""Losses of the two players for each objective, the WGAN-GP gradient penalty and the zero-centred R1/R2."""

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
    if kind == "relativistic":  # RpGAN: real and fake scores paired by batch position
        return F.softplus(fake_score - real_score).mean()
    raise ValueError(f"unknown objective {kind!r}")


def generator_loss(
    kind: str, fake_score: torch.Tensor, real_score: torch.Tensor | None = None
) -> torch.Tensor:
    """G's loss; ``real_score`` (the critic's scores of a real batch, paired by position) for relativistic."""
    if kind == "bce":  # the non-saturating form of the paper
        return F.binary_cross_entropy_with_logits(fake_score, torch.ones_like(fake_score))
    if kind == "wasserstein":
        return -fake_score.mean()
    if kind == "relativistic":
        if real_score is None:
            raise ValueError("the relativistic objective needs the real images' scores")
        return F.softplus(real_score - fake_score).mean()
    raise ValueError(f"unknown objective {kind!r}")


def needs_real_scores(kind: str) -> bool:
    """Whether the generator's loss reads the critic's scores of real images."""
    return kind == "relativistic"


def zero_centred_penalty(score: torch.Tensor, images: torch.Tensor, group: int = 1) -> torch.Tensor:
    """(1/2)·E‖∇ₓD(x)‖² over critic inputs: R1 on real ``images``, R2 on generated ones (the caller
    multiplies by γ).

    ``images`` must require grad and ``score`` be computed from them (the loss's own critic call is reused:
    no extra forward pass). With a packing critic the squared norm is summed over each group of ``group``
    images (the critic's real input), then averaged.
    """
    (grad,) = torch.autograd.grad(score.sum(), images, create_graph=True)
    return 0.5 * grad.reshape(grad.shape[0] // group, -1).square().sum(dim=1).mean()


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
