"""Quality against training cost: train a recipe and evaluate its shipped generator every N steps.

    python -m benchmarks.quality_curve --recipe dcgan --steps 3000 --eval-every 100 --budget-cpu 600 \
        --out runs/curve-dcgan [any train flag]

Prints one row per evaluation (generator step, training CPU-seconds, the class figures) and appends the same
rows to OUT/curve.jsonl. CPU time counts training only, not the evaluations, so the rows say what a run of
that many steps costs (``python -m training train --steps N`` gives the same weights: nothing in training
depends on the total length).

To measure a run that is trained anyway, ``python -m training train ... --keep-every N`` and then
``python -m training curve RUN`` give the same rows without a special training loop (and the label-free
figures); this benchmark shares its sampling (``training.evaluate.sample_trainer``) and figures (``measure``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace

from training.__main__ import _add_train_args, config_from_args
from training.evaluate import EvaluatorSettings, evaluator_for, measure, real_features, sample_trainer
from training.trainer import CHECKPOINT, Trainer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_train_args(p)
    p.add_argument("--budget-cpu", type=float, default=600.0, help="stop once training used this many CPU-s")
    p.add_argument(
        "--keep-checkpoints", action="store_true", help="keep OUT/checkpoint-STEP.pt of every evaluated step"
    )
    p.add_argument("--evaluator-epochs", type=int, default=None, help="(quick checks) evaluator epochs")
    p.add_argument("--also-raw", action="store_true", help="with --ema-decay, also evaluate the raw G")
    args = p.parse_args(argv)
    extra = {
        k: vars(args).pop(k)
        for k in (
            "budget_cpu",
            "also_raw",
            "keep_checkpoints",
            "evaluator_epochs",
        )
    }
    cfg = config_from_args(args)
    # --eval-every and --eval-samples are the trainer's own flags; this loop takes the snapshots itself
    extra.update(eval_every=cfg.eval_every, eval_samples=cfg.eval_samples)
    cfg = replace(cfg, eval_every=0, tensorboard=False)
    args = argparse.Namespace(**vars(args), **extra)
    trainer = Trainer(cfg, args.out)
    # no evaluator for a data set without classes: its figures are label-free, as `evaluate` measures them
    evaluator = evaluator_for(trainer.dataset, EvaluatorSettings(epochs=args.evaluator_epochs))
    reals = real_features(trainer.dataset, evaluator)  # the real features and label-free reference, once
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(trainer.cfg.to_json())
    cpu, wall = 0.0, 0.0
    print(
        f"{'step':>6} {'cpu_s':>7} {'label':>6} {'cls5':>4} {'kl':>7} {'fd':>6} {'div':>5} {'G':>7}",
        flush=True,
    )
    with open(args.out / "curve.jsonl", "w") as log:
        while trainer.state.step < cfg.steps and cpu < args.budget_cpu:
            trainer.G.train()
            t0, w0 = time.process_time(), time.perf_counter()
            trainer.train_step()
            cpu += time.process_time() - t0
            wall += time.perf_counter() - w0
            step = trainer.state.step
            if step % args.eval_every and step != cfg.steps:
                continue
            # The run folder then holds the weights of the row just printed, with the training cost alone, so
            # `python -m training export OUT` ships exactly what was measured.
            trainer.state.cpu_seconds, trainer.state.wall_seconds = cpu, wall
            trainer.save()
            if args.keep_checkpoints:
                shutil.copyfile(args.out / CHECKPOINT, args.out / f"checkpoint-{step:06d}.pt")
            kinds = ["ema", "raw"] if args.also_raw and trainer.G_ema is not None else ["shipped"]
            for kind in kinds:
                images, labels = sample_trainer(trainer, args.eval_samples, 0, raw=kind == "raw")
                q = measure(images, evaluator, trainer.dataset, labels, 0, reals=reals)
                row = {
                    "step": step,
                    "cpu_s": round(cpu, 1),
                    "generator": kind,
                    "label_accuracy": q.label_accuracy,
                    "classes_at_5pct": q.classes_at_5pct,
                    "kl_to_real": q.kl_to_real,
                    "frechet_ratio": q.frechet_ratio,
                    "diversity_ratio": q.diversity_ratio,
                    "ok": all(t["ok"] for t in q.targets),
                    "class_histogram": q.class_histogram,
                    "label_accuracy_per_class": q.label_accuracy_per_class,
                }
                log.write(json.dumps(row) + "\n")
                log.flush()
                label = f"{q.label_accuracy:.4f}" if q.label_accuracy is not None else "-"
                print(
                    f"{step:6d} {cpu:7.1f} {label:>6} {q.classes_at_5pct:4d} {q.kl_to_real:7.4f}"
                    f" {q.frechet_ratio:6.2f} {q.diversity_ratio:5.2f} {kind:>7}"
                    + ("  ok" if row["ok"] else ""),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
