"""Label-free mode-collapse figures on feature sets, each beside the same figure for real against real.

Three sets of features play the parts (all figures are in one feature space, see ``features``):

- the *reference*: the training half of the real data (bins, k-NN balls and distance thresholds come from it);
- the *held-out* half of the real data: the "perfect generator", whose figures are the yardstick;
- the *samples*, trimmed to the held-out count, so the two are compared at the same set size (k-NN radii,
  the z-test's power and the birthday test all depend on how many points a set has).

Figures (definitions in /work/shared/notes/data-and-metrics.md and the papers):

- NDB/K and JS (Richardson & Weiss 2018): K-means bins fitted on the reference; a bin is different when a
  two-proportion z-test rejects equal shares at ``alpha``; JS divergence (natural log) of the bin histograms.
- precision / recall (Kynkäänniemi et al. 2019, k = 3): share of samples inside the union of the reference's
  k-NN balls / share of the reference inside the union of the samples' k-NN balls.
- density / coverage (Naeem et al. 2020, k = 5): mean count of reference balls holding a sample, over k /
  share of reference balls holding at least one sample.
- near-duplicates (the birthday-paradox test of Arora & Zhang 2017, as a rate): share of a set's points whose
  nearest *other* point of the same set is closer than ``near_quantile`` of the reference's own
  nearest-neighbour distances.
- copies: share of points closer to a training image than ``near_quantile`` of the training images are to
  their nearest other training image. For samples the training set is the whole real data set (what the
  generator saw); for the held-out half it is the reference half.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_chunked
from sklearn.neighbors import NearestNeighbors

# 1: first version (bump when a definition changes: cards record it)
LABEL_FREE_VERSION = 1
FIGURES = ("ndb_k", "js", "precision", "recall", "density", "coverage", "duplicates", "copies")


@dataclass(frozen=True)
class LabelFreeSettings:
    """Parameters of the label-free figures (the papers' values where they give one)."""

    bins: int = 50  # K of NDB; fewer when the reference has under `min_per_bin`·K points
    min_per_bin: int = 10  # a bin's expected count in the reference, so the z-test has something to test
    alpha: float = 0.05  # significance of the per-bin two-proportion z-test
    k_precision_recall: int = 3
    k_density_coverage: int = 5
    # Near-duplicates and copies: "closer than this share of real images are to their nearest neighbour".
    # 5% rather than 1% so the real data's own rate is counted on enough points to be stable at ~1,000 images.
    near_quantile: float = 0.05
    max_points: int = 10_000  # each set is subsampled to at most this many points (k-NN cost is quadratic)
    seed: int = 0


@dataclass
class SetFigures:
    """The label-free figures of one set (samples, or the held-out real half) against the reference."""

    ndb: int
    ndb_k: float
    js: float
    precision: float
    recall: float
    density: float
    coverage: float
    duplicates: float
    copies: float


@dataclass
class LabelFree:
    """The label-free figures of the samples and of held-out real data (the ``label_free`` of a Quality)."""

    feature_space: str  # "evaluator" or "autoencoder"
    reference_size: int  # points in the reference (training half of the real data)
    compared_size: int  # samples = held-out real points compared
    bins: int
    samples: SetFigures
    real: SetFigures  # held-out real half against the training half
    settings: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)  # the limits of targets.py
    version: int = LABEL_FREE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kth_neighbour_distance(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of x to its k-th nearest *other* row."""
    k = min(k, len(x) - 1)
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return dist[:, k]  # column 0 is the point itself (distance 0)


def _nearest_distance(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    return NearestNeighbors(n_neighbors=1).fit(points).kneighbors(queries)[0][:, 0]


def _balls(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query: whether any ball (centre, radius) holds it, and how many do; chunked in memory."""
    inside_any, inside_count = [], []
    for chunk in pairwise_distances_chunked(queries, centres, working_memory=64):
        inside = chunk <= radii[None, :]
        inside_any.append(inside.any(1))
        inside_count.append(inside.sum(1))
    return np.concatenate(inside_any), np.concatenate(inside_count)


def ndb_test(
    ref_counts: np.ndarray, counts: np.ndarray, alpha: float = 0.05
) -> tuple[int, float, np.ndarray]:
    """(number of different bins, JS divergence, per-bin different flags) of two bin histograms (counts).

    Two-proportion z-test per bin with the pooled proportion; a bin with pooled share 0 or 1 cannot differ.
    """
    n1, n2 = ref_counts.sum(), counts.sum()
    p, q = ref_counts / n1, counts / n2
    pooled = (ref_counts + counts) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = np.divide(p - q, se, out=np.zeros_like(p), where=se > 0)
    pvalues = np.array([math.erfc(abs(v) / math.sqrt(2)) for v in z])  # two-sided
    different = (pvalues < alpha) & (se > 0)
    m = (p + q) / 2
    js = 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
    return int(different.sum()), float(js), different


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / q[nz])).sum())


@dataclass
class Reference:
    """What the figures need from the real data, fitted once and reused for many sample sets."""

    train: np.ndarray  # reference features (training half)
    held_out: np.ndarray  # held-out half, already trimmed to at most max_points
    everything: np.ndarray  # all real features (the generator's training set), for copies of samples
    settings: LabelFreeSettings
    feature_space: str
    kmeans: KMeans = field(repr=False, default=None)  # type: ignore[assignment]
    bin_counts: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    radii_pr: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    radii_dc: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    near_train: float = 0.0  # duplicate / copy threshold from the training half's own NN distances
    near_everything: float = 0.0  # copy threshold from all real data's own NN distances
    real: SetFigures | None = None  # the held-out half's figures, computed once

    @property
    def bins(self) -> int:
        return int(self.kmeans.n_clusters)


def fit_reference(
    features: np.ndarray,
    held_out_mask: np.ndarray,
    settings: LabelFreeSettings | None = None,
    feature_space: str = "evaluator",
) -> Reference:
    """Fit bins, balls and thresholds on real features [N, F]; ``held_out_mask`` marks the held-out half."""
    s = settings or LabelFreeSettings()
    rng = np.random.default_rng(s.seed)
    train, held = features[~held_out_mask], features[held_out_mask]
    if len(train) > s.max_points:
        train = train[np.sort(rng.choice(len(train), s.max_points, replace=False))]
    if len(held) > s.max_points:
        held = held[np.sort(rng.choice(len(held), s.max_points, replace=False))]
    held = held[rng.permutation(len(held))]  # so any prefix (fewer samples than held-out) is a random subset
    if min(len(train), len(held)) <= s.k_density_coverage + 1:
        raise ValueError(
            f"the label-free figures need more than {s.k_density_coverage + 1} real images in each half; "
            f"the data set has {len(features)}"
        )
    k = max(2, min(s.bins, len(train) // s.min_per_bin))
    kmeans = KMeans(n_clusters=k, n_init=3, random_state=s.seed).fit(train)
    everything = features
    if len(everything) > 2 * s.max_points:
        everything = everything[np.sort(rng.choice(len(everything), 2 * s.max_points, replace=False))]
    ref = Reference(
        train=train,
        held_out=held,
        everything=everything,
        settings=s,
        feature_space=feature_space,
        kmeans=kmeans,
        bin_counts=np.bincount(kmeans.labels_, minlength=k),
        radii_pr=_kth_neighbour_distance(train, s.k_precision_recall),
        radii_dc=_kth_neighbour_distance(train, s.k_density_coverage),
        near_train=float(np.quantile(_kth_neighbour_distance(train, 1), s.near_quantile)),
        near_everything=float(np.quantile(_kth_neighbour_distance(everything, 1), s.near_quantile)),
    )
    ref.real = set_figures(ref, held, copies_of=(train, ref.near_train))
    return ref


def set_figures(
    ref: Reference, x: np.ndarray, copies_of: tuple[np.ndarray, float] | None = None
) -> SetFigures:
    """The figures of feature set ``x`` against the reference.

    ``copies_of`` = (training set, threshold) for the copy rate; the default is all real data, the
    training set of a generator.
    """
    s = ref.settings
    counts = np.bincount(ref.kmeans.predict(x), minlength=ref.bins)
    ndb, js, _ = ndb_test(ref.bin_counts, counts, s.alpha)
    in_real_pr, _ = _balls(x, ref.train, ref.radii_pr)
    _, in_real_dc = _balls(x, ref.train, ref.radii_dc)
    radii_x = _kth_neighbour_distance(x, s.k_precision_recall) if len(x) > 1 else np.zeros(len(x))
    in_x, _ = _balls(ref.train, x, radii_x)
    covered = _nearest_distance(ref.train, x) <= ref.radii_dc
    own_nn = _kth_neighbour_distance(x, 1) if len(x) > 1 else np.full(len(x), np.inf)
    train_set, threshold = copies_of or (ref.everything, ref.near_everything)
    return SetFigures(
        ndb=ndb,
        ndb_k=round(ndb / ref.bins, 4),
        js=round(js, 5),
        precision=round(float(in_real_pr.mean()), 4),
        recall=round(float(in_x.mean()), 4),
        density=round(float(in_real_dc.sum() / (s.k_density_coverage * len(x))), 4),
        coverage=round(float(covered.mean()), 4),
        duplicates=round(float((own_nn <= ref.near_train).mean()), 4),
        copies=round(float((_nearest_distance(x, train_set) <= threshold).mean()), 4),
    )


def compare(ref: Reference, samples: np.ndarray) -> LabelFree:
    """The samples' figures beside the held-out real half's; samples are trimmed to the held-out count."""
    m = min(len(samples), len(ref.held_out))
    if m <= ref.settings.k_density_coverage:
        raise ValueError(f"the label-free figures need more than {ref.settings.k_density_coverage} samples")
    # The first m samples: the service's images 0…m−1 of the seed, so the figures stay reproducible.
    figures = set_figures(ref, samples[:m])
    real = ref.real
    if m < len(ref.held_out):  # fewer samples than held-out images: the yardstick at the same size
        real = set_figures(ref, ref.held_out[:m], copies_of=(ref.train, ref.near_train))
    return LabelFree(
        feature_space=ref.feature_space,
        reference_size=len(ref.train),
        compared_size=m,
        bins=ref.bins,
        samples=figures,
        real=real,
        settings=asdict(ref.settings),
    )
