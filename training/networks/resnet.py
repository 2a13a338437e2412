"""``--arch resnet``: normalization-free residual G and D in the manner of R3GAN (Huang et al. 2024).

Every resolution holds ``blocks`` residual blocks of 1×1 expand → grouped 3×3 → 1×1 with leaky ReLU 0.2 and no
normalization. Resolutions change by resizing and then a 1×1 convolution (G: ×2 bilinear or nearest
upsampling; D: 2×2 average pooling), so no strided transposed convolution can draw a checkerboard. Fix-up
initialisation: the last convolution of every residual branch starts at zero and the others are scaled by
L^(-1/4) (L residual blocks in the network, three layers per branch), so each block starts as the identity and
the net trains without normalization layers.

Widths: ``width`` channels at the image's own resolution, doubling at every halving down to 4×4 (at most 16 ×
width). At 32×32 with width 32 and one block per resolution: G: z → 256×4×4 → 128×8×8 → 64×16×16 → 32×32×32 →
C×32×32; D mirrors it, then a 4×4 convolution to a vector, a linear score and (conditional) a projection of
the label's embedding."""

from __future__ import annotations

import math

import torch
from torch import nn

from training.config import ModelConfig
from training.networks.dcgan import MinibatchStd, critic_input

EXPANSION = 2  # a block's hidden channels: EXPANSION × its channels (R3GAN's inverted bottleneck)
GROUP_WIDTH = 16  # channels per group of the grouped 3×3 convolution
MAX_MULTIPLIER = 16  # widths stop doubling at 16 × width (256 px: 4×4 would otherwise hold 64 × width)
SLOPE = 0.2


def widths(width: int, image_size: int) -> list[int]:
    """Channels per resolution, from 4×4 up to ``image_size``."""
    levels = int(math.log2(image_size)) - 1
    return [width * min(MAX_MULTIPLIER, 2 ** (levels - 1 - i)) for i in range(levels)]


def _groups(hidden: int) -> int:
    groups = max(1, hidden // GROUP_WIDTH)
    while hidden % groups:
        groups -= 1
    return groups


def _msr(layer: nn.Module, gain_slope: float | None, scale: float = 1.0) -> nn.Module:
    """He initialisation for the activation that follows (None: a linear layer), times ``scale``; bias 0."""
    w = layer.weight
    if gain_slope is None:
        nn.init.kaiming_normal_(w, nonlinearity="linear")
    else:
        nn.init.kaiming_normal_(w, a=gain_slope, nonlinearity="leaky_relu")
    with torch.no_grad():
        w.mul_(scale)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


class ResidualBlock(nn.Module):
    """x + conv1×1(act(grouped conv3×3(act(conv1×1(x))))); the branch's last layer starts at zero."""

    def __init__(self, channels: int, total_blocks: int):
        super().__init__()
        hidden = channels * EXPANSION
        scale = total_blocks ** (-1 / 4)
        self.expand = _msr(nn.Conv2d(channels, hidden, 1), SLOPE, scale)
        self.mix = _msr(nn.Conv2d(hidden, hidden, 3, padding=1, groups=_groups(hidden)), SLOPE, scale)
        self.project = nn.Conv2d(hidden, channels, 1, bias=False)
        nn.init.zeros_(self.project.weight)
        self.act = nn.LeakyReLU(SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.act(self.mix(self.act(self.expand(x)))))


class ResnetGenerator(nn.Module):
    """Maps ``z`` (and a one-hot or soft ``label`` when conditional) to images around [-1, 1].

    No Tanh: as in R3GAN the output is linear; the export clips it to the contract's [-1, 1].
    """

    BOUNDED_OUTPUT = False

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        ch = widths(cfg.g_width, cfg.image_size)
        total = cfg.blocks * len(ch)
        # The label reaches G through an embedding joined to z (R3GAN's conditional G).
        self.embed = nn.Linear(cfg.num_classes, cfg.latent_dim, bias=False) if cfg.conditional else None
        if self.embed is not None:
            _msr(self.embed, None)
        in_dim = cfg.latent_dim * (2 if cfg.conditional else 1)
        self.basis = _msr(nn.Linear(in_dim, ch[0] * 16), None)  # z → the 4×4 map
        stages: list[nn.Module] = []
        for i, c in enumerate(ch):
            layers: list[nn.Module] = []
            if i:  # resize, then convolve: [N, ch[i-1], s, s] → [N, c, 2s, 2s]
                up = nn.Upsample(scale_factor=2, mode=cfg.g_upsample)
                layers += [up, _msr(nn.Conv2d(ch[i - 1], c, 1), None)]
            layers += [ResidualBlock(c, total) for _ in range(cfg.blocks)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.to_image = _msr(nn.Conv2d(ch[-1], cfg.channels, 1), None)  # [N, C, size, size]

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(label)], dim=1)
        x = self.basis(z).reshape(z.shape[0], -1, 4, 4)
        return self.to_image(self.stages(x))


class ResnetCritic(nn.Module):
    """Scores images (and labels when conditional): same interface as the DCGAN critic."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        ch = list(reversed(widths(cfg.d_width, cfg.image_size)))  # image size → 4×4
        total = cfg.blocks * len(ch)
        concat = cfg.conditional and cfg.d_conditioning == "concat"
        in_ch = (cfg.channels + (cfg.num_classes if concat else 0)) * cfg.pack
        layers: list[nn.Module] = [(_msr(nn.Conv2d(in_ch, ch[0], 1), None))]
        for i, c in enumerate(ch):
            layers += [ResidualBlock(c, total) for _ in range(cfg.blocks)]
            if i + 1 < len(ch):  # [N, c, s, s] → [N, ch[i+1], s/2, s/2]
                layers += [nn.AvgPool2d(2), (_msr(nn.Conv2d(c, ch[i + 1], 1), None))]
        self.body = nn.Sequential(*layers)
        last = ch[-1]
        self.mbstd = MinibatchStd() if cfg.minibatch_std else None
        # The 4×4 map becomes one vector [N, last]; the score and the projection read it.
        self.basis = nn.Sequential(
            nn.LeakyReLU(SLOPE), (_msr(nn.Conv2d(last + int(cfg.minibatch_std), last, 4), SLOPE)),
            nn.LeakyReLU(SLOPE), nn.Flatten(),
        )  # fmt: skip
        self.head = _msr(nn.Linear(last, 1), None)
        projection = cfg.conditional and cfg.d_conditioning == "projection"
        self.embed = (_msr(nn.Linear(cfg.num_classes, last, bias=False), None)) if projection else None
        self.classifier = nn.Linear(last * 16, cfg.num_classes) if cfg.aux_classifier else None

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.score_and_classes(x, label)[0]

    def score_and_classes(
        self, x: torch.Tensor, label: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(scores per group of ``pack`` images, class logits per image or None)."""
        h = self.body(critic_input(self.cfg, x, label))  # [N / pack, last, 4, 4]
        vec = self.basis(self.mbstd(h) if self.mbstd is not None else h)
        score = self.head(vec).squeeze(1)
        if self.embed is not None:  # projection discriminator: <embed(y), features>
            score = score + (self.embed(label) * vec).sum(dim=1)
        classes = self.classifier(h.flatten(1)) if self.classifier is not None else None
        return score, classes
