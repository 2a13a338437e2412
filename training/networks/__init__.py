"""The generator and critic of each architecture (``--arch``), built and initialised from a ModelConfig.

- ``dcgan``: the DCGAN paper's (transposed) strided convolutions, optional normalization (``dcgan``);
- ``resnet``: R3GAN-style normalization-free residual networks (``resnet``).

Both critics answer ``score_and_classes(x, label)``; both generators map (z, label) to images, so the
trainer and the export do not depend on the architecture.
"""

from __future__ import annotations

from torch import nn

from training.config import ModelConfig
from training.networks.dcgan import (
    ConditionalBatchNorm2d,
    Critic,
    Generator,
    MinibatchStd,
    critic_input,
    init_weights,
    num_stages,
)
from training.networks.resnet import ResnetCritic, ResnetGenerator

__all__ = [
    "ConditionalBatchNorm2d", "Critic", "Generator", "MinibatchStd", "ResnetCritic", "ResnetGenerator",
    "build_critic", "build_generator", "build_networks", "critic_input", "init_weights", "num_stages",
]  # fmt: skip


def build_generator(cfg: ModelConfig) -> nn.Module:
    """The generator of ``cfg.arch``, uninitialised for ``dcgan`` (``build_networks`` initialises)."""
    return ResnetGenerator(cfg) if cfg.arch == "resnet" else Generator(cfg)


def build_critic(cfg: ModelConfig) -> nn.Module:
    """The critic of ``cfg.arch``."""
    return ResnetCritic(cfg) if cfg.arch == "resnet" else Critic(cfg)


def build_networks(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) initialised from torch's global random state: DCGAN's N(0, 0.02) for ``dcgan`` (G, then D,
    then both initialised: the order earlier runs drew in), the residual nets' own fix-up for ``resnet``."""
    g, d = build_generator(cfg), build_critic(cfg)
    if cfg.arch == "dcgan":
        g.apply(init_weights)
        d.apply(init_weights)
    return g, d
