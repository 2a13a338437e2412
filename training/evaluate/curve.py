"""Quality against training time: ``evaluate``'s figures for each checkpoint a run kept.

``python -m training train ... --keep-every N`` keeps ``RUN/checkpoints/step-NNNNNN.pt``;
``python -m training curve RUN`` rebuilds the run from ``RUN/config.json``, loads each kept checkpoint and
the final ``checkpoint.pt`` in turn, samples the generator that ``export`` would ship (the EMA copy when the
run has one) by the service's noise contract, and measures it with ``quality.measure`` against the real data
that ``evaluate`` uses. One row per checkpoint: the generator step, the training CPU-seconds recorded in the
checkpoint (training only, not the evaluations), the figures, and the same figures for real data.

Differences from ``evaluate`` on an exported file: the generator runs in PyTorch, not ONNX Runtime (the two
agree to ~1e-6 before the uint8 rounding, see ``export``), and at ψ = 1 (an ``export --truncation`` is not
part of the run).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gancore.contract import generate
from training.config import TrainConfig
from training.data import load_dataset
from training.evaluate.autoencoder import AutoencoderSettings
from training.evaluate.evaluator import EvaluatorSettings
from training.evaluate.label_free import FIGURES
from training.evaluate.quality import COVERAGE_SHARE, Quality, evaluator_for, measure, real_features
from training.trainer import CHECKPOINT, CONFIG, KEPT, Trainer, evaluating

_KEPT_NAME = re.compile(r"step-(\d+)\.pt")

# Figure → its label in tables and plots; the label figures only where the data set has classes.
LABEL_FIGURES = {
    "label_accuracy": "label acc",
    "classes_at_5pct": "classes ≥ 5%",
    "kl_to_real": "KL classes",
}
SHARED_FIGURES = {"frechet_ratio": "Fréchet ratio", "diversity_ratio": "diversity"}
FREE_FIGURES = {
    "ndb_k": "NDB/K",
    "js": "JS",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
    "duplicates": "near-dup.",
    "copies": "copies",
}
FIGURE_NAMES = {**LABEL_FIGURES, **SHARED_FIGURES, **FREE_FIGURES}
# Columns of the printed and the card's table (a plot shows the rest).
TABLE_FIGURES = ("label_accuracy", "kl_to_real", "frechet_ratio", "ndb_k", "precision", "recall", "coverage",
                 "duplicates", "copies")  # fmt: skip


def kept_checkpoints(run: Path) -> list[Path]:
    """The run's kept checkpoints (``checkpoints/step-*.pt``) by step, then the final ``checkpoint.pt``."""
    run = Path(run)
    kept = sorted(
        (int(m.group(1)), p)
        for p in (run / KEPT).glob("step-*.pt")
        if (m := _KEPT_NAME.fullmatch(p.name)) is not None
    )
    final = [run / CHECKPOINT] if (run / CHECKPOINT).exists() else []
    return [p for _, p in kept] + final


def sample_trainer(
    trainer: Trainer, count: int, seed: int, raw: bool = False, batch: int = 500
) -> tuple[np.ndarray, np.ndarray | None]:
    """``count`` uint8 images [N, H, W, C] of the generator ``export`` would ship (``raw``: of the un-averaged
    G), with each image's class, drawn by the service's noise contract (``gancore.contract.generate``)."""
    G = trainer.G if raw else trainer.export_generator
    cfg, device = trainer.cfg.model, trainer.device

    def run(z: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        label = None if rows is None else torch.from_numpy(rows).to(device)
        return G(torch.from_numpy(z).to(device), label).float().cpu().numpy()

    images, labels = [], []
    # Batches bound the memory (5000 images at 64×64×4 would hold gigabytes of activations at once).
    with evaluating(G), torch.no_grad():
        for start in range(0, count, batch):
            idx = np.arange(start, min(count, start + batch), dtype=np.uint64)
            imgs, classes = generate(run, seed, idx, cfg.latent_dim, cfg.num_classes, None)
            images.append(imgs)
            if classes is not None:
                labels.append(classes)
    return np.concatenate(images), (np.concatenate(labels) if labels else None)


def curve_row(q: Quality, step: int, cpu_s: float, wall_s: float, generator: str) -> dict[str, Any]:
    """One row of a curve: where the run was, the figures ``evaluate`` prints, and the real data's own."""
    lf = q.label_free
    assert lf is not None  # measure always adds the label-free figures
    figures: dict[str, Any] = {}
    real: dict[str, Any] = {}
    if q.evaluator_accuracy is not None:  # a data set with classes
        if q.label_accuracy is not None:
            figures["label_accuracy"] = q.label_accuracy
            real["label_accuracy"] = q.evaluator_accuracy  # the evaluator on held-out real images
        figures["classes_at_5pct"] = q.classes_at_5pct
        real["classes_at_5pct"] = int(sum(h >= COVERAGE_SHARE for h in q.real_class_histogram))
        figures["kl_to_real"], real["kl_to_real"] = q.kl_to_real, 0.0
    figures["frechet_ratio"], real["frechet_ratio"] = q.frechet_ratio, 1.0  # real vs real = 1 by definition
    figures["diversity_ratio"], real["diversity_ratio"] = q.diversity_ratio, 1.0
    for name in FIGURES:
        figures[name] = round(getattr(lf.samples, name), 5)
        real[name] = round(getattr(lf.real, name), 5)
    missed = q.missed_targets()
    return {
        "step": step,
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "generator": generator,
        "samples": q.samples,
        "seed": q.seed,
        "feature_space": lf.feature_space,
        "figures": figures,
        "real": real,
        "targets_missed": missed,
    }


def measure_curve(
    run: Path,
    samples: int = 5000,
    seed: int = 0,
    data_dir: str | None = None,
    cache_dir: Path | None = None,
    settings: EvaluatorSettings | None = None,
    autoencoder_settings: AutoencoderSettings | None = None,
    threads: int | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """The curve of the run in ``run``: a row (``curve_row``) per kept checkpoint and the final one, by step.

    ``on_row`` sees each row as it is measured (a long curve can be written and printed as it goes). A final
    checkpoint at a step already kept is not measured twice. Reads the run folder, writes nothing to it.
    """
    run = Path(run)
    if not (run / CONFIG).exists():
        raise ValueError(f"{run} holds no run ({CONFIG} is missing)")
    files = kept_checkpoints(run)
    if not files:
        raise ValueError(f"{run} holds no checkpoint (train with --keep-every N to keep some)")
    cfg = TrainConfig.load(run / CONFIG)
    cfg = replace(cfg, data_dir=data_dir or cfg.data_dir, threads=threads or cfg.threads)
    m = cfg.model
    # The real data as `evaluate` loads it for the exported file, so the figures are the ones it would print.
    real = load_dataset(cfg.dataset, m.image_size, m.channels, cfg.data_dir)
    evaluator = evaluator_for(real, settings, cache_dir)
    reals = real_features(real, evaluator, None, cache_dir, autoencoder_settings, second_space=False)
    trainer = Trainer(cfg, run, dataset=real)
    rows: list[dict[str, Any]] = []
    for path in files:
        trainer.load_checkpoint(path)
        st = trainer.state
        if any(r["step"] == st.step for r in rows):
            continue
        images, labels = sample_trainer(trainer, samples, seed)
        q = measure(images, evaluator, real, labels, seed, reals=reals, cache_dir=cache_dir)
        kind = "ema" if trainer.G_ema is not None else "G"
        row = curve_row(q, st.step, st.cpu_seconds, st.wall_seconds, kind)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    trainer.close()
    return sorted(rows, key=lambda r: r["step"])


def read_curve(path: Path) -> list[dict[str, Any]]:
    """The rows of a curve file (JSON lines, as ``python -m training curve --json`` writes)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows or not all("step" in r and "figures" in r and "real" in r for r in rows):
        raise ValueError(f"{path}: not a curve of `python -m training curve --json` (no rows with figures)")
    return sorted(rows, key=lambda r: r["step"])


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return [f for f in TABLE_FIGURES if all(f in r["figures"] for r in rows)]


def _fmt(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def curve_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The curve as a terminal table: a row per checkpoint, then the real data's own figures."""
    cols = _columns(rows)
    lines = [f"{'step':>7} {'CPU-min':>8} " + " ".join(f"{FIGURE_NAMES[c]:>13}" for c in cols)]
    for r in rows:
        cells = " ".join(f"{_fmt(r['figures'][c]):>13}" for c in cols)
        lines.append(f"{r['step']:7d} {r['cpu_s'] / 60:8.2f} {cells}")
    lines.append(f"{'real':>7} {'':>8} " + " ".join(f"{_fmt(rows[-1]['real'][c]):>13}" for c in cols))
    return lines


def curve_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The curve as a markdown table (for model cards): a row per checkpoint, then real vs real."""
    cols = _columns(rows)
    lines = [
        "| step | CPU-min | " + " | ".join(FIGURE_NAMES[c] for c in cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for r in rows:
        cells = " | ".join(_fmt(r["figures"][c]) for c in cols)
        lines.append(f"| {r['step']} | {r['cpu_s'] / 60:.1f} | {cells} |")
    lines.append("| real vs real | | " + " | ".join(_fmt(rows[-1]["real"][c]) for c in cols) + " |")
    return lines


def _panels(rows: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(title, figures) of each plot panel present in ``rows``: one panel per family of figures."""
    have = rows[0]["figures"]
    panels = [
        ("NDB/K (bins that differ)", ["ndb_k"]),
        ("precision / recall (k = 3)", ["precision", "recall"]),
        ("coverage / density (k = 5)", ["coverage", "density"]),
        ("near-duplicates / copies", ["duplicates", "copies"]),
    ]
    if "classes_at_5pct" in have:  # labelled data: the class figures too
        panels.append(("Fréchet ratio (evaluator features)", ["frechet_ratio"]))
        if "label_accuracy" in have:  # conditional
            panels.append(("label accuracy", ["label_accuracy"]))
        else:
            panels.append(("KL of the class histogram", ["kl_to_real"]))
    return panels


def plot_curve(rows: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Figures against training CPU-minutes, one panel per family, the real-vs-real value dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = _panels(rows)
    cols = 3 if len(panels) > 4 else 2
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), dpi=100, squeeze=False)
    minutes = [r["cpu_s"] / 60 for r in rows]
    for ax, (panel, names) in zip(axes.flat, panels, strict=False):
        for i, name in enumerate(names):
            colour, label = f"C{i}", FIGURE_NAMES[name]
            ax.plot(minutes, [r["figures"][name] for r in rows], "o-", ms=3, color=colour, label=label)
            ax.axhline(rows[-1]["real"][name], color=colour, ls="--", lw=1, label=f"{label}, real")
        if names == ["frechet_ratio"]:  # from hundreds early on to near 1: only a log scale shows both
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("training CPU-minutes")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
