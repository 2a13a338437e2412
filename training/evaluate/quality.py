"""All figures of one set of samples against the real data (a model card's ``quality``), and their table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.data import ImageDataset
from training.evaluate.autoencoder import Autoencoder, AutoencoderSettings, get_autoencoder
from training.evaluate.checkerboard import checkerboard_score
from training.evaluate.evaluator import Evaluator, EvaluatorSettings, get_evaluator, split_indices
from training.evaluate.label_free import (
    FIGURES,
    LabelFree,
    LabelFreeSettings,
    Reference,
    compare,
    fit_reference,
)
from training.evaluate.metrics import frechet_distance, mean_pairwise_distance
from training.evaluate.modes import ModeFigures, check_mode_targets
from training.evaluate.pixels import SPACE as PIXEL_SPACE
from training.evaluate.pixels import PixelSpace
from training.evaluate.targets import check_label_free_targets, check_targets

COVERAGE_SHARE = 0.05  # a class is "covered" when it holds at least this share of the samples


@dataclass
class Quality:
    """The evaluation of one set of samples against the real data (the JSON ``quality`` of a model card)."""

    samples: int
    seed: int
    dataset: str
    class_names: list[str]
    evaluator_accuracy: float | None  # None: a data set without classes has no evaluator
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
    label_free: LabelFree | None = None
    # The same figures in a space not learned from the data (``pixels``): no instrument judges alone.
    label_free_pixels: LabelFree | None = None
    # The lattice pattern of strided up-sampling (``checkerboard``), beside the same score of as many real
    # images: about equal when the samples show none.
    checkerboard: float | None = None
    real_checkerboard: float | None = None
    # stacked-digits only (the 1000-mode benchmark, ``modes``): modes covered among ``modes_samples`` samples
    # and KL(modes ‖ uniform), beside the same figures for as many real stacks.
    modes: int | None = None
    modes_kl: float | None = None
    modes_samples: int | None = None
    real_modes: int | None = None
    real_modes_kl: float | None = None

    def set_modes(self, samples: ModeFigures, real: ModeFigures) -> None:
        """Record the benchmark's figures and its target rows."""
        self.modes, self.modes_kl, self.modes_samples = samples.modes, samples.kl, samples.samples
        self.real_modes, self.real_modes_kl = real.modes, real.kl
        self.targets = self.targets + check_mode_targets(samples)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def all_targets(self) -> list[dict[str, Any]]:
        """Every target row: the class figures' and, where measured, the label-free ones."""
        rows = self.targets + (self.label_free.targets if self.label_free is not None else [])
        if self.label_free_pixels is not None:  # the second space's rows say which space they are in
            space = self.label_free_pixels.feature_space
            rows += [{**t, "name": f"{t['name']} ({space})"} for t in self.label_free_pixels.targets]
        return rows

    def missed_targets(self) -> list[str]:
        """Names of the targets these figures miss."""
        return [t["name"] for t in self.all_targets() if not t["ok"]]


def has_classes(real: ImageDataset) -> bool:
    """Whether the data set's classes can train an evaluator (a single folder of images cannot)."""
    return real.num_classes >= 2


def evaluator_for(
    real: ImageDataset, settings: EvaluatorSettings | None = None, cache_dir: Path | None = None
) -> Evaluator | None:
    """The evaluator of ``real`` (trained and cached first when missing); None for a data set without classes,
    whose figures are label-free."""
    return get_evaluator(real, settings, cache_dir) if has_classes(real) else None


@dataclass
class RealFeatures:
    """The real data in the figures' feature space, and the label-free reference fitted on it."""

    space: str  # "evaluator" or "autoencoder"
    features: np.ndarray
    reference: Reference
    autoencoder: Autoencoder | None = None
    pixel_space: PixelSpace | None = None  # the second space and its reference (``pixels``)
    pixel_reference: Reference | None = None


def real_features(
    real: ImageDataset,
    evaluator: Evaluator | None,
    settings: LabelFreeSettings | None = None,
    cache_dir: Path | None = None,
    autoencoder_settings: AutoencoderSettings | None = None,
    second_space: bool = True,
) -> RealFeatures:
    """Features of the real data and the label-free reference (fit once; reuse it for many sample sets).

    The evaluator's features where the data set has classes (trained to tell them apart, so they hold what
    makes a digit a 3); the autoencoder's code otherwise. The held-out half is a stratified split by class.
    """
    settings = settings or LabelFreeSettings()
    autoencoder = None
    if evaluator is not None and has_classes(real):
        space, feats = "evaluator", evaluator.predict(real.images)[1]
    else:
        autoencoder = get_autoencoder(real.images, real.name, autoencoder_settings, cache_dir)
        space, feats = "autoencoder", autoencoder.features(real.images)
    _, held = split_indices(real.labels, 0.5, settings.seed)
    mask = np.zeros(len(feats), dtype=bool)
    mask[held] = True
    reals = RealFeatures(space, feats, fit_reference(feats, mask, settings, space), autoencoder)
    if second_space:
        reals.pixel_space = PixelSpace.fit(real.images, seed=settings.seed)
        pixel_feats = reals.pixel_space.features(real.images)
        reals.pixel_reference = fit_reference(pixel_feats, mask, settings, PIXEL_SPACE)
    return reals


def measure(
    images: np.ndarray,
    evaluator: Evaluator | None,
    real: ImageDataset,
    labels: np.ndarray | None = None,
    seed: int = 0,
    reals: RealFeatures | None = None,
    cache_dir: Path | None = None,
    autoencoder_settings: AutoencoderSettings | None = None,
) -> Quality:
    """All figures for uint8 samples [N, H, W, C]; ``labels`` are the classes asked for (conditional).

    ``evaluator`` may be None only for a data set without classes. ``reals`` (from ``real_features``) saves
    refitting the label-free reference when one data set is measured many times.
    """
    if images.shape[1:] != real.images.shape[1:]:
        raise ValueError(
            f"samples have shape {images.shape[1:]} but the data set {real.name} {real.images.shape[1:]}"
        )
    classes = evaluator is not None and has_classes(real)
    if reals is None:
        reals = real_features(real, evaluator if classes else None, None, cache_dir, autoencoder_settings)
    k = real.num_classes
    if classes:
        pred, feats = evaluator.predict(images)  # type: ignore[union-attr]
    else:
        pred = np.zeros(len(images), dtype=np.int64)
        feats = reals.autoencoder.features(images)  # type: ignore[union-attr]
    real_feats = reals.features
    hist = np.bincount(pred, minlength=k) / len(pred)
    real_hist = np.bincount(real.labels, minlength=k) / len(real.labels)
    nz = hist > 0
    kl = float((hist[nz] * np.log(hist[nz] / real_hist[nz])).sum())

    # Real-vs-real, the floor any generator is compared with: as many random real images as there are
    # samples (at most half the data) against the rest. The Fréchet distance of finite sets is biased upwards
    # by about 1/size, so the floor must be taken at the samples' size: between two halves of a 60,000-image
    # set it is several times smaller than any 5,000 real images would score.
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(real_feats))
    part = min(len(images), len(perm) // 2)
    fd_real = frechet_distance(real_feats[perm[:part]], real_feats[perm[part:]])
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
        evaluator_accuracy=evaluator.held_out_accuracy if classes else None,  # type: ignore[union-attr]
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
    if labels is not None and classes:
        correct = pred == labels
        q.label_accuracy = round(float(correct.mean()), 5)
        q.label_accuracy_per_class = [
            round(float(correct[labels == c].mean()), 5) if (labels == c).any() else 0.0 for c in range(k)
        ]
    q.targets = check_targets(q, conditional=labels is not None and classes)
    q.checkerboard = round(checkerboard_score(images), 4)
    q.real_checkerboard = round(checkerboard_score(real.images[perm[: len(images)]]), 4)
    q.label_free = compare(reals.reference, feats)
    q.label_free.targets = check_label_free_targets(q.label_free, real.name)
    if reals.pixel_space is not None and reals.pixel_reference is not None:
        q.label_free_pixels = compare(reals.pixel_reference, reals.pixel_space.features(images))
        q.label_free_pixels.targets = check_label_free_targets(q.label_free_pixels, real.name)
    return q


_LABEL_FREE_NAMES = {
    "ndb_k": "NDB/K (bins that differ)",
    "js": "JS divergence of the bins",
    "precision": "precision (k=3)",
    "recall": "recall (k=3)",
    "density": "density (k=5)",
    "coverage": "coverage (k=5)",
    "duplicates": "near-duplicates among samples",
    "copies": "copies of training images",
}


def label_free_lines(lf: LabelFree) -> list[str]:
    """The label-free figures as terminal lines: samples beside held-out real."""
    lines = [
        f"  label-free figures ({lf.feature_space} features; {lf.compared_size} samples and "
        f"{lf.compared_size} held-out real images vs {lf.reference_size} training real images, "
        f"K = {lf.bins} bins)",
        f"  {'':32} {'samples':>9} {'real':>9}",
    ]
    for name in FIGURES:
        lines.append(
            f"  {_LABEL_FREE_NAMES[name]:<32} {getattr(lf.samples, name):9.4f} {getattr(lf.real, name):9.4f}"
        )
    return lines


def format_table(q: Quality, name: str = "") -> str:
    """The figures as a terminal table: one summary block, one row per class, then the label-free block."""
    lines = [f"quality of {name or 'samples'}: {q.samples} samples (seed {q.seed}) vs {q.dataset}"]
    if q.evaluator_accuracy is not None:
        lines.append(f"  evaluator held-out accuracy   {q.evaluator_accuracy:.4f}")
    if q.label_accuracy is not None:
        lines.append(f"  label accuracy                {q.label_accuracy:.4f}")
    if q.evaluator_accuracy is not None:
        lines.append(f"  classes with >= 5% of samples {q.classes_at_5pct} / {len(q.class_names)}")
        lines.append(f"  KL(samples || real) classes   {q.kl_to_real:.4f}")
    lines.append(
        f"  Frechet distance              {q.frechet_distance:.3f}   (real vs real at the samples' size "
        f"{q.frechet_real_vs_real:.3f}, ratio {q.frechet_ratio:.2f})"
    )
    lines.append(f"  within-class diversity / real {q.diversity_ratio:.3f}")
    if q.checkerboard is not None:
        lines.append(
            f"  checkerboard score            {q.checkerboard:.3f}   (real {q.real_checkerboard:.3f}; the "
            "lattice of strided up-sampling)"
        )
    if q.modes is not None:
        lines.append(
            f"  modes (of 1000) in {q.modes_samples} samples {q.modes:5d}   KL to uniform {q.modes_kl:.4f}   "
            f"(real stacks: {q.real_modes}, KL {q.real_modes_kl:.4f})"
        )
    if q.evaluator_accuracy is not None:
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
    for lf in (q.label_free, q.label_free_pixels):
        if lf is not None:
            lines += ["", *label_free_lines(lf)]
    lines.append("")
    for t in q.all_targets():
        lines.append(
            f"  target {t['name']:<28} {t['value']!s:>9} {t['limit']:<20} {'ok' if t['ok'] else 'MISSED'}"
        )
    return "\n".join(lines)
