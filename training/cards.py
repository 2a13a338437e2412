"""Model cards: ``NAME.json`` (machine-readable; the service reads ``quality``), ``NAME.md``, ``NAME.png``.

Everything in a card comes from the exported ONNX file (its metadata holds the full training config) and
from the evaluation, so a card can be rewritten for any generator without its run folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gancore.contract import one_hot
from gancore.imaging import encode_png, tile
from training.config import TrainConfig, preset
from training.evaluate import LabelFree, Quality, curve_markdown, plot_curve

# Config fields that change nothing about the model (logging, threads, paths) or are filled from the data.
_NOT_SETTINGS = {
    "sample_every",
    "checkpoint_every",
    "log_every",
    "keep_every",
    "threads",
    "data_dir",
    "num_classes",
    "channels",
    "steps",  # the card shows the steps the exported weights really took
}
# Config field → its command-line flag where the two differ.
_FLAG = {"kind": "--objective", "name": "--optimizer"}


def _flat(cfg: TrainConfig) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in asdict(cfg).items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def changes_from_preset(cfg: TrainConfig) -> dict[str, Any]:
    """The settings of ``cfg`` that differ from its recipe's published preset, as {flag: value}."""
    base, mine = _flat(preset(cfg.recipe)), _flat(cfg)
    changes = {}
    for key, value in mine.items():
        if key in _NOT_SETTINGS or key in ("recipe",) or base.get(key) == value:
            continue
        changes[_FLAG.get(key, "--" + key.replace("_", "-"))] = value
    return changes


def flags_text(changes: dict[str, Any]) -> str:
    parts = []
    for flag, value in changes.items():
        if value is True:
            parts.append(flag)
        elif value is False:
            parts.append("--no-" + flag.removeprefix("--"))
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def sample_grid(model: Any, seed: int = 0) -> np.ndarray:
    """A 10×10 uint8 grid: one class per row for conditional models, images 0…99 of ``seed`` otherwise."""
    info = model.info
    if info.conditional:
        rows = []
        per_row = 10
        for c in range(info.num_classes):
            idx = np.arange(per_row, dtype=np.uint64)
            rows.append(model.generate(seed, idx, one_hot(np.array([c]), info.num_classes)[0])[0])
        return tile(np.concatenate(rows), columns=per_row)
    return tile(model.generate(seed, np.arange(100, dtype=np.uint64), None)[0], columns=10)


CHECKER_SQUARE = 8  # pixels per checkerboard square behind RGBA grids
CHECKER_GREYS = (238, 204)  # two light greys, as image editors show transparency


def checkerboard(height: int, width: int, square: int = CHECKER_SQUARE) -> np.ndarray:
    """A uint8 [H, W, 3] checkerboard of ``CHECKER_GREYS`` in ``square``-pixel squares."""
    yy, xx = np.mgrid[:height, :width]
    light, dark = CHECKER_GREYS
    grey = np.where((yy // square + xx // square) % 2 == 0, light, dark).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def composite_on_checkerboard(rgba: np.ndarray, square: int = CHECKER_SQUARE) -> np.ndarray:
    """uint8 RGBA [H, W, 4] over a checkerboard → uint8 RGB [H, W, 3] (straight alpha, rounded).

    Alpha 255 leaves the colour exactly, alpha 0 shows the board exactly: a grid of RGBA sprites shows
    which pixels are transparent, where an RGBA PNG viewed on white would hide a white sprite.
    """
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected uint8 [H, W, 4], got {rgba.dtype} {list(rgba.shape)}")
    board = checkerboard(rgba.shape[0], rgba.shape[1], square).astype(np.uint32)
    colour, alpha = rgba[..., :3].astype(np.uint32), rgba[..., 3:].astype(np.uint32)
    return ((colour * alpha + board * (255 - alpha) + 127) // 255).astype(np.uint8)


def card_grid(model: Any, seed: int = 0) -> np.ndarray:
    """The card's picture: ``sample_grid``, composited on a checkerboard for 4-channel (RGBA) models."""
    grid = sample_grid(model, seed)
    return composite_on_checkerboard(grid) if grid.shape[2] == 4 else grid


def write_card(
    model: Any,
    quality: Quality,
    out_dir: Path | None = None,
    curve: list[dict[str, Any]] | None = None,
    notes: str | None = None,
) -> dict[str, Path]:
    """Write NAME.json, NAME.md and NAME.png beside the model (or in ``out_dir``); return their paths.

    ``curve``: rows of ``python -m training curve`` for the model's run; the card then holds them (JSON
    ``curve``), shows them as a table and beside it the plot NAME-curve.png (path ``curve_png``).
    ``notes``: Markdown written by people (what the figures leave out: a measured limit, a caveat), shown
    under "Notes". Either left out keeps what the card already held for the same file (same sha256), so
    re-evaluating a model does not drop its curve or notes; a different file starts without them.
    """
    if model.info.config is None:
        raise ValueError(f"{model.path}: the metadata holds no training config; a card needs one")
    cfg = TrainConfig.from_dict(json.loads(model.info.config))
    name = model.info.name
    folder = Path(out_dir) if out_dir else model.path.parent
    folder.mkdir(parents=True, exist_ok=True)
    changes = changes_from_preset(cfg)
    cpu_s = model.info.training_cpu_seconds if model.info.training_cpu_seconds is not None else float("nan")
    card = {
        "name": name,
        "recipe": cfg.recipe,
        "dataset": cfg.dataset,
        "image_shape": model.info.image_shape,
        "steps": model.info.steps,
        "seed": cfg.seed,
        "training_cpu_seconds": cpu_s,
        "training_seconds": model.info.training_seconds,
        "parameters_bytes": model.path.stat().st_size,
        "sha256": model.info.sha256,
        "changes_from_preset": changes,
        # Export options (not training settings); ψ = 1 means the generator is sampled as trained.
        "truncation": model.info.truncation,
        "config": json.loads(model.info.config),
        "quality": quality.to_dict(),
    }
    paths = {"json": folder / f"{name}.json", "md": folder / f"{name}.md", "png": folder / f"{name}.png"}
    before = _previous_card(paths["json"], model.info.sha256)
    curve = curve if curve is not None else before.get("curve")
    notes = notes if notes is not None else before.get("notes")
    if notes:
        card["notes"] = notes.strip()
    if curve is not None:
        card["curve"] = curve
    paths["json"].write_text(json.dumps(card, indent=2) + "\n")
    paths["png"].write_bytes(encode_png(card_grid(model), compress_level=9))
    paths["md"].write_text(card_markdown(card, quality, model.info.class_names))
    if curve is not None:
        paths["curve_png"] = plot_curve(curve, folder / f"{name}-curve.png", title=name)
    return paths


def _previous_card(path: Path, sha256: str) -> dict[str, Any]:
    """The card at ``path`` if it describes the file of this ``sha256``, else ``{}``."""
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) and card.get("sha256") == sha256 else {}


def _sampling_text(truncation: float) -> str:
    if truncation == 1.0:
        return "z ~ N(0, I), as trained (no truncation)"
    return f"truncation ψ = {truncation:g}: the file samples G(ψ·z), z ~ N(0, I) (`export --truncation`)"


def _rows_text(class_names: list[str]) -> str:
    """Which grid row shows which class, top to bottom."""
    return "; ".join(f"row {i + 1}: {name}" for i, name in enumerate(class_names))


def card_markdown(card: dict[str, Any], q: Quality, class_names: list[str] | None = None) -> str:
    """The human-readable card; ``class_names`` (a conditional model's, in grid-row order) name the rows."""
    o = card["config"]
    rgba = card["image_shape"][0] == 4
    lines = [
        f"# {card['name']}",
        "",
        f"A `{card['recipe']}` generator trained on `{card['dataset']}` at "
        f"{'×'.join(map(str, card['image_shape'][1:]))} ({card['image_shape'][0]} channel(s)) by ganserve's "
        f"own training code.",
        "",
        f"![samples]({card['name']}.png)",
        "",
        "Samples of seed 0 ("
        + ("one class per row" if q.label_accuracy is not None else "images 0–99")
        + ")"
        + (
            f", RGBA composited on a {CHECKER_SQUARE}-pixel grey checkerboard (the board shows through "
            "where the images are transparent)"
            if rgba
            else ""
        )
        + ".",
        "",
        *([f"Rows, top to bottom: {_rows_text(class_names)}.", ""] if class_names else []),
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| recipe | `{card['recipe']}` (a preset: its settings are listed in the training docs) |",
        f"| changes from the preset | `{flags_text(card['changes_from_preset']) or 'none'}` |",
        f"| objective | {o['objective']['kind']}, gp {o['objective']['gp_weight']}, "
        f"clip {o['objective']['clip']}, n_critic {o['objective']['n_critic']} |",
        f"| optimizer | {o['optim']['name']}, lr G {o['optim']['lr_g']}, lr D {o['optim']['lr_d']}, "
        f"betas ({o['optim']['beta1']}, {o['optim']['beta2']}) |",
        f"| networks | G width {o['model']['g_width']} ({o['model']['g_norm']} norm), "
        f"D width {o['model']['d_width']} ({o['model']['d_norm']} norm), latent {o['model']['latent_dim']}, "
        f"minibatch std {o['model']['minibatch_std']}, pack {o['model'].get('pack', 1)}, "
        f"AC-GAN head {o['model'].get('aux_classifier', False)} |",
        f"| generator steps | {card['steps']} (batch {o['batch_size']}, seed {card['seed']}) |",
        f"| sampling | {_sampling_text(card.get('truncation', 1.0))} |",
        f"| training time | {card['training_cpu_seconds']:.0f} CPU-seconds (1 torch thread), "
        f"{card['training_seconds']:.0f} s wall |",
        f"| ONNX file | {card['parameters_bytes'] / 1e6:.2f} MB |",
        "",
        "## Quality",
        "",
        f"Measured by `python -m training evaluate models/{card['name']}.onnx` on {q.samples} samples of "
        f"seed {q.seed}, "
        + (
            f"with the project's evaluator CNN (held-out accuracy {q.evaluator_accuracy:.4f} on real "
            f"`{q.dataset}`)."
            if q.evaluator_accuracy is not None
            else f"against real `{q.dataset}` (no classes: no evaluator)."
        ),
        "",
        "| figure | value |",
        "|---|---|",
    ]
    if q.label_accuracy is not None:
        lines.append(f"| label accuracy | {q.label_accuracy:.4f} |")
    lines += [
        f"| classes with ≥ 5% of samples | {q.classes_at_5pct} / {len(q.class_names)} |",
        f"| KL(samples ‖ real) of the class histogram | {q.kl_to_real:.4f} |",
        f"| Fréchet distance (evaluator features) | {q.frechet_distance:.3f} |",
        f"| same, real vs real (as many real images as samples vs the rest) | {q.frechet_real_vs_real:.3f} |",
        f"| ratio | {q.frechet_ratio:.2f} |",
        f"| within-class diversity / real | {q.diversity_ratio:.3f} |",
        "",
        "| class | " + " | ".join(q.class_names) + " |",
        "|---|" + "---|" * len(q.class_names),
        "| samples % | " + " | ".join(f"{100 * h:.1f}" for h in q.class_histogram) + " |",
        "| diversity | " + " | ".join(f"{d:.2f}" for d in q.diversity_per_class) + " |",
    ]
    if q.label_accuracy_per_class is not None:
        lines.append("| label acc | " + " | ".join(f"{a:.3f}" for a in q.label_accuracy_per_class) + " |")
    lines += ["", "Targets (class figures):", ""]
    lines += _target_lines(q.targets)
    if q.label_free is not None:
        lines += label_free_markdown(q.label_free)
    if q.label_free_pixels is not None:
        lines += label_free_markdown(q.label_free_pixels, second=True)
    if q.checkerboard is not None:
        lines += [
            "",
            f"Checkerboard score (excess spectral power on the lattice of strided up-sampling; about "
            f"the real images' score when the grid shows no lattice): {q.checkerboard:.3f}, real "
            f"images {q.real_checkerboard:.3f}.",
        ]
    if card.get("notes"):
        lines += ["", "## Notes", "", card["notes"]]
    if card.get("curve"):
        lines += curve_section(card["name"], card["curve"])
    return "\n".join(lines) + "\n"


def curve_section(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """The card's quality-against-training-time section: the table and the plot NAME-curve.png."""
    first = rows[0]
    return [
        "",
        "## Quality against training time",
        "",
        "The run's kept checkpoints (`train --keep-every`), each measured as above by `python -m training "
        f"curve` ({first['samples']} samples of seed {first['seed']} from the run's {first['generator']} "
        f"generator in PyTorch at ψ = 1, {first['feature_space']} features; CPU-minutes of training only). "
        "The last row is real against real: the dashed lines of the plot.",
        "",
        *curve_markdown(rows),
        "",
        f"![quality against training time]({name}-curve.png)",
    ]


def _target_lines(targets: list[dict[str, Any]]) -> list[str]:
    return [
        f"- {t['name']} = {t['value']} (target {t['limit']}): {'met' if t['ok'] else '**missed**'}"
        for t in targets
    ]


_LABEL_FREE_ROWS = {
    "ndb_k": "NDB/K: share of K-means bins whose share differs (z-test, α = 0.05)",
    "js": "JS divergence of the bin histograms",
    "precision": "precision (k = 3)",
    "recall": "recall (k = 3)",
    "density": "density (k = 5)",
    "coverage": "coverage (k = 5)",
    "duplicates": "near-duplicates among the images",
    "copies": "copies of training images",
}


def label_free_markdown(lf: LabelFree, second: bool = False) -> list[str]:
    """The card's label-free section: samples beside held-out real images (``second``: in the pixel space
    that was not learned from the data, ``training.evaluate.pixels``)."""
    heading = (
        "### Label-free figures in a second space: PCA of 16×16 premultiplied pixels"
        if second
        else "### Label-free figures (mode collapse)"
    )
    lines = [
        "",
        heading,
        "",
        f"In the {lf.feature_space}'s feature space: {lf.compared_size} samples and {lf.compared_size} "
        f"held-out real images, each against the other {lf.reference_size} real images (K = {lf.bins} bins). "
        "The real column is what a perfect generator would score.",
        "",
        "| figure | samples | held-out real |",
        "|---|---|---|",
    ]
    for key, label in _LABEL_FREE_ROWS.items():
        lines.append(f"| {label} | {getattr(lf.samples, key):.4f} | {getattr(lf.real, key):.4f} |")
    lines += [
        "",
        "Label-free targets (set for models of unlabeled sprites; shown for every model):",
        "",
    ]
    return lines + _target_lines(lf.targets)
