"""Fidelity against variety: evaluate an exported generator at several truncations ψ (samples of G(ψ·z)).

    python -m benchmarks.truncation models/digits-cgan.onnx --psi 1 0.9 0.8 0.7 0.6

Feeds ψ·z to the file, z drawn by the service's noise contract for the seed, so each row is what
``python -m training export RUN --truncation ψ`` followed by ``python -m training evaluate`` would report
(for a file already exported with ψ₀, the row's effective truncation is ψ₀·ψ). Prints one row per ψ with the
class figures; ``--json`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from gancore.generator import GeneratorModel
from training.evaluate import (
    EvaluatorSettings,
    Quality,
    load_for_evaluation,
    measure,
    real_features,
    sample_model,
)


class Tempered:
    """A generator whose runs get ψ·z, sampled by the contract's own ``generate`` (noise, uint8)."""

    generate = GeneratorModel.generate

    def __init__(self, model: GeneratorModel, psi: float):
        self.model, self.psi, self.info = model, psi, model.info

    def run(self, z: np.ndarray, label: np.ndarray | None) -> np.ndarray:
        return self.model.run((z * self.psi).astype(np.float32), label)


def sweep(
    path: Path,
    psis: list[float],
    samples: int = 5000,
    seed: int = 0,
    settings: EvaluatorSettings | None = None,
    cache_dir: Path | None = None,
) -> list[tuple[float, Quality]]:
    """(ψ, figures) for each ψ, on the same seed's noise, by the evaluator ``evaluate`` uses."""
    model, real, evaluator = load_for_evaluation(path, cache_dir=cache_dir, settings=settings)
    # The real data's features and label-free reference once for every ψ: on Fashion-MNIST (60,000 images)
    # refitting them per row cost minutes each.
    reals = real_features(real, evaluator, None, cache_dir)
    rows = []
    for psi in psis:
        images, labels = sample_model(Tempered(model, psi), samples, seed)
        rows.append((psi, measure(images, evaluator, real, labels, seed, reals=reals, cache_dir=cache_dir)))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="an exported generator, e.g. models/digits-cgan.onnx")
    p.add_argument("--psi", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7, 0.6])
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluator-epochs", type=int, default=None, help="(quick checks) evaluator epochs")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    bad = [psi for psi in args.psi if not 0.0 < psi <= 1.0]
    if bad:
        print(f"error: --psi values must be in (0, 1], got {bad}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    settings = EvaluatorSettings(epochs=args.evaluator_epochs)
    rows = sweep(args.model, args.psi, args.samples, args.seed, settings)
    print(f"{args.model.name}: {args.samples} samples of seed {args.seed}")
    header = (
        f"{'psi':>5} {'label acc':>9} {'cls>=5%':>7} {'KL':>7} {'Frechet ratio':>13} {'diversity':>9}"
        f" {'NDB/K':>6} {'precision':>9} {'recall':>6} {'coverage':>8}"
    )
    print(header + "  targets")
    for psi, q in rows:
        label = f"{q.label_accuracy:.4f}" if q.label_accuracy is not None else "-"
        lf = q.label_free.samples if q.label_free is not None else None
        free = f" {lf.ndb_k:6.3f} {lf.precision:9.3f} {lf.recall:6.3f} {lf.coverage:8.3f}" if lf else " " * 33
        missed = q.missed_targets()
        print(
            f"{psi:5.2f} {label:>9} {q.classes_at_5pct:>7} {q.kl_to_real:7.4f} {q.frechet_ratio:13.2f}"
            f" {q.diversity_ratio:9.3f}{free}  {'all met' if not missed else 'missed: ' + ', '.join(missed)}"
        )
    if args.json:
        args.json.write_text(json.dumps([{"psi": psi, **q.to_dict()} for psi, q in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
