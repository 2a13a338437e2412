"""The project's quality targets, per data set: what a shipped model of that data set is held to.

- digits (and any data set without its own line): the class figures' targets; the label-free limits.
- fashion-mnist: a conditional model's label accuracy at least the evaluator's own held-out
  accuracy (its samples classify as well as real images do), Fréchet ratio ≤ 3, NDB/K ≤ 0.1.
- emoji: the label-free limits; a conditional model's category accuracy ≥ 0.8 × the evaluator's
  held-out accuracy. No class-share target for unconditional models: the categories are far from balanced
  (Activities is 4.5 % of the real set, so "every class ≥ 5 %" would fail the real data itself); the class
  histogram and its KL are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.evaluate.label_free import LabelFree
    from training.evaluate.quality import Quality

# Set for the emoji models, reported for every model: limits on the samples' label-free figures.
NDB_K_MAX = 0.3
RECALL_MIN = 0.4
COVERAGE_MIN = 0.7
REAL_RATE_FACTOR = 2.0  # near-duplicates and copies: at most this many times the real data's own rate


@dataclass(frozen=True)
class Targets:
    """The limits a data set's models are held to (None: not a target for that data set)."""

    label_accuracy_min: float | None = 0.995  # conditional models, absolute
    label_accuracy_of_evaluator: float | None = (
        None  # conditional models, × the evaluator's held-out accuracy
    )
    class_shares: bool = True  # unconditional: every class ≥ 5 % of the samples and KL ≤ kl_max
    kl_max: float = 0.02
    frechet_ratio_max: float | None = 5.0
    ndb_k_max: float = NDB_K_MAX
    recall_min: float = RECALL_MIN
    coverage_min: float = COVERAGE_MIN
    real_rate_factor: float = REAL_RATE_FACTOR


DEFAULT_TARGETS = Targets()
TARGETS = {
    "fashion-mnist": Targets(
        label_accuracy_min=None, label_accuracy_of_evaluator=1.0, frechet_ratio_max=3.0, ndb_k_max=0.1
    ),
    "emoji": Targets(
        label_accuracy_min=None, label_accuracy_of_evaluator=0.8, class_shares=False, frechet_ratio_max=None
    ),
}


def targets_for(dataset: str) -> Targets:
    """The targets of models of ``dataset`` (``folder:…`` and digits get the defaults)."""
    return TARGETS.get(dataset, DEFAULT_TARGETS)


def _rows(checks: list[tuple[str, float, str, bool]]) -> list[dict[str, Any]]:
    return [{"name": n, "value": v, "limit": lim, "ok": bool(ok)} for n, v, lim, ok in checks]


def check_targets(q: Quality, conditional: bool) -> list[dict[str, Any]]:
    """The class-figure targets of ``q.dataset`` as [{name, value, limit, ok}]."""
    t = targets_for(q.dataset)
    checks: list[tuple[str, float, str, bool]] = []
    acc = q.label_accuracy or 0.0
    if conditional:
        if t.label_accuracy_min is not None:
            checks.append(("label_accuracy", acc, f">= {t.label_accuracy_min}", acc >= t.label_accuracy_min))
        if t.label_accuracy_of_evaluator is not None and q.evaluator_accuracy is not None:
            floor = round(t.label_accuracy_of_evaluator * q.evaluator_accuracy, 4)
            share = "" if t.label_accuracy_of_evaluator == 1.0 else f"{t.label_accuracy_of_evaluator:g} x "
            checks.append(("label_accuracy", acc, f">= {floor} ({share}evaluator)", acc >= floor))
    elif t.class_shares and len(q.class_names) >= 2:  # class figures mean nothing without classes
        n = len(q.class_names)
        checks.append(("classes_at_5pct", q.classes_at_5pct, f">= {n}", q.classes_at_5pct >= n))
        checks.append(("kl_to_real", q.kl_to_real, f"<= {t.kl_max}", q.kl_to_real <= t.kl_max))
    if t.frechet_ratio_max is not None:
        ratio_ok = q.frechet_ratio <= t.frechet_ratio_max
        checks.append(("frechet_ratio", q.frechet_ratio, f"<= {t.frechet_ratio_max:g}", ratio_ok))
    return _rows(checks)


def check_label_free_targets(lf: LabelFree, dataset: str = "") -> list[dict[str, Any]]:
    """The limits on the label-free figures (those of ``dataset``) as [{name, value, limit, ok}]."""
    t = targets_for(dataset)
    s, r = lf.samples, lf.real
    dup_max = round(t.real_rate_factor * r.duplicates, 4)
    copy_max = round(t.real_rate_factor * r.copies, 4)
    factor = f"{t.real_rate_factor:g}x real"
    return _rows([
        ("ndb_k", s.ndb_k, f"<= {t.ndb_k_max}", s.ndb_k <= t.ndb_k_max),
        ("recall", s.recall, f">= {t.recall_min}", s.recall >= t.recall_min),
        ("coverage", s.coverage, f">= {t.coverage_min}", s.coverage >= t.coverage_min),
        ("duplicates", s.duplicates, f"<= {dup_max} ({factor})", s.duplicates <= dup_max),
        ("copies", s.copies, f"<= {copy_max} ({factor})", s.copies <= copy_max),
    ])  # fmt: skip
