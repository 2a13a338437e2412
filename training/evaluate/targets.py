"""The project's quality targets: issue 6's class figures, issue 17's label-free figures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.evaluate.label_free import LabelFree
    from training.evaluate.quality import Quality

# Issue 17 (set for the emoji models; reported for every model): limits on the samples' figures.
NDB_K_MAX = 0.3
RECALL_MIN = 0.4
COVERAGE_MIN = 0.7
REAL_RATE_FACTOR = 2.0  # near-duplicates and copies: at most this many times the real data's own rate


def _rows(checks: list[tuple[str, float, str, bool]]) -> list[dict[str, Any]]:
    return [{"name": n, "value": v, "limit": lim, "ok": bool(ok)} for n, v, lim, ok in checks]


def check_targets(q: Quality, conditional: bool) -> list[dict[str, Any]]:
    """The project's quality targets (issue 6) as [{name, value, limit, ok}]."""
    checks: list[tuple[str, float, str, bool]] = []
    if conditional:
        checks.append(
            ("label_accuracy", q.label_accuracy or 0.0, ">= 0.995", (q.label_accuracy or 0) >= 0.995)
        )
    elif len(q.class_names) >= 2:  # class figures mean nothing for a data set without classes
        n = len(q.class_names)
        checks.append(("classes_at_5pct", q.classes_at_5pct, f">= {n}", q.classes_at_5pct >= n))
        checks.append(("kl_to_real", q.kl_to_real, "<= 0.02", q.kl_to_real <= 0.02))
    checks.append(("frechet_ratio", q.frechet_ratio, "<= 5", q.frechet_ratio <= 5))
    return _rows(checks)


def check_label_free_targets(lf: LabelFree) -> list[dict[str, Any]]:
    """Issue 17's limits on the label-free figures as [{name, value, limit, ok}]."""
    s, r = lf.samples, lf.real
    dup_max = round(REAL_RATE_FACTOR * r.duplicates, 4)
    copy_max = round(REAL_RATE_FACTOR * r.copies, 4)
    return _rows([
        ("ndb_k", s.ndb_k, f"<= {NDB_K_MAX}", s.ndb_k <= NDB_K_MAX),
        ("recall", s.recall, f">= {RECALL_MIN}", s.recall >= RECALL_MIN),
        ("coverage", s.coverage, f">= {COVERAGE_MIN}", s.coverage >= COVERAGE_MIN),
        ("duplicates", s.duplicates, f"<= {dup_max} (2x real)", s.duplicates <= dup_max),
        ("copies", s.copies, f"<= {copy_max} (2x real)", s.copies <= copy_max),
    ])  # fmt: skip
