"""Quality of a generator, judged by a classifier the project trains on the real data.

GANs fail silently (one digit, or mush, with healthy-looking losses), so every exported generator is
measured the same way: sample it as the service does (``service.contract.generate``: the seeded
noise contract and the uint8 post-processing), classify the samples with the evaluator, and compare with the
real data:

- label accuracy, overall and per class (conditional models: does the image show the class asked for?)
- class histogram, classes holding ≥ 5% of the samples, KL(generated ‖ real) of the histograms (coverage)
- Fréchet distance on the evaluator's penultimate features, beside the same distance between two halves of
  the real data (fidelity and spread together)
- within-class diversity: mean pairwise feature distance inside each predicted class, over the real data's

The evaluator is trained deterministically and cached per (data set, image shape, settings, version).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from service.files import atomic_path
from training.data import ImageDataset, load_dataset

# 2: always trained on one thread (weights no longer vary with the caller); 3: an ensemble of `members` nets
EVALUATOR_VERSION = 3
COVERAGE_SHARE = 0.05  # a class is "covered" when it holds at least this share of the samples
DIVERSITY_PAIRS_MAX = 300  # samples per class used for the pairwise distances (cost is quadratic)


def default_cache_dir() -> Path:
    return Path(os.environ.get("GANSERVE_CACHE_DIR", Path.home() / ".cache" / "ganserve")) / "evaluators"


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

    epochs: int = 20
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
                x = _to_input(images[start : start + batch])
                outs = [net.eval()(x) for net in self.nets]
                probs = torch.stack([logits.softmax(1) for logits, _ in outs]).mean(0)
                preds.append(probs.argmax(1).numpy())
                feats.append(torch.cat([h for _, h in outs], dim=1).numpy().astype(np.float64))
        return np.concatenate(preds), np.concatenate(feats)


def _to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, C] → float [N, C, H, W] in [-1, 1], the generator's output scale."""
    return torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)


def _split(labels: np.ndarray, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
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
    train_idx, test_idx = _split(ds.labels, settings.held_out, settings.seed)
    x_all = _to_input(ds.images)
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


def _cache_key(dataset: str, shape: tuple[int, int, int], settings: EvaluatorSettings) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", dataset)[:40]
    digest = hashlib.sha256(json.dumps([dataset, shape, asdict(settings)]).encode()).hexdigest()[:12]
    return f"{slug}-{shape[0]}x{shape[1]}x{shape[2]}-v{EVALUATOR_VERSION}-{digest}"


def get_evaluator(
    ds: ImageDataset, settings: EvaluatorSettings | None = None, cache_dir: Path | None = None
) -> Evaluator:
    """The evaluator for ``ds`` from the cache, trained (and cached) first when missing."""
    settings = settings or EvaluatorSettings()
    shape = (ds.images.shape[3], ds.images.shape[1], ds.images.shape[2])
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / (_cache_key(ds.name, shape, settings) + ".pt")
    if path.exists():
        blob = torch.load(path, weights_only=True)
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
        _, test_idx = _split(ds.labels, settings.held_out, settings.seed)
        untested = Evaluator(nets, 0.0, ds.name, shape, settings)
        accuracy = float((untested.predict(ds.images[test_idx])[0] == ds.labels[test_idx]).mean())
        folder.mkdir(parents=True, exist_ok=True)
        blob = {
            "state_dicts": [net.state_dict() for net in nets],
            "held_out_accuracy": accuracy,
            "member_accuracies": members,
        }
        with atomic_path(path, unique=True) as tmp:  # concurrent evaluations never read a half-written file
            torch.save(blob, tmp)
    return Evaluator(nets, accuracy, ds.name, shape, settings, path, members)


# ---- the figures -----------------------------------------------------------------------------------------
def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N, F] and b [M, F].

    ‖μa − μb‖² + tr Σa + tr Σb − 2 tr √(√Σa Σb √Σa), the matrix square roots by symmetric eigendecomposition.
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root_a @ cov_b @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def mean_pairwise_distance(features: np.ndarray, rng: np.random.Generator) -> float:
    """Mean Euclidean distance over distinct pairs (a random subset of at most DIVERSITY_PAIRS_MAX rows)."""
    if len(features) < 2:
        return 0.0
    if len(features) > DIVERSITY_PAIRS_MAX:
        features = features[rng.choice(len(features), DIVERSITY_PAIRS_MAX, replace=False)]
    sq = (features**2).sum(1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2 * features @ features.T, 0, None)
    n = len(features)
    return float(np.sqrt(d2)[np.triu_indices(n, 1)].mean())


@dataclass
class Quality:
    """The evaluation of one set of samples against the real data (the JSON ``quality`` of a model card)."""

    samples: int
    seed: int
    dataset: str
    class_names: list[str]
    evaluator_accuracy: float
    class_histogram: list[float]
    real_class_histogram: list[float]
    classes_at_5pct: int
    kl_to_real: float
    frechet_distance: float
    frechet_real_vs_real: float
    frechet_ratio: float
    diversity_per_class: list[float]
    diversity_ratio: float
    label_accuracy: float | None = None
    label_accuracy_per_class: list[float] | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    images: np.ndarray,
    evaluator: Evaluator,
    real: ImageDataset,
    labels: np.ndarray | None = None,
    seed: int = 0,
) -> Quality:
    """All figures for uint8 samples [N, H, W, C]; ``labels`` are the classes asked for (conditional)."""
    if images.shape[1:] != real.images.shape[1:]:
        raise ValueError(
            f"samples have shape {images.shape[1:]} but the data set {real.name} {real.images.shape[1:]}"
        )
    k = real.num_classes
    pred, feats = evaluator.predict(images)
    real_pred, real_feats = evaluator.predict(real.images)
    del real_pred
    hist = np.bincount(pred, minlength=k) / len(pred)
    real_hist = np.bincount(real.labels, minlength=k) / len(real.labels)
    nz = hist > 0
    kl = float((hist[nz] * np.log(hist[nz] / real_hist[nz])).sum())

    # Real-vs-real: two random halves of the real data, the floor any generator is compared with.
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(real_feats))
    half = len(perm) // 2
    fd_real = frechet_distance(real_feats[perm[:half]], real_feats[perm[half:]])
    fd = frechet_distance(feats, real_feats)

    diversity = []
    for c in range(k):
        real_d = mean_pairwise_distance(real_feats[real.labels == c], rng)
        gen_d = mean_pairwise_distance(feats[pred == c], rng)
        diversity.append(gen_d / real_d if real_d > 0 else 0.0)

    q = Quality(
        samples=len(images),
        seed=seed,
        dataset=real.name,
        class_names=list(real.class_names),
        evaluator_accuracy=evaluator.held_out_accuracy,
        class_histogram=hist.round(5).tolist(),
        real_class_histogram=real_hist.round(5).tolist(),
        classes_at_5pct=int((hist >= COVERAGE_SHARE).sum()),
        kl_to_real=round(kl, 5),
        frechet_distance=round(fd, 4),
        frechet_real_vs_real=round(fd_real, 4),
        frechet_ratio=round(fd / fd_real, 3) if fd_real > 0 else float("inf"),
        diversity_per_class=[round(d, 4) for d in diversity],
        diversity_ratio=round(float(np.mean(diversity)), 4),
    )
    if labels is not None:
        correct = pred == labels
        q.label_accuracy = round(float(correct.mean()), 5)
        q.label_accuracy_per_class = [
            round(float(correct[labels == c].mean()), 5) if (labels == c).any() else 0.0 for c in range(k)
        ]
    q.targets = check_targets(q, conditional=labels is not None)
    return q


def check_targets(q: Quality, conditional: bool) -> list[dict[str, Any]]:
    """The project's quality targets (issue 6) as [{name, value, limit, ok}]."""
    checks: list[tuple[str, float, str, bool]] = []
    if conditional:
        checks.append(
            ("label_accuracy", q.label_accuracy or 0.0, ">= 0.995", (q.label_accuracy or 0) >= 0.995)
        )
    else:
        n = len(q.class_names)
        checks.append(("classes_at_5pct", q.classes_at_5pct, f">= {n}", q.classes_at_5pct >= n))
        checks.append(("kl_to_real", q.kl_to_real, "<= 0.02", q.kl_to_real <= 0.02))
    checks.append(("frechet_ratio", q.frechet_ratio, "<= 5", q.frechet_ratio <= 5))
    return [{"name": n, "value": v, "limit": lim, "ok": bool(ok)} for n, v, lim, ok in checks]


# ---- sampling an exported generator ----------------------------------------------------------------------
def sample_model(model: Any, count: int, seed: int, batch: int = 500) -> tuple[np.ndarray, np.ndarray | None]:
    """``count`` images of ``model`` (a training.onnx_generator.OnnxGenerator) for ``seed``, with labels.

    Conditional models draw each image's class from the seed (the service's contract: uniform classes).
    """
    images, labels = [], []
    for start in range(0, count, batch):
        idx = np.arange(start, min(count, start + batch), dtype=np.uint64)
        imgs, classes = model.generate(seed, idx, None)
        images.append(imgs)
        if classes is not None:
            labels.append(classes)
    return np.concatenate(images), (np.concatenate(labels) if labels else None)


def evaluate_model(
    path: Path,
    dataset: str | None = None,
    samples: int = 5000,
    seed: int = 0,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    settings: EvaluatorSettings | None = None,
) -> tuple[Quality, Any]:
    """Evaluate the generator in ``path`` (ONNX) against its data set; return (figures, loaded model)."""
    model, real, evaluator = load_for_evaluation(path, dataset, data_dir, cache_dir, settings)
    images, labels = sample_model(model, samples, seed)
    return measure(images, evaluator, real, labels, seed), model


def load_for_evaluation(
    path: Path,
    dataset: str | None = None,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    settings: EvaluatorSettings | None = None,
) -> tuple[Any, ImageDataset, Evaluator]:
    """(the ONNX generator on the CPU, its real data set, the evaluator for that data set)."""
    from training.onnx_generator import OnnxGenerator

    model = OnnxGenerator(Path(path))
    channels, size, _ = model.info.image_shape
    real = load_dataset(dataset or model.info.dataset, size, channels, data_dir)
    if model.info.conditional and model.info.num_classes != real.num_classes:
        raise ValueError(
            f"{path}: the model has {model.info.num_classes} classes but the data set {real.name} has "
            f"{real.num_classes}"
        )
    return model, real, get_evaluator(real, settings, cache_dir)


def format_table(q: Quality, name: str = "") -> str:
    """The figures as a terminal table: one summary block, then one row per class."""
    lines = [f"quality of {name or 'samples'}: {q.samples} samples (seed {q.seed}) vs {q.dataset}"]
    lines.append(f"  evaluator held-out accuracy   {q.evaluator_accuracy:.4f}")
    if q.label_accuracy is not None:
        lines.append(f"  label accuracy                {q.label_accuracy:.4f}")
    lines.append(f"  classes with >= 5% of samples {q.classes_at_5pct} / {len(q.class_names)}")
    lines.append(f"  KL(samples || real) classes   {q.kl_to_real:.4f}")
    lines.append(
        f"  Frechet distance              {q.frechet_distance:.3f}   (real vs real halves "
        f"{q.frechet_real_vs_real:.3f}, ratio {q.frechet_ratio:.2f})"
    )
    lines.append(f"  within-class diversity / real {q.diversity_ratio:.3f}")
    header = f"  {'class':>12} {'samples %':>9} {'real %':>7} {'diversity':>9}"
    if q.label_accuracy_per_class is not None:
        header += f" {'label acc':>9}"
    lines += ["", header]
    for c, cname in enumerate(q.class_names):
        row = (
            f"  {cname[:12]:>12} {100 * q.class_histogram[c]:9.1f} {100 * q.real_class_histogram[c]:7.1f}"
            f" {q.diversity_per_class[c]:9.3f}"
        )
        if q.label_accuracy_per_class is not None:
            row += f" {q.label_accuracy_per_class[c]:9.4f}"
        lines.append(row)
    lines.append("")
    for t in q.targets:
        lines.append(
            f"  target {t['name']:<16} {t['value']!s:>9} {t['limit']:<9} {'ok' if t['ok'] else 'MISSED'}"
        )
    return "\n".join(lines)
