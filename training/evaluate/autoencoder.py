"""The label-free feature space: a small convolutional autoencoder trained on the real images, and its cache.

For a data set without classes there is no classifier to borrow features from, and Inception weights cannot be
downloaded here. An autoencoder needs nothing but the images (so it works on any folder, any channel count),
trains in minutes on one CPU thread (then cached), and its code must keep what tells images apart to
reconstruct them — which is what the k-NN and bin figures measure. Pixels themselves would do for centred
sprites but weigh every pixel alike (a one-pixel shift looks like a new image); the code is 128 numbers
whatever the image size.

RGBA images are encoded with premultiplied alpha: the colour of a transparent pixel is invisible, so two
sprites that differ only there must not look different to the metrics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.evaluate.cache import cache_path, load_blob, save_blob

AUTOENCODER_VERSION = 1


@dataclass(frozen=True)
class AutoencoderSettings:
    """What determines the autoencoder's weights (with the data set); part of its cache key."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 32
    code: int = 128
    seed: int = 0


# Larger images are averaged down to this side first: the figures judge layout and colour, and a 256-px
# autoencoder would cost 16× the CPU of a 64-px one for features of the same size.
MAX_SIDE = 64


def premultiplied(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, C] → float [N, C, S, S] in [-1, 1], S = min(H, MAX_SIDE) (block averages);
    RGBA colour is multiplied by alpha."""
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    if x.shape[1] == 4:
        x = torch.cat([x[:, :3] * x[:, 3:], x[:, 3:]], dim=1)
    if x.shape[-1] > MAX_SIDE:
        x = nn.functional.avg_pool2d(x, x.shape[-1] // MAX_SIDE)
    return x * 2 - 1


class AutoencoderNet(nn.Module):
    """Three stride-2 convolutions down to a ``code``-vector and three transposed convolutions back up."""

    def __init__(self, channels: int, size: int, width: int = 32, code: int = 128):
        super().__init__()
        s = size // 8
        self.s, self.w = s, width
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),  # [w, S/2, S/2]
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),  # [2w, S/4, S/4]
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),  # [4w, S/8, S/8]
            nn.Flatten(),
            nn.Linear(4 * width * s * s, code),  # [code]
        )  # fmt: skip
        self.decode_in = nn.Linear(code, 4 * width * s * s)
        self.decoder = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1), nn.ReLU(),  # [2w, S/4, S/4]
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),  # [w, S/2, S/2]
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh(),  # [C, S, S]
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction [N, C, S, S], code [N, code]) of premultiplied images in [-1, 1]."""
        code = self.encoder(x)
        h = self.decode_in(code).view(-1, 4 * self.w, self.s, self.s)
        return self.decoder(h), code


@dataclass
class Autoencoder:
    """A trained autoencoder; ``features`` are its codes."""

    net: AutoencoderNet
    reconstruction_mse: float  # on the real images, in the premultiplied [-1, 1] scale
    settings: AutoencoderSettings
    path: Path | None = None

    def features(self, images: np.ndarray, batch: int = 500) -> np.ndarray:
        """uint8 images [N, H, W, C] → codes float64 [N, code]."""
        out = []
        with torch.no_grad():
            for start in range(0, len(images), batch):
                out.append(self.net.eval()(premultiplied(images[start : start + batch]))[1].numpy())
        return np.concatenate(out).astype(np.float64)


def train_autoencoder(images: np.ndarray, settings: AutoencoderSettings) -> tuple[AutoencoderNet, float]:
    """Train on uint8 images [N, H, W, C]; return the net and its mean reconstruction error on them.

    One thread and fixed seeds, like the evaluator: the figures on every card depend on these weights.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(settings.seed)
        g = torch.Generator().manual_seed(settings.seed)
        x_all = premultiplied(images)
        net = AutoencoderNet(images.shape[3], min(images.shape[1], MAX_SIDE), settings.width, settings.code)
        opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
        net.train()
        for _ in range(settings.steps):
            idx = torch.randint(0, len(x_all), (settings.batch_size,), generator=g)
            recon, _ = net(x_all[idx])
            loss = nn.functional.mse_loss(recon, x_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            mse = float(np.mean([
                nn.functional.mse_loss(net(x_all[i : i + 500])[0], x_all[i : i + 500]).item()
                for i in range(0, len(x_all), 500)
            ]))  # fmt: skip
        return net, mse
    finally:
        torch.set_num_threads(threads)


def get_autoencoder(
    images: np.ndarray,
    dataset: str,
    settings: AutoencoderSettings | None = None,
    cache_dir: Path | None = None,
) -> Autoencoder:
    """The autoencoder of data set ``dataset`` (uint8 ``images``), from the cache or trained and cached."""
    settings = settings or AutoencoderSettings()
    _, h, w, c = images.shape
    if h % 8 or w != h:
        raise ValueError(f"the autoencoder needs square images with a side divisible by 8, got {h}×{w}")
    # The content is part of the key: a folder data set keeps its name when its images change.
    content = hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()[:16]
    key = f"{dataset}@{content}"
    path = cache_path(cache_dir, "autoencoder", key, (c, h, w), settings, AUTOENCODER_VERSION)
    net = AutoencoderNet(c, min(h, MAX_SIDE), settings.width, settings.code)
    if path.exists():
        blob = load_blob(path)
        net.load_state_dict(blob["state_dict"])
        mse = float(blob["reconstruction_mse"])
    else:
        net, mse = train_autoencoder(images, settings)
        save_blob(path, {"state_dict": net.state_dict(), "reconstruction_mse": mse})
    return Autoencoder(net.eval(), mse, settings, path)
