"""``--arch dcgan``: strided (transposed) convolutions, no pooling, no hidden FC layers.

Depth follows the image size: 16 → 2, 32 → 3, 64 → 4, …, 256 → 6 up-sampling stages above the 4×4 seed.
At 64×64×3 with latent 100 and ``g_width=128`` the generator is the DCGAN paper's design:
100 → 1024×4×4 → 512×8×8 → 256×16×16 → 128×32×32 → 3×64×64.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from training.config import ModelConfig

# Widths stop doubling at 16 × width: at 256 px the 4×4 stage would otherwise hold 32 × width channels
# (4,096 at the paper's width 128). Sizes up to 128 never reach the cap, so their networks are unchanged.
MAX_MULTIPLIER = 16


def num_stages(image_size: int) -> int:
    return int(math.log2(image_size)) - 2


def stage_width(width: int, doublings: int) -> int:
    """``width`` doubled ``doublings`` times, at most ``MAX_MULTIPLIER`` × width."""
    return width * min(2**doublings, MAX_MULTIPLIER)


class Generator(nn.Module):
    """Maps ``z`` (and a one-hot ``label`` when conditional) to images in [-1, 1]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        stages = num_stages(cfg.image_size)
        in_ch = cfg.latent_dim + (cfg.num_classes if cfg.conditional else 0)
        ch = stage_width(cfg.g_width, stages - 1)
        layers: list[nn.Module] = [*self._block(in_ch, ch, stride=1, padding=0)]
        for k in range(stages - 1):
            out = stage_width(cfg.g_width, stages - 2 - k)
            layers += self._block(ch, out, stride=2, padding=1)
            ch = out
        layers += [*self._up(ch, cfg.channels, bias=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def _up(self, cin: int, cout: int, bias: bool) -> list[nn.Module]:
        """Double the resolution: a stride-2 transposed convolution, or a resize and a 3×3 convolution."""
        if self.cfg.g_upsample == "transposed":
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)]
        resize = nn.Upsample(scale_factor=2, mode=self.cfg.g_upsample)
        return [resize, nn.Conv2d(cin, cout, 3, 1, 1, bias=bias)]

    def _block(self, cin: int, cout: int, stride: int, padding: int) -> list[nn.Module]:
        batch = self.cfg.g_norm == "batch"
        if stride == 1:  # the first block: z (a 1×1 map) to the 4×4 seed
            convs = [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=not batch)]
        else:
            convs = self._up(cin, cout, bias=not batch)
        if self.cfg.conditional and self.cfg.g_conditioning == "batchnorm":
            norm: nn.Module = ConditionalBatchNorm2d(cout, self.cfg.num_classes)
        else:
            norm = nn.BatchNorm2d(cout) if batch else nn.Identity()
        return [*convs, norm, nn.ReLU(inplace=True)]

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.conditional:
            z = torch.cat([z, label], dim=1)
        x = z[:, :, None, None]
        for layer in self.net:
            x = layer(x, label) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias come from the (one-hot or mixed) label: 1 + γ(y), β(y)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(num_classes, channels, bias=False)
        self.bias = nn.Linear(num_classes, channels, bias=False)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return h * (1 + self.gain(label))[:, :, None, None] + self.bias(label)[:, :, None, None]


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation across the batch as one feature map (Karras et al. 2018)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.std(dim=0, unbiased=False).mean().expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat([x, std], dim=1)


def critic_input(cfg: ModelConfig, x: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
    """What a critic's first layer reads: the images, with label maps on the channels (``concat``
    conditioning), consecutive ``pack`` images stacked on the channels (PacGAN)."""
    if cfg.conditional and cfg.d_conditioning == "concat":
        maps = label[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        x = torch.cat([x, maps], dim=1)
    if cfg.pack > 1:
        x = x.reshape(x.shape[0] // cfg.pack, -1, *x.shape[2:])
    return x


class Critic(nn.Module):
    """Scores images (and labels when conditional); a logit for BCE, a raw score for Wasserstein."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        stages = num_stages(cfg.image_size)
        concat = cfg.conditional and cfg.d_conditioning == "concat"
        in_ch = (cfg.channels + (cfg.num_classes if concat else 0)) * cfg.pack
        ch = cfg.d_width
        size = cfg.image_size // 2
        layers: list[nn.Module] = [self._conv(in_ch, ch, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for k in range(stages - 1):
            size //= 2
            out = stage_width(cfg.d_width, k + 1)
            layers += [
                self._conv(ch, out, 4, 2, 1),
                self._norm(out, size),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch = out
        if cfg.minibatch_std:
            layers.append(MinibatchStd())
        self.features = nn.Sequential(*layers)
        self.head = self._conv(ch + int(cfg.minibatch_std), 1, 4, 1, 0)
        self.embed = (
            nn.Linear(cfg.num_classes, ch, bias=False)
            if cfg.conditional and cfg.d_conditioning == "projection"
            else None
        )
        # AC-GAN: class logits from the same features (before the minibatch-std map, which is not per image).
        final = cfg.image_size // 2**stages
        self.classifier = nn.Linear(ch * final**2, cfg.num_classes) if cfg.aux_classifier else None

    def _conv(self, cin: int, cout: int, k: int, s: int, p: int) -> nn.Module:
        conv = nn.Conv2d(cin, cout, k, s, p, bias=self.cfg.d_norm != "batch")
        return spectral_norm(conv) if self.cfg.d_norm == "spectral" else conv

    def _norm(self, ch: int, size: int) -> nn.Module:
        if self.cfg.d_norm == "batch":
            return nn.BatchNorm2d(ch)
        if self.cfg.d_norm == "layer":  # per-sample, so the gradient penalty stays per-sample
            return nn.LayerNorm([ch, size, size])
        return nn.Identity()

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """One score per group of ``pack`` images (per image when pack is 1)."""
        return self.score_and_classes(x, label)[0]

    def score_and_classes(
        self, x: torch.Tensor, label: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(scores, class logits per image or None without the auxiliary classifier)."""
        h = self.features(critic_input(self.cfg, x, label))
        score = self.head(h).flatten(1).squeeze(1)
        if self.embed is not None:
            # Projection discriminator (Miyato & Koyama 2018): <embed(y), pooled features>.
            pooled = h[:, : self.embed.out_features].sum(dim=(2, 3))
            score = score + (self.embed(label) * pooled).sum(dim=1)
        classes = None
        if self.classifier is not None:
            per_image = h[:, : h.shape[1] - int(self.cfg.minibatch_std)]
            classes = self.classifier(per_image.flatten(1))
        return score, classes


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), norm weights N(1, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        weight = getattr(module, "parametrizations", None)
        w = weight.weight.original if weight is not None else module.weight
        nn.init.normal_(w, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.LayerNorm) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
