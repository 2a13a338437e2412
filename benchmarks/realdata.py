"""Real-data settings at equal CPU time, judged in two feature spaces.

    CONFIGS=benchmarks/realdata RUNS=runs/realdata benchmarks/ablation/run.sh emoji-1-shipped ...   # train
    python -m benchmarks.realdata runs/realdata/emoji-* --budget 1800

For every run folder (trained with ``--keep-every N``) it takes the last kept checkpoint whose training
CPU-seconds fit the budget, samples the generator ``export`` would ship (5000 images of seed 0, the service's
noise contract) and measures it as ``python -m training evaluate`` does, in both feature spaces: the
evaluator's (or the autoencoder's, for data without classes) and 16×16 alpha-premultiplied pixels with PCA,
which nothing learned from the data. It adds the checkerboard score (``training.evaluate.checkerboard``:
excess spectral power on the strided up-sampling lattice; the real data's own score when there is no
pattern) and, with classes, the Fréchet distance of the real set with one class removed, in both spaces: the
bar a conditional model must pass (the smallest over the classes: a model that drops any class entirely does
no better than it). Rows are cached in RUN/realdata.jsonl (a checkpoint's figures never change).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancore.imaging import tile
from training.cards import composite_on_checkerboard
from training.config import TrainConfig
from training.data import load_dataset
from training.evaluate import kept_checkpoints, sample_trainer
from training.evaluate.metrics import frechet_distance
from training.evaluate.quality import evaluator_for, has_classes, measure, real_features
from training.trainer import CONFIG, Trainer

CACHE = "realdata.jsonl"
SAMPLES = 5000


def describe(cfg: TrainConfig) -> str:
    """The settings that tell the comparison's runs apart, in flag form."""
    m, o = cfg.model, cfg.objective
    parts = [f"--recipe {cfg.recipe}", f"--objective {o.kind}"]
    parts += [f"--{k} {v:g}" for k, v in (("r1", o.r1), ("r2", o.r2)) if v > 0]
    parts.append(f"--g-upsample {m.g_upsample}")
    if m.arch != "dcgan":
        parts.append(f"--arch {m.arch}")
    return " ".join(parts)


def checkpoint_at(run: Path, budget: float) -> tuple[Path, dict[str, Any]] | None:
    """The last kept checkpoint of ``run`` trained within ``budget`` CPU-seconds, and its state."""
    best = None
    for path in kept_checkpoints(run):
        state = torch.load(path, map_location="cpu", weights_only=True)["state"]
        if state["cpu_seconds"] <= budget and (best is None or state["step"] > best[1]["step"]):
            best = (path, state)
    return best


def drop_one_class_fd(feats: np.ndarray, labels: np.ndarray, size: int, seed: int = 0) -> float:
    """The smallest Fréchet distance to all real images of ``size`` real images of all classes but one."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(labels):
        rest = np.flatnonzero(labels != c)
        pick = rng.choice(rest, size=min(size, len(rest)), replace=False)
        out.append(frechet_distance(feats[pick], feats))
    return float(min(out))


def measure_run(run: Path, budget: float, seed: int = 0) -> dict[str, Any] | None:
    """The figures of ``run`` at ``budget`` CPU-seconds (cached in RUN/realdata.jsonl)."""
    found = checkpoint_at(run, budget)
    if found is None:
        return None
    path, state = found
    key = (state["step"], round(state["cpu_seconds"], 1))
    cache = run / CACHE
    if cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            if (row["step"], row["cpu_s"]) == key and "checkerboard" in row:
                return row
    cfg = TrainConfig.load(run / CONFIG)
    m = cfg.model
    real = load_dataset(cfg.dataset, m.image_size, m.channels, cfg.data_dir)
    evaluator = evaluator_for(real, None, None)
    reals = real_features(real, evaluator)
    trainer = Trainer(cfg, run, dataset=real)
    trainer.load_checkpoint(path)
    images, labels = sample_trainer(trainer, SAMPLES, seed)
    trainer.close()
    q = measure(images, evaluator, real, labels, seed, reals=reals)
    row: dict[str, Any] = {"step": key[0], "cpu_s": key[1], "settings": describe(cfg)}
    row["checkerboard"], row["checkerboard_real"] = q.checkerboard, q.real_checkerboard
    for space, lf in (("main", q.label_free), ("pixels", q.label_free_pixels)):
        s = lf.samples
        row[space] = {"space": lf.feature_space, "ndb_k": s.ndb_k, "recall": s.recall,
                      "coverage": s.coverage, "precision": s.precision, "duplicates": s.duplicates,
                      "copies": s.copies}  # fmt: skip
        row[space + "_real"] = {"ndb_k": lf.real.ndb_k, "recall": lf.real.recall,
                                "coverage": lf.real.coverage, "duplicates": lf.real.duplicates,
                                "copies": lf.real.copies}  # fmt: skip
    if has_classes(real):
        pix = reals.pixel_space.features(images)
        real_pix = reals.pixel_space.features(real.images)
        row["classes"] = {
            "classes_at_5pct": q.classes_at_5pct,
            "label_accuracy": q.label_accuracy,
            "evaluator_accuracy": q.evaluator_accuracy,
            "fd": q.frechet_distance,
            "fd_drop_one_class": drop_one_class_fd(reals.features, real.labels, SAMPLES),
            "fd_pixels": frechet_distance(pix, real_pix),
            "fd_pixels_drop_one_class": drop_one_class_fd(real_pix, real.labels, SAMPLES),
        }
    with cache.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def grid_rows(runs: list[Path], budget: float, per_row: int = 8, seed: int = 0) -> np.ndarray:
    """Images 0…per_row-1 of ``seed``, a row per run at its budget checkpoint; RGBA on a checkerboard."""
    rows = []
    for run in runs:
        found = checkpoint_at(run, budget)
        if found is None:
            continue
        cfg = TrainConfig.load(run / CONFIG)
        real = load_dataset(cfg.dataset, cfg.model.image_size, cfg.model.channels, cfg.data_dir)
        trainer = Trainer(cfg, run, dataset=real)
        trainer.load_checkpoint(found[0])
        images, _ = sample_trainer(trainer, per_row, seed)
        trainer.close()
        rows.append(tile(images, columns=per_row))
    grid = np.concatenate(rows, axis=0)
    if grid.shape[2] == 1:
        return grid[..., 0]  # grey
    return composite_on_checkerboard(grid) if grid.shape[2] == 4 else grid


def table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """A Markdown table: a row per run, both spaces side by side, then the real data's own figures."""
    classes = any("classes" in r for r in rows.values())
    head = ["run", "settings", "steps", "CPU-min", "checkerboard"]
    head += [f"{f} ({s})" for s in ("main", "pixels") for f in ("NDB/K", "recall", "coverage")]
    if classes:
        head += ["classes ≥ 5 %", "label acc.", "FD / FD one class removed", "same, pixels"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [name, f"`{r['settings']}`", str(r["step"]), f"{r['cpu_s'] / 60:.1f}"]
        cells.append(f"{r['checkerboard']:.3f}")
        cells += [f"{r[s][f]:.2f}" for s in ("main", "pixels") for f in ("ndb_k", "recall", "coverage")]
        if classes:
            c = r["classes"]
            acc = "-" if c["label_accuracy"] is None else f"{c['label_accuracy']:.3f}"
            cells += [str(c["classes_at_5pct"]), acc,
                      f"{c['fd']:.2f} / {c['fd_drop_one_class']:.2f}",
                      f"{c['fd_pixels']:.3f} / {c['fd_pixels_drop_one_class']:.3f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    last = next(iter(rows.values()))
    cells = ["real vs real", "held-out half", "", "", f"{last['checkerboard_real']:.3f}"]
    figures = ("ndb_k", "recall", "coverage")
    cells += [f"{last[s + '_real'][f]:.2f}" for s in ("main", "pixels") for f in figures]
    if classes:
        acc = last["classes"]["evaluator_accuracy"]
        cells += ["", f"{acc:.3f} (evaluator held-out)" if acc else "", "", ""]
    lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders trained with --keep-every")
    p.add_argument("--budget", type=float, default=1800.0, help="CPU-seconds of the equal-time table")
    p.add_argument("--grid", type=Path, default=None, help="write a PNG: a row of samples per run, in order")
    args = p.parse_args(argv)
    rows: dict[str, dict[str, Any]] = {}
    for run in sorted(args.runs):
        if not (run / CONFIG).exists():
            print(f"{run}: not a run folder (no {CONFIG})", file=sys.stderr)
            return 2
        row = measure_run(run, args.budget)
        if row is None:
            print(f"{run.name}: no kept checkpoint within {args.budget:g} CPU-seconds", file=sys.stderr)
            continue
        rows[run.name] = row
    if not rows:
        return 1
    print(f"equal CPU time: {args.budget / 60:g} CPU-minutes per run; {SAMPLES} samples of seed 0")
    print("\n".join(table(rows)))
    if args.grid is not None:
        from PIL import Image

        grid = grid_rows(sorted(args.runs), args.budget)
        Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(args.grid)
        print(f"wrote {args.grid} (rows in the table's order)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
