"""Print the README's results table (markdown) from model cards.

Usage: ``python scripts/results_table.py models/*.json``

Two tables: the class figures, then the label-free figures, each as "samples (held-out
real)".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LABEL_FREE = ("ndb_k", "js", "precision", "recall", "density", "coverage", "duplicates", "copies")


def row(card: dict) -> str:
    q = card["quality"]
    label = f"{q['label_accuracy']:.4f}" if q.get("label_accuracy") is not None else "–"
    flags = " ".join(f"{k} {v}" if v is not True else k for k, v in card["changes_from_preset"].items())
    if card.get("truncation", 1.0) != 1.0:  # an export option, shown with the training changes
        flags += f" (export --truncation {card['truncation']:g})"
    met = (
        "none for this data set"
        if not q["targets"]
        else "all met"
        if all(t["ok"] for t in q["targets"])
        else "missed: " + ", ".join(t["name"] for t in q["targets"] if not t["ok"])
    )
    return (
        f"| `{card['name']}` | `{card['recipe']}` | `{flags or 'preset'}` | {card['steps']} | "
        f"{card['training_cpu_seconds']:.0f} | {label} | {q['classes_at_5pct']}/{len(q['class_names'])} | "
        f"{q['kl_to_real']:.4f} | {q['frechet_distance']:.2f} ({q['frechet_real_vs_real']:.2f}) | "
        f"{q['frechet_ratio']:.2f} | {q['diversity_ratio']:.2f} | {met} |"
    )


def label_free_row(card: dict, space: str = "label_free") -> str:
    """The card's label-free figures in one feature space (``label_free`` or ``label_free_pixels``): each as
    samples (held-out real)."""
    lf = card["quality"].get(space)
    if not lf:
        return f"| `{card['name']}` | " + " | ".join("–" for _ in LABEL_FREE) + " |"
    digits = {"js": 3}  # the JS divergence of close histograms is a few hundredths
    cells = [
        f"{lf['samples'][k]:.{digits.get(k, 2)}f} ({lf['real'][k]:.{digits.get(k, 2)}f})" for k in LABEL_FREE
    ]
    missed = [t["name"] for t in lf.get("targets", []) if not t["ok"]]
    return (
        f"| `{card['name']}` | {lf['feature_space']} | "
        + " | ".join(cells)
        + f" | {', '.join(missed) or 'all met'} |"
    )


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python scripts/results_table.py models/*.json", file=sys.stderr)
        return 2
    print(
        "| model | recipe | changes from the paper preset | steps | CPU-s | label acc | classes ≥ 5% | KL | "
        "Fréchet (real vs real) | ratio | diversity | targets |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    cards = [json.loads(Path(path).read_text()) for path in paths]
    for card in cards:
        print(row(card))
    print()
    print(
        "| model | features | NDB/K | JS | precision | recall | density | coverage | near-duplicates "
        "| copies | label-free targets missed |"
    )
    print("|---|---|" + "---|" * len(LABEL_FREE) + "---|")
    for card in cards:
        print(label_free_row(card))
        if card["quality"].get("label_free_pixels"):
            print(label_free_row(card, "label_free_pixels"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
