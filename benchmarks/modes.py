"""The 1000-mode benchmark at equal CPU time: modes and KL of a run's kept checkpoints against CPU time.

    benchmarks/ablation/run.sh 7-r3gan 2-shipped-digits ...        # train (RUNS=runs/ablation by default)
    python -m benchmarks.modes runs/ablation/* --budget 1200 --plot docs/modes-vs-cpu.png

For every run folder (``python -m training train --dataset stacked-digits ... --keep-every N``) it samples
the generator ``export`` would ship (the EMA copy when the run keeps one) at each kept checkpoint — 26,000
images of seed 0 by the service's noise contract — and counts the stacked digits' modes
(``training.evaluate.modes``).
Rows are cached in RUN/modes.jsonl (a checkpoint's figures never change). Prints the whole curve per run, then
one table at the budget: each run's last checkpoint whose training CPU-seconds are within it, beside the real
stacks and the published anchors (their own networks, on MNIST, not scikit-learn's digits).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from training.config import TrainConfig
from training.data import load_dataset
from training.evaluate import kept_checkpoints, sample_trainer
from training.evaluate.modes import ANCHORS, SAMPLES, count_modes, real_stacks
from training.trainer import CONFIG, Trainer

CACHE = "modes.jsonl"


def describe(cfg: TrainConfig) -> str:
    """The settings that tell the ablation's runs apart, in flag form."""
    m, o = cfg.model, cfg.objective
    parts = [f"--recipe {cfg.recipe}", f"--arch {m.arch}", f"--objective {o.kind}"]
    parts += [f"--{k} {v:g}" for k, v in (("r1", o.r1), ("r2", o.r2)) if v > 0]
    if o.penalty_every > 1:
        parts.append(f"--penalty-every {o.penalty_every}")
    parts.append(f"--g-width {m.g_width} --d-width {m.d_width} --d-norm {m.d_norm}")
    if m.minibatch_std:
        parts.append("--minibatch-std")
    return " ".join(parts)


def run_curve(run: Path, seed: int = 0, raw: bool = False, every: int = 1) -> list[dict[str, Any]]:
    """Mode figures of the checkpoints ``run`` kept (every ``every``-th, and the last; cached in
    RUN/modes.jsonl). ``raw``: of the un-averaged G instead of the one ``export`` ships."""
    cache = run / CACHE
    generator = "raw" if raw else "shipped"
    done = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            done[(row["step"], row["cpu_s"], row.get("generator", "shipped"))] = row
    cfg = TrainConfig.load(run / CONFIG)
    trainer = None
    rows = []
    paths = kept_checkpoints(run)
    for i, path in enumerate(paths):
        if i % every and i != len(paths) - 1:
            continue
        state = torch.load(path, map_location="cpu", weights_only=True)["state"]
        key = (state["step"], round(state["cpu_seconds"], 1), generator)
        if key not in done:
            if trainer is None:
                real = load_dataset(cfg.dataset, cfg.model.image_size, cfg.model.channels, cfg.data_dir)
                trainer = Trainer(cfg, run, dataset=real)
            trainer.load_checkpoint(path)
            images, _ = sample_trainer(trainer, SAMPLES, seed, raw=raw)
            fig = count_modes(images)
            done[key] = {"step": key[0], "cpu_s": key[1], "generator": generator, "modes": fig.modes,
                         "kl": fig.kl}  # fmt: skip
            with cache.open("a") as f:
                f.write(json.dumps(done[key]) + "\n")
        rows.append(done[key])
    return sorted({(r["step"], r["cpu_s"]): r for r in rows}.values(), key=lambda r: r["cpu_s"])


def at_budget(rows: list[dict[str, Any]], budget: float) -> dict[str, Any] | None:
    """The last row trained within ``budget`` CPU-seconds (None when even the first is over it)."""
    within = [r for r in rows if r["cpu_s"] <= budget]
    return within[-1] if within else None


def plot(curves: dict[str, list[dict[str, Any]]], out: Path, budget: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_m, ax_kl) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for name, rows in curves.items():
        minutes = [r["cpu_s"] / 60 for r in rows]
        ax_m.plot(minutes, [r["modes"] for r in rows], marker=".", label=name)
        ax_kl.plot(minutes, [r["kl"] for r in rows], marker=".", label=name)
    for ax in (ax_m, ax_kl):
        ax.axvline(budget / 60, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("training CPU-minutes")
    ax_m.set_ylabel("modes covered (of 1000, 26,000 samples)")
    ax_kl.set_ylabel("KL(modes || uniform)")
    ax_kl.set_yscale("log")
    ax_m.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "runs", nargs="+", type=Path, help="run folders trained on stacked-digits with --keep-every"
    )
    p.add_argument("--budget", type=float, default=1800.0, help="CPU-seconds of the equal-time table")
    p.add_argument("--plot", type=Path, default=None, help="write modes and KL against CPU time here (PNG)")
    p.add_argument("--markdown", action="store_true", help="print the budget table as Markdown")
    p.add_argument(
        "--raw", action="store_true", help="measure the un-averaged G (runs with an EMA ship the EMA)"
    )
    p.add_argument("--every", type=int, default=1, help="measure every N-th kept checkpoint (and the last)")
    args = p.parse_args(argv)
    curves: dict[str, list[dict[str, Any]]] = {}
    settings: dict[str, str] = {}
    for run in sorted(args.runs):
        if not (run / CONFIG).exists():
            print(f"{run}: not a run folder (no {CONFIG})", file=sys.stderr)
            return 2
        curves[run.name] = run_curve(run, raw=args.raw, every=args.every)
        settings[run.name] = describe(TrainConfig.load(run / CONFIG))
        print(f"{run.name}: {settings[run.name]}")
        for r in curves[run.name]:
            cpu = r["cpu_s"] / 60
            print(f"  step {r['step']:6d}  CPU {cpu:6.1f} min  modes {r['modes']:4d}  KL {r['kl']:.4f}")
    real = count_modes(real_stacks(load_dataset("stacked-digits", 32).images))
    minutes = args.budget / 60
    sep = " | " if args.markdown else "  "
    header = ["run", "settings", "steps", "CPU-min", f"modes @ {minutes:g} CPU-min", "KL"]
    print()
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    else:
        print(f"modes at equal CPU time ({minutes:g} CPU-minutes per run; {SAMPLES} samples of seed 0)")
    for name, rows in curves.items():
        r = at_budget(rows, args.budget)
        cells = [name, f"`{settings[name]}`" if args.markdown else settings[name]]
        cells += ["-", "-", "-", "-"] if r is None else [
            str(r["step"]), f"{r['cpu_s'] / 60:.1f}", str(r["modes"]), f"{r['kl']:.3f}"]  # fmt: skip
        print(("| " + sep.join(cells) + " |") if args.markdown else sep.join(cells))
    extra = [["real stacks", "26,000 of the data set", "", "", str(real.modes), f"{real.kl:.3f}"]]
    extra += [[f"{k} (paper, MNIST)", "", "", "", str(m), f"{kl:.3f}"] for k, (m, kl) in ANCHORS.items()]
    for cells in extra:
        print(("| " + sep.join(cells) + " |") if args.markdown else sep.join(cells))
    if args.plot is not None:
        plot(curves, args.plot, args.budget)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
