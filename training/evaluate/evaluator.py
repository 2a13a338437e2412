"""The evaluator: a classifier ensemble the project trains on the real data's classes, and its cache.

Its class decision gives the class figures (label accuracy, class histogram); its penultimate features are the
feature space of the Fréchet, diversity and label-free figures for data sets with classes. It is trained
deterministically (one thread, fixed seeds) and cached per (data set, image shape, settings, version).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.data import ImageDataset
from training.evaluate.cache import cache_path, default_cache_dir, load_blob, save_blob

__all__ = ["EVALUATOR_VERSION", "Evaluator", "EvaluatorNet", "EvaluatorSettings", "default_cache_dir",
           "get_evaluator", "split_indices", "to_input", "train_evaluator"]  # fmt: skip

# 2: always trained on one thread (weights no longer vary with the caller); 3: an ensemble of `members` nets
EVALUATOR_VERSION = 3


# ---- the evaluator classifier -----------------------------------------------------------------------------
class EvaluatorNet(nn.Module):
    """Small CNN classifier; ``features`` (the penultimate layer) feed the Fréchet and diversity figures."""

    FEATURES = 128

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),  # any supported image size → 4×4
            nn.Flatten(),
            nn.Linear(128 * 16, self.FEATURES), nn.ReLU(),
        )  # fmt: skip
        self.classify = nn.Linear(self.FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, features) for images float [N, C, H, W] in [-1, 1]."""
        h = self.body(x)
        return self.classify(h), h


@dataclass(frozen=True)
class EvaluatorSettings:
    """What determines an evaluator's weights (with the data set); part of its cache key."""

    # None: as many epochs as give about EPOCH_BUDGET training images per member, at most MAX_EPOCHS (20 for
    # digits and emoji; 3 for the 48,000 training images of Fashion-MNIST, where 20 epochs would cost about
    # 75 CPU-minutes for no better a yardstick). Resolved before the cache key is made.
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    held_out: float = 0.2  # share of each class kept out of training to measure accuracy
    # Random translation (pixels at 32×32, scaled with the size): samples a little off-centre still classify.
    shift: int = 2
    seed: int = 0  # member k is trained with seed + k
    # Networks in the ensemble. One network's quirks moved a model's KL from 0.017 to 0.036 (seed 1 vs 0),
    # so the class decision averages several: the instrument must vary less than the targets it checks.
    members: int = 3


@dataclass
class Evaluator:
    """A trained classifier ensemble plus what was measured on it."""

    nets: list[EvaluatorNet]
    held_out_accuracy: float  # of the ensemble (mean class probabilities)
    dataset: str
    image_shape: tuple[int, int, int]  # C, H, W
    settings: EvaluatorSettings
    path: Path | None = None
    member_accuracies: list[float] = field(default_factory=list)

    def predict(self, images: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images [N, H, W, C] → (predicted class int64 [N], features float64 [N, F]).

        The class is the argmax of the members' mean probabilities; the features are the members'
        penultimate features side by side (F = members × 128).
        """
        preds, feats = [], []
        with torch.no_grad():
            for start in range(0, len(images), batch):
                x = to_input(images[start : start + batch])
                outs = [net.eval()(x) for net in self.nets]
                probs = torch.stack([logits.softmax(1) for logits, _ in outs]).mean(0)
                preds.append(probs.argmax(1).numpy())
                feats.append(torch.cat([h for _, h in outs], dim=1).numpy().astype(np.float64))
        return np.concatenate(preds), np.concatenate(feats)


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, C] → float [N, C, H, W] in [-1, 1], the generator's output scale."""
    return torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)


def split_indices(labels: np.ndarray, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, held-out) index split, a pure function of the labels and the seed."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = max(1, int(round(len(idx) * held_out)))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _shifted(x: torch.Tensor, shift: int, g: torch.Generator) -> torch.Tensor:
    """Each image translated by a random whole-pixel offset in [-shift, shift], background filled with -1."""
    if shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (shift, shift, shift, shift), value=-1.0)
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=g)
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def train_evaluator(
    ds: ImageDataset, settings: EvaluatorSettings, member: int = 0
) -> tuple[EvaluatorNet, float]:
    """Train ensemble member ``member`` on part of ``ds``; return it with its accuracy on the held-out part.

    Every member holds out the same images (split by ``settings.seed``); its own initialisation and data order
    come from ``settings.seed + member``.

    Always on one thread: the float summation order, and so the weights, must not depend on how many threads
    the caller happens to use (the quality figures of every model card depend on these weights).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_evaluator(ds, settings, member)
    finally:
        torch.set_num_threads(threads)


def _train_evaluator(
    ds: ImageDataset, settings: EvaluatorSettings, member: int
) -> tuple[EvaluatorNet, float]:
    torch.manual_seed(settings.seed + member)
    g = torch.Generator().manual_seed(settings.seed + member)
    train_idx, test_idx = split_indices(ds.labels, settings.held_out, settings.seed)
    x_all = to_input(ds.images)
    y_all = torch.from_numpy(ds.labels)
    net = EvaluatorNet(ds.images.shape[3], ds.num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    shift = max(1, settings.shift * ds.images.shape[1] // 32) if settings.shift else 0
    net.train()
    for _ in range(settings.epochs):
        order = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=g)]
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            logits, _ = net(_shifted(x_all[idx], shift, g))
            loss = nn.functional.cross_entropy(logits, y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(x_all[test_idx])[0].argmax(1).numpy()
    return net, float((pred == ds.labels[test_idx]).mean())


MAX_EPOCHS = 20
EPOCH_BUDGET = 100_000  # training images seen per member when the epochs are not given


def resolved(settings: EvaluatorSettings, ds: ImageDataset) -> EvaluatorSettings:
    """``settings`` with its epochs filled in for ``ds`` (see ``EvaluatorSettings.epochs``)."""
    if settings.epochs is not None:
        return settings
    train_idx, _ = split_indices(ds.labels, settings.held_out, settings.seed)
    return replace(settings, epochs=min(MAX_EPOCHS, max(1, math.ceil(EPOCH_BUDGET / len(train_idx)))))


def get_evaluator(
    ds: ImageDataset, settings: EvaluatorSettings | None = None, cache_dir: Path | None = None
) -> Evaluator:
    """The evaluator for ``ds`` from the cache, trained (and cached) first when missing."""
    settings = resolved(settings or EvaluatorSettings(), ds)
    shape = (ds.images.shape[3], ds.images.shape[1], ds.images.shape[2])
    path = cache_path(cache_dir, "", ds.name, shape, settings, EVALUATOR_VERSION)
    if path.exists():
        blob = load_blob(path)
        nets = []
        for state in blob["state_dicts"]:
            net = EvaluatorNet(shape[0], ds.num_classes)
            net.load_state_dict(state)
            nets.append(net.eval())
        accuracy, members = float(blob["held_out_accuracy"]), [float(a) for a in blob["member_accuracies"]]
    else:
        trained = [train_evaluator(ds, settings, k) for k in range(settings.members)]
        nets, members = [net for net, _ in trained], [acc for _, acc in trained]
        # The ensemble's accuracy, measured by the same predict() every figure goes through.
        _, test_idx = split_indices(ds.labels, settings.held_out, settings.seed)
        untested = Evaluator(nets, 0.0, ds.name, shape, settings)
        accuracy = float((untested.predict(ds.images[test_idx])[0] == ds.labels[test_idx]).mean())
        blob = {
            "state_dicts": [net.state_dict() for net in nets],
            "held_out_accuracy": accuracy,
            "member_accuracies": members,
        }
        save_blob(path, blob)
    return Evaluator(nets, accuracy, ds.name, shape, settings, path, members)
