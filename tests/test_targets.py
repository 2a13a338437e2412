"""Per-data-set quality targets: each data set's models are held to the limits its issue set."""

from __future__ import annotations

from training.evaluate.quality import Quality
from training.evaluate.targets import check_targets, targets_for


def quality(dataset: str, **changes) -> Quality:
    base = dict(
        samples=1000, seed=0, dataset=dataset, class_names=[str(k) for k in range(10)],
        evaluator_accuracy=0.92,
        class_histogram=[0.1] * 10, real_class_histogram=[0.1] * 10, classes_at_5pct=10, kl_to_real=0.01,
        frechet_distance=40.0, frechet_real_vs_real=10.0, frechet_ratio=4.0, diversity_per_class=[1.0] * 10,
        diversity_ratio=1.0, label_accuracy=0.95,
    )  # fmt: skip
    base.update(changes)
    return Quality(**base)


def verdicts(q: Quality, conditional: bool) -> dict[str, bool]:
    return {t["name"]: t["ok"] for t in check_targets(q, conditional)}


def test_digits_keep_issue_6_targets():
    assert verdicts(quality("digits"), conditional=True) == {"label_accuracy": False, "frechet_ratio": True}
    assert verdicts(quality("digits", label_accuracy=0.996), conditional=True)["label_accuracy"]
    assert verdicts(quality("digits"), conditional=False) == {
        "classes_at_5pct": True, "kl_to_real": True, "frechet_ratio": True,
    }  # fmt: skip


def test_fashion_label_accuracy_is_held_to_the_evaluators_own():
    assert verdicts(quality("fashion-mnist", label_accuracy=0.93, frechet_ratio=2.9), True) == {
        "label_accuracy": True, "frechet_ratio": True,
    }  # fmt: skip
    assert verdicts(quality("fashion-mnist", label_accuracy=0.91, frechet_ratio=3.1), True) == {
        "label_accuracy": False, "frechet_ratio": False,
    }  # fmt: skip
    assert targets_for("fashion-mnist").ndb_k_max == 0.1


def test_emoji_conditional_needs_four_fifths_of_the_evaluator_and_no_class_shares_unconditional():
    q = quality("emoji", class_names=[str(k) for k in range(9)], evaluator_accuracy=0.6, classes_at_5pct=8)
    assert verdicts(quality("emoji", evaluator_accuracy=0.6, label_accuracy=0.49), True) == {
        "label_accuracy": True
    }
    assert verdicts(quality("emoji", evaluator_accuracy=0.6, label_accuracy=0.47), True) == {
        "label_accuracy": False
    }
    assert verdicts(q, conditional=False) == {}  # label-free targets only (checked on the label-free figures)
    assert targets_for("folder:/x") == targets_for("digits")
